"""The reference step functions, under the name the course has always used for them.

They live in :mod:`optimlab.optimizers`, one module per optimizer; this module re-exports them.
"""

from .optimizers._steps import *  # noqa: F403
from .optimizers._steps import __all__  # noqa: F401
