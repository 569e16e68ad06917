"""Claims of notebooks 08 (AdamW), 09 (Adamax) and 10 (NAdam), each computed as the notebook
computes it, with torch.optim and the same seeds (the notebooks run the learner's step functions,
equal to torch's as the checks show). A claim a test here contradicts is changed in the notebook.

The 1/λ cap of 08 and the spike of 09 are also asserted in tests/test_claims.py (part 1).
"""

from __future__ import annotations

import functools
import math

import pytest
import torch

from optimlab.learn import data, decay, problems

from .test_claims import step_sizes  # notebook 09's spike experiment

F64 = torch.float64


# ------------------------------------------------------------------ 08 AdamW on the digits
LAMS, SEEDS = (1e-3, 1e-2, 1e-1, 1.0), (0, 1)
KINDS = {"Adam + L2": torch.optim.Adam, "AdamW": torch.optim.AdamW}


@functools.cache
def split():
    return data.digits()


@functools.cache
def digits_run(kind, weight_decay, seed, epochs=15):
    """Notebook 08's run: (test accuracy, test loss, weight norm, median √v̂)."""
    torch.set_num_threads(1)
    model = data.digits_network(seed=seed)
    opt = KINDS[kind](model.parameters(), lr=1e-2, weight_decay=weight_decay)
    history = data.train(model, opt, split(), epochs=epochs, batch_size=64, seed=seed)
    norm = torch.cat([p.detach().flatten() for p in model.parameters()]).norm().item()
    root_v = torch.cat([(s["exp_avg_sq"] / (1 - 0.999 ** s["step"])).sqrt().flatten()
                        for s in opt.state.values()])
    return history.test_accuracy[-1], history.test_loss[-1], norm, root_v.median().item()


def mean(kind, lam):
    return [sum(digits_run(kind, lam, s)[i] for s in SEEDS) / len(SEEDS) for i in range(3)]


@pytest.mark.slow(seconds=10)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_at_the_same_lambda_adamw_beats_adam_l2_on_the_test_set(seed):
    """"At the same λ = 0.1 AdamW keeps about 97.5 % of the test images, Adam+L2 about 92 %;
    Adam+L2's weights are crushed to a third of AdamW's norm" (and a third seed agrees)."""
    adamw, adam = digits_run("AdamW", 0.1, seed), digits_run("Adam + L2", 0.1, seed)
    assert adamw[0] > adam[0] + 0.03
    assert adamw[1] * 5 < adam[1]  # test loss
    assert 2.5 < adamw[2] / adam[2] < 3.5  # weight norm: about a third


@pytest.mark.slow(seconds=20)
def test_the_table_of_the_digits_sweep():
    """The numbers the text reads off the 2-seed table."""
    assert mean("AdamW", 0.1)[0] == pytest.approx(0.975, abs=0.005)
    assert mean("Adam + L2", 0.1)[0] == pytest.approx(0.92, abs=0.01)
    assert mean("Adam + L2", 0.1)[1] > 8 * mean("AdamW", 0.1)[1]  # test loss
    assert mean("Adam + L2", 1.0)[0] < 0.15  # chance is 0.1
    for lam in LAMS[1:]:  # AdamW ahead at every λ ≥ 1e-2 of the grid
        assert mean("AdamW", lam)[0] > mean("Adam + L2", lam)[0]


@pytest.mark.slow(seconds=20)
@pytest.mark.parametrize("lam", [1e-3, 1e-2])
def test_adam_l2_at_lambda_acts_like_adamw_at_100_lambda(lam):
    adam, adamw = mean("Adam + L2", lam), mean("AdamW", 100 * lam)
    assert abs(adam[0] - adamw[0]) < 0.015  # accuracy
    assert abs(adam[1] / adamw[1] - 1) < 0.15  # test loss
    assert abs(adam[2] / adamw[2] - 1) < 0.15  # weight norm


@pytest.mark.slow(seconds=20)
def test_each_at_its_best_lambda_the_two_are_within_a_few_test_images():
    best = {kind: max(mean(kind, lam)[0] for lam in LAMS) for kind in KINDS}
    assert abs(best["AdamW"] - best["Adam + L2"]) < 0.01  # 449 test images: 0.01 is 4 or 5
    # "the decay barely helps either": the best λ is within 0.01 of the smallest one
    for kind in KINDS:
        assert best[kind] - mean(kind, 1e-3)[0] < 0.01


@pytest.mark.slow(seconds=5)
def test_the_gradients_root_mean_square_is_about_0_004():
    """"√v̂ is about 0.004 here": L2's λθ divided by it is hundreds of times AdamW's decay."""
    assert digits_run("Adam + L2", 1e-3, 0)[3] == pytest.approx(0.004, abs=0.001)


def test_the_limit_of_adamws_decay_is_s_over_lambda_below_the_cap():
    """The exercise's limit with |s| ≤ 1 stays within 1/λ, for any learning rate."""
    s = torch.tensor([1.0, -1.0, 0.3], dtype=F64)
    for lr in (1e-4, 1e-2, 1.0):
        star = decay.decoupled_equilibrium_answer(torch.zeros(3, dtype=F64), s, lr, 0.5, math.inf)
        assert star.abs().max() <= 1 / 0.5
        torch.testing.assert_close(star, -s / 0.5)


