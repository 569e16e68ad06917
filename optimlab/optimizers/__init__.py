"""The optimizer math: one module per optimizer (reference step function, torch twin, cases,
catalogued mistakes), the registry that finds them, the adapter that wraps a step function as a
``torch.optim.Optimizer``, the trajectory engine and ``verify``."""

from .adapter import StepFunctionOptimizer, make_optimizer
from .registry import SPECS, OptimizerSpec, get_spec, register, unregister
from .registry import _discover as _discover_modules

_discover_modules()

__all__ = ["SPECS", "OptimizerSpec", "StepFunctionOptimizer", "get_spec", "make_optimizer",
           "register", "unregister"]
