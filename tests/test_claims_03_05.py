"""Claims of notebooks 03-05 (issue 12, parts 2 and 4), computed with torch.optim and the same
settings and seeds as the notebooks. A claim a test contradicts is changed in the notebook."""

from __future__ import annotations

import math

import pytest
import torch

from optimlab.learn import acceleration, problems

F64 = torch.float64


# ------------------------------------------------------------------ 03: heavy ball and Nesterov
def test_torch_sgd_momentum_is_polyaks_heavy_ball():
    """θ_{t+1} = θ_t − γ g_{t+1} + μ(θ_t − θ_{t−1}) is SGD(lr=γ, momentum=μ)."""
    lr, mu = 0.03, 0.8
    path = problems.run_on_surface(problems.ravine,
                                   lambda p: torch.optim.SGD(p, lr=lr, momentum=mu),
                                   (-4.5, 1.5), 60)
    prev = theta = path[0]
    for t in range(1, 61):
        x = theta.clone().requires_grad_()
        problems.ravine(x).backward()
        prev, theta = theta, theta - lr * x.grad + mu * (theta - prev)
        assert torch.allclose(theta, path[t], rtol=1e-12, atol=1e-12)


def final_y(lr, steps=300, **kw):
    path = problems.run_on_surface(problems.ravine, lambda p: torch.optim.SGD(p, lr=lr, **kw),
                                   (-4.5, 1.5), steps)
    return path[-1, 1].abs().item()


def test_nesterov_diverges_on_the_ravine_between_0057_and_0059_below_gds_limit():
    bound = 2 * 1.6 / (2.2 * 25)
    assert 0.057 < bound < 0.059 and bound == pytest.approx(0.0582, abs=1e-4)
    assert final_y(0.057, momentum=0.6, nesterov=True) < 1e-3
    assert final_y(0.059, momentum=0.6, nesterov=True) > 1e3
    assert final_y(0.079) < 1e-3 < 1e3 < final_y(0.081)  # GD's limit 2/25
    # heavy ball with the same μ: stable up to γh = 2(1 + μ), γ = 0.128
    for lr in (0.059, 0.08, 0.125):
        assert final_y(lr, momentum=0.6) < 1e-3
    assert final_y(0.131, momentum=0.6) > 1e3


def steps_torch(kappa, lr, mu, tol=1e-6):
    """Steps until ‖θ‖ ≤ tol·‖θ₀‖ with torch.optim.SGD on ½Σ hᵢθᵢ², h log-even in [1, κ]."""
    h = torch.logspace(0, math.log10(kappa), 8, dtype=F64)
    p = torch.ones(8, dtype=F64, requires_grad=True)
    start = p.detach().norm().item()
    opt = torch.optim.SGD([p], lr=lr, momentum=mu)
    for t in range(1, 10**6):
        opt.zero_grad()
        (0.5 * (h * p * p).sum()).backward()
        opt.step()
        if p.detach().norm().item() <= tol * start:
            return t
    raise AssertionError("no convergence")


# the notebook's table (its own vectorised loop), for κ = 10, 100, 1000, 10000
NOTEBOOK = {10: (66, 26), 100: (657, 90), 1000: (6562, 303), 10000: (65612, 1020)}


@pytest.fixture(scope="module")
def counts():
    out = {}
    for kappa in NOTEBOOK:
        lr, mu = acceleration.tuned_heavy_ball_answer(1.0, float(kappa))
        gd = steps_torch(kappa, 2 / (1 + kappa), 0.0) if kappa <= 1000 else steps_gd(kappa)
        out[kappa] = (gd, steps_torch(kappa, lr, mu))
    return out


def steps_gd(kappa, tol=1e-6):
    """GD's count in closed form, θᵢ(t) = (1 − γhᵢ)^t: 65,000 torch.optim steps take too long."""
    h = torch.logspace(0, math.log10(kappa), 8, dtype=F64)
    t = torch.arange(1, 100_001, dtype=F64).unsqueeze(1)
    norms = ((1 - 2 / (1 + kappa) * h).abs() ** t).square().sum(1).sqrt()
    return int(torch.nonzero(norms <= tol * math.sqrt(8))[0]) + 1


def test_the_notebooks_step_counts_are_torch_optim_sgds(counts):
    for kappa, (gd, hb) in counts.items():
        assert abs(gd - NOTEBOOK[kappa][0]) <= 1 and abs(hb - NOTEBOOK[kappa][1]) <= 1, kappa


