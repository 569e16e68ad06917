"""Hostile and broken submissions, graded together with honest ones in one class: exact
scores, a reason in the log or the feedback, a row for every student, an intact gradebook,
and the same grades when the class is graded again, serially after in parallel."""

from __future__ import annotations

import os
import site
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from optimlab.grade.course import ROOT
from optimlab.grade.pipeline import Pipeline
from optimlab.grade.sandbox import unavailable as sandbox_unavailable

from .hostile import (
    ASSIGNMENT,
    CLASS,
    DAEMON_MARK,
    HOST_TRACES,
    ISOLATION,
    SANDBOX,
    make_course,
    write_class,
    write_isolation_class,
)

STUDENTS = list(CLASS)
HALVES = [STUDENTS[::2], STUDENTS[1::2]]


@pytest.mark.slow(seconds=280)
@pytest.mark.parametrize("students", HALVES, ids=["first-half", "second-half"])
def test_hostile_class(students, tmp_path, monkeypatch):
    monkeypatch.setenv("OPTIMLAB_TIME_LIMIT", "2")
    course = make_course(tmp_path / "course")
    submissions = write_class(tmp_path / "submissions", students)
    work = tmp_path / "grading"

    def grade(jobs):
        pipe = Pipeline(course, work, progress=lambda msg: None, timeout=15, sandbox=SANDBOX)
        problems = pipe.collect_folder(submissions, [ASSIGNMENT])
        report = pipe.grade([ASSIGNMENT], jobs=jobs)
        report.problems[:0] = problems
        return report

    report = grade(jobs=2)
    rows = {r.student: r for r in report.rows}
    assert set(rows) == set(students), "a row for every student"
    for student in students:
        _, _, expected, words = CLASS[student]
        row = rows[student]
        assert (row.score or 0.0) == expected, (student, row, report.problems)
        if words:
            log = "\n".join(p for p in report.problems if p.startswith(student + "/"))
            feedback = "".join(p.read_text(encoding="utf-8", errors="replace")
                               for p in (report.feedback / student).rglob("*.html"))
            assert words in log or words in feedback, (student, log)
    db = work / "gradebook.db"
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        graded = con.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0]
    assert graded == sum(1 for r in report.rows if r.score is not None)
    assert not (work / "evil.txt").exists()
    again = grade(jobs=1)  # graded again, one at a time: the same grades
    assert again.scores() == report.scores()


@pytest.mark.slow(seconds=200)
@pytest.mark.skipif(sandbox_unavailable() is not None, reason=str(sandbox_unavailable()))
def test_isolation_class(tmp_path, monkeypatch):
    """Attacks on the judge, on other students and on the grader, in the sandbox: each attacker
    gets what its honest work earns, honest students after them get full marks, and nothing is
    left behind on the host."""
    monkeypatch.setenv("OPTIMLAB_TIME_LIMIT", "2")
    course = make_course(tmp_path / "course")
    master = course / "source" / ASSIGNMENT / "hostile.ipynb"
    submissions = write_isolation_class(tmp_path / "submissions", master)
    traces = [Path(os.path.expanduser(p)) for p in HOST_TRACES]
    before = {p: p.exists() for p in traces}
    site_before = {p: sorted(os.listdir(p)) for p in site.getsitepackages()}
    # A private temporary folder: the hostile class on another xdist worker grades the same
    # assignment, so its scratch folders in the shared /tmp are none of this test's business.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    env_before = dict(os.environ)

    pipe = Pipeline(course, tmp_path / "grading", progress=lambda msg: None, timeout=15,
                    notebook_timeout=60)
    problems = pipe.collect_folder(submissions, [ASSIGNMENT])
    report = pipe.grade([ASSIGNMENT], jobs=2)
    report.problems[:0] = problems

    rows = {r.student: r for r in report.rows}
    for student, (_, _, expected, words) in ISOLATION.items():
        row = rows.get(student)
        assert ((row.score if row else None) or 0.0) == expected, (student, row,
                                                                    report.problems)
        if words:
            log = "\n".join(p for p in report.problems if p.startswith(student + "/"))
            feedback = "".join(p.read_text(encoding="utf-8", errors="replace")
                               for p in (report.feedback / student).rglob("*.html"))
            assert words in log or words in feedback, (student, log)
    with sqlite3.connect(tmp_path / "grading" / "gradebook.db") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # nothing left on the host: files, site-packages, the checkout, the environment, processes
    assert {p: p.exists() for p in traces} == before
    assert {p: sorted(os.listdir(p)) for p in site.getsitepackages()} == site_before
    assert not (ROOT / "sitecustomize.py").exists()
    assert {k: v for k, v in os.environ.items() if not k.startswith("TORCHINDUCTOR")} == {
        k: v for k, v in env_before.items() if not k.startswith("TORCHINDUCTOR")}  # torch's own
    assert sorted(scratch.glob("optimlab-*")) == []  # every scratch course folder was removed
    left = subprocess.run(["pgrep", "-f", f"sleep {DAEMON_MARK}"], capture_output=True)
    assert left.returncode == 1, left.stdout
