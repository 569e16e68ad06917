"""RMSprop, as ``torch.optim.RMSprop`` computes it (single-tensor path)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter, zeros_like
from .cases import group, lr_tensor, schedule, two_lrs
from .mistakes import Mistake, edit, lr_in_buffer, tweaked, with_hyper
from .registry import OptimizerSpec


def mean_square(square_avg: Tensor, alpha: float, t: float) -> Tensor:
    """The v that d is the root of: the EMA itself (RMSprop has no bias correction)."""
    return square_avg


def centered_variance(v: Tensor, grad_avg: Tensor) -> Tensor:
    """v − ḡ², a new tensor."""
    return v.addcmul(grad_avg, grad_avg, value=-1)


def root_plus_eps(v: Tensor, eps: float) -> Tensor:
    """d = √v + ε, a new tensor (eps outside the root)."""
    return v.sqrt().add_(eps)


def rmsprop_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> None:
    r"""One step of ``torch.optim.RMSprop`` for one parameter tensor, in place.

    .. code-block:: text

        t ← t + 1                       (counted, but never used: no bias correction)
        g ← −g                          if maximize
        g ← g + λ·θ                     if weight_decay λ ≠ 0
        v ← α·v + (1 − α)·g²            square_avg
        if centered:
            ḡ ← ḡ + (1 − α)·(g − ḡ)     grad_avg, an EMA of g
            d ← √(v − ḡ²) + ε
        else:
            d ← √v + ε
        if momentum μ > 0:
            b ← μ·b + g / d             momentum_buffer, starts at 0
            θ ← θ − γ·b
        else:
            θ ← θ − γ·g / d

    State: ``step``, ``square_avg``, ``momentum_buffer`` (μ > 0), ``grad_avg`` (centered).
    """
    lr = as_scalar(lr)
    if not state:
        state["step"] = new_step_counter()
        state["square_avg"] = zeros_like(param)
        if momentum > 0:
            state["momentum_buffer"] = zeros_like(param)
        if centered:
            state["grad_avg"] = zeros_like(param)
    if maximize:
        grad = -grad
    t = count_step(state)
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    square_avg = state["square_avg"]
    square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    v = mean_square(square_avg, alpha, t)
    if centered:
        grad_avg = state["grad_avg"]
        grad_avg.lerp_(grad, 1 - alpha)
        v = centered_variance(v, grad_avg)
    avg = root_plus_eps(v, eps)
    if momentum > 0:
        buf = state["momentum_buffer"]
        buf.mul_(momentum).addcdiv_(grad, avg)
        param.add_(buf, alpha=-lr)
    else:
        param.addcdiv_(grad, avg, value=-lr)


def _alpha_swapped(param: Tensor, state: dict, hyper: dict, memo: dict) -> None:
    hyper["alpha"] = 1 - hyper["alpha"]


SPECS = [
    OptimizerSpec(
        "rmsprop", "RMSprop", "06_rmsprop", rmsprop_step, torch.optim.RMSprop,
        visible=(
            group("basic", ("defaults", {}), ("alpha, eps", {"alpha": 0.9, "eps": 1e-3}),
                  two_lrs(1e-2, 1e-3), schedule(1e-2)),
            group("weight_decay", ("weight_decay", {"weight_decay": 0.1})),
            group("maximize", ("maximize", {"maximize": True}),
                  ("maximize with weight_decay", {"maximize": True, "weight_decay": 0.1})),
            group("centered", ("centered", {"centered": True, "alpha": 0.9})),
            group("momentum", ("momentum", {"momentum": 0.9}),
                  schedule(1e-2, "momentum", "momentum with an lr schedule", momentum=0.9)),
        ),
        extras=(
            ("all flags", {"lr": 1e-3, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.05,
                           "momentum": 0.5, "centered": True, "maximize": True}),
            ("extreme", {"lr": 0.1, "alpha": 0.0, "eps": 1.0, "momentum": 0.99}),
            ("tensor lr", {"lr": lr_tensor(1e-3), "momentum": 0.5, "centered": True}),
        ),
        mistakes=(
            Mistake("bias_correction_added", "bias correction added",
                    "torch's RMSprop has no bias correction: divide by √v + ε.",
                    edit(rmsprop_step, mean_square=lambda square_avg, alpha, t:
                         square_avg / (1 - alpha**t))),
            Mistake("eps_inside_sqrt", "eps inside the square root",
                    "torch adds eps after the root.",
                    edit(rmsprop_step, root_plus_eps=lambda v, eps: (v + eps).sqrt())),
            Mistake("alpha_swapped", "alpha and 1 − alpha swapped",
                    "v ← α·v + (1 − α)·g²: alpha weighs the past.",
                    tweaked(rmsprop_step, _alpha_swapped)),
            Mistake("centered_ignored", "`centered` ignored",
                    "centered=True subtracts the square of an EMA of g from v.",
                    with_hyper(rmsprop_step, centered=False)),
            Mistake("centered_mean_not_squared", "centered: the mean gradient not squared",
                    "Subtract ḡ², the square of the EMA of g.",
                    edit(rmsprop_step, centered_variance=lambda v, grad_avg: v - grad_avg)),
            Mistake("lr_in_momentum_buffer", "lr inside the momentum buffer",
                    "torch's buffer is μ·b + g/d, and the step is γ·b: lr stays out of the "
                    "buffer.", tweaked(rmsprop_step, lr_in_buffer)),
        ),
    ),
]
