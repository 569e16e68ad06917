"""Moving averages of gradients (notebooks 06 and 07): their horizon and Adam's bias correction.

An exponential moving average (EMA) ``v_t = β v_{t-1} + (1 − β) x_t`` started at ``v_0 = 0``
weighs the value from ``k`` steps back by ``(1 − β) β^k``: the weights sum to ``1 − β^t``, not
to 1, and most of them lie on the last ``1/(1 − β)`` values (its *horizon*). Adam divides by
``1 − β₂^t`` to undo the missing weight; :func:`check_bias_correction_horizon` grades the
learner's ``bias_correction_horizon(beta2, tol)``, the first step at which that correction
is within ``tol`` of 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from .exercises import _call, _seed


def correction_factor(beta2: float, t: int) -> float:
    """The factor ``1/(1 − β₂^t)`` by which Adam's ``v̂`` scales ``v`` at step ``t`` (from 1)."""
    return 1.0 / (1.0 - beta2**t)


def bias_correction_horizon_answer(beta2: float, tol: float) -> int:
    """The first step ``t ≥ 1`` at which ``1/(1 − β₂^t) ≤ 1 + tol``."""
    # β₂^t ≤ tol/(1 + tol), solved by logarithms, then settled on the exact condition
    t = max(1, math.ceil(math.log(tol / (1.0 + tol)) / math.log(beta2)))
    while t > 1 and correction_factor(beta2, t - 1) <= 1.0 + tol:
        t -= 1
    while correction_factor(beta2, t) > 1.0 + tol:
        t += 1
    return t


def _as_step(value: Any, where: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, (bool, str, bytes)) or number is None:
        raise AssertionError(f"{where}: return a whole number of steps, got "
                             f"{type(value).__name__}")
    if not math.isfinite(number) or number != int(number):
        raise AssertionError(f"{where}: return a whole number of steps (t counts steps), "
                             f"got {number!r}")
    return int(number)


def check_bias_correction_horizon(fn: Callable[..., Any], hidden: bool = False) -> str:
    """The learner's ``bias_correction_horizon(beta2, tol) -> int``: the first step ``t``
    (counting from 1) at which Adam's correction ``1/(1 − β₂^t)`` is within ``tol`` of 1."""
    cases = [(0.999, 0.01), (0.9, 0.01), (0.99, 0.1), (0.999, 1.0), (0.3, 2.0)]
    if hidden:
        gen = torch.Generator().manual_seed(_seed(True, "bias_correction_horizon"))
        for _ in range(4):
            u, w = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
            cases.append((1.0 - 10.0 ** -(1.0 + 3.0 * u), 10.0 ** -(0.3 + 2.7 * w)))
    for beta2, tol in cases:
        where = f"bias_correction_horizon(beta2={beta2:.6g}, tol={tol:.6g})"
        got = _as_step(_call(fn, beta2, tol), where)
        want = bias_correction_horizon_answer(beta2, tol)
        if got == want:
            continue
        if got < 1:
            raise AssertionError(f"{where} returned {got}: steps count from t = 1, and at t = 0 "
                                 "the correction 1/(1 − β₂⁰) is infinite")
        factor = correction_factor(beta2, got)
        # an answer a rounding away from the boundary is right: compare with the condition
        if abs(factor - (1.0 + tol)) <= 1e-12 * (1.0 + tol):
            continue
        hint = ""
        if got == max(1, math.ceil(math.log(tol) / math.log(beta2))):
            hint = (" (β₂^t ≤ tol is close to the condition but not the same: the correction "
                    "is a ratio, so solve for the factor itself)")
        elif got == round(1.0 / (1.0 - beta2)):
            hint = " (1/(1 − β₂) is the average's horizon, not where the correction fades to tol)"
        if factor > 1.0 + tol:
            raise AssertionError(
                f"{where} returned {got}, but at step {got} the correction is {factor:.6g}, "
                f"still more than 1 + tol = {1.0 + tol:.6g}{hint}")
        raise AssertionError(
            f"{where} returned {got}, but already at step {got - 1} the correction is "
            f"{correction_factor(beta2, got - 1):.6g} ≤ 1 + tol = {1.0 + tol:.6g}: return the "
            f"first such step{hint}")
    return f"bias_correction_horizon: the right step on {len(cases)} cases"
