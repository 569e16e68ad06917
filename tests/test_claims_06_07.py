"""Claims of notebooks 06 (RMSProp) and 07 (Adam), each computed as the notebook computes it,
with torch.optim: the horizon of an EMA, Adam's bias correction, Reddi et al.'s problem, and the
learning-rate sweep on the digits."""

from __future__ import annotations

import math

import pytest
import torch

from optimlab.learn import data, problems
from optimlab.learn.moments import bias_correction_horizon_answer

F64 = torch.float64


# ------------------------------------------------------------------ 06: the horizon of an EMA
def square_avg_after(grads, alpha=0.99):
    p = torch.zeros(1, dtype=F64)
    opt = torch.optim.RMSprop([p], lr=1e-2, alpha=alpha)
    for g in grads:
        p.grad = torch.full_like(p, g)
        opt.step()
    return opt.state[p]["square_avg"].item()


def test_ema_of_ones_after_ten_steps_is_0651_near_one_minus_one_over_e():
    value = square_avg_after([1.0] * 10, alpha=0.9)
    assert f"{value:.4f}" == "0.6513" == f"{1 - 0.9**10:.4f}"
    assert abs(value - (1 - 1 / math.e)) < 0.02


@pytest.mark.parametrize("alpha", [0.9, 0.99, 0.999])
def test_square_avg_is_one_minus_alpha_to_the_t_and_crosses_1_minus_1_over_e_at_its_horizon(alpha):
    horizon = round(1 / (1 - alpha))
    p = torch.zeros(1, dtype=F64)
    opt = torch.optim.RMSprop([p], lr=1e-2, alpha=alpha)
    values = []
    for _ in range(5 * horizon):
        p.grad = torch.ones_like(p)
        opt.step()
        values.append(opt.state[p]["square_avg"].item())
    for t, v in enumerate(values, 1):
        assert abs(v - (1 - alpha**t)) < 1e-12
    assert 0.63 < values[horizon - 1] < 0.652  # about 1 − 1/e after one horizon
    assert values[horizon - 2] < 1 - 1 / math.e < values[horizon]
    assert values[-1] > 0.99  # and near 1 after a few


def test_the_weights_sum_to_one_and_the_last_horizon_carries_about_63_percent():
    for alpha in (0.9, 0.99, 0.999):
        k = torch.arange(0, 200_000, dtype=F64)
        weights = (1 - alpha) * alpha**k
        assert abs(weights.sum().item() - 1) < 1e-9
        share = weights[: round(1 / (1 - alpha))].sum().item()
        assert 0.63 < share < 0.652


def steps_over_lr(optimizer, steps, lr, **hyper):
    """|Δθ|/γ of each step of ``optimizer`` on the constant gradient 1."""
    p = torch.zeros(1, dtype=F64)
    opt = optimizer([p], lr=lr, **hyper)
    sizes = []
    for _ in range(steps):
        before = p.clone()
        p.grad = torch.ones_like(p)
        opt.step()
        sizes.append((before - p).item() / lr)
    return sizes


def rmsprop_steps(steps, alpha=0.99, lr=1e-2):
    return steps_over_lr(torch.optim.RMSprop, steps, lr, alpha=alpha)


def test_rmsprop_steps_stay_too_large_for_a_few_horizons():
    sizes = rmsprop_steps(400)
    assert abs(sizes[0] - 10) < 1e-5
    assert f"{sizes[99]:.2f}" == "1.26"  # one horizon, t = 100
    first_within = next(t for t, s in enumerate(sizes, 1) if s <= 1.03)
    assert first_within == 285  # "nearly three horizons"
    assert sizes[299] < 1.03


def test_last_100_of_1000_squared_gradients_carry_63_percent():
    recent = square_avg_after([0.0] * 900 + [1.0] * 100)
    older = square_avg_after([1.0] * 900 + [0.0] * 100)
    assert f"{recent:.4f}" == "0.6340" and f"{older:.4f}" == "0.3660"
    assert abs(0.99**300 - 0.05) < 0.002  # "a gradient 300 steps ago still weighs about 5 %"


def test_on_the_ravine_centered_stays_close_and_momentum_swings_below_the_floor():
    runs = {label: problems.run_on_surface(
                problems.ravine, lambda p, kw=kw: torch.optim.RMSprop(p, lr=0.05, **kw),
                start=(-4.5, 1.5), steps=60)
            for label, kw in [("plain", {}), ("centered", {"centered": True}),
                              ("momentum", {"momentum": 0.5})]}
    first = runs["plain"][1] - runs["plain"][0]
    assert torch.allclose(first.abs(), torch.full((2,), 0.5, dtype=F64), atol=1e-6)  # 10γ
    assert runs["plain"][:, 1].min() >= 0 and runs["centered"][:, 1].min() >= 0
    assert (runs["centered"] - runs["plain"]).norm(dim=1).max() < 0.11
    assert -0.25 < runs["momentum"][:, 1].min() < -0.15
    ends = {k: v[-1].norm().item() for k, v in runs.items()}
    assert ends["momentum"] < ends["centered"] < ends["plain"]


