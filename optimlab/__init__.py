"""optimlab: build each neural-network optimizer yourself, checked against ``torch.optim``.

Four layers, each importing only those below it: ``optimizers`` (the math), ``check`` (the
checker), ``learn`` (what the notebooks use) and ``grade`` (the instructor's tooling).
"""

from . import reference
from .check import check
from .check.recording import call
from .optimizers import SPECS, StepFunctionOptimizer, get_spec, make_optimizer

__all__ = ["SPECS", "StepFunctionOptimizer", "call", "check", "get_spec", "make_optimizer",
           "reference"]
__version__ = "0.1.0"
