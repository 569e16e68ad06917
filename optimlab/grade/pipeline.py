"""The instructor pipeline on nbgrader: submissions in, grades table, feedback and CSV out.

Everything runs in a grading folder (``grading/`` by default) that holds nbgrader's working
files and the gradebook; the course's ``source/`` is copied in, never written to.
"""

from __future__ import annotations

import csv
import os
import shutil
import warnings
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from . import sandbox as sandboxed
from .course import assignments as course_assignments
from .course import nbgrader
from .worker import WITHDRAWN, Graded, copy_notebooks, grade_submission, last_error, make_template

DEFAULT_ZIP_REGEX = r".*_(?P<student_id>\w+)_attempt_(?P<timestamp>[0-9\-]+)_(?P<file_id>\w+)"
# What collect_folder copies at most (Pipeline.max_file_bytes / max_submission_bytes)
MAX_FILE_BYTES = 50 * 1024**2
MAX_SUBMISSION_BYTES = 200 * 1024**2
MAX_NAME = 128  # the gradebook keeps student ids and notebook names in String(128)

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
    sandbox: str = "bwrap"
    """How student code ran: ``bwrap`` (isolated) or ``none``."""

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


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot make a sandbox here; the message says what to do."""


NO_SANDBOX = ("grading WITHOUT a sandbox (--sandbox=none): student code runs as you, can read "
              "your files and other submissions, and can change other students' grades")


class Pipeline:
    """A grading folder: release, collect, autograde, feedback, export.

    Student code runs in kernels limited to ``memory_gb`` of address space and ``timeout``
    seconds per cell; every submission is re-checked outside its kernel.
    """

    def __init__(self, course: Path, workdir: Path, db_url: str | None = None,
                 progress: Progress = print, timeout: int | None = None,
                 memory_gb: float = 4.0, sandbox: str = "bwrap",
                 notebook_timeout: float = 900.0) -> None:
        if sandbox not in ("bwrap", "none"):
            raise ValueError(f"sandbox must be 'bwrap' or 'none', not {sandbox!r}")
        if sandbox == "bwrap":
            why = sandboxed.unavailable()
            if why is not None:
                raise SandboxUnavailable(f"optimlab grade refuses to run student code without "
                                         f"a sandbox: {why}")
        self.sandbox = sandbox
        self._late: Any = None  # nbgrader's late-penalty preprocessor, made on first use
        self.limits = sandboxed.Limits(wall_s=notebook_timeout,
                                       memory_bytes=int(memory_gb * 1024**3) + 2 * 1024**3)
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
        (startup / "01-optimlab-record.py").write_text(KERNEL_RECORDING)
        shutil.copytree(course / "source", self.workdir / "source", dirs_exist_ok=True)
        shutil.copy(course / "nbgrader_config.py", self.workdir / "nbgrader_config.py")

    def run(self, *args: str) -> None:
        """An nbgrader command on the real gradebook (no student code: autograde runs in
        :func:`optimlab.grade.worker.grade_submission`)."""
        nbgrader([*args, f"--db={self.db_url}", "--log-level=WARN"], self.workdir)

    # ------------------------------------------------------------------ collecting
    max_file_bytes: int = MAX_FILE_BYTES
    max_submission_bytes: int = MAX_SUBMISSION_BYTES
    max_reports: int = 20  # per submission; the rest are counted

    def collect_folder(self, folder: Path, assignments: Iterable[str], *,
                       trust_timestamps: bool = False) -> list[str]:
        """Copy ``<student>/<assignment>/`` into nbgrader's ``submitted/``, regular files only.

        Symlinks are never followed nor copied; odd names, special, unreadable and oversized
        files are skipped. Each is reported per student and never raises: the rest of the class
        is still collected. A student's ``timestamp.txt`` (nbgrader reads it for late penalties,
        and students can write it) is used only with ``trust_timestamps``.
        """
        wanted = set(assignments)
        problems: list[str] = []
        try:
            students = _scan(folder)
        except OSError as exc:
            return [f"{folder}: cannot read the submissions folder ({_why(exc)})"]
        for student in students:
            name = student.name
            try:
                if student.is_symlink():
                    problems.append(f"{_shown(name)}: ignored symlinked student folder "
                                    "(symlinks are not collected)")
                    continue
                if not student.is_dir(follow_symlinks=False):
                    continue
                odd = _odd_name(name)
                if odd:
                    problems.append(f"{name!r}: student folder skipped: its name {odd}")
                    continue
                for a_dir in _scan(Path(student.path)):
                    problems += self._collect_one(name, a_dir, wanted, trust_timestamps)
            except OSError as exc:
                problems.append(f"{_shown(name)}: not collected ({_why(exc)})")
        return problems

    def _collect_one(self, student: str, a_dir: os.DirEntry[str], wanted: set[str],
                     trust_timestamps: bool) -> list[str]:
        """One ``<student>/<assignment>`` entry, replacing what was collected before."""
        tag = f"{student}/{_shown(a_dir.name)}"
        if a_dir.is_symlink():
            return [f"{tag}: ignored symlinked assignment folder (symlinks are not collected)"]
        if not a_dir.is_dir(follow_symlinks=False):
            return []
        if a_dir.name not in wanted:
            return [f"{student}: unknown assignment {a_dir.name!r}, skipped"]
        target = self.workdir / "submitted" / student / a_dir.name
        try:
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)  # even if nothing is copied: "no notebook" is reported
            notes = self._copy_files(Path(a_dir.path), target, tag, trust_timestamps)
        except OSError as exc:
            return [f"{tag}: not collected ({_why(exc)})"]
        if len(notes) > self.max_reports:
            notes[self.max_reports:] = [f"{tag}: ... and {len(notes) - self.max_reports} more "
                                        "things not collected"]
        return notes + self.fix_names(student, a_dir.name, target)

    def _copy_files(self, src: Path, dest: Path, tag: str, trust_timestamps: bool
                    ) -> list[str]:
        """Copy the regular files under ``src`` to the same relative paths under ``dest``,
        notebooks first (so that data files cannot crowd out what is graded), within the size
        limits. Walks with scandir and lstat only: nothing a symlink points to is read."""
        notes: list[str] = []
        found: list[tuple[str, int]] = []  # relative path, size
        todo = [""]
        while todo:  # a stack, not recursion: a deep tree cannot exhaust Python's stack
            rel_dir = todo.pop()
            try:
                entries = _scan(src / rel_dir)
            except OSError as exc:
                notes.append(f"{tag}: ignored folder {rel_dir!r} ({_why(exc)})")
                continue
            for entry in entries:
                rel = os.path.join(rel_dir, entry.name)
                try:
                    if entry.is_symlink():  # first: nothing else may look through it
                        notes.append(f"{tag}: ignored symlink {rel!r} (symlinks are not "
                                     "collected)")
                    elif odd := _odd_name(entry.name):
                        notes.append(f"{tag}: ignored {rel!r}: its name {odd}")
                    elif entry.is_dir(follow_symlinks=False):
                        todo.append(rel)
                    elif not entry.is_file(follow_symlinks=False):
                        notes.append(f"{tag}: ignored {rel!r}: not a regular file")
                    elif rel == "timestamp.txt" and not trust_timestamps:
                        notes.append(f"{tag}: ignored timestamp.txt from the student's folder "
                                     "(pass trust_timestamps to use it)")
                    else:
                        found.append((rel, entry.stat(follow_symlinks=False).st_size))
                except OSError as exc:
                    notes.append(f"{tag}: ignored {rel!r} ({_why(exc)})")
        total = 0
        for rel, size in sorted(found, key=lambda f: (not f[0].endswith(".ipynb"), f[0])):
            if size > self.max_file_bytes:
                notes.append(f"{tag}: ignored {rel!r}: {_size(size)}, over the "
                             f"{_size(self.max_file_bytes)} limit for one file")
                continue
            if total + size > self.max_submission_bytes:
                notes.append(f"{tag}: ignored {rel!r}: the submission would be over "
                             f"{_size(self.max_submission_bytes)} in all")
                continue
            try:
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / rel, dest / rel)
                total += size
            except OSError as exc:
                notes.append(f"{tag}: ignored {rel!r}: cannot copy it ({_why(exc)})")
        return notes

    def fix_names(self, student: str, assignment: str, folder: Path) -> list[str]:
        """A single notebook handed in under another name is graded as the expected one."""
        expected = sorted(p.name for p in (self.workdir / "source" / assignment).glob("*.ipynb"))
        handed = sorted(p.name for p in folder.glob("*.ipynb")
                        if p.is_file() and not p.is_symlink())
        if len(expected) == 1 and len(handed) == 1 and handed != expected:
            try:
                (folder / handed[0]).rename(folder / expected[0])
            except OSError as exc:  # e.g. a folder already has the expected name
                return [f"{student}/{assignment}: could not rename {handed[0]!r} -> "
                        f"{expected[0]!r} for grading ({_why(exc)})"]
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
    def grade(self, assignments: list[str], jobs: int = 1) -> Report:
        """Autograde every collected submission, ``jobs`` at a time, then write feedback and
        the grades CSV. Each submission runs in its own scratch course folder (see
        :mod:`optimlab.grade.worker`); only this thread writes the gradebook."""
        problems: list[str] = []
        if self.sandbox == "none":
            self.say(f"WARNING: {NO_SANDBOX}")
        guard = GradebookGuard(self.workdir, self.db_url)
        for i, a in enumerate(assignments, 1):
            students = self.students(a)
            if not students:
                continue
            step = f"[{i}/{len(assignments)}] {a}"
            self.say(f"{step}: release into the gradebook")
            problems += guard.check()
            self.run("generate_assignment", a, "--force")
            guard.save()
            ready = []
            for s in students:
                unreadable = self.unreadable(s, a)
                if unreadable:
                    problems.append(f"{s}/{a}: not graded: {unreadable}")
                else:
                    ready.append(s)
            problems += self._grade_students(a, ready, jobs, step, guard)
            self.say(f"{step}: feedback")
            problems += guard.check()
            try:
                self.run("generate_feedback", a, "--force")
            except RuntimeError as exc:
                problems.append(f"{a}: feedback failed for some students: {last_error(str(exc))}")
            guard.save()
        problems += guard.check()
        csv_path = self.workdir / "grades.csv"
        self.run("export", f"--to={csv_path}")
        rows, maxima = self.read_rows(assignments, problems)
        if self.sandbox == "none":
            problems.append(f"WARNING: these grades were made {NO_SANDBOX.split(':')[0]}")
            self.say(f"WARNING: {NO_SANDBOX}")
        return Report(rows, self.workdir, csv_path, self.workdir / "feedback", problems, maxima,
                      sandbox=self.sandbox)

    def _grade_students(self, assignment: str, students: list[str], jobs: int, step: str,
                        guard: GradebookGuard) -> list[str]:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        if not students:
            return []
        problems: list[str] = []
        template = make_template(self.workdir / "source", self.workdir / "nbgrader_config.py",
                                 self.workdir / ".ipython", assignment,
                                 gradebook=guard.db if guard.active else None)
        master = self.workdir / "source" / assignment
        extensions = self.extensions(assignment)
        try:
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                futures = {pool.submit(
                    grade_submission, template, self.workdir / "submitted" / s / assignment,
                    master, s, assignment, timeout=self.timeout,
                    extension=extensions.get(s), sandbox=self.sandbox,
                    limits=self.limits): s for s in students}
                for done, future in enumerate(as_completed(futures), 1):
                    s = futures[future]
                    try:
                        result = future.result()
                    except Exception as exc:  # a bug of ours: report it, grade the others
                        problems.append(f"{s}/{assignment}: not graded: {type(exc).__name__}: "
                                        f"{exc}")
                        continue
                    try:
                        problems += result.problems
                        if result.ok:
                            problems += guard.check()
                            self.merge(result)
                            guard.save()
                    finally:
                        if result.folder is not None:
                            shutil.rmtree(result.folder, ignore_errors=True)
                    self.say(f"{step}: graded {done}/{len(students)} ({s}, "
                             f"{result.seconds:.0f} s)")
        finally:
            shutil.rmtree(template, ignore_errors=True)
        return problems

    def extensions(self, assignment: str) -> dict[str, timedelta]:
        """Extensions granted in the gradebook (formgrader), so late penalties honour them."""
        from nbgrader.api import Gradebook, MissingEntry

        found = {}
        with Gradebook(self.db_url) as gb:
            try:
                for sub in gb.find_assignment(assignment).submissions:
                    if sub.extension:
                        found[sub.student_id] = sub.extension
            except MissingEntry:
                pass
        return found

    def merge(self, result: Graded) -> None:
        """Write one worker's grades into the gradebook, keeping the grader's manual scores
        and comments (as nbgrader's own autograde does), and copy the autograded notebooks."""
        from nbgrader.api import Gradebook

        s, a = result.student, result.assignment
        with Gradebook(self.db_url) as gb, warnings.catch_warnings():
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
                ours = set()  # cells whose manual score an older optimlab's re-check set
                for comment in nb.comments:
                    ours |= _withdrawn_cells(comment.manual_comment)
                notes = []
                for grade in nb.grades:
                    auto, extra, needs = mine.grades.get(grade.name, (None, None, True))
                    grade.auto_score, grade.extra_credit = auto, extra
                    if grade.name in ours:
                        grade.manual_score = None
                    grade.needs_manual_grade = needs or grade.manual_score is not None
                    why = result.withdrawn.get((nb.name, grade.name))
                    if why is not None:
                        notes.append(f"{grade.name}: {WITHDRAWN}: {why}")
                # the feedback shows comments under solution cells: one of them (the same each
                # time) carries the reasons
                comments = sorted(nb.comments, key=lambda c: c.name)
                for k, comment in enumerate(comments):
                    comment.auto_comment = mine.comments.get(comment.name)
                    kept = [ln for ln in (comment.manual_comment or "").splitlines()
                            if not _withdrawn_cells(ln)]
                    lines = kept + (notes if k == 0 else [])
                    comment.manual_comment = "\n".join(lines) or None
            gb.db.commit()
            self._late_penalties(gb, sub)
        src = result.autograded()
        if src is not None and src.is_dir():
            copy_notebooks(src, self.workdir / "autograded" / s / a)

    def _late_penalties(self, gb: Any, sub: Any) -> None:
        """nbgrader's late penalties, computed here from the trusted timestamp and the
        course's configured plugin (in the sandbox, the student's code could set its own)."""
        from nbgrader.preprocessors import AssignLatePenalties
        from traitlets.config.loader import PyFileConfigLoader

        if self._late is None:
            config = PyFileConfigLoader("nbgrader_config.py", path=str(self.workdir)).load_config()
            self._late = AssignLatePenalties(config=config)
            self._late.init_plugin()
        late = sub.total_seconds_late
        for nb in sub.notebooks:
            nb.late_submission_penalty = None
            if late > 0:
                penalty = self._late.plugin_inst.late_submission_penalty(
                    sub.student.id, nb.score, late)
                if penalty is not None:
                    nb.late_submission_penalty = self._late._check_late_penalty(nb, penalty)
        gb.db.commit()

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
                        net = sub.score - (sub.late_submission_penalty or 0.0)  # as the CSV
                        rows.append(Row(s, a, net, sub.max_score, sub.needs_manual_grade))
                    except MissingEntry:
                        why = next((p for p in problems if p.startswith(f"{s}/{a}:")), "")
                        rows.append(Row(s, a, None, assignment.max_score, problem=why))
        return rows, maxima


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda e: e.name)


