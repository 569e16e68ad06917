"""A learner's path in a real JupyterLab: run a notebook, read the checker's report, Validate."""

from __future__ import annotations

import nbformat
import pytest
from nbgrader.utils import is_solution

from optimlab.grade.course import ROOT, masters
from optimlab.grade.demo import MISTAKES as DEMO_MISTAKES
from optimlab.grade.scratch import solution_code

from .conftest import screenshot
from .lab import (
    cell_node,
    cell_outputs,
    command,
    open_notebook,
    run_cell,
    set_cell_source,
    wait_idle,
)

FIRST = "notebooks/00_training/00_training.ipynb"
COURSE = ROOT / "course"
#: the demo class's catalogued mistake in 07: amsgrad's running max never read
AMSGRAD_IGNORED = DEMO_MISTAKES[("07_adam", "adam_step")]
#: Validate runs a whole notebook: a short one, with the grading test's mistake in it
VALIDATED = "04_adagrad"
VALIDATED_MISTAKE = DEMO_MISTAKES[(VALIDATED, "adagrad_step")]  # lr_decay off by one step


def solution(assignment: str, grade_id: str) -> str:
    (master,) = masters(COURSE, assignment)
    cell = next(c for c in nbformat.read(master, as_version=4).cells
                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)
    return solution_code(cell.source)


def write_release(root, assignment: str, mistakes: dict[str, tuple[str, str]] | None = None,
                  solved: bool = False) -> str:
    """Write the learner's copy of ``assignment`` under ``root``: the release, with the
    solution in the cells ``mistakes`` names (one text replaced) or, ``solved``, in every one.
    Returns its path relative to ``root``."""
    rel = f"notebooks/{assignment}/{assignment}.ipynb"
    nb = nbformat.read(ROOT / rel, as_version=4)
    for cell in nb.cells:
        if not (cell.cell_type == "code" and is_solution(cell)):
            continue
        gid = cell.metadata.nbgrader["grade_id"]
        if gid in (mistakes or {}) or solved:
            code = solution(assignment, gid)
            if gid in (mistakes or {}):
                old, new = mistakes[gid]
                assert old in code, f"the mistake {old!r} no longer applies to {gid}"
                code = code.replace(old, new)
            cell.source = code
    nbformat.write(nb, root / rel)
    return rel


def _errors(outputs: list[list[dict]]) -> list[tuple[int, str]]:
    """(cell index, "ename: evalue") of every error output."""
    return [(i, f"{o.get('ename', '')}: {o.get('evalue', '')}") for i, cell in enumerate(outputs)
            for o in cell if o.get("output_type") == "error"]


@pytest.mark.slow(seconds=20)
def test_first_session_runs_and_draws(learner_lab, page):
    """Run all cells of the first notebook: a figure appears as an image, and the only
    traceback is the first exercise's: its check cell reports the stub's NotImplementedError,
    and Run All stops there."""
    open_notebook(page, learner_lab, FIRST)
    command(page, "notebook:run-all-cells")
    page.wait_for_timeout(500)
    wait_idle(page)
    outputs = cell_outputs(page)
    errors = _errors(outputs)
    assert len(errors) == 1 and "NotImplementedError" in errors[0][1], errors
    first_image = next(i for i, cell in enumerate(outputs)
                       if any("image/png" in o.get("data", {}) for o in cell))
    assert first_image < errors[0][0]
    img = page.locator(".jp-OutputArea-output img").first
    img.scroll_into_view_if_needed()
    box = img.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100, box
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                        ).count() >= 1
    screenshot(page, "learner_first_figure")


def _grade_id(page, index: int) -> str:
    return page.evaluate(
        "(i) => (window.jupyterapp.shell.currentWidget.content.model.cells.get(i)"
        ".getMetadata('nbgrader') || {}).grade_id || ''", index)


def _index_of(page, grade_id: str) -> int:
    n = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.cells.length")
    return next(i for i in range(n) if _grade_id(page, i) == grade_id)


