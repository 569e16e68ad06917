"""Grade one submission in a scratch copy of the course, away from the real gradebook.

Each submission is autograded by real nbgrader in its own throw-away folder with its own SQLite
gradebook (a copy of a per-assignment template, :func:`make_template`), in a sandbox
(:mod:`optimlab.grade.sandbox`), then judged outside the kernel (:mod:`optimlab.grade.judge`).
What comes back is plain data (:class:`Graded`): the grades and comments nbgrader wrote, the
points withdrawn, and the problems seen. Only the pipeline's main thread writes the real
gradebook (:mod:`optimlab.grade.gradebook`), so any number of workers can run at once and
nothing a submission does reaches the real gradebook or the grading folder.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from ..check import recording
from ..check.recording import grading_seed
from . import course, judge
from . import sandbox as sandboxed
from .collect import copy_regular_files
from .sandbox import Limits

# Kernels run torch on one thread: grading works on small tensors, and several kernels at once
# (--jobs) with a thread pool each would fight over the cores (OpenMP threads spin while waiting).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# What nbgrader itself writes into a course folder; anything else new is the submission's doing.
NBGRADER_FILES = {".nbgrader.log", "autograded", "gradebook.db", "release", "submitted",
                  "records"}

KERNEL_LIMITS = """\
# Written by optimlab's grading pipeline: limits for every kernel that runs student code.
import resource as _r
_r.setrlimit(_r.RLIMIT_AS, ({memory}, {memory}))
del _r
"""

KERNEL_RECORDING = """\
# Written by optimlab's grading pipeline: record what the tests' checks see
# (optimlab.check.recording).
# The real torch and optimlab are imported first, with nothing relative on sys.path: a `torch/`
# or `optimlab/` handed in beside the notebook cannot stand in for them.
import os as _os, sys as _sys
_saved = _sys.path[:]
_sys.path[:] = [p for p in _saved if p and _os.path.isabs(p) and _os.path.abspath(p) !=
                _os.getcwd()]
import torch, optimlab
# `from`, not `import optimlab.check.recording`: optimlab.check is also the check function
from optimlab.check import recording as _j
_sys.path[:] = _saved
_j.start_recording()
del _j, _os, _sys, _saved
"""


def write_kernel_startup(ipython: Path, memory_bytes: int) -> None:
    """IPython start-up files for the grading kernels (``IPYTHONDIR=ipython``): the address
    space limit, then recording (:func:`optimlab.check.recording.start_recording`)."""
    startup = ipython / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-optimlab-limits.py").write_text(KERNEL_LIMITS.format(memory=memory_bytes))
    (startup / "01-optimlab-record.py").write_text(KERNEL_RECORDING)


@dataclass(frozen=True)
class CellGrade:
    """One graded cell's result, as nbgrader's gradebook keeps it."""

    auto: float | None
    extra: float | None = None
    needs_manual: bool = False


UNGRADED = CellGrade(None, None, True)
"""A cell with no result: a written answer, for the grader."""


@dataclass
class NotebookGrades:
    """The results for one notebook of one submission."""

    flagged: bool
    late_penalty: float | None
    grades: dict[str, CellGrade]  # by grade_id
    comments: dict[str, str | None]  # cell: auto comment


@dataclass(frozen=True)
class Withdrawal:
    """Points the kernel gave that the judge withdrew: the test fails outside the kernel."""

    notebook: str
    cell: str
    reason: str


@dataclass
class Graded:
    """One student's graded assignment, ready to merge into the real gradebook."""

    student: str
    assignment: str
    problems: list[str] = field(default_factory=list)
    timestamp: datetime | None = None
    notebooks: dict[str, NotebookGrades] = field(default_factory=dict)
    withdrawn: list[Withdrawal] = field(default_factory=list)
    folder: Path | None = None  # the scratch folder; the autograded notebooks are inside
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.notebooks)

    def autograded(self) -> Path | None:
        """The autograded notebooks' folder, unless the submission made any part of the path a
        link (to the masters, say, for its feedback to copy)."""
        if self.folder is None:
            return None
        path = self.folder
        for part in ("autograded", self.student, self.assignment):
            path = path / part
            if path.is_symlink() or not path.is_dir():
                return None
        return path


