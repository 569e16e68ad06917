"""Adam, AMSGrad and AdamW, as ``torch.optim.Adam`` and ``torch.optim.AdamW`` compute them.

This follows torch's single-tensor path operation for operation, so float64 and float32
results agree with ``torch.optim.Adam(..., foreach=False)`` to the bit.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter, on_param, zeros_like


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
    bias_correction1 = 1 - beta1**t
    bias_correction2 = 1 - beta2**t
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    if amsgrad:
        max_exp_avg_sq = state["max_exp_avg_sq"]
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        denom = (max_exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    else:
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-step_size)


def adamw_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 1e-3,
    betas: tuple[Scalar, Scalar] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
) -> None:
    r"""One step of ``torch.optim.AdamW``: Adam with decoupled weight decay, in place.

    .. code-block:: text

        θ ← θ·(1 − γ·λ)                     first, and never through the moments
        ... then exactly :func:`adam_step` with weight_decay = 0

    Note the default ``weight_decay`` is 1e-2 here (0 in Adam). State as in :func:`adam_step`.
    """
    adam_step(
        param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
        amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True,
    )