def _odd_name(name: str) -> str | None:
    """Why a file or folder name is not collected, or None. Names reach nbgrader, the
    gradebook and one-line reports, so: UTF-8, printable, at most MAX_NAME characters."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 (surrogate-escaped by os)
        return "is not UTF-8"
    if not name.isprintable():
        return "has unprintable characters (a newline, a tab, ...)"
    if len(name) > MAX_NAME:
        return f"is over {MAX_NAME} characters"
    return None


def _shown(name: str) -> str:
    """A name as it can go into a one-line report (print() cannot encode lone surrogates)."""
    return name if _odd_name(name) is None else repr(name)


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__  # without the path: it may not be printable


def _size(n: int) -> str:
    return f"{n / 1024**2:.1f} MiB" if n >= 1024**2 else f"{n} bytes"


def _withdrawn_cells(comment: str | None) -> set[str]:
    return {ln.split(":", 1)[0] for ln in (comment or "").splitlines() if WITHDRAWN in ln}


class GradebookGuard:
    """Keeps an SQLite gradebook as this process last wrote it.

    Submissions run in scratch folders, but their code runs as the grader's user and could
    find the real gradebook. After each of our writes the guard keeps the file's bytes (in
    memory, out of a submission's reach); before the next write, and at the end, a changed
    file is put back and reported.
    """

    def __init__(self, workdir: Path, db_url: str) -> None:
        self.db = workdir / "gradebook.db"
        self.active = db_url == f"sqlite:///{self.db}"
        self.good: bytes | None = None
        self.save()

    def _read(self) -> bytes | None:
        return self.db.read_bytes() if self.db.exists() else None

    def save(self) -> None:
        if self.active:
            self.good = self._read()

    def check(self) -> list[str]:
        if not self.active or self.good is None or self._read() == self.good:
            return []
        self.db.write_bytes(self.good)
        return ["the gradebook was changed by something other than the grader while "
                "submissions ran; it was restored from the last good copy"]


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
