"""The instructor pipeline on nbgrader: submissions in, grades table, feedback and CSV out.

Everything runs in a grading folder (``grading/`` by default) that holds nbgrader's working
files and the gradebook; the course's ``source/`` is copied in, never written to.
"""

from __future__ import annotations

import csv
import shutil
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .course import assignments as course_assignments
from .course import nbgrader

DEFAULT_ZIP_REGEX = r".*_(?P<student_id>\w+)_attempt_(?P<timestamp>[0-9\-]+)_(?P<file_id>\w+)"

Progress = Callable[[str], None]


@dataclass
class Row:
    """One student's result on one assignment."""

    student: str
    assignment: str
    score: float | None
    max_score: float
    needs_manual: bool = False
    problem: str | None = None


@dataclass
class Report:
    rows: list[Row]
    workdir: Path
    csv: Path
    feedback: Path
    problems: list[str] = field(default_factory=list)
    max_scores: dict[str, float] = field(default_factory=dict)

    def scores(self) -> dict[tuple[str, str], float | None]:
        return {(r.student, r.assignment): r.score for r in self.rows}

    def table(self) -> str:
        """Students down, assignments across, with totals."""
        students = sorted({r.student for r in self.rows})
        assignments = sorted({r.assignment for r in self.rows})
        by = {(r.student, r.assignment): r for r in self.rows}
        header = ["student", *assignments, "total"]
        lines = [header]
        for s in students:
            cells, total, top = [s], 0.0, 0.0
            for a in assignments:
                r = by.get((s, a))
                if r is None:
                    top += self.max_scores.get(a, 0.0)
                    cells.append("missing")
                    continue
                top += r.max_score
                if r.score is None:
                    cells.append(f"0/{r.max_score:g} !")
                else:
                    total += r.score
                    mark = " *" if r.needs_manual else ""
                    cells.append(f"{r.score:g}/{r.max_score:g}{mark}")
            cells.append(f"{total:g}/{top:g}")
            lines.append(cells)
        widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
        out = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
        out.insert(1, "  ".join("-" * w for w in widths))
        if any(r.needs_manual for r in self.rows):
            out.append("* written answers still to be graded by hand (nbgrader formgrader)")
        if any(r.score is None for r in self.rows):
            out.append("! not graded: see the problems below")
        return "\n".join(out)


