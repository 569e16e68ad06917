"""Adadelta, as ``torch.optim.Adadelta`` computes it (single-tensor path)."""

from __future__ import annotations

from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter, zeros_like


def adadelta_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    r"""One step of ``torch.optim.Adadelta`` for one parameter tensor, in place.

    .. code-block:: text

        t ← t + 1
        g ← −g                          if maximize
        g ← g + λ·θ                     if weight_decay λ ≠ 0
        v ← ρ·v + (1 − ρ)·g²            square_avg
        Δ ← √(u + ε) / √(v + ε) · g     eps inside both roots
        u ← ρ·u + (1 − ρ)·Δ²            acc_delta
        θ ← θ − γ·Δ                     lr γ defaults to 1.0

    State: ``step``, ``square_avg``, ``acc_delta``.
    """
    lr = as_scalar(lr)
    if not state:
        state["step"] = new_step_counter()
        state["square_avg"] = zeros_like(param)
        state["acc_delta"] = zeros_like(param)
    count_step(state)
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    square_avg, acc_delta = state["square_avg"], state["acc_delta"]
    square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
    std = square_avg.add(eps).sqrt_()
    delta = acc_delta.add(eps).sqrt_().div_(std).mul_(grad)
    acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
    param.add_(delta, alpha=-lr)
