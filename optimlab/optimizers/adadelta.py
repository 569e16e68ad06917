"""Adadelta, as ``torch.optim.Adadelta`` computes it (single-tensor path)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter, zeros_like
from .cases import group, lr_tensor, schedule, two_lrs
from .mistakes import Mistake, edit, tweaked, with_hyper
from .registry import OptimizerSpec


def adadelta_delta(acc_delta: Tensor, square_avg: Tensor, grad: Tensor, eps: float) -> Tensor:
    """Δ = √(u + ε) / √(v + ε) · g: eps inside both roots."""
    std = square_avg.add(eps).sqrt_()
    return acc_delta.add(eps).sqrt_().div_(std).mul_(grad)


def adadelta_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    r"""One step of ``torch.optim.Adadelta`` for one parameter tensor, in place.

    .. code-block:: text

        t ← t + 1
        g ← −g                          if maximize
        g ← g + λ·θ                     if weight_decay λ ≠ 0
        v ← ρ·v + (1 − ρ)·g²            square_avg
        Δ ← √(u + ε) / √(v + ε) · g     eps inside both roots
        u ← ρ·u + (1 − ρ)·Δ²            acc_delta
        θ ← θ − γ·Δ                     lr γ defaults to 1.0

    State: ``step``, ``square_avg``, ``acc_delta``.
    """
    lr = as_scalar(lr)
    if not state:
        state["step"] = new_step_counter()
        state["square_avg"] = zeros_like(param)
        state["acc_delta"] = zeros_like(param)
    count_step(state)
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    square_avg, acc_delta = state["square_avg"], state["acc_delta"]
    square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
    delta = adadelta_delta(acc_delta, square_avg, grad, eps)
    acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
    param.add_(delta, alpha=-lr)


def _eps_outside(acc_delta: Tensor, square_avg: Tensor, grad: Tensor, eps: float) -> Tensor:
    return (acc_delta.sqrt() + eps) / (square_avg.sqrt() + eps) * grad


def _rho_swapped(param: Tensor, state: dict, hyper: dict, memo: dict) -> None:
    hyper["rho"] = 1 - hyper["rho"]


SPECS = [
    OptimizerSpec(
        "adadelta", "Adadelta", "05_adadelta", adadelta_step, torch.optim.Adadelta,
        visible=(
            group("basic", ("defaults", {}),
                  ("lr, rho, eps", {"lr": 0.5, "rho": 0.5, "eps": 1e-3}),
                  two_lrs(1.0, 0.3), schedule(1.0)),
            group("weight_decay", ("weight_decay", {"weight_decay": 0.1})),
            group("maximize", ("maximize", {"maximize": True}),
                  ("maximize with weight_decay", {"maximize": True, "weight_decay": 0.1})),
        ),
        extras=(
            ("all flags", {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.05,
                           "maximize": True}),
            ("extreme", {"lr": 2.0, "rho": 0.0, "eps": 1.0}),
            ("tensor lr", {"lr": lr_tensor(0.5)}),
        ),
        mistakes=(
            Mistake("eps_outside_roots", "eps outside the square roots",
                    "Adadelta puts eps *inside* both roots: √(u + ε) / √(v + ε).",
                    edit(adadelta_step, adadelta_delta=_eps_outside)),
            Mistake("lr_ignored", "`lr` ignored", "torch multiplies the step by lr (default 1.0).",
                    with_hyper(adadelta_step, lr=1.0)),
            Mistake("rho_swapped", "rho and 1 − rho swapped",
                    "v ← ρ·v + (1 − ρ)·g²: ρ weighs the past.",
                    tweaked(adadelta_step, _rho_swapped)),
        ),
    ),
]