def make_template(workdir: Path, assignment: str, gradebook: Path | None = None) -> Path:
    """A scratch course folder whose SQLite gradebook holds the assignment and no students,
    made from the grading folder ``workdir`` (its masters, config and kernel start-up files).

    With ``gradebook`` (the real one, SQLite, the assignment already generated into it) it is a
    copy with every student removed and the file vacuumed, so no other student's grades reach a
    submission's folder. Otherwise nbgrader generates the assignment afresh.
    """
    root = course.scratch_course(workdir, Path(tempfile.mkdtemp(
        prefix=f"optimlab-{assignment}-template-")))
    shutil.copytree(workdir / ".ipython", root / ".ipython")
    if gradebook is not None:
        shutil.copyfile(gradebook, root / "gradebook.db")
        _remove_students(root / "gradebook.db")
    else:
        course.generate_assignment(root, assignment)
    # The masters hold the solutions, and autograde needs only the gradebook (which holds the
    # test cells) and the submission: nothing of source/ goes where student code runs.
    shutil.rmtree(root / "source")
    return root


def _remove_students(db: Path) -> None:
    """Every student and their submissions out of an SQLite gradebook, then ``VACUUM`` so that
    nothing of theirs is left in the file's free pages."""
    import warnings

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}") as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)  # SQLAlchemy's, on nbgrader's deletes
        for student in [s.id for s in gb.students]:
            gb.remove_student(student)
    con = sqlite3.connect(db)
    try:
        con.execute("VACUUM")
    finally:
        con.close()


def grade_submission(template: Path, submitted: Path, master: Path, student: str,
                     assignment: str, *, timeout: int | None = None,
                     extension: timedelta | None = None, sandbox: str = "bwrap",
                     limits: Limits | None = None) -> Graded:
    """Autograde ``submitted`` (a ``<student>/<assignment>`` folder) in a copy of ``template``,
    in a sandbox, then judge it here on what its functions produced. The caller merges the
    result and then removes ``result.folder``.

    The scores are the trusted side's (:mod:`optimlab.grade.judge`): nbgrader's own, computed
    in the student's kernel, count only for a test cell that calls the student's code directly
    (which can be judged nowhere else), and the report says so.
    """
    import sys
    import time

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix=f"optimlab-{assignment}-{student}-"))
    shutil.copytree(template, root, dirs_exist_ok=True, symlinks=True)
    copy_regular_files(submitted, root / "submitted" / student / assignment)
    out = Graded(student, assignment, folder=root, timestamp=_trusted_timestamp(submitted))
    tag = f"{student}/{assignment}"
    if extension:
        _set_extension(root, student, assignment, extension)
    entries = set(root.iterdir())
    cell_limit = timeout or configured_timeout(root)
    limits = limits or Limits()
    seed = grading_seed()
    records = root / "records"
    env = {"IPYTHONDIR": str(root / ".ipython"), **ONE_THREAD,
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           recording.RECORD_DIR_ENV: str(records), recording.SEED_ENV: str(seed),
           recording.TEST_CELLS_ENV: ",".join(k for nb in sorted(master.glob("*.ipynb"))
                                              for k in judge.test_cell_keys(nb)),
           **{k: v for k, v in os.environ.items() if k.startswith("OPTIMLAB_")
              and k not in (recording.RECORD_DIR_ENV, recording.SEED_ENV,
                            recording.TEST_CELLS_ENV)}}
    args = ["autograde", assignment, f"--student={student}", "--force", "--create",
            f"--db={_db_url(root)}", "--log-level=WARN", f"--Execute.timeout={cell_limit}"]
    ran = sandboxed.run([sys.executable, "-m", "nbgrader", *args], root, env, limits, sandbox)
    if ran.timed_out:
        out.problems.append(f"{tag}: the notebook ran past {limits.wall_s:g} s in all and was "
                            "stopped; tests that had not run get no points")
    elif ran.returncode != 0:
        out.problems.append(f"{tag}: autograde failed: {last_error(ran.log)}")
    kernel = _kernel_grades(root, out)
    for nb_master in sorted(master.glob("*.ipynb")):
        verdicts = judge.judge_notebook(nb_master, records, seed)
        out.notebooks[nb_master.stem] = _trusted_grades(nb_master, verdicts,
                                                        kernel.get(nb_master.stem), out, tag)
    if not (records.is_dir() and any(records.glob("*.pt"))):
        out.problems.append(f"{tag}: no test left a record in the notebook's kernel")
    for stray in sorted(set(root.iterdir()) - entries - {root / n for n in NBGRADER_FILES}):
        out.problems.append(f"{tag}: ignored {stray.name!r}, written next to the gradebook "
                            "by the submission")
    out.seconds = time.perf_counter() - started
    return out


