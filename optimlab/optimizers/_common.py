"""Small pieces shared by the reference step functions.

They mirror the bookkeeping in ``torch/optim/optimizer.py`` so that a reference's state
is the same, key for key and dtype for dtype, as the state of its ``torch.optim`` twin.
"""

from __future__ import annotations

import torch
from torch import Tensor

Scalar = float | Tensor
"""A hyperparameter: a Python number, or a one-element tensor (as torch.optim allows for lr)."""


def scalar_dtype() -> torch.dtype:
    """The dtype of ``step`` and ``mu_product``: float64 if that is the default, else float32."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def as_scalar(x: Scalar) -> Scalar:
    """A one-element tensor of any shape becomes 0-d (as ``torch.optim.optimizer._to_scalar``)."""
    if isinstance(x, Tensor) and x.dim() != 0:
        return x.squeeze()
    return x


def new_step_counter() -> Tensor:
    """``state["step"]`` as torch keeps it: a 0-d float tensor on the CPU, starting at 0."""
    return torch.tensor(0.0, dtype=scalar_dtype())


def count_step(state: dict) -> float:
    """Add one to ``state["step"]`` and return the new count *t* (1 on the first step)."""
    state["step"] += 1
    return state["step"].item()


def zeros_like(param: Tensor) -> Tensor:
    """A zero buffer with the parameter's shape, dtype, device and strides."""
    return torch.zeros_like(param, memory_format=torch.preserve_format)


def on_param(x: Scalar, param: Tensor) -> Scalar:
    """A tensor hyperparameter on the parameter's device and dtype (torch does this for beta1)."""
    if isinstance(x, Tensor):
        return x.to(device=param.device, dtype=param.dtype)
    return x
