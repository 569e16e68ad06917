"""The optimizer math: reference step functions, the registry of optimizers, the adapter that
wraps a step function as a ``torch.optim.Optimizer``, the trajectory engine and ``verify``."""

from ._steps import *  # noqa: F403
from ._steps import __all__ as _steps_all
from .adapter import StepFunctionOptimizer, make_optimizer
from .registry import SPECS, get_spec

__all__ = [*_steps_all, "SPECS", "StepFunctionOptimizer", "get_spec", "make_optimizer"]
