"""The instructor pipeline, end to end on real nbgrader: the demo class's exact scores,
feedback for every graded submission, a CSV, idempotent regrading; LMS zips; progress."""

from __future__ import annotations

import hashlib
import re
import shutil
import zipfile

import nbformat
import pytest

from optimlab.cli import main
from optimlab.grade.course import ROOT, course_dir, masters
from optimlab.grade.demo import ASSIGNMENTS, EXPECTED, write_class
from optimlab.grade.pipeline import Pipeline
from optimlab.grade.report import read_csv
from optimlab.grade.scratch import submission_with

from .hostile import SANDBOX

COURSE = course_dir()


@pytest.mark.slow(seconds=350)
def test_demo_class_end_to_end_and_regrade(tmp_path):
    submissions = write_class(COURSE, tmp_path / "submissions")
    pipe = Pipeline(COURSE, tmp_path / "nbgrader", progress=lambda msg: None, sandbox=SANDBOX)
    assert pipe.collect_folder(submissions, ASSIGNMENTS) == []
    report = pipe.grade(ASSIGNMENTS, jobs=2)
    got = {}
    for row in report.rows:
        got.setdefault(row.student, {})[row.assignment] = row.score
    assert got == EXPECTED
    # every gradable submission has feedback; the broken one is explained, not dropped
    for student, work in EXPECTED.items():
        for assignment, score in work.items():
            html = list((report.feedback / student / assignment).glob("*.html"))
            assert bool(html) == (score is not None), (student, assignment)
    assert any("eve_broken/01_gradient_descent" in p and "not a valid notebook" in p
               for p in report.problems)
    feedback = next((report.feedback / "dee_mistakes" / "04_adagrad").glob("*.html"))
    text = feedback.read_text(encoding="utf-8")
    assert "lr_decay off by one step" in text
    assert "CheckCase(" not in text and "def select(" not in text  # no hidden logic shown
    # the CSV has a row per graded submission, with the same scores
    rows = read_csv(report.csv)
    csv_scores = {(r["student_id"], r["assignment"]): float(r["score"]) for r in rows}
    for student, work in EXPECTED.items():
        for assignment, score in work.items():
            if score is not None:
                assert csv_scores[(student, assignment)] == score
    table = report.table()
    assert "ada_complete" in table and "26/26" in table and "missing" in table
    # grading one assignment again changes nothing (tests/test_regrade.py covers what a regrade
    # keeps and clears; one assignment here keeps this test's time down)
    again = Pipeline(COURSE, tmp_path / "nbgrader", progress=lambda msg: None,
                     sandbox=SANDBOX).grade(["04_adagrad"], jobs=2)
    assert again.scores() == {k: v for k, v in report.scores().items() if k[1] == "04_adagrad"}
    assert len(again.scores()) == len(EXPECTED)
    assert not (ROOT / "notebooks" / "gradebook.db").exists()


@pytest.mark.slow(seconds=30)
def test_grade_an_lms_zip(tmp_path, capsys):
    (master,) = masters(COURSE, "01_gradient_descent")
    archive = tmp_path / "lms.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("01_gradient_descent_ada_attempt_2026-11-25-10-00-00_01_gradient_descent.ipynb",
                   nbformat.writes(submission_with(master)))
        z.writestr("01_gradient_descent_bob_attempt_2026-11-25-11-00-00_01_gradient_descent.ipynb",
                   (ROOT / "notebooks" / "01_gradient_descent" / master.name).read_text())
    rc = main(["grade", str(archive), "--assignment", "01_gradient_descent",
               "--workdir", str(tmp_path / "g"), "--sandbox", SANDBOX])
    out = capsys.readouterr().out
    assert rc == 0
    top = sum(c.metadata.nbgrader["points"] for c in nbformat.read(master, as_version=4).cells
              if c.metadata.get("nbgrader", {}).get("grade"))
    assert re.search(rf"^ada +{top}/{top} +{top}/{top}$", out, re.M)
    assert re.search(rf"^bob +0/{top} +0/{top}$", out, re.M)
    assert (tmp_path / "g" / "grades.csv").exists()


def test_grade_usage_errors(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "nowhere")]) == 2
    (tmp_path / "x.zip").write_bytes(b"")
    assert main(["grade", str(tmp_path / "x.zip")]) == 2
    assert "--assignment" in capsys.readouterr().err
    assert main(["grade", str(tmp_path), "--assignment", "99_nope"]) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["grade", str(tmp_path), "--jobs", "0"])
    assert "--jobs must be at least 1" in capsys.readouterr().err


def _digest(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.slow(seconds=10)
def test_progress_reports_and_never_modifies(tmp_path, capsys):
    mine = tmp_path / "notebooks"
    for assignment in ("01_gradient_descent", "04_adagrad"):
        shutil.copytree(ROOT / "notebooks" / assignment, mine / assignment)
    (master,) = masters(COURSE, "01_gradient_descent")
    nbformat.write(submission_with(master), mine / "01_gradient_descent" / master.name)
    before = _digest(mine)
    assert main(["progress", str(mine)]) == 0
    out = capsys.readouterr().out
    assert _digest(mine) == before
    tests = {a: sum(1 for c in nbformat.read(m, as_version=4).cells
                    if c.metadata.get("nbgrader", {}).get("grade")
                    and not c.metadata.nbgrader.get("solution"))
             for a in ("01_gradient_descent", "04_adagrad") for m in masters(COURSE, a)}
    n01, n04 = tests["01_gradient_descent"], tests["04_adagrad"]
    assert "✓ 01_gradient_descent" in out and f"{n01}/{n01} checks pass" in out
    assert "· 04_adagrad" in out and f"0/{n04} checks pass" in out
    assert "Next: 04_adagrad / check_adagrad_basic" in out
    assert "NotImplementedError" in out


def test_progress_usage_error(tmp_path):
    assert main(["progress", str(tmp_path / "missing")]) == 2
    assert main(["progress", str(tmp_path)]) == 2
