"""Regrading merges into the gradebook the way nbgrader's autograde does: a grader's manual score
and comment survive, and the note on points the judge withdrew goes when the resubmission is
honest."""

from __future__ import annotations

import pytest

from optimlab.grade.pipeline import Pipeline

from .hostile import ASSIGNMENT, CLASS, NOTEBOOK, SANDBOX, make_course, write_class


@pytest.mark.slow(seconds=50)
def test_regrade_keeps_manual_grades_and_clears_withdrawals(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    monkeypatch.setenv("OPTIMLAB_TIME_LIMIT", "2")
    course = make_course(tmp_path / "course")
    submissions = write_class(tmp_path / "submissions", ["honest", "patches_allclose"])
    pipe = Pipeline(course, tmp_path / "grading", progress=lambda msg: None, timeout=15,
                    sandbox=SANDBOX)
    pipe.collect_folder(submissions, [ASSIGNMENT])
    first = pipe.grade([ASSIGNMENT], jobs=2).scores()
    # patches_allclose: gd_step right (2), sum_of_squares wrong, which its patch hid in the kernel
    assert first == {("honest", ASSIGNMENT): 5.0, ("patches_allclose", ASSIGNMENT): 2.0}

    with Gradebook(pipe.db_url) as gb:  # what a grader does in the formgrader
        grade = gb.find_grade("check_sos", "hostile", ASSIGNMENT, "honest")
        grade.manual_score = 1.5
        comment = gb.find_comment("gd_step", "hostile", ASSIGNMENT, "honest")
        comment.manual_comment = "Nice and short."
        gb.db.commit()
        withdrawn = gb.find_comment("gd_step", "hostile", ASSIGNMENT, "patches_allclose")
        assert "points withdrawn" in withdrawn.manual_comment

    # the cheater hands in honest work; everyone is graded again
    (submissions / "patches_allclose" / ASSIGNMENT / NOTEBOOK).write_text(CLASS["honest"][1])
    pipe.collect_folder(submissions, [ASSIGNMENT])
    report = pipe.grade([ASSIGNMENT], jobs=1)
    assert report.scores() == {("honest", ASSIGNMENT): 3.5, ("patches_allclose", ASSIGNMENT): 5.0}
    rows = {r.student: r for r in report.rows}
    assert rows["honest"].needs_manual and not rows["patches_allclose"].needs_manual
    with Gradebook(pipe.db_url) as gb:
        assert gb.find_comment("gd_step", "hostile", ASSIGNMENT,
                               "honest").manual_comment == "Nice and short."
        assert not gb.find_comment("gd_step", "hostile", ASSIGNMENT,
                                   "patches_allclose").manual_comment
        assert gb.find_grade("check_sos", "hostile", ASSIGNMENT,
                             "patches_allclose").manual_score is None
