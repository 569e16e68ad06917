"""Adamax, as ``torch.optim.Adamax`` computes it (single-tensor path)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter, zeros_like
from .adam import one_step_late
from .cases import group, lr_tensor, schedule, two_lrs
from .mistakes import Mistake, edit, tweaked
from .registry import OptimizerSpec


def infinity_norm(exp_inf: Tensor, grad: Tensor, beta2: float, eps: float) -> Tensor:
    """u ← max(β₂·u, |g| + ε) in place (eps inside the max); u is the denominator."""
    torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps), out=exp_inf)
    return exp_inf


def bias_correction(beta1: float, t: float) -> float:
    """1 − β₁ᵗ: only m is corrected (the max needs none)."""
    return 1 - beta1**t


def adamax_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    r"""One step of ``torch.optim.Adamax`` for one parameter tensor, in place.

    .. code-block:: text

        g ← −g                              if maximize
        t ← t + 1
        g ← g + λ·θ                         if weight_decay λ ≠ 0
        m ← m + (1 − β₁)·(g − m)            exp_avg
        u ← max(β₂·u, |g| + ε)              exp_inf: eps inside the max, so u > 0
        θ ← θ − γ/(1 − β₁ᵗ) · m / u

    State: ``step``, ``exp_avg``, ``exp_inf``.
    """
    lr = as_scalar(lr)
    beta1, beta2 = betas
    if not state:
        state["step"] = new_step_counter()
        state["exp_avg"] = zeros_like(param)
        state["exp_inf"] = zeros_like(param)
    if maximize:
        grad = -grad
    t = count_step(state)
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
    exp_avg.lerp_(grad, 1 - beta1)
    denom = infinity_norm(exp_inf, grad, beta2, eps)
    clr = lr / bias_correction(beta1, t)
    param.addcdiv_(exp_avg, denom, value=-clr)


def _no_eps(exp_inf: Tensor, grad: Tensor, beta2: float, eps: float) -> Tensor:
    torch.maximum(exp_inf.mul_(beta2), grad.abs(), out=exp_inf)
    return exp_inf


def _eps_outside_max(exp_inf: Tensor, grad: Tensor, beta2: float, eps: float) -> Tensor:
    return _no_eps(exp_inf, grad, beta2, eps) + eps


def _beta2_ignored(param: Tensor, state: dict, hyper: dict, memo: dict) -> None:
    hyper["betas"] = (hyper["betas"][0], 1.0)


def _u_corrected(param: Tensor, state: dict, hyper: dict, memo: dict) -> None:
    """u / (1 − β₂ᵗ) in the denominator: the same as γ·(1 − β₂ᵗ)."""
    t = state["step"].item() + 1 if state else 1
    hyper["lr"] = hyper["lr"] * (1 - hyper["betas"][1] ** t)


SPECS = [
    OptimizerSpec(
        "adamax", "Adamax", "09_adamax", adamax_step, torch.optim.Adamax,
        visible=(
            group("basic", ("defaults", {}),
                  ("lr, betas, eps", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-3}),
                  two_lrs(1e-2, 1e-3), schedule(1e-2)),
            group("weight_decay", ("weight_decay", {"lr": 1e-2, "weight_decay": 0.1})),
            group("maximize", ("maximize", {"lr": 1e-2, "maximize": True}),
                  ("maximize with weight_decay",
                   {"lr": 1e-2, "maximize": True, "weight_decay": 0.1})),
        ),
        extras=(
            ("all flags", {"lr": 1e-2, "betas": (0.85, 0.99), "eps": 1e-6, "weight_decay": 0.05,
                           "maximize": True}),
            ("extreme", {"lr": 0.1, "betas": (0.0, 0.0), "eps": 1.0, "weight_decay": 1.0}),
            ("tensor lr", {"lr": lr_tensor(1e-2)}),
        ),
        mistakes=(
            Mistake("no_eps", "Adamax without eps",
                    "torch uses max(β₂·u, |g| + ε): without eps, a coordinate that never had a "
                    "gradient gives 0/0.", edit(adamax_step, infinity_norm=_no_eps)),
            Mistake("eps_outside_max", "eps added to the denominator instead of inside the max",
                    "eps belongs inside the max: max(β₂·u, |g| + ε).",
                    edit(adamax_step, infinity_norm=_eps_outside_max)),
            Mistake("beta2_ignored", "β₂ not applied to u", "u ← max(β₂·u, |g| + ε).",
                    tweaked(adamax_step, _beta2_ignored)),
            Mistake("no_bias_correction", "bias correction missing",
                    "The step size is γ / (1 − β₁ᵗ).",
                    edit(adamax_step, bias_correction=lambda beta1, t: 1.0)),
            Mistake("bias_correction_on_u", "bias correction applied to u",
                    "Only m is corrected in Adamax; the max needs none.",
                    tweaked(adamax_step, _u_corrected)),
            Mistake("bc_off_by_one", "bias correction off by one step",
                    "The step count t is 1 on the first step.",
                    edit(adamax_step, count_step=one_step_late)),
        ),
    ),
]
