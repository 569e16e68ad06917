"""Sample submissions made from the masters, and plain nbgrader in a scratch copy of the course.

:func:`submission_with` (an honest submission, or one with a learner's answer in place) makes the
demo class (:mod:`optimlab.grade.demo`), the benchmarks' submissions and the tests'.
:class:`Course` runs nbgrader alone on them (release, autograde in the kernel, feedback, scores):
``tests/test_course.py`` grades the masters with it. ``optimlab grade`` does not build on
:class:`Course`: it grades in a sandbox and judges outside the kernel
(:mod:`optimlab.grade.pipeline`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from .course import generate_assignment, masters, nbgrader, scratch_course


def solution_code(source: str) -> str:
    """A master cell's source with the solution markers removed (the solution kept)."""
    return "\n".join(
        line for line in source.splitlines()
        if not re.match(r"\s*### (BEGIN|END) SOLUTION\s*$", line)
    )


def submission_with(master: Path, replace: dict[str, str] | None = None) -> Any:
    """A complete, honest submission: the master with solutions in place and tests as released.

    ``replace`` maps a solution cell's ``grade_id`` to other code (a learner's answer).
    """
    from nbgrader.utils import is_solution

    nb = nbformat.read(master, as_version=4)
    for cell in nb.cells:
        if is_solution(cell) and cell.cell_type == "code":
            gid = cell.metadata.nbgrader.get("grade_id")
            cell.source = (replace or {}).get(gid, solution_code(cell.source))
    return nb


@dataclass
class Grades:
    """Scores read back from the gradebook: ``scores[student] = (score, max_score)``."""

    scores: dict[str, tuple[float, float]]
    feedback: dict[str, list[Path]]


class Course:
    """A scratch nbgrader course made from the masters, for grading submissions."""

    def __init__(self, source_course: Path, root: Path) -> None:
        self.root = scratch_course(source_course, root)
        self.source_course = source_course

    def generate(self, assignment: str) -> None:
        generate_assignment(self.root, assignment)

    def submit(self, student: str, assignment: str, notebooks: dict[str, Any]) -> None:
        """Place ``{filename: notebook or text}`` as the student's submission."""
        folder = self.root / "submitted" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        for name, nb in notebooks.items():
            text = nb if isinstance(nb, str) else nbformat.writes(nb)
            (folder / name).write_text(text, encoding="utf-8")

    def autograde(self, assignment: str) -> None:
        """nbgrader autograde and feedback, as plain nbgrader runs them (a child process: the
        submissions' code runs in its kernels)."""
        nbgrader(["autograde", assignment, "--force", "--create", "--log-level=WARN"], self.root)
        nbgrader(["generate_feedback", assignment, "--force", "--log-level=WARN"], self.root)

    def grades(self, assignment: str) -> Grades:
        from nbgrader.api import Gradebook

        scores, feedback = {}, {}
        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gb:
            for sub in gb.assignment_submissions(assignment):
                scores[sub.student.id] = (sub.score, sub.max_score)
                folder = self.root / "feedback" / sub.student.id / assignment
                feedback[sub.student.id] = sorted(folder.glob("*.html"))
        return Grades(scores, feedback)

    def masters(self, assignment: str) -> list[Path]:
        return masters(self.source_course, assignment)
