"""The instructor's path in a real browser: nbgrader's formgrader, served by JupyterLab with
the graded course's config, after `optimlab grade`; a score entered by hand reaches the CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import pytest

from optimlab.cli import main
from optimlab.grade.course import ROOT, masters
from optimlab.grade.sandbox import unavailable as sandbox_unavailable
from optimlab.grade.scratch import submission_with

from .conftest import screenshot
from .lab import start_lab

COURSE = ROOT / "course"
ASSIGNMENT = "15_capstone"
SANDBOX = "bwrap" if sandbox_unavailable() is None else "none"
REFLECTION = ("Adam at a swept learning rate with a cosine decay: the tuned optimizers ended "
              "within the spread between seeds, and decay helped every minibatch run. With "
              "the full batch I would keep the rate constant.")
#: the capstone's automatic points (its two schedule checks); the reflection's 3 are by hand
AUTO, BY_HAND = 4.0, 3.0


def _class(folder: Path) -> Path:
    """ada hands in the solution with a reflection of her own; cy hands in the blank release."""
    (master,) = masters(COURSE, ASSIGNMENT)
    ada = submission_with(master)
    for cell in ada.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "reflection":
            cell.source = REFLECTION
    for student, nb in (("ada", ada), ("cy", nbformat.read(
            ROOT / "notebooks" / ASSIGNMENT / master.name, as_version=4))):
        target = folder / student / ASSIGNMENT / master.name
        target.parent.mkdir(parents=True)
        nbformat.write(nb, target)
    return folder


def _grade(submissions: Path, workdir: Path) -> dict[str, float]:
    rc = main(["grade", str(submissions), "--assignment", ASSIGNMENT, "--workdir", str(workdir),
               "--sandbox", SANDBOX, "--jobs", "2"])
    assert rc == 0
    with open(workdir / "grades.csv", newline="") as f:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, browser) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("class")
    submissions, workdir = _class(root / "submissions"), root / "grading"
    assert _grade(submissions, workdir) == {"ada": AUTO, "cy": 0.0}
    return submissions, workdir


@pytest.mark.slow(seconds=150)
def test_formgrader_shows_the_class_and_a_hand_score_reaches_the_csv(graded, page):
    submissions, workdir = graded
    with start_lab(workdir) as lab:
        # the formgrader's pages call its API with the login, as a browser that signed in does
        page.context.set_extra_http_headers({"Authorization": f"token {lab.token}"})
        page.goto(lab.page_url("formgrader/manage_students"))
        table = page.locator("table").filter(has_text="Student ID")
        table.get_by_text("ada", exact=True).wait_for()
        table.get_by_text("cy", exact=True).wait_for()
        screenshot(page, "formgrader_students")

        page.goto(lab.page_url(f"formgrader/gradebook/{ASSIGNMENT}/{ASSIGNMENT}"))
        page.get_by_text("Submission #2").wait_for()
        href = page.locator("a", has_text="ada").first.get_attribute("href")
        page.goto(lab.page_url(href))
        score = page.locator("input.score#reflection")
        score.scroll_into_view_if_needed()
        panel = page.locator(".nbgrader_cell").filter(has=score)
        assert REFLECTION[:40] in panel.inner_text()
        score.fill("2.5")
        score.press("Tab")  # the formgrader saves a score when its field loses focus
        panel.locator(".score-saved").wait_for(state="visible")
        screenshot(page, "formgrader_manual_grade")
    assert _grade(submissions, workdir) == {"ada": AUTO + 2.5, "cy": 0.0}
