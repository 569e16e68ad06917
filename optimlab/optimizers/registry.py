"""Every optimizer the course teaches, found by itself: each module here that defines ``SPECS``.

An optimizer's module holds everything about it: the reference step function with its
algorithm box, the torch twin (optional: without one, the reference is the oracle), the cases,
and the catalogued mistakes. Adding an optimizer means adding its module (and its notebook);
an optimizer defined elsewhere, such as a test's toy, joins with :func:`register`.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from .adapter import StepFunction, StepFunctionOptimizer, hyperparameters_of
from .cases import SHAPES, Case, Extra, Group, build_groups
from .mistakes import Mistake, common_mistakes

Impl = Literal["single", "foreach", "fused"]

_FIRST_COMMON = ("sign_flipped", "maximize_ignored", "decay_after_update")


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer: its reference, its torch twin, its cases and its catalogued mistakes."""

    name: str
    title: str
    notebook: str | None
    """The course notebook whose ``<name>_step`` cell the learner writes (the registry's order);
    None for an optimizer outside the course."""
    step_fn: StepFunction
    torch_cls: type[torch.optim.Optimizer] | None
    visible: tuple[Group, ...]
    """The groups a notebook's test cells name, ``basic`` first."""
    extras: tuple[Extra, ...] = ()
    """All flags at once, extreme values, tensor lrs: run hidden, and by ``verify``."""
    mistakes: tuple[Mistake, ...] = ()
    """This optimizer's own mistakes; :func:`common_mistakes` adds the shared ones."""
    has_foreach: bool = True
    """torch has a ``foreach`` switch for it (Muon has none: one path only)."""
    has_fused: bool = False
    """torch has ``fused=True`` for it (on which devices depends on the torch version:
    :meth:`impls` asks torch)."""
    fixed: dict[str, Any] = field(default_factory=dict)
    """Arguments the torch class needs to be this optimizer."""
    decoupled: bool = False
    """``weight_decay`` is decoupled (AdamW's θ·(1 − γλ)), not L2."""
    float64_tolerance: tuple[float, float] = (1e-9, 1e-12)
    """(rtol, atol) of a learner against the oracle in float64 (float32: 1e-4 / 1e-5)."""
    float32_tolerance: tuple[float, float] = (1e-4, 1e-5)
    """(rtol, atol) of a learner against the oracle in float32."""
    float32_state: tuple[str, ...] = ("step",)
    """State that torch keeps as float32 scalars whatever the parameter's dtype."""
    shapes: tuple[tuple[int, ...], ...] = SHAPES
    """The parameter tensors of every case (torch's Muon takes only matrices)."""
    sparse_grads: bool = False
    """Its gradients are sparse COO tensors, as ``nn.Embedding(sparse=True)`` gives them
    (SparseAdam takes no other)."""
    kernel_tolerance: tuple[float, float] | None = None
    """(rtol, atol) of the reference against torch's foreach and fused paths, where those
    differ from torch's own single-tensor path by more than rounding (ASGD's foreach path
    computes η in float32 tensors)."""
    capstone: bool = True
    not_mistakes: tuple[str, ...] = ()
    """Shared mistakes that are this optimizer's right behaviour (Rprop reads lr once, for its
    initial step sizes, so ``lr_cached`` is what torch does)."""
    """The capstone loads the learner's step function from ``notebook`` and races it."""
    groups: dict[str, Group] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", build_groups(self.visible, self.extras))

    @property
    def defaults(self) -> dict[str, Any]:
        """The reference's hyperparameters and their defaults (torch's defaults)."""
        return hyperparameters_of(self.step_fn)

    @functools.cached_property
    def catalogue(self) -> list[Mistake]:
        """Every catalogued mistake: the shared ones and this optimizer's own (built once)."""
        common = [m for m in common_mistakes(self.step_fn, self.defaults, decoupled=self.decoupled)
                  if m.key not in self.not_mistakes]
        first = [m for m in common if m.key in _FIRST_COMMON]
        rest = [m for m in common if m.key not in _FIRST_COMMON]
        return [*first, *self.mistakes, *rest]

    def cases(self) -> list[Case]:
        """Every distinct setting of the table: the visible cases, then the extras."""
        out = [c for g in self.visible for c in g.cases]
        out += [Case("extras", name, hyper) for name, hyper in self.extras]
        return out

    def torch_optimizer(self, params: Any, *, impl: Impl = "single",
                        **hyper: Any) -> torch.optim.Optimizer:
        """The oracle: the torch twin in implementation ``impl`` (``single`` is
        foreach=False), or the reference wrapped by the adapter when torch has no twin."""
        if self.torch_cls is None:
            if impl != "single":
                raise ValueError(f"{self.name} has no torch twin, so no {impl} implementation")
            return StepFunctionOptimizer(params, self.step_fn, **self.fixed, **hyper)
        switches = {
            "single": {"foreach": False} if self.has_foreach else {},
            "foreach": {"foreach": True},
            "fused": {"fused": True},
        }[impl]
        return self.torch_cls(params, **self.fixed, **hyper, **switches)

    def accepts(self, hyper: dict[str, Any]) -> bool:
        """Whether torch's twin (or the reference's adapter) takes these settings at all."""
        param = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)  # Muon takes 2-D only
        try:
            self.torch_optimizer([param], **hyper)
        except (ValueError, TypeError, RuntimeError):
            return False
        return True

    def impls(self, case: Case, device: str | torch.device = "cpu") -> tuple[Impl, ...]:
        """The oracle's implementations that accept ``case`` on ``device``."""
        if self.torch_cls is None:
            return ("single",)
        out: list[Impl] = ["single"]
        if self.has_foreach and not case.has_tensor_hyper:
            out.append("foreach")
        if self.has_fused and _fused_runs(self.torch_cls, torch.device(device).type):
            out.append("fused")
        return tuple(out)


@functools.cache
def _fused_runs(torch_cls: type[torch.optim.Optimizer], device_type: str) -> bool:
    """Whether this torch has ``torch_cls``'s fused kernel on ``device_type``: torch 2.11
    refuses a fused Adagrad on CUDA, which 2.13 runs."""
    param = torch.zeros(2, device=device_type, requires_grad=True)
    param.grad = torch.ones(2, device=device_type)
    try:
        torch_cls([param], lr=0.1, fused=True).step()
    except (RuntimeError, ValueError):
        return False
    return True


SPECS: dict[str, OptimizerSpec] = {}


def register(spec: OptimizerSpec) -> OptimizerSpec:
    """Add an optimizer to the registry (the modules here are added by themselves)."""
    if spec.name in SPECS and SPECS[spec.name] is not spec:
        raise ValueError(f"an optimizer named {spec.name!r} is registered already")
    SPECS[spec.name] = spec
    ordered = sorted(SPECS.values(), key=lambda s: (s.notebook or "~", s.name))
    SPECS.clear()
    SPECS.update((s.name, s) for s in ordered)
    return spec


def unregister(name: str) -> None:
    """Remove an optimizer added with :func:`register` (tests clean up with this)."""
    SPECS.pop(name, None)


def _discover() -> None:
    from . import __path__ as here

    for info in sorted(pkgutil.iter_modules(here), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        found = getattr(module, "SPECS", ())
        if isinstance(found, (list, tuple)):
            for spec in found:
                if isinstance(spec, OptimizerSpec):
                    register(spec)


def get_spec(name: str) -> OptimizerSpec:
    """The spec for ``name`` (case-insensitive), with a helpful error for an unknown name."""
    try:
        return SPECS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown optimizer {name!r}; known: {', '.join(SPECS)}") from None