class Pipeline:
    """A grading folder: release, collect, autograde, feedback, export."""

    def __init__(self, course: Path, workdir: Path, db_url: str | None = None,
                 progress: Progress = print) -> None:
        self.course = course
        self.workdir = workdir.resolve()
        self.db_url = db_url or f"sqlite:///{self.workdir / 'gradebook.db'}"
        self.say = progress
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(course / "source", self.workdir / "source", dirs_exist_ok=True)
        shutil.copy(course / "nbgrader_config.py", self.workdir / "nbgrader_config.py")

    def run(self, *args: str) -> None:
        nbgrader([*args, f"--db={self.db_url}", "--log-level=WARN"], self.workdir)

    # ------------------------------------------------------------------ collecting
    def collect_folder(self, folder: Path, assignments: Iterable[str]) -> list[str]:
        """Copy ``<student>/<assignment>/*.ipynb`` into nbgrader's ``submitted/``."""
        wanted = set(assignments)
        problems = []
        for student_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            for a_dir in sorted(p for p in student_dir.iterdir() if p.is_dir()):
                if a_dir.name not in wanted:
                    problems.append(f"{student_dir.name}: unknown assignment {a_dir.name!r}, "
                                    "skipped")
                    continue
                target = self.workdir / "submitted" / student_dir.name / a_dir.name
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(a_dir, target)
        return problems

    def collect_zip(self, archive: Path, assignment: str, regex: str | None = None) -> None:
        """An LMS download (one zip per assignment) through ``nbgrader zip_collect``."""
        if not zipfile.is_zipfile(archive):
            raise ValueError(f"{archive} is not a zip file")
        dest = self.workdir / "downloaded" / assignment / "archive"
        shutil.rmtree(dest.parent, ignore_errors=True)
        dest.mkdir(parents=True)
        shutil.copy(archive, dest / archive.name)
        self.run("zip_collect", assignment, "--force",
                 f"--FileNameCollectorPlugin.named_regexp={regex or DEFAULT_ZIP_REGEX}")

    def students(self, assignment: str) -> list[str]:
        root = self.workdir / "submitted"
        if not root.exists():
            return []
        return sorted(p.name for p in root.iterdir() if (p / assignment).is_dir())

    # ------------------------------------------------------------------ grading
    def grade(self, assignments: list[str]) -> Report:
        problems: list[str] = []
        for i, a in enumerate(assignments, 1):
            students = self.students(a)
            if not students:
                continue
            self.say(f"[{i}/{len(assignments)}] {a}: release into the gradebook")
            self.run("generate_assignment", a, "--force")
            for k, s in enumerate(students, 1):
                self.say(f"[{i}/{len(assignments)}] {a}: autograde {k}/{len(students)} ({s})")
                unreadable = self.unreadable(s, a)
                if unreadable:
                    problems.append(f"{s}/{a}: not graded: {unreadable}")
                    continue
                try:
                    self.run("autograde", a, f"--student={s}", "--force", "--create")
                except RuntimeError as exc:
                    problems.append(f"{s}/{a}: autograde failed: {_last_error(str(exc))}")
            self.say(f"[{i}/{len(assignments)}] {a}: feedback")
            try:
                self.run("generate_feedback", a, "--force")
            except RuntimeError as exc:
                problems.append(f"{a}: feedback failed for some students: "
                                f"{_last_error(str(exc))}")
        csv_path = self.workdir / "grades.csv"
        self.run("export", f"--to={csv_path}")
        rows, maxima = self.read_rows(assignments, problems)
        return Report(rows, self.workdir, csv_path, self.workdir / "feedback", problems, maxima)

    def unreadable(self, student: str, assignment: str) -> str | None:
        """Why a submission cannot be graded at all (not a notebook), or None."""
        import nbformat

        folder = self.workdir / "submitted" / student / assignment
        notebooks = sorted(folder.glob("*.ipynb"))
        if not notebooks:
            return "no notebook in the submission"
        for nb_path in notebooks:
            try:
                nbformat.read(nb_path, as_version=4)
            except Exception as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                return (f"{nb_path.name} is not a valid notebook "
                        f"({type(exc).__name__}: {first[:120]})")
        return None

    def read_rows(self, assignments: list[str], problems: list[str]
                  ) -> tuple[list[Row], dict[str, float]]:
        from nbgrader.api import Gradebook, MissingEntry

        rows, maxima = [], {}
        with Gradebook(self.db_url) as gb:
            for a in assignments:
                try:
                    assignment = gb.find_assignment(a)
                except MissingEntry:
                    continue
                maxima[a] = assignment.max_score
                for s in self.students(a):
                    try:
                        sub = gb.find_submission(a, s)
                        rows.append(Row(s, a, sub.score, sub.max_score, sub.needs_manual_grade))
                    except MissingEntry:
                        why = next((p for p in problems if p.startswith(f"{s}/{a}:")), "")
                        rows.append(Row(s, a, None, assignment.max_score, problem=why))
        return rows, maxima


def _last_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln or "error" in ln:
            return ln[:300]
    return lines[-1][:300] if lines else "unknown error"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def known_assignments(course: Path, requested: Iterable[str] | None) -> list[str]:
    known = course_assignments(course)
    chosen = list(requested or known)
    unknown = [a for a in chosen if a not in known]
    if unknown:
        raise ValueError(f"unknown assignment(s) {unknown}; known: {', '.join(known)}")
    return chosen
