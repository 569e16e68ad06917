"""From-scratch reference step functions that match ``torch.optim`` (single-tensor path).

Each is ``fn(param, grad, state, **hyperparameters) -> None``: one step for one parameter
tensor, in place, with torch's defaults and torch's state names.
"""

from .adadelta import adadelta_step
from .adagrad import adagrad_step
from .adam import adam_step, adamw_step
from .adamax import adamax_step
from .nadam import nadam_momentum, nadam_step
from .rmsprop import rmsprop_step
from .sgd import gd_step, sgd_step

__all__ = [
    "adadelta_step",
    "adagrad_step",
    "adam_step",
    "adamax_step",
    "adamw_step",
    "gd_step",
    "nadam_momentum",
    "nadam_step",
    "rmsprop_step",
    "sgd_step",
]
