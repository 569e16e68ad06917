"""Hostile and broken submissions, graded together with honest ones in one class: exact
scores, a reason in the log or the feedback, a row for every student, an intact gradebook,
and the same grades when the class is graded again, serially after in parallel."""

from __future__ import annotations

import sqlite3

import pytest

from optimlab.pipeline import Pipeline

from .hostile import ASSIGNMENT, CLASS, make_course, write_class

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
        pipe = Pipeline(course, work, progress=lambda msg: None, timeout=15)
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
