"""Every optimizer the course teaches: its reference step function, its torch twin, its cases.

A *case* is a named set of hyperparameters. The list for each optimizer covers its defaults,
every hyperparameter torch exposes (one at a time, then together) and tensor learning rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from . import _steps as ref
from .adapter import StepFunction, hyperparameters_of


@dataclass(frozen=True)
class Case:
    """A named set of hyperparameters for one optimizer."""

    name: str
    hyper: dict[str, Any] = field(default_factory=dict)

    @property
    def has_tensor_hyper(self) -> bool:
        """True if any hyperparameter is a tensor (torch's foreach path refuses those)."""
        values = [v for x in self.hyper.values() for v in (x if isinstance(x, tuple) else (x,))]
        return any(isinstance(v, torch.Tensor) for v in values)


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer: the reference, the torch class it must equal, and its cases."""

    name: str
    title: str
    step_fn: StepFunction
    torch_cls: type[torch.optim.Optimizer]
    cases: tuple[Case, ...]
    has_fused: bool = False
    fixed: dict[str, Any] = field(default_factory=dict)
    """Arguments the torch class needs to be this optimizer (none so far: ``gd`` is plain SGD)."""

    @property
    def defaults(self) -> dict[str, Any]:
        """The reference's hyperparameters and their defaults (torch's defaults)."""
        return hyperparameters_of(self.step_fn)

    def torch_optimizer(
        self, params: Any, *, impl: str = "single", **hyper: Any
    ) -> torch.optim.Optimizer:
        """The torch twin; ``impl`` is ``single`` (foreach=False), ``foreach`` or ``fused``."""
        switches = {
            "single": {"foreach": False},
            "foreach": {"foreach": True},
            "fused": {"fused": True},
        }[impl]
        return self.torch_cls(params, **self.fixed, **hyper, **switches)

    def impls(self, case: Case) -> tuple[str, ...]:
        """The torch implementations that accept ``case``."""
        out = ["single"]
        if not case.has_tensor_hyper:
            out.append("foreach")
        if self.has_fused:
            out.append("fused")
        return tuple(out)


def _cases(*pairs: tuple[str, dict[str, Any]]) -> tuple[Case, ...]:
    return tuple(Case(name, hyper) for name, hyper in pairs)


def _tensor(x: float) -> torch.Tensor:
    return torch.tensor(x)


SPECS: dict[str, OptimizerSpec] = {
    s.name: s
    for s in [
        OptimizerSpec(
            "gd", "Gradient descent", ref.gd_step, torch.optim.SGD,
            _cases(("default", {}), ("lr=0.1", {"lr": 0.1}), ("tensor lr", {"lr": _tensor(0.05)})),
            has_fused=True,
        ),
        OptimizerSpec(
            "sgd", "SGD", ref.sgd_step, torch.optim.SGD,
            _cases(
                ("default", {}),
                ("lr=0.1", {"lr": 0.1}),
                ("momentum", {"momentum": 0.9}),
                ("momentum=0.99", {"momentum": 0.99}),
                ("dampening", {"momentum": 0.9, "dampening": 0.5}),
                ("dampening=1", {"momentum": 0.5, "dampening": 1.0}),
                ("nesterov", {"momentum": 0.9, "nesterov": True}),
                ("weight_decay", {"weight_decay": 0.1}),
                ("maximize", {"maximize": True}),
                ("all", {"lr": 0.05, "momentum": 0.8, "nesterov": True,
                         "weight_decay": 0.01, "maximize": True}),
                ("tensor lr", {"lr": _tensor(0.05), "momentum": 0.9}),
            ),
            has_fused=True,
        ),
        OptimizerSpec(
            "adagrad", "Adagrad", ref.adagrad_step, torch.optim.Adagrad,
            _cases(
                ("default", {}),
                ("lr=0.1", {"lr": 0.1}),
                ("lr_decay", {"lr_decay": 0.1}),
                ("weight_decay", {"weight_decay": 0.1}),
                ("initial_accumulator_value", {"initial_accumulator_value": 0.5}),
                ("eps", {"eps": 1e-3}),
                ("maximize", {"maximize": True}),
                ("all", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.05,
                         "initial_accumulator_value": 0.1, "eps": 1e-6, "maximize": True}),
                ("tensor lr", {"lr": _tensor(0.05)}),
            ),
            has_fused=True,
        ),
        OptimizerSpec(
            "adadelta", "Adadelta", ref.adadelta_step, torch.optim.Adadelta,
            _cases(
                ("default", {}),
                ("lr=0.5", {"lr": 0.5}),
                ("rho", {"rho": 0.5}),
                ("eps", {"eps": 1e-3}),
                ("weight_decay", {"weight_decay": 0.1}),
                ("maximize", {"maximize": True}),
                ("all", {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.05,
                         "maximize": True}),
                ("tensor lr", {"lr": _tensor(0.5)}),
            ),
        ),
        OptimizerSpec(
            "rmsprop", "RMSprop", ref.rmsprop_step, torch.optim.RMSprop,
            _cases(
                ("default", {}),
                ("alpha", {"alpha": 0.9}),
                ("eps", {"eps": 1e-3}),
                ("weight_decay", {"weight_decay": 0.1}),
                ("momentum", {"momentum": 0.9}),
                ("centered", {"centered": True}),
                ("centered+momentum", {"centered": True, "momentum": 0.5}),
                ("maximize", {"maximize": True}),
                ("all", {"lr": 1e-3, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.05,
                         "momentum": 0.5, "centered": True, "maximize": True}),
                ("tensor lr", {"lr": _tensor(1e-3), "momentum": 0.9}),
            ),
        ),
        OptimizerSpec(
            "adam", "Adam", ref.adam_step, torch.optim.Adam,
            _cases(
                ("default", {}),
                ("lr=0.01", {"lr": 1e-2}),
                ("betas", {"betas": (0.8, 0.99)}),
                ("beta1=0", {"betas": (0.0, 0.999)}),
                ("eps", {"eps": 1e-3}),
                ("weight_decay", {"weight_decay": 0.1}),
                ("decoupled_weight_decay", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
                ("amsgrad", {"amsgrad": True}),
                ("maximize", {"maximize": True}),
                ("all", {"lr": 1e-2, "betas": (0.85, 0.99), "eps": 1e-6, "weight_decay": 0.05,
                         "amsgrad": True, "maximize": True}),
                ("tensor lr", {"lr": _tensor(1e-2)}),
                ("tensor lr, betas", {"lr": _tensor(1e-2), "betas": (_tensor(0.9), _tensor(0.99))}),
            ),
            has_fused=True,
        ),
        OptimizerSpec(
            "adamw", "AdamW", ref.adamw_step, torch.optim.AdamW,
            _cases(
                ("default", {}),
                ("weight_decay=0", {"weight_decay": 0.0}),
                ("weight_decay=0.1", {"weight_decay": 0.1}),
                ("betas", {"betas": (0.8, 0.99)}),
                ("eps", {"eps": 1e-3}),
                ("amsgrad", {"amsgrad": True}),
                ("maximize", {"maximize": True}),
                ("all", {"lr": 1e-2, "betas": (0.85, 0.99), "eps": 1e-6, "weight_decay": 0.1,
                         "amsgrad": True, "maximize": True}),
                ("tensor lr", {"lr": _tensor(1e-2)}),
            ),
            has_fused=True,
        ),
        OptimizerSpec(
            "adamax", "Adamax", ref.adamax_step, torch.optim.Adamax,
            _cases(
                ("default", {}),
                ("lr=0.01", {"lr": 1e-2}),
                ("betas", {"betas": (0.8, 0.99)}),
                ("eps", {"eps": 1e-3}),
                ("weight_decay", {"weight_decay": 0.1}),
                ("maximize", {"maximize": True}),
                ("all", {"lr": 1e-2, "betas": (0.85, 0.99), "eps": 1e-6, "weight_decay": 0.05,
                         "maximize": True}),
                ("tensor lr", {"lr": _tensor(1e-2)}),
            ),
        ),
        OptimizerSpec(
            "nadam", "NAdam", ref.nadam_step, torch.optim.NAdam,
            _cases(
                ("default", {}),
                ("lr=0.01", {"lr": 1e-2}),
                ("betas", {"betas": (0.8, 0.99)}),
                ("eps", {"eps": 1e-3}),
                ("momentum_decay", {"momentum_decay": 1e-2}),
                ("weight_decay", {"weight_decay": 0.1}),
                ("decoupled_weight_decay", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
                ("maximize", {"maximize": True}),
                ("all", {"lr": 1e-2, "betas": (0.85, 0.99), "eps": 1e-6, "weight_decay": 0.05,
                         "momentum_decay": 8e-3, "decoupled_weight_decay": True,
                         "maximize": True}),
                ("tensor lr", {"lr": _tensor(1e-2)}),
            ),
        ),
    ]
}


def get_spec(name: str) -> OptimizerSpec:
    """The spec for ``name`` (case-insensitive), with a helpful error for an unknown name."""
    try:
        return SPECS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown optimizer {name!r}; known: {', '.join(SPECS)}") from None
