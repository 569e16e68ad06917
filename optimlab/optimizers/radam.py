"""RAdam, as ``torch.optim.RAdam`` computes it (single-tensor path)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter, zeros_like
from .adam import one_step_late
from .cases import group, lr_tensor, schedule, two_lrs
from .mistakes import Mistake, edit, with_hyper
from .registry import OptimizerSpec

RHO_THRESHOLD = 5.0
"""torch adapts the step only once the SMA length ρ_t exceeds 5 (the variance is finite from 4)."""


def sma_length(beta2: float, t: float) -> tuple[float, float]:
    """(ρ_∞, ρ_t): the length of the simple moving average that the EMA approximates.

    ρ_∞ = 2/(1 − β₂) − 1 and ρ_t = ρ_∞ − 2t·β₂ᵗ/(1 − β₂ᵗ); ρ_1 = 1 and ρ_t → ρ_∞.
    """
    rho_inf = 2 / (1 - beta2) - 1
    return rho_inf, rho_inf - 2 * t * (beta2**t) / (1 - beta2**t)


def is_tractable(rho_t: float) -> bool:
    """Whether the adaptive rate's variance is tractable: ρ_t > 5."""
    return rho_t > RHO_THRESHOLD


def rectification(rho_t: float, rho_inf: float) -> float:
    """r_t = √((ρ_t − 4)(ρ_t − 2)ρ_∞ / ((ρ_∞ − 4)(ρ_∞ − 2)ρ_t)), which rises towards 1."""
    return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5


def adaptive_lr(exp_avg_sq: Tensor, bias_correction2: float, eps: float) -> Tensor:
    """l = √(1 − β₂ᵗ) / (√v + ε): eps after the root, v corrected through the numerator."""
    return (bias_correction2**0.5) / exp_avg_sq.sqrt().add_(eps)


def radam_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> None:
    r"""One step of ``torch.optim.RAdam`` for one parameter tensor, in place.

    .. code-block:: text

        g ← −g                                  if maximize
        t ← t + 1
        if weight_decay λ ≠ 0:
            θ ← θ·(1 − γ·λ)                     decoupled_weight_decay
            g ← g + λ·θ                         otherwise (L2)
        m ← m + (1 − β₁)·(g − m)                exp_avg
        v ← β₂·v + (1 − β₂)·g²                  exp_avg_sq
        m̂ ← m / (1 − β₁ᵗ)
        ρ_∞ ← 2/(1 − β₂) − 1
        ρ_t ← ρ_∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
        if ρ_t > 5:                             the variance of 1/√v̂ is tractable
            l ← √(1 − β₂ᵗ) / (√v + ε)
            r ← √((ρ_t − 4)(ρ_t − 2)ρ_∞ / ((ρ_∞ − 4)(ρ_∞ − 2)ρ_t))
            θ ← θ − m̂·γ·l·r                     (multiplied in this order)
        else:
            θ ← θ − m̂·γ                         SGD with momentum: no adaptive rate yet

    With the default β₂ = 0.999, ρ_t > 5 from t = 6 on: the first five steps are
    un-adapted, which is RAdam's built-in warm-up. State: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """
    lr = as_scalar(lr)
    beta1, beta2 = betas
    if not state:
        state["step"] = new_step_counter()
        state["exp_avg"] = zeros_like(param)
        state["exp_avg_sq"] = zeros_like(param)
    if maximize:
        grad = -grad
    t = count_step(state)
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            grad = grad.add(param, alpha=weight_decay)
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1**t
    bias_correction2 = 1 - beta2**t
    corrected = exp_avg / bias_correction1
    rho_inf, rho_t = sma_length(beta2, t)
    if is_tractable(rho_t):
        param.add_(corrected * lr * adaptive_lr(exp_avg_sq, bias_correction2, eps)
                   * rectification(rho_t, rho_inf), alpha=-1.0)
    else:
        param.add_(corrected * lr, alpha=-1.0)


def _rect_without_root(rho_t: float, rho_inf: float) -> float:
    return (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)


def _no_correction_of_v(exp_avg_sq: Tensor, bias_correction2: float, eps: float) -> Tensor:
    return 1 / exp_avg_sq.sqrt().add_(eps)


