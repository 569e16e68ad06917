"""RMSprop, as ``torch.optim.RMSprop`` computes it (single-tensor path)."""

from __future__ import annotations

from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter, zeros_like


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
    count_step(state)
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    square_avg = state["square_avg"]
    square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    if centered:
        grad_avg = state["grad_avg"]
        grad_avg.lerp_(grad, 1 - alpha)
        avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
    else:
        avg = square_avg.sqrt()
    avg = avg.add_(eps)
    if momentum > 0:
        buf = state["momentum_buffer"]
        buf.mul_(momentum).addcdiv_(grad, avg)
        param.add_(buf, alpha=-lr)
    else:
        param.addcdiv_(grad, avg, value=-lr)
