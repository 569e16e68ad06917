"""Notebook 03's graded exercise that is not a transcription: tune heavy-ball momentum.

On a quadratic whose curvatures h (Hessian eigenvalues) lie in ``[h_min, h_max]``, the heavy
ball ``b ← μ·b + g, θ ← θ − γ·b`` (``torch.optim.SGD`` with momentum μ and lr γ) acts on each
eigen-direction as the linear recursion ``e_{t+1} = (1 + μ − γh)·e_t − μ·e_{t−1}``. Its
contraction per step is the spectral radius of the 2×2 matrix ``[[1 + μ − γh, −μ], [1, 0]]``;
the slowest direction decides the rate. The learner's ``tuned_heavy_ball(h_min, h_max) ->
(lr, momentum)`` is checked by the rate it achieves: the best possible is
``(√κ − 1)/(√κ + 1)`` with κ = h_max/h_min.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from .exercises import _call, _seed


def heavy_ball_rate(lr: float, momentum: float, h: float) -> float:
    """The contraction per step of heavy ball on the direction of curvature ``h``: the largest
    |root| of ``z² − (1 + μ − γh)·z + μ``."""
    a = 1 + momentum - lr * h
    disc = a * a - 4 * momentum
    if disc < 0:  # complex pair: |z|² = μ
        return math.sqrt(momentum)
    root = math.sqrt(disc)
    return max(abs(a + root), abs(a - root)) / 2


def worst_rate(lr: float, momentum: float, h_min: float, h_max: float,
               points: int = 201) -> tuple[float, float]:
    """(the largest rate over curvatures in ``[h_min, h_max]``, the curvature where it is)."""
    hs = torch.linspace(h_min, h_max, points, dtype=torch.float64).tolist()
    return max((heavy_ball_rate(lr, momentum, h), h) for h in hs)


def best_rate(h_min: float, h_max: float) -> float:
    """The best rate heavy ball can achieve on ``[h_min, h_max]``: (√κ − 1)/(√κ + 1)."""
    s = math.sqrt(h_max / h_min)
    return (s - 1) / (s + 1)


def tuned_heavy_ball_answer(h_min: float, h_max: float) -> tuple[float, float]:
    """(γ, μ) = (4/(√h_max + √h_min)², ((√κ − 1)/(√κ + 1))²)."""
    return 4 / (math.sqrt(h_max) + math.sqrt(h_min)) ** 2, best_rate(h_min, h_max) ** 2


def gd_rate(h_min: float, h_max: float) -> float:
    """GD's rate at its best constant lr 2/(h_min + h_max): (κ − 1)/(κ + 1)."""
    return (h_max - h_min) / (h_max + h_min)


def _hint(lr: float, mu: float, h_min: float, h_max: float) -> str:
    want_lr, want_mu = tuned_heavy_ball_answer(h_min, h_max)
    r = best_rate(h_min, h_max)

    def near(a: float, b: float) -> bool:
        return abs(a - b) <= 1e-6 * max(abs(b), 1e-12)

    if near(mu, r) and not near(mu, want_mu):
        return ("your momentum equals the best *rate*; with complex roots the rate is √μ, "
                "so μ is the square of the rate")
    if abs(mu) < 1e-12:
        return ("momentum 0 is plain GD, whose best rate is (κ − 1)/(κ + 1); "
                "heavy ball can do better")
    if near(lr, 2 / (h_min + h_max)):
        return ("lr 2/(h_min + h_max) is GD's best; with momentum the stable range of γh "
                "widens to (1 − √μ)² … (1 + √μ)²")
    if near(mu, want_mu):
        return ("the momentum is right; choose γ so that γ·h_min = (1 − √μ)² and "
                "γ·h_max = (1 + √μ)² both hold")
    if near(lr, want_lr):
        return "the lr is right; look at the momentum"
    return ("choose γ and μ so that every h in [h_min, h_max] gives complex roots "
            "(rate √μ), with μ as small as that allows")


def check_tuned_heavy_ball(fn: Callable[..., Any], hidden: bool = False) -> str:
    """The learner's ``tuned_heavy_ball(h_min, h_max) -> (lr, momentum)``, judged by the
    worst contraction rate it gives over ``[h_min, h_max]`` against the best possible."""
    cases = [(1.0, 25.0), (1.0, 100.0), (0.5, 2.0), (2.0, 2e4)]
    if hidden:
        gen = torch.Generator().manual_seed(_seed(True, "tuned_heavy_ball"))
        for _ in range(4):
            h_min = float(10 ** (torch.rand((), generator=gen, dtype=torch.float64) * 4 - 2))
            kappa = float(10 ** (torch.rand((), generator=gen, dtype=torch.float64) * 5 + 0.1))
            cases.append((h_min, h_min * kappa))
    for h_min, h_max in cases:
        where = f"h_min={h_min:.6g}, h_max={h_max:.6g} (κ = {h_max / h_min:.4g})"
        out = _call(fn, h_min, h_max)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise AssertionError(f"{where}: return a pair (lr, momentum), "
                                 f"got {type(out).__name__}")
        try:
            lr, mu = float(out[0]), float(out[1])
        except (TypeError, ValueError):
            raise AssertionError(f"{where}: lr and momentum should be numbers, got "
                                 f"{type(out[0]).__name__} and {type(out[1]).__name__}") from None
        if not (math.isfinite(lr) and math.isfinite(mu)):
            raise AssertionError(f"{where}: lr={lr}, momentum={mu} are not finite")
        if not (lr > 0 and 0 <= mu < 1):
            raise AssertionError(f"{where}: got lr={lr:.6g}, momentum={mu:.6g}; heavy ball needs "
                                 "lr > 0 and 0 ≤ momentum < 1")
        rate, at = worst_rate(lr, mu, h_min, h_max)
        best = best_rate(h_min, h_max)
        if rate >= 1:
            raise AssertionError(
                f"{where}: with lr={lr:.6g}, momentum={mu:.6g} the direction of curvature "
                f"h={at:.6g} does not shrink (rate {rate:.6g} ≥ 1): it diverges. "
                + _hint(lr, mu, h_min, h_max))
        # the rate at a double root is the root of a rounding error: allow 0.1 % more steps
        if math.log(rate) > math.log(best) * (1 - 1e-3):
            steps, steps_best = math.log(1e-6) / math.log(rate), math.log(1e-6) / math.log(best)
            raise AssertionError(
                f"{where}: lr={lr:.6g}, momentum={mu:.6g} shrink the slowest direction "
                f"(h={at:.6g}) by {rate:.6g} per step, {steps:.0f} steps to 1e-6; the best "
                f"heavy ball achieves {best:.6g}, {steps_best:.0f} steps. "
                + _hint(lr, mu, h_min, h_max))
    return f"tuned_heavy_ball: the best rate (√κ − 1)/(√κ + 1) on all {len(cases)} problems"
