"""A toy optimizer that lives outside optimlab: signSGD, with no torch twin.

It is everything a module in ``optimlab/optimizers/`` holds, written here to show that adding an
optimizer touches no file of the package: its reference is the oracle.
"""

from __future__ import annotations

from torch import Tensor

from optimlab.optimizers import OptimizerSpec
from optimlab.optimizers.cases import group, lr_tensor, schedule, two_lrs
from optimlab.optimizers.mistakes import Mistake, edit


def direction(grad: Tensor) -> Tensor:
    """sign(g): each coordinate moves by exactly γ (0 where the gradient is 0)."""
    return grad.sign()


def signsgd_step(param: Tensor, grad: Tensor, state: dict, *, lr: float | Tensor = 1e-2,
                 weight_decay: float = 0.0, maximize: bool = False) -> None:
    """One step of signSGD for one parameter tensor, in place.

    .. code-block:: text

        g ← −g                  if maximize
        g ← g + λ·θ             if weight_decay λ ≠ 0
        θ ← θ − γ·sign(g)

    State: none.
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    param.add_(direction(grad), alpha=-lr)


SPEC = OptimizerSpec(
    "signsgd", "signSGD", None, signsgd_step, torch_cls=None,
    visible=(
        group("basic", ("defaults", {}), ("lr=0.1", {"lr": 0.1}), two_lrs(0.1, 0.02),
              schedule(0.1)),
        group("weight_decay", ("weight_decay", {"lr": 0.1, "weight_decay": 0.5})),
        group("maximize", ("maximize", {"lr": 0.1, "maximize": True})),
    ),
    extras=(("all flags", {"lr": 0.05, "weight_decay": 0.1, "maximize": True}),
            ("tensor lr", {"lr": lr_tensor(0.05)})),
    mistakes=(
        Mistake("raw_gradient", "the gradient where its sign belongs",
                "signSGD steps by γ·sign(g): every coordinate moves by γ, whatever |g|.",
                edit(signsgd_step, direction=lambda grad: grad)),
    ),
)