# ------------------------------------------------------------------ 09 Adamax
def test_textbook_adamax_steps_nan_where_torch_stays_put():
    g = torch.tensor([0.0, 2.0, -0.5])
    m, u_textbook, u_torch = torch.zeros(3), torch.zeros(3), torch.zeros(3)
    for _ in range(3):
        m = 0.9 * m + 0.1 * g
        u_textbook = torch.maximum(0.999 * u_textbook, g.abs())
        u_torch = torch.maximum(0.999 * u_torch, g.abs() + 1e-8)
    textbook, ours = m / u_textbook, m / u_torch
    assert math.isnan(textbook[0]) and ours[0] == 0
    torch.testing.assert_close(textbook[1:], ours[1:], rtol=1e-7, atol=0)
    p = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adamax([p])
    for _ in range(3):
        p.grad = g.clone()
        opt.step()
    assert p[0] == 0 and torch.isfinite(p).all()


def test_on_the_ravine_adamaxs_first_step_is_lr_in_both_coordinates_and_none_is_larger():
    for make in (lambda p: torch.optim.Adamax(p, lr=0.3), lambda p: torch.optim.Adam(p, lr=0.3)):
        path = problems.run_on_surface(problems.ravine, make, (-4.5, 1.5), 60)
        steps = (path[1:] - path[:-1]).abs()
        torch.testing.assert_close(steps[0], torch.tensor([0.3, 0.3], dtype=F64))
    assert steps.max() <= 0.3 * (1 + 1e-9)  # Adam's; and Adamax's:
    path = problems.run_on_surface(problems.ravine, lambda p: torch.optim.Adamax(p, lr=0.3),
                                   (-4.5, 1.5), 60)
    assert (path[1:] - path[:-1]).abs().max() <= 0.3 * (1 + 1e-9)


def test_the_spike_slows_4592_steps_and_u_recovers_11_steps_later():
    adamax = step_sizes(lambda p: torch.optim.Adamax(p, lr=2e-3))
    slow = (adamax[501:] < 0.99 * 2e-3).nonzero()
    assert int(slow[-1]) + 1 == len(slow) == 4592
    assert decay.adamax_recovery_steps_answer(100.0, 0.999) == 4603  # "a few steps" later


def test_a_smaller_beta2_forgets_a_spike_ten_times_sooner():
    slow, fast = (decay.adamax_recovery_steps_answer(100.0, b) for b in (0.999, 0.99))
    assert fast == 459 and 9.5 < slow / fast < 10.5


# ------------------------------------------------------------------ 10 NAdam
def mu(t, psi=4e-3, beta1=0.9):
    return beta1 * (1 - 0.5 * 0.96 ** (t * psi))


def test_nadam_momentum_starts_at_half_beta1_and_creeps_up():
    assert mu(1) == pytest.approx(0.4501, abs=5e-5)
    assert mu(10_000) == pytest.approx(0.8121, abs=5e-5)
    first = {psi: next(t for t in range(1, 10**6) if mu(t, psi) >= 0.99 * 0.9)
             for psi in (4e-3, 1e-2, 4e-2)}
    assert 10_000 < first[4e-3] < 100_000  # "tens of thousands of steps"
    assert first[4e-2] < first[1e-2] < first[4e-3]  # a larger momentum_decay: sooner


def test_textbook_nadam_first_steps_are_about_1_4_times_torchs():
    lr, b1, b2, eps = 2e-3, 0.9, 0.999, 1e-8
    m = v = theta = torch.zeros(1, dtype=F64)
    p = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = torch.optim.NAdam([p])
    g = torch.ones(1, dtype=F64)
    for t in range(1, 6):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        direction = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        theta = theta - lr * direction / ((v / (1 - b2**t)).sqrt() + eps)
        p.grad = g.clone()
        opt.step()
        assert 1.39 < (theta / p.detach()).item() < 1.45
        if t == 1:
            assert -theta.item() / lr == pytest.approx(1 + 0.1 * 0.9 / 0.19, rel=1e-6)
            assert -p.item() / lr == pytest.approx(1 + 0.1 * mu(2) / (1 - mu(1) * mu(2)),
                                                   rel=1e-6)
            assert -p.item() / lr == pytest.approx(1.06, abs=0.005)


@functools.cache
def spirals_last_loss(name: str) -> float:
    make = {"adam": lambda p: torch.optim.Adam(p, lr=1e-2),
            "nadam": lambda p: torch.optim.NAdam(p, lr=1e-2),
            "nadam psi=1": lambda p: torch.optim.NAdam(p, lr=1e-2, momentum_decay=1.0),
            "adam beta1=0.45": lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.45, 0.999))}
    losses, _ = problems.train_spirals(make[name])
    return losses[-1]


def test_on_the_spirals_adam_ends_lower_than_nadam_because_of_nadams_low_early_momentum():
    """Notebook 10, after the spirals run: Adam ends several times lower than NAdam at the same
    γ; NAdam with ψ = 1 (μ_t near β₁ within ~50 steps) ends close to Adam, and Adam with NAdam's
    early μ (β₁ = 0.45) ends far from it."""
    adam, nadam = spirals_last_loss("adam"), spirals_last_loss("nadam")
    assert nadam > 3 * adam
    assert spirals_last_loss("nadam psi=1") < 2 * adam < nadam / 1.5
    assert spirals_last_loss("adam beta1=0.45") > 2 * adam
    mu = [0.9 * (1 - 0.5 * 0.96 ** (t * 0.004)) for t in (1, 300)]
    assert 0.45 <= mu[0] < mu[1] < 0.48  # "between 0.45 and 0.47"
    assert 0.9 * (1 - 0.5 * 0.96 ** 50) > 0.83  # ψ = 1: "about 0.85 by step 50"
