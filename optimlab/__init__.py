"""optimlab: build each neural-network optimizer yourself, checked against ``torch.optim``."""

from . import reference
from .adapter import StepFunctionOptimizer, make_optimizer
from .registry import SPECS, get_spec

__all__ = ["SPECS", "StepFunctionOptimizer", "get_spec", "make_optimizer", "reference"]
__version__ = "0.1.0"
