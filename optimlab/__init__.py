"""optimlab: build each neural-network optimizer yourself, checked against ``torch.optim``."""

from . import reference
from .adapter import StepFunctionOptimizer, make_optimizer
from .check import check
from .judging import call
from .registry import SPECS, get_spec

__all__ = ["SPECS", "StepFunctionOptimizer", "call", "check", "get_spec", "make_optimizer",
           "reference"]
__version__ = "0.1.0"
