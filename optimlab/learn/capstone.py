"""The capstone loads the learner's own step functions from their earlier notebooks.

A function counts as the learner's when its notebook is there, its cell runs, and it passes the
visible ``basic`` check; otherwise the capstone uses optimlab's reference and says why. A step
function that calls another of the learner's functions (``muon_step`` calls ``newton_schulz``)
has that function's cell run first (:data:`NEEDS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import torch

from ..check import check
from ..check.guard import TimeLimitExceeded, time_limit
from ..optimizers import SPECS

#: optimizer -> (assignment, solution cell grade_id, function name), from the registry
EXERCISES: dict[str, tuple[str, str, str]] = {
    s.name: (s.notebook, f"{s.name}_step", f"{s.name}_step")
    for s in SPECS.values() if s.capstone and s.notebook
}

#: optimizer -> grade_ids of the cells (same notebook) its step function calls, run first
NEEDS: dict[str, tuple[str, ...]] = {"muon": ("newton_schulz",)}


@dataclass
class Loaded:
    """A step function and where it came from."""

    name: str
    step_fn: Callable[..., Any]
    yours: bool
    why: str

    def __str__(self) -> str:
        return f"{self.name:<9} {'yours' if self.yours else 'reference'}: {self.why}"


def _reference(name: str, why: str) -> Loaded:
    return Loaded(name, SPECS[name].step_fn, False, why)


def load_one(name: str, folder: Path) -> Loaded:
    assignment, grade_id, fn_name = EXERCISES[name]
    path = folder / assignment / f"{assignment}.ipynb"
    if not path.exists():
        return _reference(name, f"{assignment}/{path.name} not found")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # an unreadable notebook is the learner's to fix, not ours
        return _reference(name, f"{path.name} could not be read ({type(exc).__name__})")
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    namespace: dict[str, Any] = {"torch": torch, "math": __import__("math")}
    for cell_id in (*NEEDS.get(name, ()), grade_id):
        cell = cells.get(cell_id)
        if cell is None:
            return _reference(name, f"no `{cell_id}` cell in {path.name}")
        try:
            with time_limit(5):
                exec(compile(cell.source, f"{assignment}:{cell_id}", "exec"), namespace)
        except (Exception, TimeLimitExceeded) as exc:
            which = "your cell" if cell_id == grade_id else f"your `{cell_id}` cell"
            return _reference(name, f"{which} raised {type(exc).__name__} when loaded")
    fn = namespace.get(fn_name)
    if not callable(fn):
        return _reference(name, f"the cell defines no `{fn_name}`")
    result = check(fn, name, "basic", raise_on_failure=False, display=False, time_limit=5)
    if not result.passed:
        kinds = {c.kind for c in result.failures}
        why = ("not written yet" if any("NotImplementedError" in (c.traceback or "")
                                        for c in result.failures)
               else f"it does not pass the basic check yet ({', '.join(sorted(kinds))})")
        return _reference(name, why)
    return Loaded(name, fn, True, f"from {assignment}, passes the basic check")


def load_step_functions(folder: str | Path = "..") -> dict[str, Loaded]:
    """Each optimizer's step function: the learner's own where it works, else the reference."""
    return {name: load_one(name, Path(folder)) for name in EXERCISES}