def test_gd_on_slope_one_heavy_ball_near_slope_half(counts):
    ks = sorted(counts)
    for i, (slope_lo, slope_hi) in enumerate([(0.97, 1.03), (0.45, 0.6)]):
        slope = (math.log(counts[ks[-1]][i]) - math.log(counts[ks[0]][i])) / (
            math.log(ks[-1]) - math.log(ks[0]))
        assert slope_lo < slope < slope_hi
    # κ 100 → 10,000: GD about 100×, heavy ball about 11×
    assert counts[10000][0] / counts[100][0] == pytest.approx(100, rel=0.02)
    assert counts[10000][1] / counts[100][1] == pytest.approx(11.3, rel=0.03)
    assert counts[10000][0] / counts[10000][1] > 60  # ~66,000 against ~1,000


def test_rate_predicts_gd_within_5_percent_and_heavy_ball_needs_12_to_15_times_more(counts):
    for kappa, (gd, hb) in counts.items():
        pred_gd = math.log(1e-6) / math.log((kappa - 1) / (kappa + 1))
        s = math.sqrt(kappa)
        pred_hb = math.log(1e-6) / math.log((s - 1) / (s + 1))
        assert 0.945 < gd / pred_gd <= 1.0
        assert 1.2 <= hb / pred_hb <= 1.5


def test_heavy_balls_excess_over_its_rate_grows_with_kappa(counts):
    excess = []
    for kappa, (_, hb) in sorted(counts.items()):
        s = math.sqrt(kappa)
        excess.append(hb * math.log((s + 1) / (s - 1)) / math.log(1e6))
    assert excess == sorted(excess)


# ------------------------------------------------------------------ 04: Adagrad
@pytest.mark.parametrize("g", [2.0, 200.0])
def test_adagrads_100th_step_is_lr_over_sqrt_t_whatever_the_gradient(g):
    p = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = torch.optim.Adagrad([p], lr=0.1)
    for _ in range(100):
        before = p.detach().clone()
        p.grad = torch.full_like(p, g)
        opt.step()
    assert (before - p.detach()).abs().item() == pytest.approx(0.01, rel=1e-12)
    assert 0.1 / opt.state[p]["sum"].sqrt().item() == pytest.approx(0.01 / g, rel=1e-12)


def sparse_problem():
    """Notebook 04's data: 2000 samples, each with at most one of five ±1 features."""
    gen = torch.Generator().manual_seed(0)
    n, freq = 2000, torch.tensor([0.5, 0.3, 0.1, 0.03, 0.005], dtype=F64)
    which = torch.multinomial(torch.cat([freq, 1 - freq.sum().view(1)]), n, replacement=True,
                              generator=gen)
    X = torch.nn.functional.one_hot(which, len(freq) + 1)[:, :-1].double()
    X = X * (torch.randint(0, 2, (n, 1), generator=gen).double() * 2 - 1)
    w_true = torch.randn(len(freq), generator=gen, dtype=F64)
    return X, X @ w_true, w_true


def fit_sparse(make, steps=200):
    X, y, w_true = sparse_problem()
    w = torch.zeros(5, dtype=F64, requires_grad=True)
    opt = make([w])
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * ((X @ w - y) ** 2).mean()).backward()
        opt.step()
    w = w.detach()
    return (w - w_true).abs() / w_true.abs(), (0.5 * ((X @ w - y) ** 2).mean()).item()


def test_sparse_hessian_is_diagonal_with_the_feature_frequencies():
    X, _, _ = sparse_problem()
    H = X.T @ X / len(X)
    assert torch.count_nonzero(H - torch.diag(H.diagonal())) == 0
    assert H.diagonal().tolist() == pytest.approx([0.5, 0.317, 0.0785, 0.027, 0.0055], abs=1e-4)


def test_sgd_leaves_the_predicted_1_5_percent_on_the_rarest_feature_adagrad_none():
    X, _, _ = sparse_problem()
    h = (X.T @ X / len(X)).diagonal()
    err, _ = fit_sparse(lambda p: torch.optim.SGD(p, lr=3.8))
    predicted = (1 - 3.8 * h).abs() ** 200
    assert err[-1].item() == pytest.approx(0.015, abs=0.001)
    assert err[-1].item() == pytest.approx(predicted[-1].item(), rel=1e-9)
    big = predicted > 1e-12
    assert torch.allclose(err[big], predicted[big], rtol=1e-3)
    assert (err[~big] < 1e-12).all()
    err_ada, _ = fit_sparse(lambda p: torch.optim.Adagrad(p, lr=1.0))
    assert (err_ada < 1e-12).all()


