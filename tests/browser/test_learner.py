"""A learner's path in a real JupyterLab: run a notebook, read the checker's report, Validate."""

from __future__ import annotations

from .conftest import screenshot
from .lab import cell_outputs, command, open_notebook, wait_idle

FIRST = "notebooks/00_training/00_training.ipynb"


def _errors(outputs: list[list[dict]]) -> list[tuple[int, str]]:
    """(cell index, "ename: evalue") of every error output."""
    return [(i, f"{o.get('ename', '')}: {o.get('evalue', '')}") for i, cell in enumerate(outputs)
            for o in cell if o.get("output_type") == "error"]


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
