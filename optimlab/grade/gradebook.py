"""The real gradebook: what the pipeline's main thread writes and reads back.

:func:`merge` writes one worker's result (:class:`optimlab.grade.worker.Graded`) the way
nbgrader's own autograde does, keeping the grader's manual scores and comments; late penalties
come from the trusted timestamp and the course's configured plugin (:class:`LatePenalties`);
:class:`WithdrawalNotes` keeps, as data, the notes on withdrawn points written into the comments;
:class:`GradebookGuard` puts back a gradebook that something else changed; :func:`read_rows`
reads the grades table.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from . import course
from .collect import copy_regular_files
from .report import Row
from .worker import UNGRADED, Graded

WITHDRAWN = "points withdrawn: judged outside your notebook's kernel, the test fails"
MAX_FEEDBACK_BYTES = 100 * 1024**2
"""What of a submission's autograded folder is copied for its feedback, at most."""
NOTES_FILE = "withdrawn.json"


def merge(db_url: str, result: Graded, notes: WithdrawalNotes, late: LatePenalties,
          autograded: Path) -> None:
    """Write one worker's grades into the gradebook, keeping the grader's manual scores and
    comments (as nbgrader's own autograde does); note withdrawn points in the comments the
    feedback shows; copy the autograded notebooks to ``autograded/<student>/<assignment>``."""
    from nbgrader.api import Gradebook

    s, a = result.student, result.assignment
    with Gradebook(db_url) as gb, warnings.catch_warnings():
        # nbgrader's add_submission trips SQLAlchemy's autoflush warnings; they are harmless
        warnings.simplefilter("ignore", category=Warning)
        gb.update_or_create_student(s)
        sub = gb.update_or_create_submission(a, s, timestamp=result.timestamp)
        for nb in sub.notebooks:
            mine = result.notebooks.get(nb.name)
            if mine is None:
                continue
            nb.flagged = mine.flagged
            nb.late_submission_penalty = mine.late_penalty
            for grade in nb.grades:
                cell = mine.grades.get(grade.name, UNGRADED)
                grade.auto_score, grade.extra_credit = cell.auto, cell.extra
                grade.needs_manual_grade = cell.needs_manual or grade.manual_score is not None
            # the feedback shows comments under solution cells: one of them (the same each
            # time) carries the reasons; last time's lines go, the grader's own stay
            before = notes.get(a, s, nb.name)
            now = {w.cell: w.reason for w in result.withdrawn if w.notebook == nb.name}
            comments = sorted(nb.comments, key=lambda c: c.name)
            for k, comment in enumerate(comments):
                comment.auto_comment = mine.comments.get(comment.name)
                lines = (comment.manual_comment or "").splitlines()
                if before is not None and comment.name == before.comment:
                    ours = set(before.lines())
                    lines = [ln for ln in lines if ln not in ours]
                if k == 0:
                    lines += Withdrawn(comment.name, now).lines()
                comment.manual_comment = "\n".join(lines) or None
            notes.put(a, s, nb.name, Withdrawn(comments[0].name if comments else None, now)
                      if now else None)
        gb.db.commit()
        late.apply(gb, sub)
    notes.save()
    src = result.autograded()
    if src is not None and src.is_dir():
        dest = autograded / s / a
        shutil.rmtree(dest, ignore_errors=True)
        copy_regular_files(src, dest, MAX_FEEDBACK_BYTES)


# ------------------------------------------------------------------ withdrawn points
@dataclass
class Withdrawn:
    """The points withdrawn in one notebook of one submission, and the comment cell whose
    manual comment says so (None where the notebook has no comment cell)."""

    comment: str | None
    cells: dict[str, str] = field(default_factory=dict)  # grade_id: the judge's reason

    def lines(self) -> list[str]:
        """The lines written into the comment."""
        return [f"{cell}: {WITHDRAWN}: {why}" for cell, why in self.cells.items()]


