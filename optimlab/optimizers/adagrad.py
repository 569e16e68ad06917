"""Adagrad, as ``torch.optim.Adagrad`` computes it (single-tensor path)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter
from .cases import group, lr_tensor, schedule, two_lrs
from .mistakes import Mistake, edit, with_hyper
from .registry import OptimizerSpec


def decayed_lr(lr: Scalar, t: float, lr_decay: float) -> Scalar:
    """γ̃ = γ / (1 + (t − 1)·η): no decay on the first step."""
    return lr / (1 + (t - 1) * lr_decay)


def accumulate(state_sum: Tensor, grad: Tensor, eps: float) -> Tensor:
    """s ← s + g², in place; returns √s + ε (eps outside the root)."""
    state_sum.addcmul_(grad, grad, value=1)
    return state_sum.sqrt().add_(eps)


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
    clr = decayed_lr(lr, t, lr_decay)
    std = accumulate(state["sum"], grad, eps)
    param.addcdiv_(grad, std, value=-clr)


def _eps_inside(state_sum: Tensor, grad: Tensor, eps: float) -> Tensor:
    state_sum.addcmul_(grad, grad, value=1)
    return state_sum.add(eps).sqrt_()


def _root_of_old_sum(state_sum: Tensor, grad: Tensor, eps: float) -> Tensor:
    std = state_sum.sqrt().add_(eps)
    state_sum.addcmul_(grad, grad, value=1)
    return std


SPECS = [
    OptimizerSpec(
        "adagrad", "Adagrad", "04_adagrad", adagrad_step, torch.optim.Adagrad,
        visible=(
            group("basic", ("defaults", {}), ("lr=0.1, eps=0.1", {"lr": 0.1, "eps": 0.1}),
                  two_lrs(0.1, 0.02), schedule(0.1)),
            group("lr_decay", ("lr_decay", {"lr": 0.1, "lr_decay": 0.2})),
            group("initial_accumulator_value",
                  ("initial_accumulator_value", {"lr": 0.1, "initial_accumulator_value": 0.5})),
            group("weight_decay", ("weight_decay", {"lr": 0.1, "weight_decay": 0.1})),
            group("maximize", ("maximize", {"lr": 0.1, "maximize": True}),
                  ("maximize with weight_decay",
                   {"lr": 0.1, "maximize": True, "weight_decay": 0.1})),
        ),
        extras=(
            ("all flags", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.05,
                           "initial_accumulator_value": 0.1, "eps": 1e-6, "maximize": True}),
            ("extreme", {"lr": 1.0, "lr_decay": 1.0, "eps": 1.0, "weight_decay": 1.0}),
            ("tensor lr", {"lr": lr_tensor(0.05)}),
        ),
        mistakes=(
            Mistake("eps_inside_sqrt", "eps inside the square root",
                    "torch adds eps after the root: √sum + ε.",
                    edit(adagrad_step, accumulate=_eps_inside)),
            Mistake("lr_decay_off_by_one", "lr_decay off by one step",
                    "The decayed rate is γ / (1 + (t − 1)·η): no decay on step 1.",
                    edit(adagrad_step, decayed_lr=lambda lr, t, lr_decay:
                         lr / (1 + t * lr_decay))),
            Mistake("lr_decay_ignored", "`lr_decay` ignored", "γ̃ = γ / (1 + (t − 1)·lr_decay).",
                    with_hyper(adagrad_step, lr_decay=0.0)),
            Mistake("initial_accumulator_ignored", "`initial_accumulator_value` ignored",
                    "The sum of squares starts at initial_accumulator_value, not 0.",
                    with_hyper(adagrad_step, initial_accumulator_value=0.0)),
            Mistake("accumulate_after_update", "sum updated after it is used",
                    "Add g² to the sum first, then divide by its root.",
                    edit(adagrad_step, accumulate=_root_of_old_sum)),
        ),
        has_fused=True,
    ),
]
