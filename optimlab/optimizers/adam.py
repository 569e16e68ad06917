"""Adam and AMSGrad, as ``torch.optim.Adam`` computes them (AdamW is :mod:`.adamw`).

This follows torch's single-tensor path operation for operation, so float64 and float32
results agree with ``torch.optim.Adam(..., foreach=False)`` to the bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter, on_param, zeros_like
from .adapter import StepFunction
from .cases import Extra, group, lr_tensor, schedule, two_lrs
from .mistakes import Mistake, edit, with_hyper
from .registry import OptimizerSpec


def bias_corrections(beta1: Scalar, beta2: Scalar, t: float) -> tuple[Scalar, Scalar]:
    """1 − β₁ᵗ and 1 − β₂ᵗ: each moment has its own β."""
    return 1 - beta1**t, 1 - beta2**t


def running_max(max_exp_avg_sq: Tensor, exp_avg_sq: Tensor, bias_correction2: Scalar) -> Tensor:
    """AMSGrad: v_max ← max(v_max, v) in place, of the *uncorrected* v (torch corrects it
    afterwards, in the denominator, so ``bias_correction2`` is not used here)."""
    torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
    return max_exp_avg_sq


def adam_denominator(v: Tensor, bias_correction2_sqrt: Scalar, eps: float) -> Tensor:
    """√v̂ + ε = √v / √(1 − β₂ᵗ) + ε: eps added after bias correction."""
    return (v.sqrt() / bias_correction2_sqrt).add_(eps)


def adam_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 1e-3,
    betas: tuple[Scalar, Scalar] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> None:
    r"""One step of ``torch.optim.Adam`` for one parameter tensor, in place.

    .. code-block:: text

        g ← −g                              if maximize
        t ← t + 1
        if weight_decay λ ≠ 0:
            θ ← θ·(1 − γ·λ)                 decoupled (AdamW), before the moments
            g ← g + λ·θ                     otherwise (L2)
        m ← m + (1 − β₁)·(g − m)            exp_avg: an EMA of g (momentum)
        v ← β₂·v + (1 − β₂)·g²              exp_avg_sq: an EMA of g² (RMSprop)
        v_max ← max(v_max, v)               if amsgrad: the *uncorrected* v
        m̂ ← m / (1 − β₁ᵗ)                   (folded into the step size below)
        v̂ ← v / (1 − β₂ᵗ)                   β₂, not β₁
        θ ← θ − γ·m̂ / (√v̂ + ε)              eps added after bias correction

    In code the corrections are folded as torch folds them:
    ``θ ← θ − (γ / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)``.

    State: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).
    """
    lr = as_scalar(lr)
    beta1, beta2 = (as_scalar(b) for b in betas)
    if not state:
        state["step"] = new_step_counter()
        state["exp_avg"] = zeros_like(param)
        state["exp_avg_sq"] = zeros_like(param)
        if amsgrad:
            state["max_exp_avg_sq"] = zeros_like(param)
    if maximize:
        grad = -grad
    t = count_step(state)
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            grad = grad.add(param, alpha=weight_decay)
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg.lerp_(grad, 1 - on_param(beta1, param))
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1, bias_correction2 = bias_corrections(beta1, beta2, t)
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    second = exp_avg_sq
    if amsgrad:
        second = running_max(state["max_exp_avg_sq"], exp_avg_sq, bias_correction2)
    denom = adam_denominator(second, bias_correction2_sqrt, eps)
    param.addcdiv_(exp_avg, denom, value=-step_size)



def _max_of_corrected(max_exp_avg_sq: Tensor, exp_avg_sq: Tensor,
                      bias_correction2: Scalar) -> Tensor:
    torch.maximum(max_exp_avg_sq, exp_avg_sq / bias_correction2, out=max_exp_avg_sq)
    return max_exp_avg_sq * bias_correction2  # the correction that follows undoes this factor


def one_step_late(state: dict) -> float:
    """A step count that starts at 2 (part of the off-by-one mistakes)."""
    return count_step(state) + 1


def adam_family_mistakes(step: StepFunction) -> dict[str, Mistake]:
    """The mistakes Adam and AdamW share, built from ``step`` (which runs :func:`adam_step`)."""

    def parts(**p: Callable[..., Any]) -> StepFunction:
        edited = edit(adam_step, **p)
        return edited if step is adam_step else edit(step, adam_step=edited)

    return {m.key: m for m in (
        Mistake("no_bias_correction", "bias correction missing",
                "Divide m by 1 − β₁ᵗ and v by 1 − β₂ᵗ: both start at zero.",
                parts(bias_corrections=lambda beta1, beta2, t: (1.0, 1.0))),
        Mistake("bc_off_by_one", "bias correction off by one step",
                "The step count t is 1 on the first step.", parts(count_step=one_step_late)),
        Mistake("beta1_in_second_moment", "β₁ used in the second-moment correction",
                "v̂ = v / (1 − β₂ᵗ): the second moment has its own β.",
                parts(bias_corrections=lambda beta1, beta2, t: (1 - beta1**t, 1 - beta1**t))),
        Mistake("eps_inside_sqrt", "eps inside the square root",
                "torch adds eps after the root of the corrected v: √v̂ + ε.",
                parts(adam_denominator=lambda v, bc2_sqrt, eps: (v / bc2_sqrt**2 + eps).sqrt())),
        Mistake("eps_before_bias_correction", "eps added before bias correction",
                "Correct v first, take the root, then add eps.",
                parts(adam_denominator=lambda v, bc2_sqrt, eps: (v.sqrt() + eps) / bc2_sqrt)),
        Mistake("amsgrad_max_of_corrected", "AMSGrad: max of the corrected v̂",
                "torch keeps the running max of the *uncorrected* v, then corrects it.",
                parts(running_max=_max_of_corrected)),
        Mistake("amsgrad_ignored", "`amsgrad` ignored",
                "With amsgrad=True, normalise by the running max of v.",
                with_hyper(step, amsgrad=False)),
    )}


ADAM_EXTRAS: tuple[Extra, ...] = (
    ("all flags", {"lr": 1e-2, "betas": (0.85, 0.99), "eps": 1e-6, "weight_decay": 0.05,
                   "amsgrad": True, "maximize": True}),
    ("extreme", {"lr": 0.1, "betas": (0.0, 0.0), "eps": 1.0, "weight_decay": 1.0}),
    ("tensor lr", {"lr": lr_tensor(1e-2), "amsgrad": True}),
)
"""Adam's and AdamW's extras."""

_ADAM = adam_family_mistakes(adam_step)

SPECS = [
    OptimizerSpec(
        "adam", "Adam", "07_adam", adam_step, torch.optim.Adam,
        visible=(
            group("basic", ("defaults", {}),
                  ("lr, betas, eps", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-3}),
                  two_lrs(1e-2, 1e-3), schedule(1e-2)),
            group("weight_decay", ("weight_decay (L2)", {"lr": 1e-2, "weight_decay": 0.1})),
            group("amsgrad", ("amsgrad", {"lr": 1e-2, "amsgrad": True})),
            group("maximize", ("maximize", {"lr": 1e-2, "maximize": True}),
                  ("maximize with weight_decay",
                   {"lr": 1e-2, "maximize": True, "weight_decay": 0.1})),
            group("decoupled_weight_decay",
                  ("decoupled_weight_decay",
                   {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": True})),
        ),
        extras=ADAM_EXTRAS,
        mistakes=(
            *_ADAM.values(),
            Mistake("decoupled_instead_of_l2", "decoupled decay where L2 is wanted",
                    "Adam's weight_decay adds λ·θ to the gradient before the moments (L2); "
                    "θ·(1 − γλ) is AdamW.", with_hyper(adam_step, decoupled_weight_decay=True)),
            Mistake("l2_instead_of_decoupled", "L2 decay where decoupled decay is wanted",
                    "With decoupled_weight_decay, multiply θ by (1 − γλ) before the moments; "
                    "do not add λ·θ to the gradient.",
                    with_hyper(adam_step, decoupled_weight_decay=False)),
        ),
        has_fused=True,
    ),
]
