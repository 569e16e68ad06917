"""SGD with momentum, dampening, Nesterov and weight decay, as ``torch.optim.SGD`` computes it
(single-tensor path)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar, as_scalar
from .cases import group, lr_tensor, schedule, two_lrs
from .mistakes import Mistake, lr_in_buffer, tweaked, with_hyper
from .registry import OptimizerSpec


def sgd_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
) -> None:
    r"""One step of ``torch.optim.SGD`` for one parameter tensor, in place.

    .. code-block:: text

        g ← −g                          if maximize
        g ← g + λ·θ                     if weight_decay λ ≠ 0
        if momentum μ ≠ 0:
            b ← g                       on the first step (no dampening!)
            b ← μ·b + (1 − τ)·g         afterwards (τ = dampening)
            g ← g + μ·b                 if nesterov
            g ← b                       otherwise
        θ ← θ − γ·g

    State: ``momentum_buffer`` (only when μ ≠ 0). There is no step counter.
    """
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    lr = as_scalar(lr)
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = grad.detach().clone()
            state["momentum_buffer"] = buf
        else:
            buf.mul_(momentum).add_(grad, alpha=1 - dampening)
        grad = grad.add(buf, alpha=momentum) if nesterov else buf
    param.add_(grad, alpha=-lr)


def _decoupled_decay(param: Tensor, state: dict, hyper: dict, memo: dict) -> None:
    """θ·(1 − γλ) before the step, and no λ·θ in the gradient."""
    if hyper.get("weight_decay"):
        param.mul_(1 - float(hyper["lr"]) * hyper["weight_decay"])
        hyper["weight_decay"] = 0.0


def _zero_buffer_first(param: Tensor, state: dict, hyper: dict, memo: dict) -> None:
    """A buffer that starts at 0, so the first step is μ·0 + (1 − τ)·g."""
    if hyper.get("momentum") and state.get("momentum_buffer") is None:
        state["momentum_buffer"] = torch.zeros_like(param)


def _ema(param: Tensor, state: dict, hyper: dict, memo: dict) -> None:
    """b ← μ·b + (1 − μ)·g: dampening set to μ."""
    hyper["dampening"] = hyper.get("momentum", 0.0)


SPECS = [
    OptimizerSpec(
        "sgd", "SGD", "03_momentum", sgd_step, torch.optim.SGD,
        visible=(
            group("basic", ("lr=0.1", {"lr": 0.1}), two_lrs(0.1, 0.02), schedule(0.1)),
            group("weight_decay", ("weight_decay", {"lr": 0.1, "weight_decay": 0.1})),
            group("maximize", ("maximize", {"lr": 0.1, "maximize": True, "weight_decay": 0.1})),
            group("momentum", ("momentum", {"lr": 0.05, "momentum": 0.9}),
                  ("dampening", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
                  ("momentum with weight_decay",
                   {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1}),
                  schedule(0.05, "momentum", "momentum with an lr schedule", momentum=0.9)),
            group("nesterov", ("nesterov", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
                  schedule(0.05, "nesterov", "nesterov with an lr schedule", momentum=0.9,
                           nesterov=True)),
        ),
        extras=(
            ("all flags", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05,
                           "maximize": True}),
            ("extreme", {"lr": 0.01, "momentum": 0.99, "dampening": 1.0, "weight_decay": 1.0}),
            ("tensor lr", {"lr": lr_tensor(0.05), "momentum": 0.9, "dampening": 0.1}),
        ),
        mistakes=(
            Mistake("decoupled_instead_of_l2", "decoupled decay where L2 is wanted",
                    "SGD's weight_decay adds λ·θ to the gradient (L2) before momentum.",
                    tweaked(sgd_step, _decoupled_decay)),
            Mistake("dampening_on_first_step", "dampening applied on the first step",
                    "On the first step torch sets the buffer to the gradient itself, with no "
                    "(1 − dampening) factor.", tweaked(sgd_step, _zero_buffer_first)),
            Mistake("ema_momentum", "momentum written as an EMA (1 − μ)·g",
                    "torch's buffer is μ·b + (1 − dampening)·g: the gradient is not scaled by "
                    "(1 − μ).", tweaked(sgd_step, _ema)),
            Mistake("nesterov_ignored", "`nesterov` ignored",
                    "With nesterov=True torch steps along g + μ·b, not along b.",
                    with_hyper(sgd_step, nesterov=False)),
            Mistake("sutskever_lr_in_buffer",
                    "Sutskever-form momentum with the buffer scaled by lr",
                    "torch's buffer carries no learning rate: b ← μ·b + g, then θ ← θ − γ·(…). "
                    "The two forms agree only while lr is constant.",
                    tweaked(sgd_step, lr_in_buffer)),
        ),
        has_fused=True,
    ),
]
