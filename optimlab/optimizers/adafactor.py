"""Adafactor, as ``torch.optim.Adafactor`` computes it (single-tensor path)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter, zeros_like
from .adam import one_step_late
from .cases import group, lr_tensor, schedule, two_lrs
from .mistakes import Mistake, edit, tweaked, with_hyper
from .registry import OptimizerSpec

SHAPES = ((), (5,), (3, 4), (4, 3), (2, 3, 4), (6,), (5,))
"""Adafactor's test tensors: the usual ones with a 3-D tensor (factored over its last two
dimensions, batched over the first) where the others have an empty one, which torch's
Adafactor cannot take (its RMS of θ divides by √numel = 0)."""


def beta2_weight(t: float, beta2_decay: float) -> float:
    """β̂₂ = t^c: the EMA's weight on the new g² (1 at t = 1, so v̂ starts at g²: no bias)."""
    return t**beta2_decay


def relative_step(lr: Scalar, eps2: float, param: Tensor, t: float) -> Scalar:
    """α = max(ε₂, RMS(θ))·min(γ, 1/√t): the step is relative to the parameter's scale."""
    rho = min(lr, 1 / (t**0.5))
    return max(eps2, param.norm(2).item() / (param.numel() ** 0.5)) * rho


def factored_second_moment(grad: Tensor, row_var: Tensor, col_var: Tensor,
                           beta2_t: float, eps1: float) -> Tensor:
    """v̂ = R·C / mean(R): R, C the EMAs of the row and column means of g² (in place)."""
    row_mean = torch.norm(grad, dim=-1, keepdim=True).square_().div_(grad.size(-1))
    row_var.lerp_(row_mean, beta2_t)
    col_mean = torch.norm(grad, dim=-2, keepdim=True).square_().div_(grad.size(-2))
    col_var.lerp_(col_mean, beta2_t)
    estimate = row_var @ col_var
    return estimate.div_(row_var.mean(dim=-2, keepdim=True).clamp_(min=eps1))


def full_second_moment(grad: Tensor, variance: Tensor, beta2_t: float) -> Tensor:
    """v̂ = the EMA of g² itself, for a tensor of fewer than two dimensions (a copy)."""
    variance.lerp_(grad * grad, beta2_t)
    return variance.clone()


def clipped_scale(update: Tensor, d: float) -> float:
    """max(1, RMS(u)/d): the update is scaled down when its RMS exceeds d."""
    return max(1.0, update.norm(2).item() / ((update.numel() ** 0.5) * d))


