"""Claims the notebooks make about how the optimizers behave, each computed as the notebook does.

The notebooks run your step functions (equal to torch.optim's, as the checks show); these tests
run torch.optim itself on the same problems, so a claim in the prose can't drift from torch.
"""

from __future__ import annotations

import math

import pytest
import torch

from optimlab.learn import data, problems

F64 = torch.float64


# ------------------------------------------------------------------ 03 momentum: the ravine
def ravine_runs():
    """Notebook 03's three runs: lr 0.05 from (-4.5, 1.5), 40 steps."""
    runs = {}
    for label, kw in [("GD", {}), ("momentum 0.6", {"momentum": 0.6}),
                      ("Nesterov 0.6", {"momentum": 0.6, "nesterov": True})]:
        runs[label] = problems.run_on_surface(
            problems.ravine, lambda p, kw=kw: torch.optim.SGD(p, lr=0.05, **kw),
            start=(-4.5, 1.5), steps=40)
    return runs


def test_gd_flips_y_and_shrinks_it_fourfold_but_crawls_along_x():
    gd = ravine_runs()["GD"]
    torch.testing.assert_close(gd[1:4, 1], torch.tensor([-0.375, 0.09375, -0.0234375], dtype=F64),
                               rtol=1e-12, atol=0)
    assert gd[5:, 1].abs().max() < 2e-3  # settled across the valley within a few steps
    torch.testing.assert_close(gd[1:, 0] / gd[:-1, 0], torch.full((40,), 0.95, dtype=F64))


def test_nesterov_first_step_reflects_y_exactly():
    """(1+μ)γh = 1.6·0.05·25 = 2: y goes from 1.5 to -1.5, the widest swing of all three."""
    runs = ravine_runs()
    nesterov = runs["Nesterov 0.6"]
    assert nesterov[1, 1].item() == pytest.approx(-1.5, abs=1e-12)
    for label, path in runs.items():
        assert path[1:, 1].abs().max() <= 1.5 + 1e-12, label


def test_nesterov_damps_the_swings_faster_than_heavy_ball():
    runs = ravine_runs()
    hb, nag = runs["momentum 0.6"][10:, 1].abs().max(), runs["Nesterov 0.6"][10:, 1].abs().max()
    assert nag < hb / 3
    # per-step factors across the valley (h = 25, γh = 1.25, μ = 0.6): 0.77 and 0.64
    a, mu = 1.25, 0.6
    heavy = torch.tensor([[1 + mu - a, -mu], [1.0, 0.0]], dtype=F64)
    nesterov = torch.tensor([[(1 + mu) * (1 - a), -mu * (1 - a)], [1.0, 0.0]], dtype=F64)
    assert torch.linalg.eigvals(heavy).abs().max().item() == pytest.approx(0.77, abs=5e-3)
    assert torch.linalg.eigvals(nesterov).abs().max().item() == pytest.approx(0.64, abs=5e-3)


def test_momentum_beats_gd_along_the_valley():
    loss = {label: problems.ravine(path[-1]).item() for label, path in ravine_runs().items()}
    assert loss["momentum 0.6"] < loss["Nesterov 0.6"] < 1e-3 < 0.1 < loss["GD"]


def test_heavy_ball_ends_lower_because_nesterov_is_slower_along_x():
    """Along x (h = 1, γh = 0.05): Nesterov's slowest factor ≈ 0.85, heavy ball's 0.80."""
    runs = ravine_runs()
    assert (problems.ravine(runs["momentum 0.6"][-1]) < problems.ravine(runs["Nesterov 0.6"][-1]))
    a, mu = 0.05, 0.6
    heavy = torch.tensor([[1 + mu - a, -mu], [1.0, 0.0]], dtype=F64)
    nesterov = torch.tensor([[(1 + mu) * (1 - a), -mu * (1 - a)], [1.0, 0.0]], dtype=F64)
    assert torch.linalg.eigvals(heavy).abs().max().item() == pytest.approx(0.80, abs=5e-3)
    assert torch.linalg.eigvals(nesterov).abs().max().item() == pytest.approx(0.85, abs=5e-3)


@pytest.mark.parametrize("mu", [0.1, 0.6, 0.9, 0.99])
def test_nesterovs_limit_lies_below_gds_on_any_quadratic(mu):
    """The largest stable γh: 2(1 + μ)/(1 + 2μ) for Nesterov, below GD's 2."""
    limit = 2 * (1 + mu) / (1 + 2 * mu)
    assert limit < 2
    for gh, stable in ((0.999 * limit, True), (1.001 * limit, False)):
        m = torch.tensor([[(1 + mu) * (1 - gh), -mu * (1 - gh)], [1.0, 0.0]], dtype=F64)
        assert (torch.linalg.eigvals(m).abs().max().item() < 1) == stable


