"""Adding an optimizer touches no file in ``optimlab/``: a toy (signSGD, which torch lacks) is
registered from the test folder, checked with its reference as the oracle, has a catalogued
mistake that the checker names, and is wrapped by the adapter."""

from __future__ import annotations

import pytest
import torch

import optimlab
from optimlab.check import catalogue, check
from optimlab.optimizers import SPECS, register, unregister
from optimlab.optimizers.verify import verify

from .learners.signsgd import SPEC


@pytest.fixture(autouse=True)
def signsgd():
    register(SPEC)
    yield SPEC
    unregister(SPEC.name)


def learner_signsgd(param, grad, state, *, lr=1e-2, weight_decay=0.0, maximize=False):
    """A learner's correct version, in another style."""
    g = -grad if maximize else grad
    g = g + weight_decay * param
    param -= lr * torch.sign(g)


def learner_forgets_the_sign(param, grad, state, *, lr=1e-2, weight_decay=0.0, maximize=False):
    g = -grad if maximize else grad
    param.sub_(lr * (g + weight_decay * param))


def test_it_is_registered_and_reachable_like_the_course_optimizers():
    order = list(SPECS)
    assert "signsgd" in SPECS  # after the course's, among those without a notebook
    assert all(order.index(n) < order.index("signsgd") for n, s in SPECS.items() if s.notebook)
    assert optimlab.reference.signsgd_step is SPEC.step_fn
    assert [g for g in SPEC.groups] == ["basic", "weight_decay", "maximize", "extras", "hidden"]


def test_a_correct_learner_passes_visible_and_hidden_groups():
    assert check(learner_signsgd, "signsgd", display=False)
    assert check(learner_signsgd, "signsgd", "hidden", display=False)


def test_the_reference_is_the_oracle_and_verifies():
    for case in SPEC.cases():
        assert SPEC.impls(case) == ("single",)
        assert verify(SPEC, case).diff.max_abs == 0.0


def test_a_wrong_learner_fails_and_its_mistake_is_named():
    result = check(learner_forgets_the_sign, "signsgd", raise_on_failure=False, display=False)
    assert not result.passed
    assert result.mistakes[0].key == "raw_gradient"
    assert "This looks like: the gradient where its sign belongs" in str(result)


def test_the_common_mistakes_come_with_it():
    keys = [m.key for m in catalogue("signsgd")]
    assert keys[:4] == ["sign_flipped", "maximize_ignored", "decay_after_update", "raw_gradient"]
    flipped = next(m for m in catalogue("signsgd") if m.key == "sign_flipped")
    result = check(flipped.step_fn, "signsgd", raise_on_failure=False, display=False,
                   allow_reference=True)
    assert "sign_flipped" in [m.key for m in result.mistakes]


def test_calling_its_reference_is_a_shortcut():
    def lazy(param, grad, state, **kw):
        SPEC.step_fn(param, grad, state, **kw)

    result = check(lazy, "signsgd", raise_on_failure=False, display=False)
    assert result.cases[0].kind == "shortcut"


def test_the_adapter_wraps_it_and_trains():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    net = torch.nn.Linear(3, 1)
    opt = optimlab.make_optimizer(SPEC.step_fn, net.parameters(), lr=0.02)
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


def test_unregistered_it_is_gone():
    unregister("signsgd")
    with pytest.raises(KeyError, match="unknown optimizer"):
        check(learner_signsgd, "signsgd")
    register(SPEC)