def adafactor_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 1e-2,
    beta2_decay: float = -0.8,
    eps: tuple[float | None, float] = (None, 1e-3),
    d: float = 1.0,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    r"""One step of ``torch.optim.Adafactor`` for one parameter tensor, in place.

    .. code-block:: text

        g ← −g                              if maximize
        t ← t + 1
        β̂₂ ← t^c                            c = beta2_decay (−0.8): the EMA's weight on g²,
                                            1 at t = 1, then falling
        ρ ← min(γ, 1/√t)
        α ← max(ε₂, RMS(θ))·ρ               RMS(θ) = ‖θ‖₂/√n
        θ ← θ·(1 − γ·λ)                     if weight_decay λ ≠ 0 (decoupled, with γ not α)
        if θ has ≥ 2 dims (factored over the last two, n rows × m columns):
            R ← R + β̂₂·(mean_cols(g²) − R)  row_var, shape (…, n, 1)
            C ← C + β̂₂·(mean_rows(g²) − C)  col_var, shape (…, 1, m)
            v̂ ← R·C / max(mean(R), ε₁)      an outer product: n + m numbers stored, not n·m
        else:
            v ← v + β̂₂·(g² − v)             variance
            v̂ ← v
        u ← g / √max(v̂, ε₁²)                ε₁ = eps[0], torch.finfo(θ.dtype).eps if None
        θ ← θ − α / max(1, RMS(u)/d) · u    d clips the update's RMS

    How torch's differs from Shazeer and Stern (2018): there is no first moment (β₁ = 0) and
    no option for one; ε₁ bounds v̂ from below and is squared, where the paper adds ε₁ to g²;
    the relative step ρ is min(γ, 1/√t), where the paper's is min(10⁻², 1/√t) with γ not a
    parameter; weight decay is decoupled and scaled by γ; and the β̂₂ schedule t^c is the
    paper's 1 − t^c read as the weight on the new sample. State: ``step``, and ``row_var``
    and ``col_var`` for a tensor of two or more dimensions, ``variance`` otherwise.
    """
    lr = as_scalar(lr)
    eps1, eps2 = eps
    if eps1 is None:
        eps1 = torch.finfo(param.dtype).eps
    if not state:
        state["step"] = new_step_counter()
        if grad.dim() > 1:
            state["row_var"] = grad.new_zeros([*grad.shape[:-1], 1])
            state["col_var"] = grad.new_zeros([*grad.shape[:-2], 1, grad.shape[-1]])
        else:
            state["variance"] = zeros_like(grad)
    if maximize:
        grad = -grad
    t = count_step(state)
    beta2_t = beta2_weight(t, beta2_decay)
    alpha = relative_step(lr, eps2, param, t)
    if weight_decay != 0:
        param.mul_(1 - lr * weight_decay)
    if grad.dim() > 1:
        estimate = factored_second_moment(grad, state["row_var"], state["col_var"], beta2_t,
                                          eps1)
    else:
        estimate = full_second_moment(grad, state["variance"], beta2_t)
    update = estimate.clamp_(min=eps1 * eps1).rsqrt_()
    update.mul_(grad)
    param.add_(update, alpha=-alpha / clipped_scale(update, d))


# ------------------------------------------------------------------ mistakes
def _mean_on_wrong_axis(grad: Tensor, row_var: Tensor, col_var: Tensor, beta2_t: float,
                        eps1: float) -> Tensor:
    """mean(R) over the last axis, which R has only one of: each row divided by itself."""
    row_mean = torch.norm(grad, dim=-1, keepdim=True).square_().div_(grad.size(-1))
    row_var.lerp_(row_mean, beta2_t)
    col_mean = torch.norm(grad, dim=-2, keepdim=True).square_().div_(grad.size(-2))
    col_var.lerp_(col_mean, beta2_t)
    estimate = row_var @ col_var
    return estimate.div_(row_var.mean(dim=-1, keepdim=True).clamp_(min=eps1))


def _not_normalized(grad: Tensor, row_var: Tensor, col_var: Tensor, beta2_t: float,
                    eps1: float) -> Tensor:
    row_mean = torch.norm(grad, dim=-1, keepdim=True).square_().div_(grad.size(-1))
    row_var.lerp_(row_mean, beta2_t)
    col_mean = torch.norm(grad, dim=-2, keepdim=True).square_().div_(grad.size(-2))
    col_var.lerp_(col_mean, beta2_t)
    return row_var @ col_var


def _no_clip(update: Tensor, d: float) -> float:
    return 1.0


def _absolute_step(lr: Scalar, eps2: float, param: Tensor, t: float) -> Scalar:
    return min(lr, 1 / (t**0.5))


def _rms_after_decay(param: Tensor, grad: Tensor, state: dict, *, lr: Scalar = 1e-2,
                     weight_decay: float = 0.0, **hyper: Any) -> None:
    """The decay first, then α from RMS(θ) of the decayed θ, where torch measures it before."""
    if weight_decay != 0:
        param.mul_(1 - as_scalar(lr) * weight_decay)
    adafactor_step(param, grad, state, lr=lr, **hyper)


def _decay_with_alpha(param: Tensor, state: dict, hyper: dict, memo: dict) -> None:
    """θ·(1 − α·λ): the relative step used for weight decay, where torch uses γ."""
    t = state["step"].item() + 1 if state else 1
    lr = float(as_scalar(hyper.get("lr", 1e-2)))
    rms = param.norm(2).item() / (param.numel() ** 0.5)
    alpha = max(hyper.get("eps", (None, 1e-3))[1], rms) * min(lr, 1 / t**0.5)
    if hyper.get("weight_decay", 0.0) and lr:
        hyper["weight_decay"] = hyper["weight_decay"] * alpha / lr


