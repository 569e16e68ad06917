"""Plain gradient descent: ``torch.optim.SGD`` with a learning rate and nothing else."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Scalar, as_scalar
from .cases import group, lr_tensor, schedule, two_lrs
from .registry import OptimizerSpec


def gd_step(param: Tensor, grad: Tensor, state: dict, *, lr: Scalar = 1e-3) -> None:
    r"""One step of plain gradient descent, in place: ``torch.optim.SGD(params, lr)``.

    .. math::
        \theta_t \leftarrow \theta_{t-1} - \gamma\, g_t

    ``state`` is unused: plain gradient descent has no memory.
    """
    param.add_(grad, alpha=-as_scalar(lr))


SPECS = [
    OptimizerSpec(
        "gd", "Gradient descent", "01_gradient_descent", gd_step, torch.optim.SGD,
        visible=(group("basic", ("default lr", {}), ("lr=0.1", {"lr": 0.1}),
                       two_lrs(0.1, 0.02), schedule(0.1)),),
        extras=(("tensor lr", {"lr": lr_tensor(0.05)}), ("lr=0", {"lr": 0.0})),
        has_fused=True,
        capstone=False,  # the capstone races SGD, which includes it
    ),
]
