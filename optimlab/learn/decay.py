"""Checks for the exercises of notebooks 08–10 that are not step functions: where AdamW's
decoupled decay settles, and how long one gradient spike holds Adamax's steps down.

Each ``check_*`` calls the learner's function through :func:`exercises._call` (recorded while
grading, replayed by the judge), in the same order on every run given ``_seed(hidden, label)``,
and raises ``AssertionError`` saying what differs and, where it recognizes the slip, why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .exercises import _call, _close, _seed


# ----------------------------------------------------------------------- 08: AdamW's fixed point
def decoupled_equilibrium_answer(theta0: Tensor, s: Tensor, lr: float, weight_decay: float,
                                 steps: float) -> Tensor:
    """θ after ``steps`` AdamW steps from ``theta0`` when the normalized step
    m̂/(√v̂ + ε) is ``s`` at every step (``steps = math.inf``: the limit).

    Each step is θ ← θ·(1 − γλ), then θ ← θ − γ·s: a contraction towards θ* = −s/λ, so
    θ_t = θ* + (θ₀ − θ*)·(1 − γλ)^t.
    """
    star = -s / weight_decay
    shrink = 0.0 if math.isinf(steps) else (1 - lr * weight_decay) ** steps
    return star + (theta0 - star) * shrink


def _decay_slips(theta0: Tensor, s: Tensor, lr: float, wd: float, steps: float
                 ) -> list[tuple[Tensor, str]]:
    """Plausible wrong answers, each with the hint its match earns."""
    def loop_free(a: float, star: Tensor) -> Tensor:
        shrink = 0.0 if math.isinf(steps) else a**steps
        return star + (theta0 - star) * shrink

    a = 1 - lr * wd
    return [
        (loop_free(a, s / wd), "θ settles at +s/λ here: the step subtracts γ·s, so θ moves "
                               "against s"),
        (loop_free(1 - wd, -lr * s / wd), "this decays by (1 − λ): AdamW's decay is γ·λ·θ per "
                                          "step, scaled by the learning rate"),
        (loop_free(a, -s * a / wd), "this decays after the step; AdamW multiplies θ by "
                                    "(1 − γλ) first, then subtracts γ·s"),
        (loop_free(a, -lr * s / wd), "the fixed point does not depend on γ: γ·s = γ·λ·θ* there"),
        (loop_free(a, -s / wd) if math.isinf(steps) else
         -s / wd + (theta0 + s / wd) * a ** (steps + 1), "off by one step: after 0 steps θ is θ₀"),
        (theta0 * (1.0 if math.isinf(steps) else a**steps), "the decay alone: the step γ·s "
                                                            "is missing"),
    ]


def check_decoupled_equilibrium(fn: Callable[..., Any], hidden: bool = False) -> str:
    """The learner's ``decoupled_equilibrium(theta0, s, lr, weight_decay, steps) -> θ``."""
    cases: list[tuple[Tensor, Tensor, float, float, float]] = [
        (torch.tensor([0.0, 3.0, -1.0], dtype=torch.float64),
         torch.tensor([1.0, -0.5, 0.2], dtype=torch.float64), 0.01, 0.5, steps)
        for steps in (1, 100, math.inf)]
    f64 = torch.float64
    cases.append((torch.tensor([5.0], dtype=f64), torch.tensor([0.0], dtype=f64), 1e-3, 0.1, 2000))
    if hidden:
        gen = torch.Generator().manual_seed(_seed(True, "decoupled_equilibrium"))
        for steps in (0, 1, 37, 3000, math.inf, math.inf):
            n = int(torch.randint(1, 6, (), generator=gen))
            dtype = torch.float32 if steps == 37 else torch.float64
            theta0 = (3 * torch.randn(n, generator=gen, dtype=torch.float64)).to(dtype)
            s = (2 * torch.rand(n, generator=gen, dtype=torch.float64) - 1).to(dtype)
            lr = float(10 ** (-1 - 3 * torch.rand((), generator=gen)))
            wd = float(10 ** (-2 * torch.rand((), generator=gen)))
            cases.append((theta0, s, lr, wd, steps))
    for theta0, s, lr, wd, steps in cases:
        where = (f"θ₀ = {[round(v, 4) for v in theta0.tolist()]}, s = "
                 f"{[round(v, 4) for v in s.tolist()]}, lr={lr:.4g}, weight_decay={wd:.4g}, "
                 f"steps={steps}")
        got = _call(fn, theta0.clone(), s.clone(), lr, wd, steps)
        want = decoupled_equilibrium_answer(theta0.double(), s.double(), lr, wd, steps)
        if isinstance(got, Tensor) and got.numel() == want.numel() == 1:
            got = got.reshape(want.shape)  # a 1-element answer of shape () or (1,) is fine
        tol = (1e-9, 1e-12) if theta0.dtype == torch.float64 else (1e-4, 1e-5)
        try:
            _close("θ", got, want, *tol, where, "AdamW's θ")
        except AssertionError as exc:
            hint = next((h for slip, h in _decay_slips(theta0.double(), s.double(), lr, wd, steps)
                         if isinstance(got, Tensor) and got.shape == want.shape
                         and torch.allclose(got.double(), slip, rtol=1e-6, atol=1e-9)
                         and not torch.allclose(slip, want, rtol=1e-6, atol=1e-9)), None)
            raise AssertionError(
                f"{exc}: expected {[round(v, 6) for v in want.tolist()]}, got "
                f"{[round(float(v), 6) for v in torch.as_tensor(got).flatten().tolist()]}"
                + (f"\nHint: {hint}." if hint else "")) from None
    return f"decoupled_equilibrium: AdamW's θ right on {len(cases)} cases"


