"""Claims notebooks 00-02 make about how gradient descent and SGD behave, each computed as the
notebook computes it, with torch.optim (and the same seeds).

00: gradient descent stalls near the saddle for about 100 steps, gradient noise leaves in a
quarter of them, and noise of the right size finds the bumpy surface's global minimum more often.
01: the stability edge, GD's rate (1 − 1/κ at γ = 1/h_max, (κ − 1)/(κ + 1) at the best γ) as
measured, and the step counts at κ = 100. 02: batch size on the digits data.
"""

from __future__ import annotations

import math

import pytest
import torch

from optimlab.learn import data, landscape, problems
from optimlab.learn.exercises import fit_linear_answer

F64 = torch.float64


# ------------------------------------------------------------------ 00: the saddle
def saddle_escape(noise=0.0, seed=0):
    path = landscape.descend(problems.saddle, (1.0, 1e-8), lr=0.1, steps=150, noise=noise,
                             seed=seed)
    return path, landscape.steps_until(path, lambda p: p[:, 1].abs() >= 1)


def test_gd_leaves_the_saddle_at_step_102_after_about_fifty_flat_steps():
    path, left = saddle_escape()
    assert left == 102 == math.ceil(math.log(1e8) / math.log(1.2))
    torch.testing.assert_close(path[:, 1], 1e-8 * 1.2 ** torch.arange(151, dtype=F64))
    flat = (2 * path.norm(dim=1) < 0.01).nonzero()[:, 0]
    assert (flat.min().item(), flat.max().item()) == (24, 71)  # "about fifty" steps
    assert len(flat) == 71 - 24 + 1


def noisy_escapes(seed=0):
    """Notebook 00's 20 runs from (1, 1e-8), each with its own noise, σ = 0.1."""
    runs = landscape.descend(problems.saddle, torch.tensor([1.0, 1e-8]).expand(20, 2), lr=0.1,
                             steps=150, noise=0.1, seed=seed)
    return torch.tensor([landscape.steps_until(runs[:, i], lambda q: q[:, 1].abs() >= 1)
                         for i in range(20)])


def test_gradient_noise_leaves_the_saddle_in_about_25_steps():
    escapes = noisy_escapes()
    assert (escapes.min().item(), escapes.max().item(), escapes.median().item()) == (20, 47, 24)
    predicted = math.log(1 / (0.1 * 0.1)) / math.log(1.2)
    assert round(predicted) == 25
    for seed in (0, 1, 2):
        escapes = noisy_escapes(seed)
        assert abs(escapes.median().item() - predicted) < 0.2 * predicted, seed
        assert escapes.max() < 102 / 2, seed  # every noisy run leaves long before plain GD


# ------------------------------------------------------------------ 00: the bumpy surface
GRID = torch.linspace(-3.5, 3.5, 8, dtype=F64)
STARTS = torch.cartesian_prod(GRID, GRID)
BEST = torch.tensor([-0.75, 0.0], dtype=F64)


SIGMAS = [0, 1, 2, 3, 4, 6, 8]


def bumpy_ends(seed=0):
    """Notebook 00's runs: every noise level at once, as the notebook runs them."""
    levels = torch.tensor(SIGMAS, dtype=F64).view(-1, 1, 1)
    last = landscape.descend(problems.bumpy, STARTS.expand(len(SIGMAS), -1, -1), lr=0.05,
                             steps=1000, noise=levels, seed=seed, quiet=200)[-1]
    return dict(zip(SIGMAS, last, strict=True))


def at_global_minimum(ends):
    return int(((ends - BEST).norm(dim=1) < 0.1).sum())


def test_the_global_minimum_is_near_minus_075_0_at_about_minus_094():
    ends = bumpy_ends()[0]
    lowest = problems.bumpy(ends).argmin()
    assert (ends[lowest] - BEST).norm() < 0.05
    assert problems.bumpy(ends[lowest]).item() == pytest.approx(-0.941, abs=1e-3)


def test_noise_of_the_right_size_finds_the_global_minimum_more_often():
    ends = bumpy_ends()
    found = {s: at_global_minimum(e) for s, e in ends.items()}
    assert found == {0: 4, 1: 4, 2: 5, 3: 23, 4: 19, 6: 13, 8: 5}  # the notebook's seed 0
    mean = {s: round(problems.bumpy(e).mean().item(), 2) for s, e in ends.items()}
    assert (mean[0], mean[3], mean[8]) == (-0.03, -0.69, 0.47)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_bumpy_ranking_holds_for_other_seeds(seed):
    ends = bumpy_ends(seed)
    found = {s: at_global_minimum(e) for s, e in ends.items()}
    assert found[0] == found[1] == 4 and found[3] >= 20
    assert found[3] == max(found.values()) and found[8] < found[3] / 2 + 1
    mean = {s: problems.bumpy(e).mean().item() for s, e in ends.items()}
    assert mean[8] > mean[0] > mean[3]  # too much noise ends worse than none