class WithdrawalNotes:
    """The points withdrawn from each submission and the comment lines that say so, kept as
    data in ``withdrawn.json`` in the grading folder, so that the next merge takes exactly
    those lines out of the comment (and leaves the grader's own lines alone).

    A JSON file rather than a table in the gradebook: nbgrader's schema has no place for it,
    a table of ours would go with the gradebook into every submission's scratch copy and
    outlive nbgrader's own student removal, and only the next merge from this grading folder
    reads it. Written whole and atomically after each merge; kept by :class:`GradebookGuard`
    while submissions run. Missing or unreadable, it is empty: last run's lines stay in the
    comments until the grader edits them, and no grade depends on it.
    """

    VERSION = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, dict[str, Withdrawn]]] = {}
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not (isinstance(raw, dict) and raw.get("version") == self.VERSION):
            return
        for a, by_student in _dict(raw.get("submissions")).items():
            for s, by_notebook in _dict(by_student).items():
                for nb, entry in _dict(by_notebook).items():
                    entry = _dict(entry)
                    comment = entry.get("comment")
                    cells = {str(k): str(v) for k, v in _dict(entry.get("cells")).items()}
                    if cells and (comment is None or isinstance(comment, str)):
                        self.put(a, s, nb, Withdrawn(comment, cells))

    def get(self, assignment: str, student: str, notebook: str) -> Withdrawn | None:
        return self._data.get(assignment, {}).get(student, {}).get(notebook)

    def put(self, assignment: str, student: str, notebook: str, entry: Withdrawn | None
            ) -> None:
        by_notebook = self._data.setdefault(assignment, {}).setdefault(student, {})
        if entry is None or not entry.cells:
            by_notebook.pop(notebook, None)
        else:
            by_notebook[notebook] = entry

    def save(self) -> None:
        data = {"version": self.VERSION, "submissions": {
            a: {s: {nb: {"comment": w.comment, "cells": w.cells} for nb, w in nbs.items()}
                for s, nbs in by_student.items() if nbs}
            for a, by_student in self._data.items()}}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                       encoding="utf-8")
        os.replace(tmp, self.path)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# ------------------------------------------------------------------ late penalties, extensions
class LatePenalties:
    """nbgrader's late penalties, computed here from the trusted timestamp and the course's
    configured plugin (in the sandbox, the student's code could set its own)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._pre: Any = None  # nbgrader's AssignLatePenalties, made on first use

    def apply(self, gb: Any, sub: Any) -> None:
        from nbgrader.preprocessors import AssignLatePenalties

        if self._pre is None:
            self._pre = AssignLatePenalties(config=course.course_config(self.root))
            self._pre.init_plugin()
        late = sub.total_seconds_late
        for nb in sub.notebooks:
            nb.late_submission_penalty = None
            if late > 0:
                penalty = self._pre.plugin_inst.late_submission_penalty(
                    sub.student.id, nb.score, late)
                if penalty is not None:
                    nb.late_submission_penalty = self._pre._check_late_penalty(nb, penalty)
        gb.db.commit()


def extensions(db_url: str, assignment: str) -> dict[str, timedelta]:
    """Extensions granted in the gradebook (formgrader), so late penalties honour them."""
    from nbgrader.api import Gradebook, MissingEntry

    found = {}
    with Gradebook(db_url) as gb:
        try:
            for sub in gb.find_assignment(assignment).submissions:
                if sub.extension:
                    found[sub.student_id] = sub.extension
        except MissingEntry:
            pass
    return found


# ------------------------------------------------------------------ reading
def read_rows(db_url: str, assignments: list[str], students: Callable[[str], list[str]],
              not_graded: dict[tuple[str, str], str]) -> tuple[list[Row], dict[str, float]]:
    """A row for each collected submission (``students(assignment)``), with its score net of
    late penalties (as nbgrader's CSV), or none and the reason (``not_graded``); and each
    assignment's maximum."""
    from nbgrader.api import Gradebook, MissingEntry

    rows, maxima = [], {}
    with Gradebook(db_url) as gb:
        for a in assignments:
            try:
                assignment = gb.find_assignment(a)
            except MissingEntry:
                continue
            maxima[a] = assignment.max_score
            for s in students(a):
                try:
                    sub = gb.find_submission(a, s)
                    net = sub.score - (sub.late_submission_penalty or 0.0)
                    rows.append(Row(s, a, net, sub.max_score, sub.needs_manual_grade))
                except MissingEntry:
                    rows.append(Row(s, a, None, assignment.max_score,
                                    problem=not_graded.get((s, a), "")))
    return rows, maxima


# ------------------------------------------------------------------ the guard
class GradebookGuard:
    """Keeps an SQLite gradebook (and the withdrawal notes beside it) as this process last
    wrote them.

    Submissions run in scratch folders, but their code runs as the grader's user and could
    find the real files. After each of our writes the guard keeps the files' bytes (in memory,
    out of a submission's reach); before the next write, and at the end, a changed file is put
    back and reported.
    """

    def __init__(self, workdir: Path, db_url: str) -> None:
        self.db = workdir / "gradebook.db"
        self.active = db_url == f"sqlite:///{self.db}"
        self.files = ([self.db] if self.active else []) + [workdir / NOTES_FILE]
        self.good: dict[Path, bytes | None] = {}
        self.save()

    @staticmethod
    def _read(path: Path) -> bytes | None:
        return path.read_bytes() if path.exists() else None

    def save(self) -> None:
        self.good = {path: self._read(path) for path in self.files}

    def check(self) -> list[str]:
        problems = []
        for path, good in self.good.items():
            if self._read(path) == good:
                continue
            if good is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(good)
            what = "gradebook" if path == self.db else f"file {path.name}"
            problems.append(f"the {what} was changed by something other than the grader while "
                            "submissions ran; it was restored from the last good copy")
        return problems
