"""A PostgreSQL gradebook, written by parallel grading: a local server on loopback, a small class
graded two at a time into it, exact grades read back through nbgrader and the CSV export."""

from __future__ import annotations

import pytest

from optimlab.grade.pipeline import Pipeline
from optimlab.grade.report import read_csv

from .hostile import ASSIGNMENT, CLASS, SANDBOX, make_course, write_class
from .postgres import Unavailable, local_server

STUDENTS = ["honest", "honest_alt", "raises_in_step", "patches_allclose", "calls_sys_exit",
            "writes_the_gradebook"]


@pytest.fixture(scope="module")
def postgres_url():
    try:
        with local_server() as url:
            yield url
    except Unavailable as exc:
        pytest.skip(f"no PostgreSQL server to test against: {exc}")


@pytest.mark.slow(seconds=50)
def test_parallel_grading_into_postgres(postgres_url, tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    monkeypatch.setenv("OPTIMLAB_TIME_LIMIT", "2")
    course = make_course(tmp_path / "course")
    submissions = write_class(tmp_path / "submissions", STUDENTS)
    pipe = Pipeline(course, tmp_path / "grading", db_url=postgres_url,
                    progress=lambda msg: None, timeout=15, sandbox=SANDBOX)
    pipe.collect_folder(submissions, [ASSIGNMENT])
    report = pipe.grade([ASSIGNMENT], jobs=2)

    expected = {s: float(CLASS[s][2]) for s in STUDENTS}
    assert {r.student: r.score or 0.0 for r in report.rows} == expected, report.problems
    assert not (tmp_path / "grading" / "gradebook.db").exists(), "nothing went to SQLite"
    with Gradebook(postgres_url) as gb:
        stored = {s.student_id: s.score for s in gb.find_assignment(ASSIGNMENT).submissions}
    graded = expected  # every one: the sandbox's gradebook is a scratch copy, read for nothing
    assert stored == graded
    exported = {row["student_id"]: float(row["score"]) for row in read_csv(report.csv)
                if row["assignment"] == ASSIGNMENT}
    assert {s: exported[s] for s in graded} == graded
