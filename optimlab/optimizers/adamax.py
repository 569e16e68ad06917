"""Adamax, as ``torch.optim.Adamax`` computes it (single-tensor path)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter, zeros_like


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
    torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps), out=exp_inf)
    clr = lr / (1 - beta1**t)
    param.addcdiv_(exp_avg, exp_inf, value=-clr)
