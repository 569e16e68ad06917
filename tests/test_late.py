"""Late penalties come from the trusted side: the timestamp collection recorded and the course's
configured plugin, never from the sandbox, where a submission's code runs."""

from __future__ import annotations

from datetime import datetime

import pytest

from optimlab.grade.pipeline import Pipeline

from .hostile import (
    ASSIGNMENT,
    CLASS,
    NOTEBOOK,
    SANDBOX,
    _add_cell_before,
    make_course,
    submission,
)

REWRITES_ITS_TIMESTAMP = submission(edit=_add_cell_before(
    "gd_step", "import glob\nfor _p in glob.glob('../../../submitted/*/*/timestamp.txt'):\n"
    "    open(_p, 'w').write('2000-01-01 00:00:00 UTC')\n"))


@pytest.mark.slow(seconds=60)
def test_late_penalty_from_the_trusted_timestamp(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    monkeypatch.setenv("OPTIMLAB_TIME_LIMIT", "2")
    course = make_course(tmp_path / "course")
    with (course / "nbgrader_config.py").open("a") as f:
        f.write('\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    handed = {"on_time": ("2024-12-31 12:00:00 UTC", CLASS["honest"][1]),
              "late": ("2025-01-02 12:00:00 UTC", CLASS["honest"][1]),
              "late_rewrites_timestamp": ("2025-01-02 12:00:00 UTC", REWRITES_ITS_TIMESTAMP)}
    for student, (stamp, text) in handed.items():
        folder = tmp_path / "submissions" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / NOTEBOOK).write_text(text, encoding="utf-8")
        (folder / "timestamp.txt").write_text(stamp)
    pipe = Pipeline(course, tmp_path / "grading", progress=lambda msg: None, timeout=15,
                    sandbox=SANDBOX)
    with Gradebook(pipe.db_url) as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=datetime(2025, 1, 1))
    pipe.collect_folder(tmp_path / "submissions", [ASSIGNMENT], trust_timestamps=True)
    report = pipe.grade([ASSIGNMENT], jobs=2)
    assert report.scores() == {("on_time", ASSIGNMENT): 5.0, ("late", ASSIGNMENT): 0.0,
                               ("late_rewrites_timestamp", ASSIGNMENT): 0.0}, report.problems
