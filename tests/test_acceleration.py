"""optimlab.learn.acceleration: notebook 03's check of a tuned heavy ball, and its rates."""

from __future__ import annotations

import math

import pytest
import torch

from optimlab.learn import acceleration as acc


def tuned_other_way(h_min, h_max):
    """The same answer written differently: from the two equations γh_min = (1 − √μ)²,
    γh_max = (1 + √μ)², returned as tensors in a list."""
    q = math.sqrt(h_max / h_min)
    sqrt_mu = (q - 1) / (q + 1)
    lr = (1 - sqrt_mu) ** 2 / h_min
    return [torch.tensor(lr, dtype=torch.float64), torch.tensor(sqrt_mu, dtype=torch.float64) ** 2]


def test_accepts_a_correct_answer_written_differently():
    assert "best rate" in acc.check_tuned_heavy_ball(tuned_other_way)
    assert "best rate" in acc.check_tuned_heavy_ball(tuned_other_way, hidden=True)


@pytest.mark.parametrize("wrong, words", [
    (lambda lo, hi: (4 / (math.sqrt(hi) + math.sqrt(lo)) ** 2, acc.best_rate(lo, hi)),
     "μ is the square of the rate"),
    (lambda lo, hi: (2 / (lo + hi), 0.0), "momentum 0 is plain GD"),
    (lambda lo, hi: (2 / (lo + hi), acc.best_rate(lo, hi) ** 2), "GD's best"),
    (lambda lo, hi: (1 / hi, acc.best_rate(lo, hi) ** 2), "the momentum is right"),
    (lambda lo, hi: (4 / (math.sqrt(hi) + math.sqrt(lo)) ** 2, 0.9), "the lr is right"),
    (lambda lo, hi: (4 / hi, 0.5), "diverges"),
])
def test_rejects_plausible_wrong_answers_and_says_why(wrong, words):
    with pytest.raises(AssertionError, match=words):
        acc.check_tuned_heavy_ball(wrong)


def test_rejects_a_wrong_shape_and_an_exception():
    with pytest.raises(AssertionError, match="return a pair"):
        acc.check_tuned_heavy_ball(lambda lo, hi: 0.1)
    with pytest.raises(AssertionError, match="raised NotImplementedError"):
        acc.check_tuned_heavy_ball(lambda lo, hi: (_ for _ in ()).throw(NotImplementedError()))


def test_the_rate_is_what_the_iteration_does():
    """The spectral radius matches the measured contraction of torch.optim.SGD on one direction."""
    h, (lr, mu) = 3.0, (0.1, 0.5)
    p = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr, momentum=mu)
    xs = []
    for _ in range(400):
        opt.zero_grad()
        (0.5 * h * p**2).sum().backward()
        opt.step()
        xs.append(abs(p.item()))
    measured = (xs[399] / xs[199]) ** (1 / 200)
    assert measured == pytest.approx(acc.heavy_ball_rate(lr, mu, h), rel=1e-2)


def test_tuned_heavy_ball_beats_gd_by_about_sqrt_kappa():
    for kappa in (10.0, 100.0, 1e4):
        lr, mu = acc.tuned_heavy_ball_answer(1.0, kappa)
        assert acc.worst_rate(lr, mu, 1.0, kappa)[0] == pytest.approx(math.sqrt(mu), rel=1e-6)
        steps_gd = -1 / math.log(acc.gd_rate(1.0, kappa))
        steps_hb = -1 / math.log(acc.best_rate(1.0, kappa))
        assert steps_gd / steps_hb == pytest.approx(math.sqrt(kappa), rel=0.1)
