"""A demo class, built from the masters so it never goes stale: five sample students whose
submissions show what the pipeline does with complete, partial, blank, mistaken and broken work.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from .course import ROOT, masters
from .scratch import solution_code, submission_with

ASSIGNMENTS = ["01_gradient_descent", "04_adagrad", "07_adam"]

#: (assignment, solution grade_id) -> (text in the solution, replacement): one catalogued mistake
MISTAKES = {
    ("04_adagrad", "adagrad_step"): ("(t - 1) * lr_decay", "t * lr_decay"),
    ("07_adam", "adam_step"): ('        v = state["max_exp_avg_sq"]\n', ""),
}

#: student -> assignment -> what they hand in
CLASS: dict[str, dict[str, str]] = {
    "ada_complete": {a: "solution" for a in ASSIGNMENTS},
    "ben_partial": {"01_gradient_descent": "first exercise only", "04_adagrad": "solution"},
    "cy_blank": {a: "blank" for a in ASSIGNMENTS},
    "dee_mistakes": {"01_gradient_descent": "solution", "04_adagrad": "mistake",
                     "07_adam": "mistake"},
    "eve_broken": {"01_gradient_descent": "not a notebook", "04_adagrad": "solution",
                   "07_adam": "solution"},
}

#: The scores the demo must produce (the end-to-end test asserts them); None = not gradable.
EXPECTED: dict[str, dict[str, float | None]] = {
    "ada_complete": {"01_gradient_descent": 8, "04_adagrad": 9, "07_adam": 9},
    "ben_partial": {"01_gradient_descent": 2, "04_adagrad": 9},
    "cy_blank": {"01_gradient_descent": 0, "04_adagrad": 0, "07_adam": 0},
    "dee_mistakes": {"01_gradient_descent": 8, "04_adagrad": 7, "07_adam": 7},
    "eve_broken": {"01_gradient_descent": None, "04_adagrad": 9, "07_adam": 9},
}


def notebook_for(course: Path, assignment: str, kind: str) -> str:
    """The text of one sample submission."""
    (master,) = masters(course, assignment)
    if kind == "solution":
        return nbformat.writes(submission_with(master))
    if kind == "blank":
        return (ROOT / "notebooks" / assignment / master.name).read_text(encoding="utf-8")
    if kind == "not a notebook":
        return '{"cells": [ this is not JSON'
    from nbgrader.utils import is_solution

    nb = nbformat.read(master, as_version=4)
    solutions = [c for c in nb.cells if is_solution(c) and c.cell_type == "code"]
    if kind == "first exercise only":
        first = solutions[0].metadata.nbgrader["grade_id"]
        stub = "# YOUR CODE HERE\nraise NotImplementedError()"
        return nbformat.writes(submission_with(master, {
            c.metadata.nbgrader["grade_id"]: stub for c in solutions[1:]
        } | {first: solution_code(solutions[0].source)}))
    if kind == "mistake":
        (gid, (old, new)), = [(g, m) for (a, g), m in MISTAKES.items() if a == assignment]
        cell = next(c for c in solutions if c.metadata.nbgrader["grade_id"] == gid)
        code = solution_code(cell.source)
        assert old in code, f"demo mistake for {assignment} no longer applies"
        return nbformat.writes(submission_with(master, {gid: code.replace(old, new)}))
    raise ValueError(kind)


def write_class(course: Path, folder: Path) -> Path:
    """Write the sample submissions as ``folder/<student>/<assignment>/<notebook>.ipynb``."""
    for student, work in CLASS.items():
        for assignment, kind in work.items():
            (master,) = masters(course, assignment)
            target = folder / student / assignment / master.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(notebook_for(course, assignment, kind), encoding="utf-8")
    return folder