@pytest.mark.slow(seconds=30)
def test_feedback_renders_and_names_the_mistake(learner_lab, page):
    """07_adam with amsgrad ignored: the check cell shows the HTML report naming the mistake;
    after the fix, the same cell's report says it passes."""
    path = write_release(learner_lab.root, "07_adam", {"adam_step": AMSGRAD_IGNORED})
    open_notebook(page, learner_lab, path)
    step, check = _index_of(page, "adam_step"), _index_of(page, "check_adam_amsgrad")
    for i in (1, step, check):
        run_cell(page, i)
    cell = cell_node(page, check)
    report = cell.wait_for_selector(".jp-OutputArea-output table")
    report.scroll_into_view_if_needed()
    text = cell.query_selector(".jp-OutputArea").inner_text()
    assert "does not match torch.optim yet" in text and "This looks like: `amsgrad` ignored" in text
    assert report.is_visible()
    screenshot(page, "jupyterlab_failing_report")

    set_cell_source(page, step, solution("07_adam", "adam_step"))
    for i in (step, check):
        run_cell(page, i)
    out = cell_node(page, check).query_selector(".jp-OutputArea")
    out.scroll_into_view_if_needed()
    text = out.inner_text()
    assert "adam_step matches torch.optim" in text and "does not match" not in text
    assert not [e for e in _errors(cell_outputs(page)) if e[0] == check]
    screenshot(page, "jupyterlab_passing_report")


def _validate(page) -> str:
    """Click nbgrader's Validate button; return the text of the dialog it ends with."""
    page.get_by_role("button", name="Validate").click()
    dialog = page.locator(".jp-Dialog").filter(has_not_text="Validating")
    dialog.wait_for(timeout=180_000)
    return dialog.inner_text()


@pytest.mark.slow(seconds=40)
def test_validate_button(learner_lab, page):
    """nbgrader's Validate on a release notebook: a wrong answer names the failing test; the
    solution passes."""
    path = write_release(learner_lab.root, VALIDATED, solved=True,
                         mistakes={"adagrad_step": VALIDATED_MISTAKE})
    open_notebook(page, learner_lab, path)
    text = _validate(page)
    screenshot(page, "validate_wrong_answer")
    assert "The following cell failed" in text and '"adagrad", "lr_decay")' in text, text
    assert "This looks like: lr_decay off by one step" in text, text
    page.locator(".jp-Dialog").get_by_role("button", name="Ok").click()

    # the learner fixes the step function (Validate saves the notebook before it runs it)
    set_cell_source(page, _index_of(page, "adagrad_step"), solution(VALIDATED, "adagrad_step"))
    text = _validate(page)
    screenshot(page, "validate_solution")
    assert "Success! Your notebook passes all the tests." in text, text


EXPLORED = "03_momentum"  # its explorer runs the learner's own sgd_step


def _explorer_cell(page) -> int:
    n = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.cells.length")
    return next(i for i in range(n) if "explore.explorer(" in page.evaluate(
        "(i) => window.jupyterapp.shell.currentWidget.content.model.cells.get(i)"
        ".sharedModel.getSource()", i))


@pytest.mark.slow(seconds=40)
def test_explorer_slider_redraws_the_figure(learner_lab, page):
    """03's explorer runs the learner's sgd_step: moving the momentum slider redraws it."""
    path = write_release(learner_lab.root, EXPLORED, solved=True)
    open_notebook(page, learner_lab, path)
    command(page, "notebook:run-all-cells")
    page.wait_for_timeout(500)
    wait_idle(page)
    assert not _errors(cell_outputs(page))
    cell = cell_node(page, _explorer_cell(page))
    figure = cell.wait_for_selector(".optimlab-explorer .optimlab-explorer-figure")
    figure.scroll_into_view_if_needed()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=figure)
    before = figure.get_attribute("src")
    screenshot(page, "explorer_before")
    png_before = figure.screenshot()

    slider = cell.query_selector_all(".optimlab-explorer-slider")[-1]  # momentum
    handle = slider.query_selector(".noUi-handle")
    handle.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("([img, old]) => img.getAttribute('src') !== old",
                           arg=[figure, before], timeout=30_000)
    page.wait_for_timeout(500)
    wait_idle(page)  # every redraw the key presses asked for is done
    page.wait_for_timeout(500)
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=figure)
    screenshot(page, "explorer_after")
    assert figure.screenshot() != png_before
