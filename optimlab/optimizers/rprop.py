"""Rprop, as ``torch.optim.Rprop`` computes it (single-tensor path)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, count_step, new_step_counter, zeros_like
from .cases import group, lr_tensor, schedule, two_lrs
from .mistakes import Mistake, edit, tweaked
from .registry import OptimizerSpec


def step_size_factors(grad: Tensor, prev: Tensor, etaminus: float, etaplus: float) -> Tensor:
    """η per coordinate: η₊ where g·g_prev > 0, η₋ where < 0, 1 where = 0."""
    factor = grad.mul(prev).sign()
    factor[factor.gt(0)] = etaplus
    factor[factor.lt(0)] = etaminus
    factor[factor.eq(0)] = 1
    return factor


def forget_flipped(grad: Tensor, factor: Tensor, etaminus: float) -> Tensor:
    """g with 0 where the sign flipped: no step there now, and factor 1 on the next step."""
    grad = grad.clone(memory_format=torch.preserve_format)
    grad[factor.eq(etaminus)] = 0
    return grad


def rprop_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 1e-2,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50),
    maximize: bool = False,
) -> None:
    r"""One step of ``torch.optim.Rprop`` for one parameter tensor, in place.

    .. code-block:: text

        on the first step: s ← γ everywhere    step_size: lr is read once, here
        g ← −g                              if maximize
        t ← t + 1
        η ← η₊ where g·g_prev > 0           the sign held: grow the step
            η₋ where g·g_prev < 0           the sign flipped: the last step overshot
            1  where g·g_prev = 0
        s ← clamp(s·η, s_min, s_max)        step_sizes = (s_min, s_max)
        g ← 0 where η = η₋                  no step where the sign flipped, and
                                            g_prev = 0 makes the next η equal to 1
        θ ← θ − sign(g)·s
        g_prev ← g                          prev

    Only the gradient's sign is used. State: ``step``, ``prev``, ``step_size``.
    """
    etaminus, etaplus = etas
    step_size_min, step_size_max = step_sizes
    if not state:
        state["step"] = new_step_counter()
        state["prev"] = zeros_like(param)
        state["step_size"] = torch.full_like(grad, as_scalar(lr))
    if maximize:
        grad = -grad
    count_step(state)
    prev, step_size = state["prev"], state["step_size"]
    factor = step_size_factors(grad, prev, etaminus, etaplus)
    step_size.mul_(factor).clamp_(step_size_min, step_size_max)
    grad = forget_flipped(grad, factor, etaminus)
    param.addcmul_(grad.sign(), step_size, value=-1)
    prev.copy_(grad)


def _not_forgotten(grad: Tensor, factor: Tensor, etaminus: float) -> Tensor:
    return grad


def _prev_not_zeroed(param: Tensor, grad: Tensor, state: dict, **hyper) -> None:
    """The step as torch's, but g_prev ← the raw gradient where the sign flipped."""
    rprop_step(param, grad, state, **hyper)
    state["prev"].copy_(-grad if hyper.get("maximize") else grad)


def _zero_grows(grad: Tensor, prev: Tensor, etaminus: float, etaplus: float) -> Tensor:
    factor = grad.mul(prev).sign()
    factor[factor.ge(0)] = etaplus
    factor[factor.lt(0)] = etaminus
    return factor


def _swapped(grad: Tensor, prev: Tensor, etaminus: float, etaplus: float) -> Tensor:
    return step_size_factors(grad, prev, etaplus, etaminus)


def _magnitude_step(param: Tensor, grad: Tensor, state: dict, **hyper) -> None:
    """θ ← θ − s·g: the gradient's size used, not only its sign."""
    rprop_step(param, grad, state, **hyper)
    # undo the sign step and take s·g instead, with the same zeroing
    prev, step_size = state["prev"], state["step_size"]
    param.addcmul_(prev.sign(), step_size).addcmul_(prev, step_size, value=-1)


SPECS = [
    OptimizerSpec(
        "rprop", "Rprop", "14_more_optimizers", rprop_step, torch.optim.Rprop,
        visible=(
            group("basic", ("defaults", {}),
                  ("lr", {"lr": 0.05}),
                  two_lrs(1e-2, 1e-3), schedule(1e-2)),
            group("etas", ("etas", {"lr": 0.05, "etas": (0.3, 1.5)})),
            group("step_sizes",
                  ("tight step_sizes", {"lr": 0.05, "step_sizes": (0.02, 0.08)})),
            group("maximize", ("maximize", {"lr": 0.05, "maximize": True})),
        ),
        extras=(
            ("all flags", {"lr": 0.02, "etas": (0.4, 1.3), "step_sizes": (1e-3, 0.1),
                           "maximize": True}),
            ("extreme", {"lr": 1.0, "etas": (0.1, 3.0), "step_sizes": (0.5, 2.0)}),
            ("tensor lr", {"lr": lr_tensor(0.05)}),
        ),
        mistakes=(
            Mistake("flip_not_forgotten", "the gradient not zeroed after a sign flip",
                    "Where g·g_prev < 0, torch sets g to 0: no step there this time, and "
                    "g_prev = 0 so that the next factor is 1.",
                    edit(rprop_step, forget_flipped=_not_forgotten)),
            Mistake("prev_not_zeroed", "g_prev stores the raw gradient after a sign flip",
                    "torch stores the zeroed gradient as prev: after a flip the next factor "
                    "is 1, not another η₋.",
                    _prev_not_zeroed),
            Mistake("zero_product_grows", "η₊ where g·g_prev = 0",
                    "Where the product is 0 (the first step, or after a flip), the step size "
                    "stays: factor 1.", edit(rprop_step, step_size_factors=_zero_grows)),
            Mistake("etas_swapped", "η₋ and η₊ swapped",
                    "etas = (η₋, η₊): shrink by η₋ (0.5) after a flip, grow by η₊ (1.2) "
                    "while the sign holds.", edit(rprop_step, step_size_factors=_swapped)),
            Mistake("no_clamp", "step sizes not clamped",
                    "torch clamps every step size into step_sizes = (s_min, s_max).",
                    tweaked(rprop_step, lambda p, s, h, m: h.update(step_sizes=(0.0, 1e30)))),
            Mistake("magnitude_step", "θ − s·g: the gradient's size used",
                    "Rprop uses only the sign: θ ← θ − sign(g)·s.", _magnitude_step),
        ),
        not_mistakes=("lr_cached",),
        capstone=True,
    ),
]