# ------------------------------------------------------------------ 07: bias correction
def adam_like_steps(steps, correct_v_with, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """Step sizes / lr on the gradient 1 for Adam variants: ``correct_v_with`` is None (no
    correction at all), or the β whose power corrects v (m is then corrected with β₁)."""
    m = v = torch.zeros(1, dtype=F64)
    p = torch.zeros(1, dtype=F64)
    sizes = []
    for t in range(1, steps + 1):
        m = b1 * m + (1 - b1)
        v = b2 * v + (1 - b2)
        if correct_v_with is None:
            step = lr * m / (v.sqrt() + eps)
        else:
            step = lr * (m / (1 - b1**t)) / ((v / (1 - correct_v_with**t)).sqrt() + eps)
        p = p - step
        sizes.append(step.item() / lr)
    return sizes


def torch_adam_steps(steps, lr=1e-3):
    return steps_over_lr(torch.optim.Adam, steps, lr)


def test_torch_adam_steps_by_exactly_lr_and_the_uncorrected_steps_follow_the_prediction():
    steps = 5000
    torch_sizes = torch.tensor(torch_adam_steps(steps), dtype=F64)
    raw = torch.tensor(adam_like_steps(steps, None), dtype=F64)
    t = torch.arange(1, steps + 1, dtype=F64)
    predicted = (1 - 0.9**t) / (1 - 0.999**t).sqrt()
    assert torch.allclose(torch_sizes, torch.ones_like(t), rtol=1e-6)
    assert torch.allclose(raw / torch_sizes, predicted, rtol=1e-6)
    ratio = raw / torch_sizes
    assert [f"{ratio[k - 1]:.3f}" for k in (1, 15, 1000, 3000)] == [
        "3.162", "6.507", "1.258", "1.026"]
    peak = int(ratio.argmax()) + 1
    assert 12 <= peak <= 16 and 6.4 < ratio.max() < 6.6  # "up to about 6.5× near t = 15"
    assert ratio[:100].min() > 3  # "several times too large for the first hundred steps"


def test_beta1_in_v_hat_makes_the_first_step_ten_times_too_large_and_lasts_as_long():
    slip = adam_like_steps(3000, correct_v_with=0.9)
    assert abs(slip[0] - 10) < 1e-4
    raw = adam_like_steps(3000, None)
    assert abs(slip[999] - raw[999]) < 1e-3 and f"{slip[999]:.2f}" == "1.26"
    assert slip[9] / raw[9] > 1.2 and slip[29] / raw[29] < 1.025  # joins after about 30 steps


def test_adams_first_step_is_lr_whatever_the_gradient_scale():
    scales = (1e-3, 1.0, 1e3)
    p = [torch.zeros(1, dtype=F64) for _ in scales]
    opt = torch.optim.Adam(p, lr=1e-3)
    for q, s in zip(p, scales, strict=True):
        q.grad = torch.full_like(q, s)
    opt.step()
    assert [f"{q.abs().item():.6g}" for q in p] == ["0.00099999", "0.001", "0.001"]


def test_bias_correction_fades_to_one_percent_after_about_four_and_a_half_horizons():
    horizons = {b: bias_correction_horizon_answer(b, 0.01) for b in (0.9, 0.99, 0.999)}
    assert horizons == {0.9: 44, 0.99: 460, 0.999: 4613}
    for b, t in horizons.items():
        assert 4.35 < t * (1 - b) < math.log(101)
        # a torch.optim.Adam: its correction 1/(1 − β₂^step) at that step is within 1 %
        assert 1 / (1 - b**t) <= 1.01 < 1 / (1 - b ** (t - 1))


# ------------------------------------------------------------------ 07: Reddi et al.'s problem
C = 3.0
REDDI_BETAS = (0.0, 1 / (1 + C**2))


def online_run(amsgrad, steps=1500, alpha=0.5):
    x = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = torch.optim.Adam([x], betas=REDDI_BETAS, amsgrad=amsgrad, lr=alpha)
    xs = []
    for t in range(1, steps + 1):
        opt.param_groups[0]["lr"] = alpha / t**0.5
        x.grad = torch.full_like(x, C if t % 3 == 1 else -1.0)
        opt.step()
        with torch.no_grad():
            x.clamp_(-1.0, 1.0)
        xs.append(x.item())
    return xs


def test_adam_goes_to_the_worst_point_and_amsgrad_to_the_best():
    adam = online_run(False)
    ams = online_run(True)
    assert f"{adam[-1]:+.3f}" == "+1.000" and min(adam[-300:]) > 0.97
    assert f"{ams[-1]:+.3f}" == "-0.991" and max(ams[-300:]) < -0.98
    assert min(adam[100:]) > 0.9 and max(ams[100:]) < -0.9  # both get there early


def test_the_cycle_numbers_in_the_text():
    """v ≈ 8.2, 1.7, 1.07 in Adam's cycle; steps 1.05 down, 0.76 + 0.97 up: net +0.68 lr;
    AMSGrad: 0.35 up per small gradient, net −0.35 lr."""
    x = torch.zeros(1, dtype=F64)
    opt = torch.optim.Adam([x], betas=REDDI_BETAS, lr=1.0)
    vs, moves = [], []
    for t in range(1, 301):
        before = x.clone()
        x.grad = torch.full_like(x, C if t % 3 == 1 else -1.0)
        opt.step()
        vs.append(opt.state[x]["exp_avg_sq"].item())
        moves.append((x - before).item())
    v_after = vs[-3:]  # steps 298 (C), 299, 300 (−1)
    assert [f"{v:.3g}" for v in v_after] == ["8.21", "1.72", "1.07"]
    assert [f"{abs(m):.2f}" for m in moves[-3:]] == ["1.05", "0.76", "0.97"]
    assert abs(sum(moves[-3:]) - 0.68) < 0.01
    x = torch.zeros(1, dtype=F64)
    opt = torch.optim.Adam([x], betas=REDDI_BETAS, lr=1.0, amsgrad=True)
    moves = []
    for t in range(1, 301):
        before = x.clone()
        x.grad = torch.full_like(x, C if t % 3 == 1 else -1.0)
        opt.step()
        moves.append((x - before).item())
    assert [f"{m:.2f}" for m in moves[-2:]] == ["0.35", "0.35"]
    assert abs(sum(moves[-3:]) + 0.35) < 0.01


# ------------------------------------------------------------------ 07: the lr sweep
@pytest.fixture(scope="module")
def sweep():
    split = data.digits()
    lrs = [10 ** (k / 2) for k in range(-8, 3)]
    makers = {"SGD": lambda p, lr: torch.optim.SGD(p, lr=lr),
              "momentum 0.9": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9),
              "Adam": lambda p, lr: torch.optim.Adam(p, lr=lr)}
    runs = {name: data.lr_sweep(make, lrs, epochs=5, batch_size=128, split=split)
            for name, make in makers.items()}
    good = {}
    for name, histories in runs.items():
        acc = [h.test_accuracy[-1] for h in histories]
        good[name] = [lr for lr, a in zip(lrs, acc, strict=True) if a >= max(acc) - 0.02]
    return lrs, runs, good


