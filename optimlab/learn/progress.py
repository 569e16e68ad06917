"""``optimlab progress``: a learner's own view of where they stand, without touching their files.

Each notebook is copied to a scratch folder (beside copies of its siblings, which the capstone
reads) and run there; the visible check cells say which exercises pass.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

KERNEL = "python3"
"""The kernelspec every notebook is written for, run with and graded with."""


def run_notebook(nb: Any, folder: Path, *, timeout: int, allow_errors: bool = False) -> Any:
    """Execute ``nb`` in place, as nbval and nbgrader do: a fresh kernel of the pinned
    kernelspec, started in ``folder``, ``timeout`` seconds a cell. Returns ``nb``."""
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name=KERNEL, allow_errors=allow_errors,
                   record_timing=False, resources={"metadata": {"path": str(folder)}}).execute()
    return nb


@dataclass
class Part:
    grade_id: str
    points: float
    passed: bool
    message: str = ""


@dataclass
class NotebookProgress:
    assignment: str
    parts: list[Part]
    problem: str | None = None

    @property
    def done(self) -> int:
        return sum(p.passed for p in self.parts)


def _message(outputs: list) -> str:
    for out in outputs:
        if out.get("output_type") == "error":
            text = out.get("evalue", "")
            lines = [ln for ln in text.splitlines() if ln.strip()]
            keep = [ln for ln in lines if any(k in ln for k in (
                "first wrong", "This looks like", "Hint", "raised", "differs", "expected",
                "not run", "time limit", "did not change"))]
            name = out.get("ename", "Error")
            return "\n".join((keep or lines)[:6]) or name
    return ""


def check_notebook(path: Path, timeout: int = 120) -> NotebookProgress:
    """Run a copy of one notebook; report its graded check cells."""
    from nbgrader.utils import is_grade, is_solution

    assignment = path.parent.name
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        return NotebookProgress(assignment, [], f"cannot read the notebook: {exc}")
    with tempfile.TemporaryDirectory(prefix="optimlab-progress-") as tmp:
        root = Path(tmp)
        for sibling in path.parent.parent.iterdir():
            if sibling.is_dir():
                shutil.copytree(sibling, root / sibling.name,
                                ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        try:
            run_notebook(nb, root / assignment, timeout=timeout, allow_errors=True)
        except Exception as exc:  # a dead kernel, a cell past the timeout
            return NotebookProgress(assignment, [], f"the notebook did not run: {exc}")
    parts = []
    for cell in nb.cells:
        if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell):
            meta = cell.metadata.nbgrader
            msg = _message(cell.get("outputs", []))
            parts.append(Part(meta["grade_id"], meta.get("points", 0), not msg, msg))
    return NotebookProgress(assignment, parts)


def progress(folder: Path, assignments: list[str] | None = None,
             say: Callable[[str], None] = print) -> list[NotebookProgress]:
    """Check every notebook under ``folder/<assignment>/`` and print a summary."""
    paths = sorted(p for p in folder.glob("*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if assignments:
        paths = [p for p in paths if p.parent.name in assignments]
    results = []
    for i, path in enumerate(paths, 1):
        say(f"[{i}/{len(paths)}] running {path.parent.name}/{path.name} ...")
        results.append(check_notebook(path))
    return results


def format_progress(results: list[NotebookProgress]) -> str:
    lines = []
    first_failure = None
    for r in results:
        if r.problem:
            lines.append(f"✗ {r.assignment}: {r.problem}")
            continue
        total = sum(p.points for p in r.parts)
        got = sum(p.points for p in r.parts if p.passed)
        mark = "✓" if r.parts and r.done == len(r.parts) else "·"
        lines.append(f"{mark} {r.assignment:<22} {r.done}/{len(r.parts)} checks pass "
                     f"({got:g}/{total:g} visible points)")
        for p in r.parts:
            if not p.passed:
                lines.append(f"    to do: {p.grade_id}")
                if first_failure is None:
                    first_failure = (r.assignment, p)
    if first_failure:
        a, p = first_failure
        lines.append("")
        lines.append(f"Next: {a} / {p.grade_id}")
        lines.extend("    " + ln for ln in p.message.splitlines())
    elif results:
        lines.append("")
        lines.append("Every visible check passes. (Hidden tests run when your work is graded.)")
    return "\n".join(lines)