def _eps_after_corrected_root(exp_avg_sq: Tensor, bias_correction2: float, eps: float
                              ) -> Tensor:
    return 1 / (exp_avg_sq / bias_correction2).sqrt_().add_(eps)


def _eps_inside_sqrt(exp_avg_sq: Tensor, bias_correction2: float, eps: float) -> Tensor:
    return (bias_correction2**0.5) / exp_avg_sq.add(eps).sqrt_()


SPECS = [
    OptimizerSpec(
        "radam", "RAdam", "11_radam", radam_step, torch.optim.RAdam,
        visible=(
            group("basic", ("defaults", {}),
                  ("lr, betas, eps", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-3}),
                  two_lrs(1e-2, 1e-3), schedule(1e-2)),
            group("rectification",
                  # β₂ = 0.9: ρ_∞ = 19, and ρ_t crosses 5 at t = 5 within the first steps
                  ("a short horizon", {"lr": 1e-2, "betas": (0.9, 0.9)}),
                  # β₂ = 0.75: ρ_∞ = 7, crossed at t = 8, two steps after the default's t = 6
                  ("the threshold crossed late", {"lr": 1e-2, "betas": (0.5, 0.75)}),
                  # β₂ = 0.6: ρ_∞ = 4, never crossed: SGD with momentum throughout
                  ("never rectified", {"lr": 1e-2, "betas": (0.5, 0.6)})),
            group("weight_decay", ("weight_decay (L2)", {"lr": 1e-2, "weight_decay": 0.1})),
            group("decoupled_weight_decay",
                  ("decoupled_weight_decay",
                   {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": True})),
            group("maximize", ("maximize", {"lr": 1e-2, "maximize": True}),
                  ("maximize with weight_decay",
                   {"lr": 1e-2, "maximize": True, "weight_decay": 0.1})),
        ),
        extras=(
            ("all flags", {"lr": 1e-2, "betas": (0.85, 0.95), "eps": 1e-6, "weight_decay": 0.05,
                           "decoupled_weight_decay": True, "maximize": True}),
            ("extreme", {"lr": 0.1, "betas": (0.0, 0.5), "eps": 1.0, "weight_decay": 1.0}),
            ("tensor lr", {"lr": lr_tensor(1e-2), "betas": (0.9, 0.9), "weight_decay": 0.1}),
        ),
        mistakes=(
            Mistake("threshold_off", "the ρ_t threshold is 4, not 5",
                    "torch switches to the rectified step when ρ_t > 5.",
                    edit(radam_step, is_tractable=lambda rho_t: rho_t > 4)),
            Mistake("rect_without_root", "the rectification term without its square root",
                    "r_t = √((ρ_t − 4)(ρ_t − 2)ρ_∞ / ((ρ_∞ − 4)(ρ_∞ − 2)ρ_t)).",
                    edit(radam_step, rectification=_rect_without_root)),
            Mistake("v_not_corrected", "v not bias-corrected",
                    "The adaptive rate is √(1 − β₂ᵗ)/(√v + ε): v's bias correction sits in "
                    "the numerator.",
                    edit(radam_step, adaptive_lr=_no_correction_of_v)),
            Mistake("eps_after_corrected_root", "Adam's 1/(√v̂ + ε) as the adaptive rate",
                    "torch's RAdam adds eps to the root of the *uncorrected* v and corrects "
                    "through the numerator: √(1 − β₂ᵗ)/(√v + ε), not 1/(√v̂ + ε) as in Adam.",
                    edit(radam_step, adaptive_lr=_eps_after_corrected_root)),
            Mistake("eps_inside_sqrt", "eps inside the square root",
                    "The adaptive rate is √(1 − β₂ᵗ)/(√v + ε): eps after the root.",
                    edit(radam_step, adaptive_lr=_eps_inside_sqrt)),
            Mistake("l2_instead_of_decoupled", "L2 decay where decoupled decay is wanted",
                    "With decoupled_weight_decay, multiply θ by (1 − γλ) before the moments.",
                    with_hyper(radam_step, decoupled_weight_decay=False)),
            Mistake("bc_off_by_one", "step count off by one",
                    "The step count t is 1 on the first step.",
                    edit(radam_step, count_step=one_step_late)),
        ),
        capstone=True,
    ),
]