@pytest.mark.slow(seconds=10)
def test_each_optimizers_good_range_lies_elsewhere_on_the_lr_axis(sweep):
    _, _, good = sweep
    centre = {name: math.sqrt(min(v) * max(v)) for name, v in good.items()}
    assert 10**0.5 <= centre["SGD"] / centre["momentum 0.9"] <= 10**1.5  # "about 10× below"
    assert 10**1.5 <= centre["SGD"] / centre["Adam"] <= 10**2  # "1.5 to 2 decades below"
    assert min(good["Adam"]) >= 1e-2 and max(good["Adam"]) <= 0.1 * 1.001  # "1e-2 to 1e-1"


@pytest.mark.slow(seconds=10)
def test_each_good_range_is_half_a_decade_to_a_decade_and_adams_widest_by_one_point(sweep):
    _, _, good = sweep
    for name, lrs_ok in good.items():
        assert 10**0.49 <= max(lrs_ok) / min(lrs_ok) <= 10**1.01, name
        assert 2 <= len(lrs_ok) <= 3, name
    assert len(good["Adam"]) == 1 + max(len(good["SGD"]), len(good["momentum 0.9"]))
    assert min(good["Adam"]) > 1e-3  # the default lr is below Adam's good range


@pytest.mark.slow(seconds=10)
def test_slow_below_the_range_and_overshooting_above(sweep):
    lrs, runs, _ = sweep
    assert all(histories[0].train_loss[-1] > 2 for histories in runs.values())  # lr 1e-4
    for name in ("momentum 0.9", "Adam"):
        assert runs[name][-1].train_loss[-1] > math.log(10)  # lr 10: above the start
    for name, histories in runs.items():
        losses = [h.train_loss[-1] for h in histories]
        best = losses.index(min(losses))
        assert best < len(lrs) - 1 and losses[-1] > losses[best], name  # rises again