SPECS = [
    OptimizerSpec(
        "adafactor", "Adafactor", "12_adafactor", adafactor_step, torch.optim.Adafactor,
        visible=(
            group("basic", ("defaults", {}),
                  ("lr, beta2_decay", {"lr": 0.05, "beta2_decay": -0.5}),
                  two_lrs(1e-2, 1e-3), schedule(5e-2)),
            group("eps", ("eps", {"lr": 0.05, "eps": (1e-3, 1e-2)})),
            group("d", ("clipping d", {"lr": 0.05, "d": 1.2})),
            group("weight_decay", ("weight_decay", {"lr": 0.05, "weight_decay": 0.1})),
            group("maximize", ("maximize", {"lr": 0.05, "maximize": True}),
                  ("maximize with weight_decay",
                   {"lr": 0.05, "maximize": True, "weight_decay": 0.1})),
        ),
        extras=(
            ("all flags", {"lr": 0.02, "beta2_decay": -0.6, "eps": (1e-4, 1e-2), "d": 1.5,
                           "weight_decay": 0.05, "maximize": True}),
            ("extreme", {"lr": 1.0, "beta2_decay": -1.0, "eps": (0.1, 0.5), "d": 1.0,
                         "weight_decay": 0.5}),
            ("tensor lr", {"lr": lr_tensor(0.05), "weight_decay": 0.1}),
        ),
        mistakes=(
            Mistake("mean_on_wrong_axis", "mean(R) taken over the wrong axis",
                    "R has one number per row (shape (n, 1)): v̂ = R·C / mean(R) averages R over "
                    "its rows, dim −2. Over dim −1 each row is divided by itself, leaving C.",
                    edit(adafactor_step, factored_second_moment=_mean_on_wrong_axis)),
            Mistake("no_row_normalization", "R·C not divided by mean(R)",
                    "v̂ = R·C / mean(R): without the division v̂ is off by the factor mean(R) "
                    "(≪ 1 for small gradients: v̂ too small, the steps too large).",
                    edit(adafactor_step, factored_second_moment=_not_normalized)),
            Mistake("no_update_clipping", "the update's RMS not clipped by d",
                    "torch divides the update by max(1, RMS(u)/d).",
                    edit(adafactor_step, clipped_scale=_no_clip)),
            Mistake("rms_after_decay", "RMS(θ) measured after the weight decay",
                    "torch computes α = max(ε₂, RMS(θ))·ρ from θ *before* the decay "
                    "θ ← θ·(1 − γλ), then decays, then steps.", _rms_after_decay),
            Mistake("absolute_step", "the step not scaled by RMS(θ)",
                    "torch's step is relative: α = max(ε₂, RMS(θ))·min(γ, 1/√t).",
                    edit(adafactor_step, relative_step=_absolute_step)),
            Mistake("beta2_as_decay", "t^c used as the weight on the old v, not on g²",
                    "In torch, v ← v + t^c·(g² − v): t^c (1 on the first step) is the weight on "
                    "the new g². The paper's β̂₂ = 1 − t^c is the weight on the old v.",
                    edit(adafactor_step, beta2_weight=lambda t, c: 1 - t**c)),
            Mistake("beta2_decay_ignored", "`beta2_decay` ignored",
                    "The EMA's weight on g² is t^c with c = beta2_decay.",
                    with_hyper(adafactor_step, beta2_decay=-0.8)),
            Mistake("decay_with_relative_step", "weight decay scaled by α, not γ",
                    "torch decays θ by (1 − γλ), with the lr γ, not the relative step α.",
                    tweaked(adafactor_step, _decay_with_alpha)),
            Mistake("bc_off_by_one", "step count off by one",
                    "The step count t is 1 on the first step.",
                    edit(adafactor_step, count_step=one_step_late)),
        ),
        decoupled=True,
        shapes=SHAPES,
        capstone=True,
    ),
]
