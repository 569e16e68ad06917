"""Gradient descent and SGD, as ``torch.optim.SGD`` computes them (single-tensor path)."""

from __future__ import annotations

from torch import Tensor

from ._common import Scalar, as_scalar


def gd_step(param: Tensor, grad: Tensor, state: dict, *, lr: Scalar = 1e-3) -> None:
    r"""One step of plain gradient descent, in place: ``torch.optim.SGD(params, lr)``.

    .. math::
        \theta_t \leftarrow \theta_{t-1} - \gamma\, g_t

    ``state`` is unused: plain gradient descent has no memory.
    """
    param.add_(grad, alpha=-as_scalar(lr))


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