def test_plain_gd_ends_in_its_starting_basin():
    """The 4 runs GD brings to the global minimum start on the 4 grid points nearest it."""
    ends = bumpy_ends()[0]
    there = ((ends - BEST).norm(dim=1) < 0.1).nonzero()[:, 0]
    assert ((STARTS[there] - BEST).norm(dim=1) < 1.0).all()


# ------------------------------------------------------------------ 01: the stability edge
def test_at_exactly_2_over_h_max_y_flips_and_keeps_its_size():
    path = problems.run_on_surface(problems.ravine, lambda p: torch.optim.SGD(p, lr=0.08),
                                   start=(-4.5, 1.5), steps=50)
    torch.testing.assert_close(path[:, 1], 1.5 * (-1.0) ** torch.arange(51, dtype=F64))
    assert path[-1, 0].item() == pytest.approx(-4.5 * 0.92**50) == pytest.approx(-0.0696, abs=1e-4)
    past = problems.run_on_surface(problems.ravine, lambda p: torch.optim.SGD(p, lr=0.081),
                                   start=(-4.5, 1.5), steps=50)
    assert past[-1, 1].abs() > 1.5


def linear_excess(factor, steps=60):
    """Notebook 01 cell 10: the loss's excess over its minimum, lr = factor / h_max."""
    d = problems.linear_data(n=256, in_features=3, out_features=2, seed=0)
    Xt = torch.cat([d.X, torch.ones(len(d.X), 1)], dim=1)
    h_max = torch.linalg.eigvalsh(2 * Xt.T @ Xt / d.Y.numel()).max().item()
    X, Y = d.X.double(), d.Y.double()
    Xt64 = torch.cat([X, torch.ones(len(X), 1, dtype=F64)], dim=1)
    lowest = ((Xt64 @ torch.linalg.lstsq(Xt64, Y).solution - Y) ** 2).mean().item()
    *_, losses = fit_linear_answer(X, Y, factor / h_max, steps)
    return torch.tensor(losses, dtype=F64) - lowest


def test_the_linear_models_runs_are_straight_lines_with_the_computed_slopes():
    assert linear_excess(1.0)[12] < 1e-12  # "within 12 steps"
    edge = linear_excess(1.9)
    assert (edge[59] / edge[58]).item() == pytest.approx(0.9**2, rel=2e-3)  # |1 − 1.9|² per step
    past = linear_excess(2.2)
    low = int(past.argmin())
    assert 2 <= low <= 6 and past[-1] > 100 * past[0]  # falls first, then grows without bound
    assert (past[59] / past[58]).item() == pytest.approx(1.2**2, rel=2e-3)
    slow = linear_excess(0.05)
    assert 1e-2 < slow[-1] < 0.1  # "slow": still far above the minimum after 60 steps


# ------------------------------------------------------------------ 01: the rate against κ
@pytest.mark.parametrize("kappa", [2, 5, 10, 30, 100, 300])
def test_measured_rate_on_the_ravine_matches_the_prediction(kappa):
    for lr, predicted in [(1 / kappa, 1 - 1 / kappa), (2 / (1 + kappa), (kappa - 1) / (kappa + 1))]:
        path = problems.run_on_surface(lambda xy: problems.ravine(xy, condition=kappa),
                                       lambda p, lr=lr: torch.optim.SGD(p, lr=lr),
                                       start=(1.0, 1.0), steps=60)
        measured = (path[60].norm() / path[30].norm()).item() ** (1 / 30)
        assert measured == pytest.approx(predicted, rel=1e-9)  # far within 10 %
        assert round(measured, 6) == round(predicted, 6)  # "all six printed digits"
        H = torch.diag(torch.tensor([1.0, kappa], dtype=F64))
        assert landscape.convergence_rate_answer(H, lr) == pytest.approx(predicted, rel=1e-12)


def test_rescaled_inputs_give_kappa_about_440_and_the_predicted_rate():
    d = problems.linear_data(n=256, in_features=3, out_features=2, seed=0)
    X = d.X.double() * torch.tensor([0.1, 1.0, 2.0], dtype=F64)
    Y = d.Y.double()
    Xt = torch.cat([X, torch.ones(len(X), 1, dtype=F64)], dim=1)
    H = 2 * Xt.T @ Xt / Y.numel()
    h = torch.linalg.eigvalsh(H)
    kappa = (h.max() / h.min()).item()
    assert 430 < kappa < 445
    Xt32 = torch.cat([d.X, torch.ones(len(d.X), 1)], dim=1)
    h32 = torch.linalg.eigvalsh((2 * Xt32.T @ Xt32 / d.Y.numel()).double())
    assert round((h32.max() / h32.min()).item(), 2) == 1.48  # the unscaled inputs
    best = ((Xt @ torch.linalg.lstsq(Xt, Y).solution - Y) ** 2).mean().item()
    for lr in (1 / h.max().item(), 2 / (h.min() + h.max()).item()):
        *_, losses = fit_linear_answer(X, Y, lr, 400)
        excess = torch.tensor(losses, dtype=F64) - best
        measured = (excess[399] / excess[199]).item() ** (1 / 400)
        predicted = landscape.convergence_rate_answer(H, lr)
        assert measured == pytest.approx(predicted, rel=1e-9)
        assert 0.1 < excess[-1] < 0.25  # "still more than 0.1 above its minimum"


