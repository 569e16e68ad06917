"""NAdam, as ``torch.optim.NAdam`` computes it (single-tensor path)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter, scalar_dtype, zeros_like
from .adam import one_step_late
from .cases import group, lr_tensor, schedule, two_lrs
from .mistakes import Mistake, edit, with_hyper
from .registry import OptimizerSpec


def nadam_momentum(step: float, beta1: float, momentum_decay: float) -> float:
    """torch's momentum schedule ``μ_t = β₁·(1 − 0.5·0.96^(t·ψ))``."""
    return beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))


def momentum_pair(t: float, beta1: float, momentum_decay: float) -> tuple[float, float]:
    """μ_t and μ_t+1: the momentum term looks one step ahead."""
    return nadam_momentum(t, beta1, momentum_decay), nadam_momentum(t + 1, beta1, momentum_decay)


def nadam_denominator(exp_avg_sq: Tensor, bias_correction2: float, eps: float) -> Tensor:
    """d = √(v / (1 − β₂ᵗ)) + ε: eps after the root."""
    return exp_avg_sq.div(bias_correction2).sqrt().add_(eps)


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
    mu, mu_next = momentum_pair(t, beta1, momentum_decay)
    mu_product = state["mu_product"]
    mu_product *= mu
    mu_product = mu_product.item()
    mu_product_next = mu_product * mu_next
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = nadam_denominator(exp_avg_sq, bias_correction2, eps)
    param.addcdiv_(grad, denom, value=-lr * (1.0 - mu) / (1.0 - mu_product))
    param.addcdiv_(exp_avg, denom, value=-lr * mu_next / (1.0 - mu_product_next))


def _mu_next_is_mu_t(t: float, beta1: float, momentum_decay: float) -> tuple[float, float]:
    mu = nadam_momentum(t, beta1, momentum_decay)
    return mu, mu


SPECS = [
    OptimizerSpec(
        "nadam", "NAdam", "10_nadam", nadam_step, torch.optim.NAdam,
        visible=(
            group("basic", ("defaults", {}),
                  ("lr, betas, eps", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-3}),
                  two_lrs(1e-2, 1e-3), schedule(1e-2)),
            group("momentum_decay", ("momentum_decay", {"lr": 1e-2, "momentum_decay": 0.05})),
            group("weight_decay", ("weight_decay (L2)", {"lr": 1e-2, "weight_decay": 0.1})),
            group("decoupled_weight_decay",
                  ("decoupled_weight_decay",
                   {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": True})),
            group("maximize", ("maximize", {"lr": 1e-2, "maximize": True}),
                  ("maximize with weight_decay",
                   {"lr": 1e-2, "maximize": True, "weight_decay": 0.1})),
        ),
        extras=(
            ("all flags", {"lr": 1e-2, "betas": (0.85, 0.99), "eps": 1e-6, "weight_decay": 0.05,
                           "momentum_decay": 8e-3, "decoupled_weight_decay": True,
                           "maximize": True}),
            ("extreme", {"lr": 0.1, "betas": (0.0, 0.0), "eps": 1.0, "momentum_decay": 1.0}),
            ("tensor lr", {"lr": lr_tensor(1e-2), "weight_decay": 0.1}),
        ),
        mistakes=(
            Mistake("no_momentum_schedule", "NAdam without the momentum schedule",
                    "torch uses μ_t = β₁·(1 − 0.5·0.96^(t·ψ)) and the running product Π of the "
                    "μ's, not a constant β₁.",
                    edit(nadam_step, momentum_pair=lambda t, beta1, momentum_decay:
                         (beta1, beta1))),
            Mistake("mu_next_is_mu_t", "μ_t used where μ_{t+1} belongs",
                    "The momentum term looks one step ahead: μ_{t+1} / (1 − Π_t·μ_{t+1}).",
                    edit(nadam_step, momentum_pair=_mu_next_is_mu_t)),
            Mistake("momentum_decay_ignored", "`momentum_decay` ignored",
                    "ψ in μ_t = β₁·(1 − 0.5·0.96^(t·ψ)) is momentum_decay.",
                    with_hyper(nadam_step, momentum_decay=4e-3)),
            Mistake("eps_inside_sqrt", "eps inside the square root", "d = √v̂ + ε.",
                    edit(nadam_step, nadam_denominator=lambda v, bc2, eps:
                         v.div(bc2).add_(eps).sqrt_())),
            Mistake("l2_instead_of_decoupled", "L2 decay where decoupled decay is wanted",
                    "With decoupled_weight_decay, multiply θ by (1 − γλ) before the moments.",
                    with_hyper(nadam_step, decoupled_weight_decay=False)),
            Mistake("bc_off_by_one", "step count off by one",
                    "The step count t is 1 on the first step.",
                    edit(nadam_step, count_step=one_step_late)),
        ),
        # torch keeps mu_product in float32 and a learner may rightly keep it as a Python
        # float: step sizes then differ by about 1e-8 relative, parameters by about 1e-10.
        float64_tolerance=(1e-7, 1e-8),
        float32_state=("step", "mu_product"),
    ),
]
