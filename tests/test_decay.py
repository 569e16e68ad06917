"""The checks of notebooks 08–09's exercises that are not step functions (optimlab.learn.decay):
each accepts right answers written differently, and rejects plausible wrong ones with a message
that says why."""

from __future__ import annotations

import math

import pytest
import torch

from optimlab.learn import decay

F64 = torch.float64


# ----------------------------------------------------------------------- 08: AdamW's fixed point
def equilibrium_closed_form(theta0, s, lr, weight_decay, steps):
    star = -s / weight_decay
    if steps == math.inf:
        return star
    return star + (theta0 - star) * (1 - lr * weight_decay) ** steps


def equilibrium_by_loop(theta0, s, lr, weight_decay, steps):
    """A loop for finite steps, the limit by the fixed point of θ ← θ(1 − γλ) − γs."""
    if math.isinf(steps):
        return -lr * s / (1 - (1 - lr * weight_decay))
    theta = theta0.clone()
    for _ in range(int(steps)):
        theta = theta * (1 - lr * weight_decay) - lr * s
    return theta


@pytest.mark.parametrize("fn", [equilibrium_closed_form, equilibrium_by_loop])
@pytest.mark.parametrize("hidden", [False, True])
def test_decoupled_equilibrium_accepts_right_answers(fn, hidden):
    assert "right on" in decay.check_decoupled_equilibrium(fn, hidden=hidden)


def test_the_answer_is_what_torch_adamw_does_with_a_constant_gradient():
    """A constant gradient g makes Adam's normalized step g/(|g| + ε): s, to 1e-8."""
    theta0 = torch.tensor([0.0, 3.0, -1.0], dtype=F64)
    g = torch.tensor([1.0, -0.5, 0.2], dtype=F64)
    p = theta0.clone().requires_grad_()
    opt = torch.optim.AdamW([p], lr=0.01, weight_decay=0.5)
    for _ in range(300):
        p.grad = g.clone()
        opt.step()
    s = g / (g.abs() + 1e-8)
    want = decay.decoupled_equilibrium_answer(theta0, s, 0.01, 0.5, 300)
    torch.testing.assert_close(p.detach(), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("wrong", "words"), [
    (lambda t0, s, lr, wd, n: equilibrium_closed_form(t0, -s, lr, wd, n), "moves against s"),
    (lambda t0, s, lr, wd, n: _decay_without_lr(t0, s, lr, wd, n), "(1 − λ)"),
    (lambda t0, s, lr, wd, n: (-s / wd * (1 - lr * wd) if math.isinf(n) else
                               _decay_after(t0, s, lr, wd, n)), "decays after the step"),
    (lambda t0, s, lr, wd, n: t0 * (0 if math.isinf(n) else (1 - lr * wd) ** n), "is missing"),
    (lambda t0, s, lr, wd, n: equilibrium_closed_form(t0, s, lr, wd, n + 1), "off by one"),
    (lambda t0, s, lr, wd, n: -s / wd, "differs from AdamW's θ"),
])
def test_decoupled_equilibrium_rejects_plausible_mistakes(wrong, words):
    with pytest.raises(AssertionError, match="differs from AdamW's θ") as info:
        decay.check_decoupled_equilibrium(wrong)
    assert words in str(info.value), str(info.value)


def _decay_after(theta0, s, lr, wd, steps):
    theta = theta0.clone()
    for _ in range(int(steps)):
        theta = (theta - lr * s) * (1 - lr * wd)
    return theta


def _decay_without_lr(theta0, s, lr, wd, steps):
    star = -lr * s / wd  # the fixed point of θ ← θ(1 − λ) − γs
    return star + (theta0 - star) * (0.0 if math.isinf(steps) else (1 - wd) ** steps)


def test_decoupled_equilibrium_says_when_the_answer_is_not_a_tensor():
    with pytest.raises(AssertionError, match="should be a tensor"):
        decay.check_decoupled_equilibrium(lambda t0, s, lr, wd, n: (-s / wd).tolist())


def test_decoupled_equilibrium_reports_a_crash():
    def crashes(theta0, s, lr, weight_decay, steps):
        return theta0 / 0 + s.item()  # item() of a 3-element tensor raises

    with pytest.raises(AssertionError, match="raised RuntimeError"):
        decay.check_decoupled_equilibrium(crashes)


# ----------------------------------------------------------------------- 09: Adamax after a spike
def recovery_by_logs(spike_ratio, beta2):
    return max(0, math.ceil(math.log(spike_ratio) / math.log(1 / beta2)))


def recovery_by_loop(spike_ratio, beta2):
    k, u = 0, spike_ratio
    while u > 1:
        u *= beta2
        k += 1
    return k


@pytest.mark.parametrize("fn", [recovery_by_logs, recovery_by_loop])
@pytest.mark.parametrize("hidden", [False, True])
def test_adamax_recovery_steps_accepts_right_answers(fn, hidden):
    assert "right on" in decay.check_adamax_recovery_steps(fn, hidden=hidden)


def test_recovery_steps_is_what_torch_adamax_does():
    """Gradient 1, one spike of 100, then 1 again: u is back to 1 + ε after that many steps."""
    p = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = torch.optim.Adamax([p])
    us = []
    for t in range(6000):
        p.grad = torch.full_like(p, 100.0 if t == 500 else 1.0)
        opt.step()
        us.append(opt.state[p]["exp_inf"].item())
    back = next(k for k in range(1, 6000) if us[500 + k] <= 1 + 1e-8)
    assert back == decay.adamax_recovery_steps_answer(100.0, 0.999) == 4603


@pytest.mark.parametrize(("wrong", "words"), [
    (lambda r, b: math.floor(math.log(r) / -math.log(b)), "round up"),
    (lambda r, b: math.log(r) / -math.log(b), "whole number"),
    (lambda r, b: math.ceil(abs(math.log(r)) / -math.log(b)), "never raises u"),
    (lambda r, b: round(math.log(r) / (1 - b)) if r > 1 else 0, "exact logarithm"),
    (lambda r, b: recovery_by_logs(r, b) + 1, "expected"),
])
def test_adamax_recovery_steps_rejects_plausible_mistakes(wrong, words):
    with pytest.raises(AssertionError) as info:
        decay.check_adamax_recovery_steps(wrong, hidden=True)
    assert words in str(info.value), str(info.value)


def test_hidden_cases_stay_the_same_for_the_same_seed(monkeypatch):
    """The judge replays a check: with the grader's seed, the cases and calls repeat."""
    monkeypatch.setattr(decay, "_seed", lambda hidden, label="": 1234 if hidden else 0)
    calls = [[], []]
    for record in calls:
        decay.check_adamax_recovery_steps(
            lambda r, b, record=record: record.append((r, b)) or recovery_by_logs(r, b), True)
    assert calls[0] == calls[1] and len(calls[0]) == 12
