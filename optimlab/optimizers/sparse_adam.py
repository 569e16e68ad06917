"""SparseAdam, as ``torch.optim.SparseAdam`` computes it (``torch.optim._functional``)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, zeros_like
from .cases import group, lr_tensor, schedule, two_lrs
from .mistakes import Mistake, edit
from .registry import OptimizerSpec

SHAPES = ((), (5,), (3, 4), (12,), (0,), (6,), (5,))
"""SparseAdam's test tensors: the usual ones, all contiguous (an embedding's weight is). torch's
SparseAdam fails on CUDA for a transposed parameter ("view size is not compatible with input
tensor's size and stride", seen with torch 2.11 on an H200), so no case has one."""


def sparse_like(grad: Tensor, values: Tensor) -> Tensor:
    """A sparse tensor with ``grad``'s indices and these values."""
    indices = grad._indices()
    if indices.dim() == 0 or values.dim() == 0:
        return grad.new().resize_as_(grad)
    return grad.new(indices, values, grad.size())


def lazy_moments(grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, beta1: float,
                 beta2: float) -> tuple[Tensor, Tensor]:
    """Update m and v only where the gradient has entries; return their new values there."""
    values = grad._values()
    old_m = exp_avg.sparse_mask(grad)._values()
    m_update = values.sub(old_m).mul_(1 - beta1)
    exp_avg.add_(sparse_like(grad, m_update))
    old_v = exp_avg_sq.sparse_mask(grad)._values()
    v_update = values.pow(2).sub_(old_v).mul_(1 - beta2)
    exp_avg_sq.add_(sparse_like(grad, v_update))
    return m_update.add_(old_m), v_update.add_(old_v)


def sparse_adam_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    maximize: bool = False,
) -> None:
    r"""One step of ``torch.optim.SparseAdam`` for one parameter tensor and its sparse
    gradient (as ``nn.Embedding(sparse=True)`` gives), in place.

    .. code-block:: text

        t ← t + 1                           an int, counted even when g has no entries
        g ← −g                              if maximize
        g ← coalesce(g)                     one value per index: the update is not linear
        stop if g has no entries
        for the indices i where g has entries, and only there ("lazy" Adam):
            m_i ← m_i + (1 − β₁)·(g_i − m_i)
            v_i ← v_i + (1 − β₂)·(g_i² − v_i)
            θ_i ← θ_i − γ·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m_i / (√v_i + ε)

    Unlike Adam, the moments of an entry that gets no gradient do not decay, and its
    parameter does not move: each embedding row is updated only when it is used. Because
    t counts every step, a row used rarely gets its bias correction for the step count, not
    for its own number of updates. eps sits after the root of the *uncorrected* v (the
    correction is folded into the step size). State: ``step`` (an int), ``exp_avg``,
    ``exp_avg_sq``.
    """
    lr = as_scalar(lr)
    beta1, beta2 = betas
    if not state:
        state["step"] = 0
        state["exp_avg"] = zeros_like(param)
        state["exp_avg_sq"] = zeros_like(param)
    state["step"] += 1
    t = state["step"]
    if maximize:
        grad = -grad
    grad = grad.coalesce()
    if grad._values().numel() == 0:
        return
    m, v = lazy_moments(grad, state["exp_avg"], state["exp_avg_sq"], beta1, beta2)
    denom = v.sqrt_().add_(eps)
    step_size = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
    param.add_(sparse_like(grad, -step_size * m.div_(denom)))


sparse_adam_step.sparse_grads = True  # type: ignore[attr-defined]


def _dense_moments(grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, beta1: float,
                   beta2: float) -> tuple[Tensor, Tensor]:
    """Every entry's moments decay, as in Adam, where the gradient has no entry too."""
    dense = grad.to_dense()
    exp_avg.lerp_(dense, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(dense, dense, value=1 - beta2)
    return exp_avg.sparse_mask(grad)._values().clone(), \
        exp_avg_sq.sparse_mask(grad)._values().clone()


def _v_of_old_values(grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, beta1: float,
                     beta2: float) -> tuple[Tensor, Tensor]:
    """The step taken with the moments before this step's update."""
    old_m = exp_avg.sparse_mask(grad)._values().clone()
    old_v = exp_avg_sq.sparse_mask(grad)._values().clone()
    lazy_moments(grad, exp_avg, exp_avg_sq, beta1, beta2)
    return old_m, old_v


def _square_of_mean(grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, beta1: float,
                    beta2: float) -> tuple[Tensor, Tensor]:
    """v updated with (g − m)² instead of g², as if centering."""
    values = grad._values()
    old_m = exp_avg.sparse_mask(grad)._values()
    m_update = values.sub(old_m).mul_(1 - beta1)
    exp_avg.add_(sparse_like(grad, m_update))
    old_v = exp_avg_sq.sparse_mask(grad)._values()
    v_update = values.sub(old_m).pow_(2).sub_(old_v).mul_(1 - beta2)
    exp_avg_sq.add_(sparse_like(grad, v_update))
    return m_update.add_(old_m), v_update.add_(old_v)


SPECS = [
    OptimizerSpec(
        "sparse_adam", "SparseAdam", None, sparse_adam_step, torch.optim.SparseAdam,
        visible=(
            group("basic", ("defaults", {}),
                  ("lr, betas, eps", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-3}),
                  two_lrs(1e-2, 1e-3), schedule(1e-2)),
            group("maximize", ("maximize", {"lr": 1e-2, "maximize": True})),
        ),
        extras=(
            ("all flags", {"lr": 1e-2, "betas": (0.85, 0.95), "eps": 1e-6, "maximize": True}),
            ("extreme", {"lr": 0.1, "betas": (0.0, 0.5), "eps": 1.0}),
            ("tensor lr", {"lr": lr_tensor(1e-2)}),
        ),
        mistakes=(
            Mistake("dense_moments", "the moments decayed where the gradient has no entry",
                    "SparseAdam is lazy: m and v change only at the gradient's indices.",
                    edit(sparse_adam_step, lazy_moments=_dense_moments)),
            Mistake("stale_moments", "the step taken with last step's m and v",
                    "Update m and v first, then step with the new values.",
                    edit(sparse_adam_step, lazy_moments=_v_of_old_values)),
            Mistake("centered_v", "v from (g − m)² instead of g²",
                    "v ← v + (1 − β₂)·(g² − v), as in Adam.",
                    edit(sparse_adam_step, lazy_moments=_square_of_mean)),
        ),
        has_foreach=False,
        sparse_grads=True,
        shapes=SHAPES,
        capstone=False,
    ),
]
