"""`optimlab progress --html`: the learner's one-page report, opened from disk in Chromium with
no network: each notebook, each check, and what the first failing check said."""

from __future__ import annotations

import shutil

import pytest

from optimlab.cli import main
from optimlab.grade.course import ROOT, course_dir, masters
from optimlab.grade.demo import notebook_for

from .conftest import open_offline, screenshot


@pytest.mark.slow(seconds=30)
def test_progress_page(page, tmp_path, capsys):
    mine = tmp_path / "notebooks"
    for a in ("01_gradient_descent", "04_adagrad"):
        shutil.copytree(ROOT / "notebooks" / a, mine / a)
    # 01 complete; 04 with the demo class's catalogued mistake: lr_decay off by one step
    for a, kind in (("01_gradient_descent", "solution"), ("04_adagrad", "mistake")):
        (master,) = masters(course_dir(), a)
        (mine / a / master.name).write_text(notebook_for(course_dir(), a, kind), encoding="utf-8")
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