@pytest.mark.parametrize("lr, steps", [(0.01, 688), (2 / 101, 346)])
def test_steps_to_a_thousandfold_at_kappa_100(lr, steps):
    path = problems.run_on_surface(lambda xy: problems.ravine(xy, condition=100),
                                   lambda p: torch.optim.SGD(p, lr=lr), start=(1.0, 1.0),
                                   steps=800)
    assert (path[:, 0].abs() < 1e-3).nonzero()[0].item() == steps
    rate = abs(1 - lr)
    assert math.ceil(math.log(1000) / -math.log(rate)) == steps


# ------------------------------------------------------------------ 02: digits
@pytest.fixture(scope="module")
def batch_runs():
    split = data.digits()
    return {B: data.train_digits(lambda p: torch.optim.SGD(p, lr=0.1), epochs=10, batch_size=B,
                                 split=split) for B in (8, 32, 128, 1348)}


def test_digits_with_sgd_passes_90_percent_and_reaches_about_96():
    h = data.train_digits(lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=1e-4), epochs=10,
                          batch_size=64)
    assert len(h.step_loss) == 220
    assert h.test_accuracy[-1] == pytest.approx(0.96, abs=0.015)


def test_smaller_batches_win_per_epoch(batch_runs):
    steps = {B: len(h.step_loss) for B, h in batch_runs.items()}
    assert steps == {8: 1690, 32: 430, 128: 110, 1348: 10}
    accuracy = [h.test_accuracy[-1] for h in batch_runs.values()]
    assert accuracy == sorted(accuracy, reverse=True)
    assert accuracy[0] - accuracy[-1] > 0.3 and 0.55 < accuracy[-1] < 0.65  # "near 60 %"


def test_per_step_the_curves_nearly_coincide(batch_runs):
    def at(B, epoch):  # (steps taken, test accuracy) after an epoch
        h = batch_runs[B]
        per = len(h.step_loss) // len(h.test_accuracy)
        return epoch * per, h.test_accuracy[epoch - 1]

    for (a, ea), (b, eb) in [((1348, 10), (128, 1)), ((32, 1), (128, 4)), ((8, 1), (32, 4)),
                             ((32, 3), (128, 10))]:
        (sa, acc_a), (sb, acc_b) = at(a, ea), at(b, eb)
        assert abs(sa - sb) / sb < 0.2, (a, b)  # about the same number of steps
        assert abs(acc_a - acc_b) < 0.03, (a, ea, acc_a, b, eb, acc_b)


def test_batch_8_jumps_about_4_times_more_than_batch_128(batch_runs):
    jumps = {}
    for B in (8, 128):
        loss = torch.tensor(batch_runs[B].step_loss[:110])
        jumps[B] = (loss[1:] - loss[:-1]).abs().mean().item()
    assert 3 < jumps[8] / jumps[128] < 5.5
    assert jumps[8] / jumps[128] == pytest.approx(math.sqrt(128 / 8), rel=0.15)
    # "both runs reach a similar loss after 110 steps"
    late = {B: sum(batch_runs[B].step_loss[100:110]) / 10 for B in (8, 128)}
    assert abs(late[8] - late[128]) < 0.25 * late[128]


def test_minibatch_gradient_error_strays_from_one_over_root_b_by_at_most_25_percent():
    """Notebook 02 cell 8, with the solution's `minibatches` (float32, as the notebook)."""

    def minibatches(X, Y, batch_size, generator):
        order = torch.randperm(len(X), generator=generator)
        for start in range(0, len(X), batch_size):
            idx = order[start:start + batch_size]
            yield X[idx], Y[idx]

    d = problems.linear_data(n=4096, in_features=3, out_features=2, noise=0.5, seed=1)
    A0 = torch.zeros(2, 3, requires_grad=True)

    def gradient(x, y):
        A0.grad = None
        ((x @ A0.T - y) ** 2).mean().backward()
        return A0.grad.clone()

    full = gradient(d.X, d.Y)
    gen = torch.Generator().manual_seed(0)
    sizes = [1, 4, 16, 64, 256, 1024]
    errors = []
    for B in sizes:
        errs = [(gradient(x, y) - full).norm() for x, y in minibatches(d.X, d.Y, B, gen)]
        errors.append(torch.stack(errs[:64]).mean().item())
    ratios = [e / (errors[0] / B**0.5) for e, B in zip(errors, sizes, strict=True)]
    assert all(0.75 < r < 1.25 for r in ratios), ratios
    assert ratios[-1] < 1  # a quarter of the data without replacement: below the line
