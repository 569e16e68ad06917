"""Grade one submission in a scratch copy of the course, away from the real gradebook.

Each submission is autograded by real nbgrader in its own throw-away folder with its own SQLite
gradebook (a copy of a per-assignment template), then re-checked outside the kernel. What comes
back is plain data: the grades and comments nbgrader wrote, the points to withdraw, and the
problems seen. Only the pipeline's main thread writes the real gradebook, so any number of
workers can run at once and nothing a submission does reaches the real gradebook or the grading
folder.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from .course import nbgrader
from .verdict import verdict

WITHDRAWN = "points withdrawn: the tests, re-run outside your notebook's kernel, fail"
# what nbgrader itself writes into a course folder; anything else new is the submission's doing
# Kernels run torch on one thread: grading works on small tensors, and several kernels at once
# (--jobs) with a thread pool each would fight over the cores (OpenMP threads spin while waiting).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
NBGRADER_FILES = {".nbgrader.log", "autograded", "gradebook.db", "release", "submitted"}


@dataclass
class NotebookGrades:
    """nbgrader's results for one notebook of one submission."""

    flagged: bool
    late_penalty: float | None
    grades: dict[str, tuple[float | None, float | None, bool]]  # cell: auto, extra, needs manual
    comments: dict[str, str | None]  # cell: auto comment


@dataclass
class Graded:
    """One student's graded assignment, ready to merge into the real gradebook."""

    student: str
    assignment: str
    problems: list[str] = field(default_factory=list)
    timestamp: datetime | None = None
    notebooks: dict[str, NotebookGrades] = field(default_factory=dict)
    withdrawn: dict[tuple[str, str], str] = field(default_factory=dict)  # (nb, cell): why
    folder: Path | None = None  # the scratch folder; the autograded notebooks are inside
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.notebooks)

    def autograded(self) -> Path | None:
        return None if self.folder is None else (
            self.folder / "autograded" / self.student / self.assignment)


def make_template(course_source: Path, config: Path, ipython: Path, assignment: str,
                  gradebook: Path | None = None) -> Path:
    """A scratch course folder whose SQLite gradebook holds the assignment and no students.

    With ``gradebook`` (the real one, SQLite, the assignment already generated into it) it is a
    copy with every student's rows deleted and the file vacuumed, so no other student's grades
    reach a submission's folder. Otherwise nbgrader generates the assignment afresh.
    """
    root = Path(tempfile.mkdtemp(prefix=f"optimlab-{assignment}-template-"))
    shutil.copytree(course_source, root / "source")
    shutil.copy(config, root / "nbgrader_config.py")
    shutil.copytree(ipython, root / ".ipython")
    if gradebook is not None:
        shutil.copyfile(gradebook, root / "gradebook.db")
        con = sqlite3.connect(root / "gradebook.db")
        try:
            with con:
                for table in ("grade", "comment", "submitted_notebook", "submitted_assignment",
                              "student"):
                    con.execute(f"DELETE FROM {table}")
            con.execute("VACUUM")
        finally:
            con.close()
    else:
        nbgrader(["generate_assignment", assignment, "--force", f"--db={_db_url(root)}",
                  "--log-level=WARN"], root)
    return root