# ------------------------------------------------------------------ 06 RMSProp: the ravine
def test_on_the_ravine_momentum_ends_closest_to_the_minimum():
    ends = {}
    for label, kw in [("RMSProp", {}), ("centered", {"centered": True}),
                      ("momentum 0.5", {"momentum": 0.5})]:
        path = problems.run_on_surface(problems.ravine,
                                       lambda p, kw=kw: torch.optim.RMSprop(p, lr=0.05, **kw),
                                       start=(-4.5, 1.5), steps=60)
        ends[label] = path[-1].norm().item()
    assert ends["momentum 0.5"] < 0.01 < ends["centered"] < ends["RMSProp"]


# ------------------------------------------------------------------ 05 Adadelta: the first step
@pytest.mark.parametrize("rho", [0.9, 0.5])
def test_adadelta_first_step_is_sqrt_eps_over_one_minus_rho(rho):
    """About √(ε/(1-ρ)) per coordinate whatever |g|: ≈ 3.2·√ε = 3.2e-3 at the defaults."""
    eps = 1e-6
    g = torch.tensor([0.3, -2.0, 5.0, 1.0], dtype=F64)
    p = torch.zeros_like(g).requires_grad_()
    opt = torch.optim.Adadelta([p], rho=rho, eps=eps, foreach=False)
    p.grad = g.clone()
    opt.step()
    step = p.detach().abs()
    torch.testing.assert_close(step, torch.full_like(step, math.sqrt(eps / (1 - rho))),
                               rtol=1e-3, atol=0)
    if rho == 0.9:
        assert step.max().item() == pytest.approx(3.2e-3, rel=0.02)


def test_adadelta_with_eps_outside_the_roots_barely_starts():
    """(√u + ε)/(√v + ε)·g with u = 0: about ε/√(1-ρ) ≈ 3.2ε, a thousand times torch's step."""
    eps, rho = 1e-6, 0.9
    g = torch.tensor([0.3, -2.0, 5.0, 1.0], dtype=F64)
    v = (1 - rho) * g**2
    outside = (0.0 + eps) / (v.sqrt() + eps) * g.abs()
    torch.testing.assert_close(outside, torch.full_like(g, eps / math.sqrt(1 - rho)), rtol=2e-5,
                               atol=0)
    assert (math.sqrt(eps / (1 - rho)) / outside).min() > 900


# ------------------------------------------------------------------ 07 Adam: Rosenbrock
def rosenbrock_end(make, steps):
    path = problems.run_on_surface(problems.rosenbrock, make, (-1.5, 2), steps)
    return path[-1], problems.rosenbrock(path[-1]).item()


def test_neither_adam_nor_rmsprop_reaches_rosenbrocks_minimum_in_400_steps():
    adam, adam_loss = rosenbrock_end(lambda p: torch.optim.Adam(p, lr=0.05), 400)
    rms, rms_loss = rosenbrock_end(lambda p: torch.optim.RMSprop(p, lr=0.01), 400)
    one = torch.ones(2, dtype=F64)
    assert (adam - one).norm() > 0.5 and (rms - one).norm() > 0.5
    assert 0.1 < adam_loss < rms_loss
    assert rms[0] < adam[0] < 1  # Adam further along the valley
    _, later = rosenbrock_end(lambda p: torch.optim.Adam(p, lr=0.05), 2000)
    assert later < 1e-6


# ------------------------------------------------------------------ 08 AdamW: the 1/λ cap
GEN = torch.Generator().manual_seed(0)
X = torch.randn(512, 2, generator=GEN, dtype=F64) * torch.tensor([1.0, 0.3])
Y = X @ torch.tensor([3.0, 2.0], dtype=F64) + 0.1 * torch.randn(512, generator=GEN, dtype=F64)
LAM = 0.5
H08, C08 = 2 * X.T @ X / len(X), 2 * X.T @ Y / len(X)  # the gradient of the loss is H w - c


def fit(make, steps=4000, scale=1.0):
    """Notebook 08's fit; also returns the largest |w| over the last 1000 steps."""
    w = torch.zeros(2, dtype=F64, requires_grad=True)
    opt = make([w])
    largest = torch.zeros(2, dtype=F64)
    for i in range(steps):
        w.grad = scale * (H08 @ w.detach() - C08)
        opt.step()
        if i >= steps - 1000:
            largest = torch.maximum(largest, w.detach().abs())
    return w.detach(), largest


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_adamw_weights_stay_below_one_over_lambda_whatever_the_gradient_scale(scale):
    w, largest = fit(lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=LAM), scale=scale)
    assert largest.max() < 1 / LAM
    torch.testing.assert_close(w, torch.tensor([1.886, 1.665], dtype=F64), rtol=0, atol=1e-3)


