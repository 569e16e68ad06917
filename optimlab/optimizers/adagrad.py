"""Adagrad, as ``torch.optim.Adagrad`` computes it (single-tensor path)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter


def adagrad_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> None:
    r"""One step of ``torch.optim.Adagrad`` for one parameter tensor, in place.

    .. code-block:: text

        t ← t + 1
        g ← −g                          if maximize
        g ← g + λ·θ                     if weight_decay λ ≠ 0
        γ̃ ← γ / (1 + (t − 1)·η)         η = lr_decay
        s ← s + g²                      s starts at initial_accumulator_value
        θ ← θ − γ̃ · g / (√s + ε)        eps outside the root

    State: ``step``, ``sum``.
    """
    lr = as_scalar(lr)
    if not state:
        state["step"] = new_step_counter()
        state["sum"] = torch.full_like(
            param, initial_accumulator_value, memory_format=torch.preserve_format
        )
    t = count_step(state)
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    clr = lr / (1 + (t - 1) * lr_decay)
    state_sum = state["sum"]
    state_sum.addcmul_(grad, grad, value=1)
    std = state_sum.sqrt().add_(eps)
    param.addcdiv_(grad, std, value=-clr)
