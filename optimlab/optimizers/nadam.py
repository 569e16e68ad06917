"""NAdam, as ``torch.optim.NAdam`` computes it (single-tensor path)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter, scalar_dtype, zeros_like


def nadam_momentum(step: float, beta1: float, momentum_decay: float) -> float:
    """torch's momentum schedule ``μ_t = β₁·(1 − 0.5·0.96^(t·ψ))``."""
    return beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))


def nadam_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> None:
    r"""One step of ``torch.optim.NAdam`` for one parameter tensor, in place.

    .. code-block:: text

        g ← −g                              if maximize
        t ← t + 1
        if weight_decay λ ≠ 0:
            θ ← θ·(1 − γ·λ)                 decoupled_weight_decay
            g ← g + λ·θ                     otherwise (L2)
        μ_t   ← β₁·(1 − 0.5·0.96^(t·ψ))     ψ = momentum_decay
        μ_t+1 ← β₁·(1 − 0.5·0.96^((t+1)·ψ))
        Π_t   ← Π_t−1 · μ_t                 mu_product, a float32 tensor (see below)
        m ← m + (1 − β₁)·(g − m)            exp_avg (constant β₁ here)
        v ← β₂·v + (1 − β₂)·g²              exp_avg_sq
        d ← √(v / (1 − β₂ᵗ)) + ε
        θ ← θ − γ·(1 − μ_t)/(1 − Π_t) · g / d
        θ ← θ − γ·μ_t+1/(1 − Π_t·μ_t+1) · m / d

    State: ``step``, ``mu_product``, ``exp_avg``, ``exp_avg_sq``. Like ``step``, ``mu_product`` is
    a 0-d tensor in float32 unless the default dtype is float64, and the product is rounded there.
    """
    lr = as_scalar(lr)
    beta1, beta2 = betas
    if not state:
        state["step"] = new_step_counter()
        state["mu_product"] = torch.tensor(1.0, dtype=scalar_dtype())
        state["exp_avg"] = zeros_like(param)
        state["exp_avg_sq"] = zeros_like(param)
    if maximize:
        grad = -grad
    t = count_step(state)
    bias_correction2 = 1 - beta2**t
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            grad = grad.add(param, alpha=weight_decay)
    mu = nadam_momentum(t, beta1, momentum_decay)
    mu_next = nadam_momentum(t + 1, beta1, momentum_decay)
    mu_product = state["mu_product"]
    mu_product *= mu
    mu_product = mu_product.item()
    mu_product_next = mu_product * mu_next
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = exp_avg_sq.div(bias_correction2).sqrt().add_(eps)
    param.addcdiv_(grad, denom, value=-lr * (1.0 - mu) / (1.0 - mu_product))
    param.addcdiv_(exp_avg, denom, value=-lr * mu_next / (1.0 - mu_product_next))
