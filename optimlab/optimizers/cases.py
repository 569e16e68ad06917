"""Cases: the hyperparameter settings an optimizer is run on, grouped for partial credit.

One table per optimizer, in the optimizer's own module, serves both uses:

- ``optimlab verify`` and the test matrix run every case of the reference against torch;
- the checker runs a learner's step function on the cases of the groups a test cell names.

Each optimizer has *visible* groups (``basic`` first, then one per hyperparameter the notebook
teaches) and *extras* (all flags at once, extreme but valid values, tensor learning rates).
:func:`build_groups` adds the hidden ones: ``extras`` in float64 and float32 on fresh gradient
sequences, and ``hidden``, the float32 twins of every visible case plus the extras. A hidden
check of a visible group also runs its :func:`interactions` with the groups before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

#: The tensors every case updates: 0-d, 1-D, 2-D, a non-contiguous (transposed) 2-D view, an
#: empty tensor, a 1-D tensor whose gradient is always zero in places, and a second 1-D tensor of
#: the same shape as the first (so state shared between tensors shows up as wrong numbers, not
#: only as a crash). An optimizer that takes only some shapes has its own
#: (:attr:`~optimlab.optimizers.registry.OptimizerSpec.shapes`), index for index alike.
SHAPES: tuple[tuple[int, ...], ...] = ((), (5,), (3, 4), (4, 3), (0,), (6,), (5,))


@dataclass(frozen=True)
class Case:
    """One run: hyperparameters, a gradient sequence, and optional mid-run changes."""

    group: str
    name: str
    hyper: dict[str, Any] = field(default_factory=dict)
    dtype: torch.dtype = torch.float64
    steps: int = 20
    second: dict[str, Any] | None = None
    """Overrides for the second half of the tensors (a second torch param group)."""
    lr_change: tuple[int, float] | None = None
    """``(k, f)``: from step ``k`` on, every group's lr is multiplied by ``f`` (a schedule)."""
    decades: float = 3.0
    """Each coordinate's gradient is scaled by a fixed factor in ``10**U(-decades, 0)``."""
    seed: int | None = 0
    """``None`` draws a fresh gradient sequence on every run (hidden groups)."""
    alone: Case | None = None
    """For a join of two parts (:func:`interactions`): the earlier part's own case. The join
    runs only where that passes, so a mistake in the earlier part costs that part's points
    and not this one's too."""

    def __post_init__(self) -> None:
        if self.lr_change and "lr" not in self.hyper:
            raise ValueError(f"case {self.name!r}: an lr schedule needs an explicit lr")

    @property
    def has_tensor_hyper(self) -> bool:
        """True if any hyperparameter is a tensor (torch's foreach path refuses those)."""
        values = [*self.hyper.values(), *(self.second or {}).values()]
        flat = [v for x in values for v in (x if isinstance(x, tuple) else (x,))]
        return any(isinstance(v, torch.Tensor) for v in flat)

    def describe(self) -> str:
        parts = [f"{k}={_short(v)}" for k, v in self.hyper.items()]
        if self.second:
            second = ", ".join(f"{k}={_short(v)}" for k, v in self.second.items())
            parts.append(f"2nd group: {second}")
        if self.lr_change:
            parts.append(f"lr×{self.lr_change[1]} from step {self.lr_change[0]}")
        parts.append(str(self.dtype).removeprefix("torch."))
        return ", ".join(parts)