def _trusted_grades(master: Path, verdicts: dict[str, judge.Verdict],
                    kernel: NotebookGrades | None, out: Graded, tag: str) -> NotebookGrades:
    """The grades of one notebook: the judge's for every test cell it can judge."""
    import nbformat
    from nbgrader.utils import is_grade

    grades: dict[str, CellGrade] = {}
    for cell in nbformat.read(master, as_version=4).cells:
        if not is_grade(cell):
            continue
        meta = cell.metadata.nbgrader
        gid, points = meta["grade_id"], float(meta.get("points", 0))
        verdict = verdicts.get(gid)
        said = kernel.grades.get(gid) if kernel else None
        if verdict is None:  # a written answer: graded by hand
            grades[gid] = UNGRADED
            continue
        if not verdict.judged:
            auto = (said.auto if said else None) or 0.0
            grades[gid] = CellGrade(min(auto, points))
            out.problems.append(f"{tag}: {gid}: judged in the kernel only ({verdict.message}); "
                                "route calls of student code through optimlab.call")
            continue
        grades[gid] = CellGrade(points if verdict.passed else 0.0)
        if not verdict.passed and said and (said.auto or 0) > 0:
            out.withdrawn.append(Withdrawal(master.stem, gid, verdict.message))
            out.problems.append(f"{tag}: {gid}: points withdrawn ({verdict.message[:160]})")
    comments = dict(kernel.comments) if kernel else {}
    return NotebookGrades(flagged=False, late_penalty=None, grades=grades, comments=comments)


def _trusted_timestamp(submitted: Path) -> datetime | None:
    """The submission time that collection wrote (LMS or exchange), read here, not in the
    sandbox where the student's code could rewrite it."""
    from nbgrader.utils import parse_utc

    stamp = submitted / "timestamp.txt"
    if stamp.is_symlink() or not stamp.is_file():
        return None
    try:
        return parse_utc(stamp.read_text(encoding="utf-8")[:100].strip())
    except Exception:
        return None


def configured_timeout(root: Path, default: int = 180) -> int:
    """``Execute.timeout`` as the ``nbgrader_config.py`` in ``root`` sets it (``default`` if
    not)."""
    try:
        loaded = course.course_config(root)
    except Exception:  # a config that does not load is nbgrader's to report
        return default
    value = loaded.Execute.get("timeout")
    return int(value) if isinstance(value, (int, float)) and value > 0 else default


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
            con.set_progress_handler(_deadline(10.0), 10_000)
            return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            con.close()
    except sqlite3.Error:
        return False


def _only_tables(db: Path) -> bool:
    """No views or triggers: the student's code could have made a query that never ends."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            con.set_progress_handler(_deadline(5.0), 10_000)
            return con.execute("SELECT COUNT(*) FROM sqlite_master WHERE type IN "
                               "('view', 'trigger')").fetchone()[0] == 0
        finally:
            con.close()
    except sqlite3.Error:
        return False


def _deadline(seconds: float):
    """An SQLite progress handler that stops a query after ``seconds``."""
    import time

    end = time.monotonic() + seconds
    return lambda: 1 if time.monotonic() > end else 0


def _set_extension(root: Path, student: str, assignment: str, extension: timedelta) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(_db_url(root)) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student, extension=extension)


def _kernel_grades(root: Path, out: Graded) -> dict[str, NotebookGrades]:
    """What nbgrader wrote in the sandbox's gradebook: the kernel's scores and comments. The
    student's code could have written there, so these are claims, not grades."""
    from nbgrader.api import Gradebook, MissingEntry

    found: dict[str, NotebookGrades] = {}
    db = root / "gradebook.db"
    if db.is_symlink() or not db.is_file() or not _intact(db) or not _only_tables(db):
        return found
    try:
        with Gradebook(_db_url(root)) as gb:
            try:
                sub = gb.find_submission(out.assignment, out.student)
            except MissingEntry:
                return found
            for nb in sub.notebooks:
                found[nb.name] = NotebookGrades(
                    flagged=bool(nb.flagged), late_penalty=None,
                    grades={g.name: CellGrade(g.auto_score, g.extra_credit,
                                              bool(g.needs_manual_grade)) for g in nb.grades},
                    comments={c.name: (c.auto_comment or "")[:2000] or None
                              for c in nb.comments})
    except Exception:  # a gradebook the submission spoiled: no claims to read
        return {}
    return found
