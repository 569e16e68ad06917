"""The instructor pipeline on nbgrader: submissions in, grades table, feedback and CSV out.

Everything runs in a grading folder (``grading/`` by default) that holds nbgrader's working
files and the gradebook; the course's ``source/`` is copied in, never written to. The steps:
collect (:mod:`~optimlab.grade.collect`), release each assignment into the gradebook, grade each
submission in a worker (:mod:`~optimlab.grade.worker`: nbgrader autograde in a sandbox, then
the trusted judge), merge into the gradebook from this thread
(:mod:`~optimlab.grade.gradebook`), feedback, CSV export, and the report
(:mod:`~optimlab.grade.report`).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from . import collect, gradebook
from . import course as nbcourse
from . import sandbox as sandboxed
from .report import Report
from .worker import Graded, grade_submission, last_error, make_template, write_kernel_startup

Progress = Callable[[str], None]


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot make a sandbox here; the message says what to do."""


NO_SANDBOX = ("grading WITHOUT a sandbox (--sandbox=none): student code runs as you, can read "
              "your files and other submissions, and can change other students' grades")


class Pipeline:
    """A grading folder: release, collect, autograde, feedback, export.

    Student code runs in kernels limited to ``memory_gb`` of address space and ``timeout``
    seconds per cell; every submission is re-checked outside its kernel. ``progress`` gets a
    line for each step and each graded submission; with ``progress_bar`` (a terminal), grading
    shows one tqdm bar over the class instead (students × assignments, naming the submission
    being graded, with an ETA) on ``bar_file`` (stdout by default), and the steps' lines are
    written above it.
    """

    max_file_bytes: int = collect.MAX_FILE_BYTES
    max_submission_bytes: int = collect.MAX_SUBMISSION_BYTES
    max_reports: int = collect.MAX_REPORTS

    def __init__(self, course: Path, workdir: Path, db_url: str | None = None,
                 progress: Progress = print, timeout: int | None = None,
                 memory_gb: float = 4.0, sandbox: str = "bwrap",
                 notebook_timeout: float = 900.0, progress_bar: bool = False,
                 bar_file: TextIO | None = None) -> None:
        if sandbox not in ("bwrap", "none"):
            raise ValueError(f"sandbox must be 'bwrap' or 'none', not {sandbox!r}")
        if sandbox == "bwrap":
            why = sandboxed.unavailable()
            if why is not None:
                raise SandboxUnavailable(f"optimlab grade refuses to run student code without "
                                         f"a sandbox: {why}")
        self.sandbox = sandbox
        self.limits = sandboxed.Limits(wall_s=notebook_timeout,
                                       memory_bytes=int(memory_gb * 1024**3) + 2 * 1024**3)
        self.workdir = workdir.resolve()
        self.db_url = db_url or f"sqlite:///{self.workdir / 'gradebook.db'}"
        self._say = progress
        self.progress_bar = progress_bar
        self.bar_file = bar_file
        self._active: Any = None  # the class's tqdm bar while grade() runs with one
        self.timeout = timeout
        self.late = gradebook.LatePenalties(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_kernel_startup(self.workdir / ".ipython", int(memory_gb * 1024**3))
        nbcourse.scratch_course(course, self.workdir)

    # ------------------------------------------------------------------ collecting
    def collect_folder(self, folder: Path, assignments: Iterable[str], *,
                       trust_timestamps: bool = False) -> list[str]:
        """Copy ``<student>/<assignment>/`` into nbgrader's ``submitted/`` (see
        :class:`optimlab.grade.collect.Collector`); the problems, one line each."""
        collector = collect.Collector(self.workdir / "submitted", self.workdir / "source",
                                      self.max_file_bytes, self.max_submission_bytes,
                                      self.max_reports)
        return collector.folder(folder, assignments, trust_timestamps=trust_timestamps)

    def collect_zip(self, archive: Path, assignment: str, regex: str | None = None) -> None:
        """An LMS download (one zip per assignment) through ``nbgrader zip_collect``."""
        collect.collect_zip(self.workdir, archive, assignment, regex, self.db_url)

    def students(self, assignment: str) -> list[str]:
        return collect.students(self.workdir / "submitted", assignment)

    # ------------------------------------------------------------------ progress
    def say(self, msg: str) -> None:
        """A line of progress: through ``progress``, or above the bar while one shows."""
        if self._active is not None:
            self._active.write(msg, file=self._active.fp)
        else:
            self._say(msg)

    def _bar(self, total: int) -> Any:
        """The class's progress bar (tqdm), or None for a line per submission."""
        if not self.progress_bar or total == 0:
            return None
        from tqdm import tqdm

        return tqdm(total=total, desc="grading", unit="submission", dynamic_ncols=True,
                    file=self.bar_file or sys.stdout, mininterval=0.5)

    # ------------------------------------------------------------------ grading
    def grade(self, assignments: list[str], jobs: int = 1) -> Report:
        """Autograde every collected submission, ``jobs`` at a time, then write feedback and
        the grades CSV. Each submission runs in its own scratch course folder (see
        :mod:`optimlab.grade.worker`); only this thread writes the gradebook."""
        self._active = self._bar(sum(len(self.students(a)) for a in assignments))
        try:
            return self._grade(assignments, jobs)
        finally:
            if self._active is not None:
                self._active.close()
            self._active = None

    def _grade(self, assignments: list[str], jobs: int) -> Report:
        problems: list[str] = []
        not_graded: dict[tuple[str, str], str] = {}
        if self.sandbox == "none":
            self.say(f"WARNING: {NO_SANDBOX}")
        guard = gradebook.GradebookGuard(self.workdir, self.db_url)
        notes = gradebook.WithdrawalNotes(self.workdir / gradebook.NOTES_FILE)
        for i, a in enumerate(assignments, 1):
            students = self.students(a)
            if not students:
                continue
            step = f"[{i}/{len(assignments)}] {a}"
            self.say(f"{step}: release into the gradebook")
            problems += guard.check()
            nbcourse.generate_assignment(self.workdir, a, self.db_url)
            guard.save()
            ready = []
            for s in students:
                why = collect.unreadable(self.workdir / "submitted" / s / a)
                if why:
                    problems.append(f"{s}/{a}: not graded: {why}")
                    not_graded[(s, a)] = problems[-1]
                    if self._active is not None:
                        self._active.update()
                else:
                    ready.append(s)
            problems += self._grade_students(a, ready, jobs, step, guard, notes, not_graded)
            self.say(f"{step}: feedback")
            problems += guard.check()
            try:
                nbcourse.generate_feedback(self.workdir, a, self.db_url)
            except RuntimeError as exc:
                problems.append(f"{a}: feedback failed for some students: {last_error(str(exc))}")
            guard.save()
        problems += guard.check()
        csv_path = self.workdir / "grades.csv"
        nbcourse.export_grades(self.workdir, csv_path, self.db_url)
        rows, maxima = gradebook.read_rows(self.db_url, assignments, self.students, not_graded)
        if self.sandbox == "none":
            problems.append(f"WARNING: these grades were made {NO_SANDBOX.split(':')[0]}")
            self.say(f"WARNING: {NO_SANDBOX}")
        return Report(rows, self.workdir, csv_path, self.workdir / "feedback", problems, maxima,
                      sandbox=self.sandbox)

    def _grade_students(self, assignment: str, students: list[str], jobs: int, step: str,
                        guard: gradebook.GradebookGuard, notes: gradebook.WithdrawalNotes,
                        not_graded: dict[tuple[str, str], str]) -> list[str]:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        if not students:
            return []
        problems: list[str] = []
        template = make_template(self.workdir, assignment,
                                 gradebook=guard.db if guard.active else None)
        master = self.workdir / "source" / assignment
        extensions = gradebook.extensions(self.db_url, assignment)
        bar = self._active

        def one(s: str) -> Graded:
            if bar is not None:  # name the submission that starts now
                bar.set_description_str(f"{step} {s}", refresh=False)
            return grade_submission(template, self.workdir / "submitted" / s / assignment,
                                    master, s, assignment, timeout=self.timeout,
                                    extension=extensions.get(s), sandbox=self.sandbox,
                                    limits=self.limits)

        try:
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                futures = {pool.submit(one, s): s for s in students}
                for done, future in enumerate(as_completed(futures), 1):
                    s = futures[future]
                    try:
                        result = future.result()
                    except Exception as exc:  # a bug of ours: report it, grade the others
                        problems.append(f"{s}/{assignment}: not graded: {type(exc).__name__}: "
                                        f"{exc}")
                        not_graded[(s, assignment)] = problems[-1]
                        if bar is not None:
                            bar.update()
                        continue
                    try:
                        problems += result.problems
                        if result.ok:
                            problems += guard.check()
                            self._merge(result, notes)
                            guard.save()
                        elif result.problems:
                            not_graded[(s, assignment)] = result.problems[0]
                    finally:
                        if result.folder is not None:
                            shutil.rmtree(result.folder, ignore_errors=True)
                    if bar is not None:
                        bar.set_postfix_str(f"last: {s}, {result.seconds:.0f} s", refresh=False)
                        bar.update()
                    else:
                        self.say(f"{step}: graded {done}/{len(students)} ({s}, "
                                 f"{result.seconds:.0f} s)")
        finally:
            shutil.rmtree(template, ignore_errors=True)
        return problems

    def _merge(self, result: Graded, notes: gradebook.WithdrawalNotes) -> None:
        gradebook.merge(self.db_url, result, notes, self.late, self.workdir / "autograded")


def known_assignments(course: Path, requested: Iterable[str] | None) -> list[str]:
    known = nbcourse.assignments(course)
    chosen = list(requested or known)
    unknown = [a for a in chosen if a not in known]
    if unknown:
        raise ValueError(f"unknown assignment(s) {unknown}; known: {', '.join(known)}")
    return chosen