def test_adam_l2_is_ridge_and_moves_with_the_loss_scale():
    H = 2 * X.T @ X / len(X)
    ridge = torch.linalg.solve(H + LAM * torch.eye(2, dtype=F64), 2 * X.T @ Y / len(X))
    adam = {s: fit(lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=LAM), scale=s)[0]
            for s in (1e-3, 1.0, 1e3)}
    torch.testing.assert_close(adam[1.0], ridge, rtol=0, atol=1e-3)
    assert adam[1e-3].abs().max() < 0.05  # the penalty wins
    torch.testing.assert_close(adam[1e3], torch.tensor([3.0, 2.0], dtype=F64), rtol=0, atol=0.02)
    assert ridge[1] / 2.0 == pytest.approx(0.25, abs=0.02)  # "keeps only a quarter"


def test_adamw_creeps_up_to_the_cap():
    w, _ = fit(lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=LAM), steps=60_000)
    assert w[0].item() == pytest.approx(2.00, abs=5e-3)
    assert w[1].item() == pytest.approx(1.98, abs=5e-3)


def test_adams_normalized_step_reaches_about_3_2_after_quiet_steps():
    """m̂/√v̂ is 1 for a steady gradient; a spike after many quiet steps gives about
    (1 − β₁)/√(1 − β₂) ≈ 3.16."""
    p = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=1.0, eps=0.0)
    sizes = []
    for t in range(3001):
        before = p.detach().clone()
        p.grad = torch.full_like(p, 1.0 if t == 3000 else 1e-6)
        opt.step()
        sizes.append((p.detach() - before).abs().item())
    assert sizes[2999] == pytest.approx(1.0, rel=1e-3)
    # ≈ 3.16·√(1 − β₂ᵗ) at t = 3001: about 3.1
    assert sizes[3000] == pytest.approx(0.1 / math.sqrt(0.001), rel=0.05)


def nudge_digits_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, every digits network starts with each initial weight one unit in the last
    place up (torch.nextafter): a change no figure could show, for the claims about chaotic
    runs (notebooks 11 and 15)."""
    made = data.digits_network

    def nudged(seed: int = 0, hidden: int = 32) -> torch.nn.Module:
        model = made(seed=seed, hidden=hidden)
        with torch.no_grad():
            for q in model.parameters():
                q.copy_(torch.nextafter(q, torch.full_like(q, math.inf)))
        return model

    monkeypatch.setattr(data, "digits_network", nudged)


# ------------------------------------------------------------------ 09 Adamax: one spike
def step_sizes(make, steps=6000, spike_at=500, spike=100.0):
    """Notebook 09's experiment: gradient 1 on every step, ``spike`` at step ``spike_at``."""
    p = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = make([p])
    sizes = []
    for t in range(steps):
        before = p.detach().clone()
        p.grad = torch.full_like(p, spike if t == spike_at else 1.0)
        opt.step()
        sizes.append((p.detach() - before).abs().item())
    return torch.tensor(sizes)


def test_adamax_spike_shrinks_the_steps_for_about_4600_steps():
    lr = 2e-3
    adamax = step_sizes(lambda p: torch.optim.Adamax(p, lr=lr))
    slow = (adamax[501:] < 0.99 * lr).nonzero()
    n = int(slow[-1]) + 1
    assert n == len(slow)  # one stretch of slow steps, right after the spike
    assert 4500 < n < math.log(100) / -math.log(0.999) < 4610
    assert adamax[501:].min() < lr / 80  # steps up to ~100× smaller
    assert adamax.max() <= lr * (1 + 1e-9) and adamax[500] / lr == pytest.approx(0.11, abs=5e-3)


def test_adamax_step_is_a_tenth_at_the_spike_and_a_hundredth_fifty_steps_later():
    lr = 2e-3
    adamax = step_sizes(lambda p: torch.optim.Adamax(p, lr=lr))
    assert adamax[500] / lr == pytest.approx(0.11, abs=0.01)
    assert adamax[550] / lr == pytest.approx(0.0105, abs=0.001)
    assert adamax[4000] < lr  # still below γ thousands of steps later


def test_adamax_m_stays_within_one_percent_of_u():
    """|m| ≤ (1 − β₁)/(1 − β₁/β₂)·u ≈ 1.009·u, approached by a gradient that shrinks by β₂
    per step (u then equals |g| every step, while m still remembers larger ones)."""
    beta1, beta2 = 0.9, 0.999
    assert (1 - beta1) / (1 - beta1 / beta2) == pytest.approx(1.009, abs=5e-4)
    p = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = torch.optim.Adamax([p])
    worst = 0.0
    for t in range(300):
        p.grad = torch.full_like(p, 0.999**t)
        opt.step()
        state = opt.state[p]
        worst = max(worst, (state["exp_avg"].abs() / state["exp_inf"]).item())
    assert 1.0 < worst <= 1.0091


def test_adam_step_doubles_at_the_spike_then_shrinks_for_thousands_of_steps():
    lr = 2e-3
    adam = step_sizes(lambda p: torch.optim.Adam(p, lr=lr))
    assert adam[500] / lr == pytest.approx(2.12, abs=5e-3)
    assert adam[1500] < 0.5 * lr and adam[3500] < 0.9 * lr
