"""ASGD, averaged SGD, as ``torch.optim.ASGD`` computes it (single-tensor path)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter, scalar_dtype, zeros_like
from .cases import group, lr_tensor, schedule, two_lrs
from .mistakes import Mistake, edit
from .registry import OptimizerSpec


def step_size(lr: Scalar, lambd: float, alpha: float, t: float) -> Scalar:
    """η for the *next* step: γ / (1 + λ·γ·t)^α (Polyak–Juditsky's decaying step)."""
    return lr / ((1 + lambd * lr * t) ** alpha)


def averaging_rate(t: float, t0: float) -> float:
    """μ for the next step: 1 / max(1, t − t₀): averaging starts after t₀ steps."""
    return 1 / max(1, t - t0)


def shrink(param: Tensor, lambd: float, eta: float) -> Tensor:
    """θ ← θ·(1 − λ·η) in place: ASGD's own pull towards 0, scaled by the step size."""
    return param.mul_(1 - lambd * eta)


def asgd_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 1e-2,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    r"""One step of ``torch.optim.ASGD`` for one parameter tensor, in place.

    .. code-block:: text

        on the first step: η ← γ, μ ← 1     eta, mu: 0-d float32 tensors (see below)
        g ← −g                              if maximize
        t ← t + 1
        g ← g + λ_wd·θ                      if weight_decay λ_wd ≠ 0
        θ ← θ·(1 − λ·η)                     lambd λ: a decay towards 0 scaled by η
        θ ← θ − η·g
        a ← a + μ·(θ − a)                   ax, the running average (a ← θ while μ = 1)
        η ← γ / (1 + λ·γ·t)^α               for the next step
        μ ← 1 / max(1, t − t₀)              averaging begins after t₀ steps

    The averaged parameters are ``state["ax"]``: ASGD's answer, which the model does not use
    until you copy it in. Like ``step``, ``eta`` and ``mu`` are kept as float32 tensors unless
    the default dtype is float64, so η is rounded to float32 before it is used.
    State: ``step``, ``eta``, ``mu``, ``ax``.
    """
    lr = as_scalar(lr)
    if not state:
        state["step"] = new_step_counter()
        state["eta"] = torch.as_tensor(lr, device=param.device,
                                       dtype=scalar_dtype()).clone().detach()
        state["mu"] = torch.ones((), device=param.device, dtype=scalar_dtype())
        state["ax"] = zeros_like(param)
    if maximize:
        grad = -grad
    t = count_step(state)
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    eta, mu, ax = state["eta"].item(), state["mu"], state["ax"]
    shrink(param, lambd, eta)
    param.add_(grad, alpha=-eta)
    if mu.item() != 1:
        ax.add_(param.sub(ax).mul_(mu))
    else:
        ax.copy_(param)
    state["eta"].copy_(torch.as_tensor(step_size(lr, lambd, alpha, t)))
    state["mu"].copy_(torch.as_tensor(averaging_rate(t, t0)))


def _eta_before_count(lr: Scalar, lambd: float, alpha: float, t: float) -> Scalar:
    return lr / ((1 + lambd * lr * (t + 1)) ** alpha)


def _eta_without_lr(lr: Scalar, lambd: float, alpha: float, t: float) -> Scalar:
    return lr / ((1 + lambd * t) ** alpha)


SPECS = [
    OptimizerSpec(
        "asgd", "ASGD", None, asgd_step, torch.optim.ASGD,
        visible=(
            group("basic", ("defaults", {}),
                  ("lr", {"lr": 0.05}),
                  two_lrs(1e-2, 1e-3), schedule(1e-2)),
            group("decay", ("lambd, alpha", {"lr": 0.05, "lambd": 0.5, "alpha": 0.5})),
            group("averaging", ("averaging from t0 = 3", {"lr": 0.05, "t0": 3.0}),
                  ("averaging from the start", {"lr": 0.05, "t0": 0.0, "lambd": 0.1})),
            group("weight_decay", ("weight_decay", {"lr": 0.05, "weight_decay": 0.1})),
            group("maximize", ("maximize", {"lr": 0.05, "maximize": True}),
                  ("maximize with weight_decay",
                   {"lr": 0.05, "maximize": True, "weight_decay": 0.1})),
        ),
        extras=(
            ("all flags", {"lr": 0.02, "lambd": 0.2, "alpha": 0.6, "t0": 5.0,
                           "weight_decay": 0.05, "maximize": True}),
            ("extreme", {"lr": 0.5, "lambd": 1.0, "alpha": 1.0, "t0": 1.0,
                         "weight_decay": 1.0}),
            ("tensor lr", {"lr": lr_tensor(0.05), "t0": 2.0, "lambd": 0.1}),
        ),
        mistakes=(
            Mistake("eta_one_step_ahead", "η computed with t + 1",
                    "After step t, torch sets η = γ / (1 + λ·γ·t)^α for the next step (η = γ on "
                    "the first).", edit(asgd_step, step_size=_eta_before_count)),
            Mistake("eta_without_lr", "η's denominator without γ",
                    "η = γ / (1 + λ·γ·t)^α: γ appears inside the bracket too.",
                    edit(asgd_step, step_size=_eta_without_lr)),
            Mistake("eta_constant", "η never decays",
                    "After each step torch sets η = γ / (1 + λ·γ·t)^α: the step shrinks.",
                    edit(asgd_step, step_size=lambda lr, lambd, alpha, t: lr)),
            Mistake("alpha_ignored", "α ignored (η = γ / (1 + λ·γ·t))",
                    "η = γ / (1 + λ·γ·t)^α with α = alpha (0.75 by default).",
                    edit(asgd_step, step_size=lambda lr, lambd, alpha, t:
                         lr / (1 + lambd * lr * t))),
            Mistake("no_lambd_decay", "the θ·(1 − λ·η) term left out",
                    "torch decays θ by (1 − λ·η) before the gradient step.",
                    edit(asgd_step, shrink=lambda param, lambd, eta: param)),
        ),
        float64_tolerance=(1e-7, 1e-8),
        # torch's foreach path computes η = γ/(1 + λγt)^α with t a float32 tensor, its
        # single-tensor path in Python floats: the two differ by up to ~2e-6 relative
        kernel_tolerance=(1e-5, 1e-8),
        float32_state=("step", "eta", "mu"),
        capstone=False,
    ),
]