def grade_submission(template: Path, submitted: Path, master: Path, student: str,
                     assignment: str, *, timeout: int | None = None,
                     extension: timedelta | None = None) -> Graded:
    """Autograde and re-check ``submitted`` (a ``<student>/<assignment>`` folder) in a copy of
    ``template``. The caller merges the result and then removes ``result.folder``."""
    import time

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix=f"optimlab-{assignment}-{student}-"))
    shutil.copytree(template, root, dirs_exist_ok=True, symlinks=True)
    shutil.copytree(submitted, root / "submitted" / student / assignment, symlinks=True)
    out = Graded(student, assignment, folder=root)
    tag = f"{student}/{assignment}"
    if extension:
        _set_extension(root, student, assignment, extension)
    entries = set(root.iterdir())
    extra = [f"--Execute.timeout={timeout}"] if timeout else []
    cell_limit = timeout or configured_timeout(root / "nbgrader_config.py")
    try:
        nbgrader(["autograde", assignment, f"--student={student}", "--force", "--create",
                  f"--db={_db_url(root)}", "--log-level=WARN", *extra], root,
                 env_extra={"IPYTHONDIR": str(root / ".ipython"), **ONE_THREAD})
    except RuntimeError as exc:
        out.problems.append(f"{tag}: autograde failed: {last_error(str(exc))}")
    damaged = not _intact(root / "gradebook.db")
    if not damaged:
        _read_grades(root, out)
    graded_dir = out.autograded()
    for nb_name, grades in out.notebooks.items():
        # re-check where the kernel gave points: elsewhere there is nothing to withdraw
        nb, original = graded_dir / f"{nb_name}.ipynb", master / f"{nb_name}.ipynb"
        if not (nb.exists() and original.exists()
                and any((auto or 0) > 0 for auto, _, _ in grades.grades.values())):
            continue
        result = verdict(nb, original, cwd=graded_dir, cell_time_limit=cell_limit)
        for cell, (auto, _, _) in grades.grades.items():
            outcome = (result.get(cell) if isinstance(result, dict)
                       else {"passed": False, "message": result})
            if outcome is None or outcome["passed"] or not (auto or 0) > 0:
                continue
            out.withdrawn[(nb_name, cell)] = outcome["message"]
            out.problems.append(f"{tag}: {cell}: points withdrawn ({outcome['message'][:160]})")
    for stray in sorted(set(root.iterdir()) - entries - {root / n for n in NBGRADER_FILES}):
        out.problems.append(f"{tag}: removed {stray.name!r}, written next to the gradebook "
                            "by the submission")
    if damaged:
        out.problems.append(f"{tag}: the gradebook was damaged while this submission ran; "
                            "submission not graded")
    out.seconds = time.perf_counter() - started
    return out


def configured_timeout(config: Path, default: int = 180) -> int:
    """``Execute.timeout`` as the course's ``nbgrader_config.py`` sets it (``default`` if not)."""
    from traitlets.config.loader import PyFileConfigLoader

    try:
        loaded = PyFileConfigLoader(config.name, path=str(config.parent)).load_config()
    except Exception:  # a config that does not load is nbgrader's to report
        return default
    value = loaded.Execute.get("timeout")
    return int(value) if isinstance(value, (int, float)) and value > 0 else default


def copy_notebooks(src: Path, dest: Path) -> None:
    """Copy the autograded folder's regular files (never links) for nbgrader's feedback."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        rel = Path(dirpath).relative_to(src)
        for d in dirnames:
            if not (Path(dirpath) / d).is_symlink():
                (dest / rel / d).mkdir(exist_ok=True)
        for f in filenames:
            path = Path(dirpath) / f
            if path.is_file() and not path.is_symlink():
                shutil.copyfile(path, dest / rel / f)


def last_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln or "error" in ln:
            return ln[:300]
    return lines[-1][:300] if lines else "unknown error"


def _db_url(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


def _intact(db: Path) -> bool:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            con.close()
    except sqlite3.Error:
        return False


def _set_extension(root: Path, student: str, assignment: str, extension: timedelta) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(_db_url(root)) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student, extension=extension)


def _read_grades(root: Path, out: Graded) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    try:
        with Gradebook(_db_url(root)) as gb:
            try:
                sub = gb.find_submission(out.assignment, out.student)
            except MissingEntry:
                return
            out.timestamp = sub.timestamp
            for nb in sub.notebooks:
                out.notebooks[nb.name] = NotebookGrades(
                    flagged=bool(nb.flagged), late_penalty=nb.late_submission_penalty,
                    grades={g.name: (g.auto_score, g.extra_credit, bool(g.needs_manual_grade))
                            for g in nb.grades},
                    comments={c.name: c.auto_comment for c in nb.comments})
    except Exception as exc:  # a gradebook that passes integrity_check but is not nbgrader's
        out.notebooks.clear()
        out.problems.append(f"{out.student}/{out.assignment}: the gradebook was damaged while "
                            f"this submission ran ({type(exc).__name__}); submission not graded")
