"""Where a person looks while grading and learning: `optimlab grade`'s progress (one tqdm bar
over the class on a terminal, a line per event elsewhere) and `optimlab progress`'s table."""

from __future__ import annotations

import io
import re
import shutil

import pytest

from optimlab.grade import pipeline as pl
from optimlab.grade.course import ROOT
from optimlab.grade.worker import Graded
from optimlab.learn.progress import NotebookProgress, Part, format_progress

STUDENTS = ("ada", "ben", "cy")
ASSIGNMENTS = ("01_one", "02_two")


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def pipe_factory(tmp_path, monkeypatch):
    """A Pipeline over a two-assignment course and three students in which nbgrader, the
    sandboxed worker and the gradebook are stand-ins: only the progress is real."""
    course = tmp_path / "course"
    for a in ASSIGNMENTS:
        (course / "source" / a).mkdir(parents=True)
    shutil.copy(ROOT / "course" / "nbgrader_config.py", course)
    nb = (ROOT / "notebooks" / "01_gradient_descent" / "01_gradient_descent.ipynb").read_text()
    for s in STUDENTS:
        for a in ASSIGNMENTS:
            (tmp_path / "nbgrader" / "submitted" / s / a).mkdir(parents=True)
            (tmp_path / "nbgrader" / "submitted" / s / a / f"{a}.ipynb").write_text(nb)

    class Guard:
        active = False

        def __init__(self, *args):
            pass

        def check(self):
            return []

        def save(self):
            pass

    def grade_submission(template, submitted, master, student, assignment, **kw):
        return Graded(student, assignment, seconds=3.0)

    for name, value in {"generate_assignment": lambda *a, **k: None,
                        "generate_feedback": lambda *a, **k: None,
                        "export_grades": lambda *a, **k: None}.items():
        monkeypatch.setattr(pl.nbcourse, name, value)
    monkeypatch.setattr(pl.gradebook, "GradebookGuard", Guard)
    monkeypatch.setattr(pl.gradebook, "WithdrawalNotes", lambda path: None)
    monkeypatch.setattr(pl.gradebook, "extensions", lambda *a: {})
    monkeypatch.setattr(pl.gradebook, "read_rows", lambda *a: ([], {}))
    monkeypatch.setattr(pl, "make_template", lambda *a, **k: tmp_path / "template")
    monkeypatch.setattr(pl, "grade_submission", grade_submission)

    def make(**kwargs):
        lines: list[str] = []
        pipe = pl.Pipeline(course, tmp_path / "nbgrader", progress=lines.append, sandbox="none",
                           **kwargs)
        return pipe, lines

    return make


def test_without_a_terminal_a_line_per_event(pipe_factory):
    pipe, lines = pipe_factory()
    pipe.grade(list(ASSIGNMENTS))
    assert "[1/2] 01_one: release into the gradebook" in lines
    assert "[2/2] 02_two: feedback" in lines
    graded = [ln for ln in lines if ": graded " in ln]
    assert len(graded) == len(STUDENTS) * len(ASSIGNMENTS)
    assert re.fullmatch(r"\[1/2\] 01_one: graded 1/3 \((ada|ben|cy), 3 s\)", graded[0])


def test_on_a_terminal_one_bar_over_the_class(pipe_factory):
    tty = FakeTTY()
    pipe, lines = pipe_factory(progress_bar=True, bar_file=tty)
    pipe.grade(list(ASSIGNMENTS))
    out = tty.getvalue()
    assert not [ln for ln in lines if ": graded " in ln]  # the bar instead
    assert "\r" in out  # redrawn in place
    last = out.split("\r")[-1]
    # students × assignments, the submission being graded, elapsed<remaining (the ETA)
    assert "6/6" in last and re.search(r"\[2/2\] 02_two (ada|ben|cy)", last)
    assert re.search(r"\d\d:\d\d<\d\d:\d\d", last) and "last: " in last
    # the steps' lines are written above the bar, on the same stream
    assert "[1/2] 01_one: release into the gradebook\n" in out
    assert "[2/2] 02_two: feedback\n" in out
    assert "WARNING: grading WITHOUT a sandbox" in out


# --------------------------------------------------------------------------- optimlab progress
def _results():
    return [
        NotebookProgress("01_gradient_descent", [Part("check_gd", 2, True),
                                                 Part("check_fit", 3, True)]),
        NotebookProgress("04_adagrad", [
            Part("check_adagrad_basic", 2, False,
                 "✗ basic / defaults: first wrong at step 1\nThis looks like: lr_decay off by "
                 "one step.\nHint: t - 1, not t."),
            Part("check_adagrad_decay", 1, False, "NotImplementedError")]),
        NotebookProgress("05_adadelta", [], "the notebook did not run: dead kernel"),
    ]


def test_progress_is_a_table_with_the_next_step_below():
    out = format_progress(_results())
    header, rule, *rows = out.splitlines()[:5]
    assert header.split() == ["notebook", "checks", "visible", "points", "to", "do"]
    assert set(rule) <= {"-", " "}
    assert rows[0].startswith("✓ 01_gradient_descent") and "2/2 checks pass" in rows[0]
    assert "5/5" in rows[0]
    assert rows[1].startswith("· 04_adagrad") and "0/2 checks pass" in rows[1]
    assert "check_adagrad_basic, check_adagrad_decay" in rows[1]
    assert "✗ 05_adadelta" in out and "dead kernel" in out
    assert "Next: 04_adagrad / check_adagrad_basic" in out
    assert "    This looks like: lr_decay off by one step." in out


def test_progress_when_everything_passes():
    out = format_progress(_results()[:1])
    assert "Every visible check passes" in out


def test_progress_html_is_one_self_contained_page():
    from optimlab.learn.progress import progress_html

    page = progress_html(_results())
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert not re.search(r"<(script|link|img)\b", page)  # nothing to fetch, nothing to run
    assert page.count("<section") == 3
    assert "<b>This looks like:</b> lr_decay off by one step." in page
    assert "<b>Hint:</b> t - 1, not t." in page
    assert page.count('class="hint"') == 2  # the first failing check's message, and the problem
    assert "NotImplementedError" not in page  # a second failure in the same notebook: no hint
    assert "Next:</b> 04_adagrad / <code>check_adagrad_basic</code>" in page
