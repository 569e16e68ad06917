"""Regrading merges into the gradebook the way nbgrader's autograde does: a grader's manual score
and comment survive, and the note on points the judge withdrew goes when the resubmission is
honest (the withdrawals are kept as data beside the gradebook, not read back from comments)."""

from __future__ import annotations

import pytest

from optimlab.grade.gradebook import NOTES_FILE, WITHDRAWN, WithdrawalNotes, Withdrawn
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
        # a grader's own line stays, even one that quotes the note word for word
        withdrawn.manual_comment += f"\nAgreed: {WITHDRAWN}."
        gb.db.commit()
    kept = WithdrawalNotes(pipe.workdir / NOTES_FILE).get(ASSIGNMENT, "patches_allclose",
                                                          "hostile")
    assert kept is not None and kept.comment == "gd_step" and list(kept.cells) == ["check_sos"]

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
        assert gb.find_comment("gd_step", "hostile", ASSIGNMENT,
                               "patches_allclose").manual_comment == f"Agreed: {WITHDRAWN}."
        assert gb.find_grade("check_sos", "hostile", ASSIGNMENT,
                             "patches_allclose").manual_score is None


def test_withdrawal_notes_round_trip_and_a_bad_file_reads_as_none(tmp_path):
    path = tmp_path / NOTES_FILE
    notes = WithdrawalNotes(path)
    notes.put(ASSIGNMENT, "eve", "hostile", Withdrawn("gd_step", {"check_sos": "wrong sum"}))
    notes.put(ASSIGNMENT, "ada", "hostile", Withdrawn("gd_step", {}))  # nothing withdrawn
    notes.save()
    again = WithdrawalNotes(path)
    assert again.get(ASSIGNMENT, "eve", "hostile") == Withdrawn("gd_step",
                                                                {"check_sos": "wrong sum"})
    assert again.get(ASSIGNMENT, "ada", "hostile") is None
    assert again.get(ASSIGNMENT, "eve", "hostile").lines() == [
        "check_sos: points withdrawn: judged outside your notebook's kernel, the test fails: "
        "wrong sum"]
    for bad in ("{not json", '{"version": 99, "submissions": {}}',
                '{"version": 1, "submissions": {"hostile": {"eve": {"hostile": [1]}}}}'):
        path.write_text(bad)
        assert WithdrawalNotes(path).get(ASSIGNMENT, "eve", "hostile") is None, bad
