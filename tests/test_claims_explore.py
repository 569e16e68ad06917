"""What the explorers' questions in 01, 03 and 07 lead the learner to see, computed with torch.optim
on the explorers' problems and at their sliders' positions (a log slider moves in steps of
10^0.01, a linear one in its own step)."""

from __future__ import annotations

import pytest
import torch

from optimlab.learn import explore, problems

START = (-4.5, 1.5)


def path(make, steps: int) -> torch.Tensor:
    return problems.run_on_surface(problems.ravine, make, start=START, steps=steps)


def log_positions(low: float, high: float) -> list[float]:
    """The values an ``explore.lr_slider(…, low, high)`` takes (two decimals of the exponent)."""
    lo, hi = round(100 * torch.log10(torch.tensor(low)).item()), round(
        100 * torch.log10(torch.tensor(high)).item())
    return [10 ** (k / 100) for k in range(lo, hi + 1)]


# ------------------------------------------------------------------ 01: γ across 2/h_max
def gd_loss(lr: float, steps: int = 50) -> torch.Tensor:
    return problems.ravine(path(lambda p: torch.optim.SGD(p, lr=lr), steps))


def test_01_the_zigzag_stops_shrinking_between_the_positions_either_side_of_0_08():
    positions = log_positions(1e-3, 0.2)
    below = max(lr for lr in positions if lr < 0.08)
    above = min(lr for lr in positions if lr > 0.08)
    assert (round(below, 4), round(above, 4)) == (0.0794, 0.0813)
    ys_below, ys_above = (path(lambda p, lr=lr: torch.optim.SGD(p, lr=lr), 50)[:, 1].abs()
                          for lr in (below, above))
    assert ys_below[-1] < ys_below[0] and ys_above[-1] > 2 * ys_above[0]
    loss = gd_loss(above)
    assert (loss[11:] > loss[10:-1]).all() and loss[-1] > 10 * loss[0]  # then grows every step


def test_01_the_lowest_loss_after_50_steps_is_below_the_largest_stable_lr():
    positions = [lr for lr in log_positions(1e-3, 0.2) if lr < 0.08]
    finals = {lr: gd_loss(lr)[-1].item() for lr in positions}
    best = min(finals, key=finals.get)
    assert 0.074 < best < 0.078 and finals[best] < finals[max(positions)] / 100
    # there the two factors are nearly equal: neither direction lags
    assert abs(abs(1 - 25 * best) - (1 - best)) < 0.03


# ------------------------------------------------------------------ 03: heavy ball's factors
def hb_path(lr: float, mu: float, steps: int = 100) -> torch.Tensor:
    return path(lambda p: torch.optim.SGD(p, lr=lr, momentum=mu), steps)


def test_03_at_lr_0_05_mu_0_6_ends_lowest_and_above_it_both_factors_rise():
    mus = [m / 100 for m in range(0, 91)]
    finals = {mu: problems.ravine(hb_path(0.05, mu)[-1]).item() for mu in mus}
    best = min(finals, key=finals.get)
    assert best in (0.6, 0.61, 0.62)
    slowest = [max(explore.heavy_ball_factor(0.05, mu, 1), explore.heavy_ball_factor(0.05, mu, 25))
               for mu in (0.7, 0.8, 0.9)]
    assert slowest == sorted(slowest) and slowest[0] > 0.8
    # above it, the two factors are equal (complex roots of modulus √μ): the path spirals
    for mu in (0.7, 0.8, 0.9):
        assert explore.heavy_ball_factor(0.05, mu, 1) == pytest.approx(mu**0.5)
        assert explore.heavy_ball_factor(0.05, mu, 25) == pytest.approx(mu**0.5)


@pytest.mark.parametrize(("mu", "rel"), [(0.3, 1e-3), (0.5, 1e-3), (0.6, 0.02),
                                         (0.7, 0.02), (0.8, 0.02), (0.9, 0.02)])
def test_03_the_loss_falls_on_average_by_the_square_of_the_slower_factor(mu, rel):
    """Closely with real, distinct roots; on average with complex ones (the loss waves)."""
    loss = problems.ravine(hb_path(0.05, mu))
    measured = (loss[-1] / loss[-61]).item() ** (1 / 60)
    slower = max(explore.heavy_ball_factor(0.05, mu, 1), explore.heavy_ball_factor(0.05, mu, 25))
    assert measured == pytest.approx(slower**2, rel=rel)


def test_03_the_slider_positions_nearest_tuned_heavy_ball_give_the_smallest_slower_factor():
    lrs, mus = log_positions(1e-3, 0.3), [m / 100 for m in range(0, 100)]

    def slower(lr, mu):
        return max(explore.heavy_ball_factor(lr, mu, 1), explore.heavy_ball_factor(lr, mu, 25))

    best = min(((lr, mu) for lr in lrs for mu in mus), key=lambda s: slower(*s))
    assert (round(best[0], 3), best[1]) == (0.11, 0.45)
    assert slower(*best) == pytest.approx(2 / 3, abs=5e-3)
    assert slower(1 / 9, 4 / 9) == pytest.approx(2 / 3)  # tuned_heavy_ball(1, 25)
    i = lrs.index(best[0])
    for lr, mu in [(lrs[i - 1], 0.45), (lrs[i + 1], 0.45), (best[0], 0.44), (best[0], 0.46)]:
        assert slower(lr, mu) > slower(*best)  # one notch away: slower
    ys = hb_path(*best)[:, 1].abs()
    assert 1 <= ys.argmax() <= 3 and ys.max() > 2  # the widest swing: early, past the plot


# ------------------------------------------------------------------ 07: ε, β₁, β₂
def adam_path(steps: int = 100, **kw) -> torch.Tensor:
    return path(lambda p: torch.optim.Adam(p, lr=0.3, **kw), steps)


def test_07_the_default_first_step_moves_both_coordinates_by_lr():
    first = adam_path(1)[1] - torch.tensor(START, dtype=torch.float64)
    torch.testing.assert_close(first.abs(), torch.full((2,), 0.3, dtype=torch.float64))
    g = torch.tensor([START[0], 25 * START[1]])
    assert (g[1] / g[0]).abs().item() == pytest.approx(8.33, abs=5e-3)


def test_07_a_large_eps_turns_the_first_step_to_the_gradient_but_slows_x():
    ratios = {}
    for eps in (1e-8, 1.0, 10.0, 100.0):
        d = adam_path(1, eps=eps)[1] - torch.tensor(START, dtype=torch.float64)
        ratios[eps] = (d[1] / d[0]).abs().item()
    assert ratios[1e-8] == pytest.approx(1.0) and ratios[1.0] < 1.3
    assert 2 < ratios[10.0] < 3 and 6 < ratios[100.0] < 8.33
    x20 = {eps: adam_path(20, eps=eps)[-1, 0].item() for eps in (1e-8, 100.0)}
    assert abs(x20[1e-8]) < 1 and x20[100.0] < -4  # at ε = 100 x has barely left −4.5


def test_07_beta1_0_5_ends_the_loops_and_the_loss_falls_far_lower():
    default, low = (problems.ravine(adam_path(betas=(b1, 0.999))) for b1 in (0.9, 0.5))
    assert default[-1] > 1e-4 and (default[-20:] > 1e-4).any()
    assert low[-1] < 1e-20


def test_07_beta2_0_does_not_converge():
    loss = problems.ravine(adam_path(betas=(0.9, 0.0)))
    assert loss[-20:].min() > 1.0
