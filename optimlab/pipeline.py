"""The instructor pipeline on nbgrader: submissions in, grades table, feedback and CSV out.

Everything runs in a grading folder (``grading/`` by default) that holds nbgrader's working
files and the gradebook; the course's ``source/`` is copied in, never written to.
"""

from __future__ import annotations

import contextlib
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


KERNEL_LIMITS = """\
# Written by optimlab's grading pipeline: limits for every kernel that runs student code.
import resource as _r
_r.setrlimit(_r.RLIMIT_AS, ({memory}, {memory}))
del _r
"""


class Pipeline:
    """A grading folder: release, collect, autograde, feedback, export.

    Student code runs in kernels limited to ``memory_gb`` of address space and ``timeout``
    seconds per cell; every submission is re-checked outside its kernel.
    """

    def __init__(self, course: Path, workdir: Path, db_url: str | None = None,
                 progress: Progress = print, timeout: int | None = None,
                 memory_gb: float = 4.0) -> None:
        self.course = course
        self.workdir = workdir.resolve()
        self.db_url = db_url or f"sqlite:///{self.workdir / 'gradebook.db'}"
        self.say = progress
        self.timeout = timeout
        self.workdir.mkdir(parents=True, exist_ok=True)
        ipython = self.workdir / ".ipython"
        startup = ipython / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        (startup / "00-optimlab-limits.py").write_text(
            KERNEL_LIMITS.format(memory=int(memory_gb * 1024**3)))
        self.kernel_env = {"IPYTHONDIR": str(ipython)}
        shutil.copytree(course / "source", self.workdir / "source", dirs_exist_ok=True)
        shutil.copy(course / "nbgrader_config.py", self.workdir / "nbgrader_config.py")

    def run(self, *args: str) -> None:
        extra = [f"--Execute.timeout={self.timeout}"] if self.timeout and args[0] in (
            "autograde",) else []
        nbgrader([*args, *extra, f"--db={self.db_url}", "--log-level=WARN"], self.workdir,
                 env_extra=self.kernel_env)

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
                problems += self.fix_names(student_dir.name, a_dir.name, target)
        return problems

    def fix_names(self, student: str, assignment: str, folder: Path) -> list[str]:
        """A single notebook handed in under another name is graded as the expected one."""
        expected = sorted(p.name for p in (self.workdir / "source" / assignment).glob("*.ipynb"))
        handed = sorted(p.name for p in folder.glob("*.ipynb"))
        if len(expected) == 1 and len(handed) == 1 and handed != expected:
            (folder / handed[0]).rename(folder / expected[0])
            return [f"{student}/{assignment}: notebook renamed {handed[0]!r} -> "
                    f"{expected[0]!r} for grading"]
        return []

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
                snapshot = self.snapshot_gradebook()
                entries = set(self.workdir.iterdir())
                try:
                    self.run("autograde", a, f"--student={s}", "--force", "--create")
                except RuntimeError as exc:
                    problems.append(f"{s}/{a}: autograde failed: {_last_error(str(exc))}")
                problems.extend(self.sweep(entries, s, a))
                damage = self.check_gradebook(snapshot, s)
                if damage:
                    problems.append(f"{s}/{a}: {damage}; gradebook restored, submission not "
                                    "graded")
                    continue
                problems.extend(self.recheck(s, a))
                problems.extend(self.sweep(entries, s, a))
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

    # ------------------------------------------------------------------ hardening
    def snapshot_gradebook(self) -> Path | None:
        """A copy of an SQLite gradebook, taken before a student's code runs."""
        db = self.workdir / "gradebook.db"
        if not self.db_url.startswith("sqlite:///") or not db.exists():
            return None
        copy = self.workdir / ".gradebook.before.db"
        shutil.copy(db, copy)
        return copy

    def check_gradebook(self, snapshot: Path | None, student: str) -> str | None:
        """Restore the gradebook if the student's run damaged it (or other students' rows)."""
        if snapshot is None:
            return None
        db = self.workdir / "gradebook.db"
        before, after = _gradebook_facts(snapshot, student), _gradebook_facts(db, student)
        if after == before and after is not None:
            snapshot.unlink()
            return None
        shutil.copy(snapshot, db)
        snapshot.unlink()
        return ("the gradebook was damaged while this submission ran" if after is None else
                "other students' grades changed while this submission ran")

    def sweep(self, entries: set[Path], student: str, assignment: str) -> list[str]:
        """Remove what a submission wrote next to the gradebook; say so."""
        found = []
        for stray in sorted(set(self.workdir.iterdir()) - entries - {
                self.workdir / "autograded", self.workdir / "gradebook.db",
                self.workdir / ".gradebook.before.db"}):
            found.append(f"{student}/{assignment}: removed {stray.name!r}, written next to the "
                         "gradebook by the submission")
            if stray.is_dir():
                shutil.rmtree(stray, ignore_errors=True)
            else:
                stray.unlink(missing_ok=True)
        return found

    def recheck(self, student: str, assignment: str) -> list[str]:
        """Re-run the tests outside the kernel; take back points the kernel was fooled into."""
        from nbgrader.api import Gradebook, MissingEntry

        from .verdict import verdict

        problems = []
        for master in sorted((self.workdir / "source" / assignment).glob("*.ipynb")):
            graded = self.workdir / "autograded" / student / assignment / master.name
            if not graded.exists():
                continue
            result = verdict(graded, master)
            notes: list[str] = []
            with Gradebook(self.db_url) as gb:
                for cell in gb.find_notebook(master.stem, assignment).grade_cells:
                    try:
                        grade = gb.find_grade(cell.name, master.stem, assignment, student)
                    except MissingEntry:
                        continue
                    outcome = (result.get(cell.name) if isinstance(result, dict)
                               else {"passed": False, "message": result})
                    if outcome is None or outcome["passed"] or not (grade.auto_score or 0) > 0:
                        continue
                    grade.manual_score = 0.0
                    notes.append(f"{cell.name}: points withdrawn: the tests, re-run outside "
                                 f"your notebook's kernel, fail: {outcome['message']}")
                    problems.append(f"{student}/{assignment}: {cell.name}: points withdrawn "
                                    f"({outcome['message'][:160]})")
                # nbgrader keeps comments on solution cells: the first one carries the reasons
                for cell in gb.find_notebook(master.stem, assignment).solution_cells[:1]:
                    if notes:
                        with contextlib.suppress(MissingEntry):
                            comment = gb.find_comment(cell.name, master.stem, assignment,
                                                      student)
                            comment.manual_comment = "\n".join(notes)
                gb.db.commit()
        return problems

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


def _gradebook_facts(db: Path, student: str) -> tuple | None:
    """What a student's run must not change: integrity, and every other student's grades."""
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            if con.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                return None
            rows = con.execute(
                "SELECT s.student_id, a.name, b.name, g.auto_score, g.manual_score "
                "FROM grade g JOIN base_cell b ON g.cell_id = b.id "
                "JOIN submitted_notebook n ON g.notebook_id = n.id "
                "JOIN submitted_assignment s ON n.assignment_id = s.id "
                "JOIN assignment a ON s.assignment_id = a.id "
                "WHERE s.student_id != ? ORDER BY 1, 2, 3", (student,)).fetchall()
            students = con.execute("SELECT COUNT(*) FROM student").fetchone()[0]
            return (tuple(rows), students >= 0)
        finally:
            con.close()
    except sqlite3.Error:
        return None


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