# ----------------------------------------------------------------------- 09: Adamax after a spike
def adamax_recovery_steps_answer(spike_ratio: float, beta2: float) -> int:
    """After one gradient ``spike_ratio`` times the usual size, the smallest k ≥ 0 with
    β₂ᵏ·spike_ratio ≤ 1: the steps until Adamax's u is back to the usual gradient."""
    if spike_ratio <= 1:
        return 0
    return math.ceil(math.log(spike_ratio) / -math.log(beta2))


def _near_integer(x: float) -> bool:
    return abs(x - round(x)) < 1e-6


def check_adamax_recovery_steps(fn: Callable[..., Any], hidden: bool = False) -> str:
    """The learner's ``adamax_recovery_steps(spike_ratio, beta2) -> int``."""
    cases = [(100.0, 0.999), (10.0, 0.99), (3.0, 0.5), (1.0, 0.999), (0.5, 0.9)]
    if hidden:
        gen = torch.Generator().manual_seed(_seed(True, "adamax_recovery_steps"))
        while len(cases) < 12:
            ratio = float(10 ** (6 * torch.rand((), generator=gen)))
            beta2 = float(1 - 10 ** (-0.5 - 3.5 * torch.rand((), generator=gen)))
            if not _near_integer(math.log(ratio) / -math.log(beta2)):
                cases.append((ratio, beta2))
    for ratio, beta2 in cases:
        where = f"spike_ratio={ratio:.6g}, beta2={beta2:.6g}"
        got = _call(fn, ratio, beta2)
        want = adamax_recovery_steps_answer(ratio, beta2)
        if isinstance(got, Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, (int, float)) or isinstance(got, bool) or got != want:
            hint = ""
            exact = math.log(ratio) / -math.log(beta2) if ratio > 0 else 0.0
            if isinstance(got, float) and not got.is_integer():
                hint = "a count of steps is a whole number: round which way?"
            elif isinstance(got, (int, float)) and ratio > 1 and got == math.floor(exact):
                hint = ("after that many steps β₂ᵏ·spike_ratio is still above 1: round up, "
                        "not down")
            elif isinstance(got, (int, float)) and ratio <= 1 and got != 0:
                hint = "a 'spike' no larger than the usual gradient never raises u"
            elif isinstance(got, (int, float)) and ratio > 1 and got == round(
                    math.log(ratio) / (1 - beta2)):
                hint = "ln(1/β₂) ≈ 1 − β₂ only when β₂ is close to 1: use the exact logarithm"
            raise AssertionError(f"{where}: expected {want} steps, got {got!r}"
                                 + (f"\nHint: {hint}" if hint else ""))
    return f"adamax_recovery_steps: right on {len(cases)} cases"
