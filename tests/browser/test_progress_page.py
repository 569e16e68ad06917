"""`optimlab progress --html`: the learner's one-page report, opened from disk in Chromium with
no network: each notebook, each check, and what the first failing check said."""

from __future__ import annotations

import shutil

import nbformat
import pytest

from optimlab.cli import main
from optimlab.grade.course import ROOT, course_dir, masters
from optimlab.grade.scratch import solution_code, submission_with

from .conftest import open_offline, screenshot


@pytest.mark.slow(seconds=30)
def test_progress_page(page, tmp_path, capsys):
    mine = tmp_path / "notebooks"
    for a in ("01_gradient_descent", "04_adagrad"):
        shutil.copytree(ROOT / "notebooks" / a, mine / a)
    (m01,) = masters(course_dir(), "01_gradient_descent")
    nbformat.write(submission_with(m01), mine / "01_gradient_descent" / m01.name)
    (m04,) = masters(course_dir(), "04_adagrad")  # one catalogued mistake: lr_decay off by one
    cell = next(c for c in nbformat.read(m04, as_version=4).cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == "adagrad_step")
    wrong = solution_code(cell.source).replace("(t - 1) * lr_decay", "t * lr_decay")
    nbformat.write(submission_with(m04, {"adagrad_step": wrong}), mine / "04_adagrad" / m04.name)
    report = tmp_path / "report" / "progress.html"
    assert main(["progress", str(mine), "--html", str(report)]) == 0
    assert f"report (HTML): {report}" in capsys.readouterr().out

    tried = open_offline(page, report)
    assert tried == []
    sections = page.locator("section")
    assert sections.count() == 2
    assert sections.nth(0).locator("h2").inner_text().startswith("✓ 01_gradient_descent")
    second = sections.nth(1)
    assert second.locator("h2").inner_text().startswith("· 04_adagrad")
    hint = second.locator(".hint")
    assert hint.count() == 1 and hint.is_visible()
    said = hint.inner_text()
    assert "This looks like: lr_decay off by one step." in said and "Hint:" in said
    # the hint sits under the check it belongs to, which is marked failed
    row = second.locator("tr:has(.hint)")
    assert row.locator("td.mark").inner_text() == "✗"
    assert page.locator(".next").inner_text().startswith("Next: 04_adagrad")
    screenshot(page, "progress_page")