def _short(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"tensor({v.item():g})"
    if isinstance(v, tuple):
        return "(" + ", ".join(_short(x) for x in v) + ")"
    return f"{v:g}" if isinstance(v, float) else repr(v)


@dataclass(frozen=True)
class Group:
    """Cases a test cell names together; ``hidden`` groups are for hidden tests only."""

    name: str
    cases: tuple[Case, ...]
    hidden: bool = False


Extra = tuple[str, dict[str, Any]]
"""An extra case: a name and its hyperparameters (run hidden, in both dtypes)."""


def group(name: str, *cases: tuple[str, dict[str, Any]] | Case, **common: Any) -> Group:
    """A visible group from ``(name, hyper)`` pairs and ready-made cases."""
    out = [c if isinstance(c, Case) else Case(name, c[0], c[1], **common) for c in cases]
    return Group(name, tuple(out))


def schedule(lr: float, group: str = "basic", name: str = "an lr schedule",
             **hyper: Any) -> Case:
    """lr cut to a fifth from step 10, as a scheduler would: a function that keeps the first
    lr (or anything computed from it) in ``state`` passes every other case and fails this one."""
    return Case(group, name, {"lr": lr, **hyper}, lr_change=(10, 0.2))


def two_lrs(lr: float, second_lr: float) -> Case:
    """Two param groups with different learning rates."""
    return Case("basic", "two lrs", {"lr": lr}, second={"lr": second_lr})


def lr_tensor(x: float) -> torch.Tensor:
    """A learning rate given as a 0-d tensor, as torch.optim allows."""
    return torch.tensor(x, dtype=torch.float64)


def hidden_twins(cases: tuple[Case, ...] | list[Case]) -> list[Case]:
    """Hidden versions of visible cases: the same settings in float32 and in float64, each on a
    gradient sequence drawn fresh for every run."""
    out = []
    for c in cases:
        for dtype in (torch.float32, torch.float64):
            tag = str(dtype).removeprefix("torch.")
            out.append(replace(c, name=f"{c.name} (hidden, {tag})", dtype=dtype, seed=None))
    return out


def interactions(table: dict[str, Group], name: str) -> list[Case]:
    """Visible group ``name``'s first setting joined with the first setting of each visible
    group before it (``basic`` aside, and any it already holds), as hidden twins: a feature
    must work beside those taught before it (amsgrad with maximize, nesterov with maximize,
    centered with momentum). Some joins are settings torch refuses; the caller drops those.
    Each join carries the earlier part's own case (``alone``), which must pass first."""
    visible = [g.name for g in table.values() if not g.hidden]
    if name not in visible or name == "basic":
        return []
    base = table[name].cases[0]
    out = []
    for earlier in (table[g] for g in visible[:visible.index(name)]):
        other = earlier.cases[0]
        if earlier.name == "basic" or other.hyper.keys() <= base.hyper.keys():
            continue
        joined = replace(base, group=name, name=f"{base.name}, with {other.name}",
                         hyper={**other.hyper, **base.hyper})
        for twin, alone in zip(hidden_twins([joined]), hidden_twins([other]), strict=True):
            out.append(replace(twin, alone=alone))
    return out


def build_groups(visible: tuple[Group, ...], extras: tuple[Extra, ...]) -> dict[str, Group]:
    """The visible groups, then ``extras`` and ``hidden`` (see the module docstring)."""
    cases = []
    for name, hyper in extras:
        for dtype in (torch.float64, torch.float32):
            tag = str(dtype).removeprefix("torch.")
            h = {k: (v.to(dtype) if isinstance(v, torch.Tensor) else v) for k, v in hyper.items()}
            cases.append(Case("extras", f"{name} ({tag})", h, dtype=dtype, steps=30, seed=None,
                              second={"lr": 0.5 * float(hyper.get("lr", 1e-2))}))
    twins = [
        replace(t, group="hidden", name=f"{g.name}: {t.name}")
        for g in visible for t in hidden_twins(g.cases) if t.dtype == torch.float32
    ]
    hidden = (Group("extras", tuple(cases), hidden=True),
              Group("hidden", tuple(twins) + tuple(replace(c, group="hidden") for c in cases),
                    hidden=True))
    return {g.name: g for g in (*visible, *hidden)}


def select(table: dict[str, Group], groups: str | list[str] | None,
           hidden: bool = False, owner: str = "the optimizer") -> list[Case]:
    """The cases of the named groups of ``table`` (all visible groups when ``groups`` is None).

    With ``hidden=True``, the hidden twins of those groups' cases instead (groups that are
    hidden already, ``extras`` and ``hidden``, are returned as they are).
    """
    if groups is None:
        chosen = [g for g in table.values() if not g.hidden]
    else:
        names = [groups] if isinstance(groups, str) else list(groups)
        unknown = [n for n in names if n not in table]
        if unknown:
            raise KeyError(f"{owner} has no group(s) {unknown}; groups: {', '.join(table)}")
        chosen = [table[n] for n in names]
    out: list[Case] = []
    for g in chosen:
        out.extend(hidden_twins(g.cases) if hidden and not g.hidden else g.cases)
    return out