def test_sgds_loss_falls_with_lr_until_it_diverges_above_4_adagrad_below_1e_15_from_1_to_30():
    sgd = [fit_sparse(lambda p, lr=lr: torch.optim.SGD(p, lr=lr))[1]
           for lr in [0.1, 0.3, 1.0, 2.0, 3.0, 3.8]]
    assert sgd == sorted(sgd, reverse=True) and min(sgd) > 1e-7
    for lr in (4.2, 6.0):
        assert not fit_sparse(lambda p, lr=lr: torch.optim.SGD(p, lr=lr))[1] < 1e3
    for lr in (1.0, 3.0, 10.0, 30.0):
        assert fit_sparse(lambda p, lr=lr: torch.optim.Adagrad(p, lr=lr))[1] < 1e-15
    for lr in (0.01, 0.03, 0.1):  # the weights that must travel far fall behind
        assert fit_sparse(lambda p, lr=lr: torch.optim.Adagrad(p, lr=lr))[1] > 1e-3
    err, _ = fit_sparse(lambda p: torch.optim.Adagrad(p, lr=0.3))
    _, _, w_true = sparse_problem()
    assert err.argmax() == w_true.abs().argmax()
    assert w_true.abs().max() == pytest.approx(2.95, abs=0.01)


def test_adagrads_first_step_moves_every_coordinate_by_lr():
    X, y, _ = sparse_problem()
    w = torch.zeros(5, dtype=F64, requires_grad=True)
    opt = torch.optim.Adagrad([w], lr=0.7)
    (0.5 * ((X @ w - y) ** 2).mean()).backward()
    opt.step()
    assert torch.allclose(w.detach().abs(), torch.full((5,), 0.7, dtype=F64), rtol=1e-6)


# ------------------------------------------------------------------ 05: Adadelta's steps
def adadelta_first_step(g):
    p = torch.zeros(1, dtype=F64, requires_grad=True)
    p.grad = torch.tensor([g], dtype=F64)
    torch.optim.Adadelta([p]).step()
    return p.detach().abs().item()


def test_adadelta_first_step_is_sqrt_eps_over_1_minus_rho_for_large_g_about_g_for_tiny():
    assert adadelta_first_step(5.0) == pytest.approx(math.sqrt(1e-6 / 0.1), rel=1e-6)
    assert adadelta_first_step(5.0) == pytest.approx(3.162e-3, abs=1e-6)
    assert adadelta_first_step(1e-3) == pytest.approx(9.535e-4, abs=1e-7)
    assert adadelta_first_step(1e-3) / 1e-3 == pytest.approx(0.95, abs=0.005)


def test_on_a_constant_slope_adadelta_grows_like_sqrt_t_and_adagrad_shrinks_like_1_over_sqrt_t():
    def slope(xy):
        return xy[..., 0] + xy[..., 1]

    t = torch.arange(1, 1001, dtype=F64)
    ada = problems.run_on_surface(slope, lambda p: torch.optim.Adagrad(p, lr=0.5), (0.0, 0.0), 1000)
    step = (ada[1:, 0] - ada[:-1, 0]).abs()
    assert torch.allclose(step, 0.5 / t.sqrt(), rtol=1e-9)
    delta = problems.run_on_surface(slope, lambda p: torch.optim.Adadelta(p), (0.0, 0.0), 1000)
    step = (delta[1:, 0] - delta[:-1, 0]).abs()
    predicted = (1e-6 * (1 + 0.1 * (t - 1))).sqrt()
    assert step[-1].item() == pytest.approx(0.01057, abs=1e-5)
    assert 1.0 < step[-1].item() / predicted[-1].item() < 1.06    # 5 % apart at t = 1000
    assert (step >= predicted).all()                                 # larger early on
    assert step[0].item() == pytest.approx(math.sqrt(1e-6 / 0.1), rel=1e-3)
    assert (step[1:] > step[:-1]).all()                               # growing
