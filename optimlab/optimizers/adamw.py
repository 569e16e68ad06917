"""AdamW, as ``torch.optim.AdamW`` computes it: Adam with decoupled weight decay."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar
from .adam import ADAM_EXTRAS, adam_family_mistakes, adam_step
from .cases import group, schedule, two_lrs
from .mistakes import Mistake, edit, tweaked, with_hyper
from .registry import OptimizerSpec


def adamw_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 1e-3,
    betas: tuple[Scalar, Scalar] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
) -> None:
    r"""One step of ``torch.optim.AdamW``: Adam with decoupled weight decay, in place.

    .. code-block:: text

        θ ← θ·(1 − γ·λ)                     first, and never through the moments
        ... then exactly :func:`~optimlab.optimizers.adam.adam_step` with weight_decay = 0

    Note the default ``weight_decay`` is 1e-2 here (0 in Adam). State as in Adam.
    """
    adam_step(
        param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
        amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True,
    )


def _decay_without_lr(param: Tensor, state: dict, hyper: dict, memo: dict) -> None:
    """θ·(1 − λ) first, then the step with no decay."""
    param.mul_(1 - hyper["weight_decay"])
    hyper["weight_decay"] = 0.0


_SHARED = adam_family_mistakes(adamw_step)
_KEYS = ("no_bias_correction", "bc_off_by_one", "eps_inside_sqrt", "amsgrad_max_of_corrected",
         "beta1_in_second_moment", "amsgrad_ignored")

SPECS = [
    OptimizerSpec(
        "adamw", "AdamW", "08_adamw", adamw_step, torch.optim.AdamW,
        visible=(
            group("basic", ("defaults", {}),
                  ("lr, betas, eps", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-3}),
                  two_lrs(1e-2, 1e-3), schedule(1e-2)),
            group("weight_decay", ("weight_decay=0.1", {"lr": 1e-2, "weight_decay": 0.1}),
                  ("weight_decay=0", {"lr": 1e-2, "weight_decay": 0.0})),
            group("amsgrad", ("amsgrad", {"lr": 1e-2, "amsgrad": True})),
            group("maximize", ("maximize", {"lr": 1e-2, "maximize": True})),
        ),
        extras=ADAM_EXTRAS,
        mistakes=(
            *(_SHARED[k] for k in _KEYS),
            Mistake("l2_instead_of_decoupled", "L2 decay where decoupled decay is wanted",
                    "AdamW multiplies θ by (1 − γλ) before the moments; it does not add λ·θ to "
                    "the gradient.",
                    edit(adamw_step,
                         adam_step=with_hyper(adam_step, decoupled_weight_decay=False))),
            Mistake("decoupled_decay_without_lr", "decoupled decay not scaled by lr",
                    "torch's AdamW decays by θ·(1 − γ·λ), with γ = lr.",
                    tweaked(adamw_step, _decay_without_lr)),
        ),
        decoupled=True,
        has_fused=True,
    ),
]
