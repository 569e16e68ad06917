"""The cases the checker runs, grouped so nbgrader cells can give partial credit.

Each optimizer has *visible* groups (``basic`` first, then one per hyperparameter the notebook
teaches). Hidden tests use ``select(..., hidden=True)``: the same cases in float32 and float64 on
a gradient sequence drawn fresh for each run, so no answer can be written down in advance; and
the ``extras`` group: all flags at once, extreme but valid values, and tensor learning rates.
``hidden`` is all of that at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

#: The tensors every case updates: 0-d, 1-D, 2-D, a non-contiguous view, an empty tensor,
#: a 1-D tensor with always-zero coordinates, and a second 1-D tensor of the same shape as
#: the first (so state shared between tensors shows up as wrong numbers, not only as a crash).
SHAPES: tuple[tuple[int, ...], ...] = ((), (5,), (3, 4), (4, 3), (0,), (6,), (5,))


@dataclass(frozen=True)
class CheckCase:
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
    seed: int | None = 0
    """``None`` draws a fresh gradient sequence on every run (hidden groups)."""

    def __post_init__(self) -> None:
        if self.lr_change and "lr" not in self.hyper:
            raise ValueError(f"case {self.name!r}: an lr schedule needs an explicit lr")

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
    name: str
    cases: tuple[CheckCase, ...]
    hidden: bool = False


def _g(group: str, *cases: tuple[str, dict[str, Any]] | CheckCase, **common: Any) -> Group:
    out = []
    for c in cases:
        out.append(c if isinstance(c, CheckCase) else CheckCase(group, c[0], c[1], **common))
    return Group(group, tuple(out))


def hidden_twins(cases: tuple[CheckCase, ...] | list[CheckCase]) -> list[CheckCase]:
    """Hidden versions of visible cases: the same settings in float32 and in float64, each on a
    gradient sequence drawn fresh for every run."""
    out = []
    for c in cases:
        for dtype in (torch.float32, torch.float64):
            tag = str(dtype).removeprefix("torch.")
            out.append(replace(c, name=f"{c.name} (hidden, {tag})", dtype=dtype, seed=None))
    return out


def _hidden(visible: list[Group], extra: list[tuple[str, dict[str, Any]]]) -> list[Group]:
    """``extras`` (all flags at once, extreme values, tensor lrs, in both dtypes) and ``hidden``
    (the hidden twins of every visible case, plus the extras)."""
    extras = []
    for name, hyper in extra:
        for dtype in (torch.float64, torch.float32):
            tag = str(dtype).removeprefix("torch.")
            h = {k: (v.to(dtype) if isinstance(v, torch.Tensor) else v) for k, v in hyper.items()}
            extras.append(CheckCase("extras", f"{name} ({tag})", h, dtype=dtype, steps=30,
                                    seed=None, second={"lr": 0.5 * float(hyper.get("lr", 1e-2))}))
    twins = [
        replace(t, group="hidden", name=f"{g.name}: {t.name}")
        for g in visible for t in hidden_twins(g.cases) if t.dtype == torch.float32
    ]
    return [Group("extras", tuple(extras), hidden=True),
            Group("hidden", tuple(twins) + tuple(replace(c, group="hidden") for c in extras),
                  hidden=True)]


def _schedule(lr: float) -> CheckCase:
    """lr cut to a fifth from step 10, as a scheduler would: a function that keeps the first
    lr (or anything computed from it) in ``state`` passes every other case and fails this one."""
    return CheckCase("basic", "an lr schedule", {"lr": lr}, lr_change=(10, 0.2))


def _lr(x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


def _build() -> dict[str, dict[str, Group]]:
    out: dict[str, dict[str, Group]] = {}

    def add(name: str, visible: list[Group], extra: list[tuple[str, dict[str, Any]]]) -> None:
        out[name] = {g.name: g for g in visible + _hidden(visible, extra)}

    add("gd", [
        _g("basic", ("default lr", {}), ("lr=0.1", {"lr": 0.1}),
           CheckCase("basic", "two lrs", {"lr": 0.1}, second={"lr": 0.02}),
           _schedule(0.1)),
    ], [("tensor lr", {"lr": _lr(0.05)}), ("lr=0", {"lr": 0.0})])

    add("sgd", [
        _g("basic", ("lr=0.1", {"lr": 0.1}),
           CheckCase("basic", "two lrs", {"lr": 0.1}, second={"lr": 0.02}),
           _schedule(0.1)),
        _g("weight_decay", ("weight_decay", {"lr": 0.1, "weight_decay": 0.1})),
        _g("maximize", ("maximize", {"lr": 0.1, "maximize": True, "weight_decay": 0.1})),
        _g("momentum", ("momentum", {"lr": 0.05, "momentum": 0.9}),
           ("dampening", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
           ("momentum with weight_decay", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1}),
           CheckCase("momentum", "momentum with an lr schedule", {"lr": 0.05, "momentum": 0.9},
                     lr_change=(10, 0.2))),
        _g("nesterov", ("nesterov", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
           CheckCase("nesterov", "nesterov with an lr schedule",
                     {"lr": 0.05, "momentum": 0.9, "nesterov": True}, lr_change=(10, 0.2))),
    ], [
        ("all flags", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05,
                       "maximize": True}),
        ("extreme", {"lr": 0.01, "momentum": 0.99, "dampening": 1.0, "weight_decay": 1.0}),
        ("tensor lr", {"lr": _lr(0.05), "momentum": 0.9, "dampening": 0.1}),
    ])

    add("adagrad", [
        _g("basic", ("defaults", {}), ("lr=0.1, eps=0.1", {"lr": 0.1, "eps": 0.1}),
           CheckCase("basic", "two lrs", {"lr": 0.1}, second={"lr": 0.02}),
           _schedule(0.1)),
        _g("lr_decay", ("lr_decay", {"lr": 0.1, "lr_decay": 0.2})),
        _g("initial_accumulator_value", ("initial_accumulator_value",
                                         {"lr": 0.1, "initial_accumulator_value": 0.5})),
        _g("weight_decay", ("weight_decay", {"lr": 0.1, "weight_decay": 0.1})),
        _g("maximize", ("maximize", {"lr": 0.1, "maximize": True}),
           ("maximize with weight_decay", {"lr": 0.1, "maximize": True, "weight_decay": 0.1})),
    ], [
        ("all flags", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.05,
                       "initial_accumulator_value": 0.1, "eps": 1e-6, "maximize": True}),
        ("extreme", {"lr": 1.0, "lr_decay": 1.0, "eps": 1.0, "weight_decay": 1.0}),
        ("tensor lr", {"lr": _lr(0.05)}),
    ])

    add("adadelta", [
        _g("basic", ("defaults", {}), ("lr, rho, eps", {"lr": 0.5, "rho": 0.5, "eps": 1e-3}),
           CheckCase("basic", "two lrs", {"lr": 1.0}, second={"lr": 0.3}),
           _schedule(1.0)),
        _g("weight_decay", ("weight_decay", {"weight_decay": 0.1})),
        _g("maximize", ("maximize", {"maximize": True}),
           ("maximize with weight_decay", {"maximize": True, "weight_decay": 0.1})),
    ], [
        ("all flags", {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.05,
                       "maximize": True}),
        ("extreme", {"lr": 2.0, "rho": 0.0, "eps": 1.0}),
        ("tensor lr", {"lr": _lr(0.5)}),
    ])

    add("rmsprop", [
        _g("basic", ("defaults", {}), ("alpha, eps", {"alpha": 0.9, "eps": 1e-3}),
           CheckCase("basic", "two lrs", {"lr": 1e-2}, second={"lr": 1e-3}),
           _schedule(1e-2)),
        _g("weight_decay", ("weight_decay", {"weight_decay": 0.1})),
        _g("maximize", ("maximize", {"maximize": True}),
           ("maximize with weight_decay", {"maximize": True, "weight_decay": 0.1})),
        _g("centered", ("centered", {"centered": True, "alpha": 0.9})),
        _g("momentum", ("momentum", {"momentum": 0.9}),
           CheckCase("momentum", "momentum with an lr schedule", {"lr": 1e-2, "momentum": 0.9},
                     lr_change=(10, 0.2))),
    ], [
        ("all flags", {"lr": 1e-3, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.05,
                       "momentum": 0.5, "centered": True, "maximize": True}),
        ("extreme", {"lr": 0.1, "alpha": 0.0, "eps": 1.0, "momentum": 0.99}),
        ("tensor lr", {"lr": _lr(1e-3), "momentum": 0.5, "centered": True}),
    ])

    adam_like = [
        ("all flags", {"lr": 1e-2, "betas": (0.85, 0.99), "eps": 1e-6, "weight_decay": 0.05,
                       "amsgrad": True, "maximize": True}),
        ("extreme", {"lr": 0.1, "betas": (0.0, 0.0), "eps": 1.0, "weight_decay": 1.0}),
        ("tensor lr", {"lr": _lr(1e-2), "amsgrad": True}),
    ]
    add("adam", [
        _g("basic", ("defaults", {}), ("lr, betas, eps", {"lr": 1e-2, "betas": (0.8, 0.99),
                                                          "eps": 1e-3}),
           CheckCase("basic", "two lrs", {"lr": 1e-2}, second={"lr": 1e-3}),
           _schedule(1e-2)),
        _g("weight_decay", ("weight_decay (L2)", {"lr": 1e-2, "weight_decay": 0.1})),
        _g("amsgrad", ("amsgrad", {"lr": 1e-2, "amsgrad": True})),
        _g("maximize", ("maximize", {"lr": 1e-2, "maximize": True}),
           ("maximize with weight_decay", {"lr": 1e-2, "maximize": True, "weight_decay": 0.1})),
        _g("decoupled_weight_decay", ("decoupled_weight_decay",
                                      {"lr": 1e-2, "weight_decay": 0.1,
                                       "decoupled_weight_decay": True})),
    ], adam_like)

    add("adamw", [
        _g("basic", ("defaults", {}), ("lr, betas, eps", {"lr": 1e-2, "betas": (0.8, 0.99),
                                                          "eps": 1e-3}),
           CheckCase("basic", "two lrs", {"lr": 1e-2}, second={"lr": 1e-3}),
           _schedule(1e-2)),
        _g("weight_decay", ("weight_decay=0.1", {"lr": 1e-2, "weight_decay": 0.1}),
           ("weight_decay=0", {"lr": 1e-2, "weight_decay": 0.0})),
        _g("amsgrad", ("amsgrad", {"lr": 1e-2, "amsgrad": True})),
        _g("maximize", ("maximize", {"lr": 1e-2, "maximize": True})),
    ], adam_like)

    add("adamax", [
        _g("basic", ("defaults", {}), ("lr, betas, eps", {"lr": 1e-2, "betas": (0.8, 0.99),
                                                          "eps": 1e-3}),
           CheckCase("basic", "two lrs", {"lr": 1e-2}, second={"lr": 1e-3}),
           _schedule(1e-2)),
        _g("weight_decay", ("weight_decay", {"lr": 1e-2, "weight_decay": 0.1})),
        _g("maximize", ("maximize", {"lr": 1e-2, "maximize": True}),
           ("maximize with weight_decay", {"lr": 1e-2, "maximize": True, "weight_decay": 0.1})),
    ], [
        ("all flags", {"lr": 1e-2, "betas": (0.85, 0.99), "eps": 1e-6, "weight_decay": 0.05,
                       "maximize": True}),
        ("extreme", {"lr": 0.1, "betas": (0.0, 0.0), "eps": 1.0, "weight_decay": 1.0}),
        ("tensor lr", {"lr": _lr(1e-2)}),
    ])

    add("nadam", [
        _g("basic", ("defaults", {}), ("lr, betas, eps", {"lr": 1e-2, "betas": (0.8, 0.99),
                                                          "eps": 1e-3}),
           CheckCase("basic", "two lrs", {"lr": 1e-2}, second={"lr": 1e-3}),
           _schedule(1e-2)),
        _g("momentum_decay", ("momentum_decay", {"lr": 1e-2, "momentum_decay": 0.05})),
        _g("weight_decay", ("weight_decay (L2)", {"lr": 1e-2, "weight_decay": 0.1})),
        _g("decoupled_weight_decay", ("decoupled_weight_decay",
                                      {"lr": 1e-2, "weight_decay": 0.1,
                                       "decoupled_weight_decay": True})),
        _g("maximize", ("maximize", {"lr": 1e-2, "maximize": True}),
           ("maximize with weight_decay", {"lr": 1e-2, "maximize": True, "weight_decay": 0.1})),
    ], [
        ("all flags", {"lr": 1e-2, "betas": (0.85, 0.99), "eps": 1e-6, "weight_decay": 0.05,
                       "momentum_decay": 8e-3, "decoupled_weight_decay": True,
                       "maximize": True}),
        ("extreme", {"lr": 0.1, "betas": (0.0, 0.0), "eps": 1.0, "momentum_decay": 1.0}),
        ("tensor lr", {"lr": _lr(1e-2), "weight_decay": 0.1}),
    ])
    return out


GROUPS: dict[str, dict[str, Group]] = _build()


def groups_for(name: str) -> dict[str, Group]:
    """The groups of one optimizer, visible ones first and ``hidden`` last."""
    try:
        return GROUPS[name]
    except KeyError:
        raise KeyError(f"no checker cases for {name!r}; known: {', '.join(GROUPS)}") from None


def select(name: str, groups: str | list[str] | None, hidden: bool = False) -> list[CheckCase]:
    """The cases of the named groups (all visible groups when ``groups`` is None).

    With ``hidden=True``, the hidden twins of those groups' cases instead (groups that are
    hidden already, ``extras`` and ``hidden``, are returned as they are).
    """
    table = groups_for(name)
    if groups is None:
        chosen = [g for g in table.values() if not g.hidden]
    else:
        names = [groups] if isinstance(groups, str) else list(groups)
        unknown = [n for n in names if n not in table]
        if unknown:
            raise KeyError(f"{name} has no group(s) {unknown}; groups: {', '.join(table)}")
        chosen = [table[n] for n in names]
    out: list[CheckCase] = []
    for g in chosen:
        out.extend(hidden_twins(g.cases) if hidden and not g.hidden else g.cases)
    return out
