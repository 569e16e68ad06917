"""nbgrader's feedback page as a student opens it: from disk, in Chromium, with no network.
The math renders (MathML, nothing fetched), and the checker's failing report reads well: cells
apart, settings unbroken, and the exception under it short."""

from __future__ import annotations

import itertools

import pytest

from tests.test_feedback_html import build_feedback

from .conftest import open_offline, screenshot

MATHML = "http://www.w3.org/1998/Math/MathML"


@pytest.fixture(scope="module")
def feedback(tmp_path_factory):
    return build_feedback(tmp_path_factory.mktemp("feedback"))


@pytest.mark.slow(seconds=40)
def test_feedback_math_renders_without_a_network(page, feedback):
    tried = open_offline(page, feedback)
    assert tried == [], f"the feedback page tried to fetch {tried}"
    text = page.inner_text("body")
    assert "\\begin{aligned}" not in text and "$$" not in text and "\\frac" not in text
    info = page.evaluate(f"""() => {{
        const all = [...document.querySelectorAll('math')];
        const table = document.querySelector('math[display=block] mtable');
        const rows = table ? [...table.querySelectorAll('mtr')]
            .map(r => r.getBoundingClientRect().top) : [];
        const frac = document.querySelector('mfrac');
        return {{n: all.length, mathml: all.every(m => m.namespaceURI === '{MATHML}'),
                 rows: rows, frac: frac ? frac.getBoundingClientRect().height : 0,
                 line: parseFloat(getComputedStyle(document.body).fontSize)}};
    }}""")
    assert info["n"] > 100 and info["mathml"]
    # an aligned block is laid out as rows, one under the other
    assert len(info["rows"]) >= 3 and sorted(info["rows"]) == info["rows"]
    assert len(set(info["rows"])) == len(info["rows"])
    # a fraction stacks (taller than a line of text): MathML is rendered, not shown as text
    assert info["frac"] > 1.3 * info["line"]
    heading = page.locator("h2:has(math)").first
    heading.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -300)")
    screenshot(page, "feedback_math_offline")


@pytest.mark.slow(seconds=40)
def test_feedback_failing_report_reads_well(page, feedback):
    open_offline(page, feedback)
    report = page.locator("div:has(> table):has-text('does not match torch.optim yet')").last
    report.scroll_into_view_if_needed()
    cells = report.locator("tbody tr").first.locator("td")
    boxes = [cells.nth(i).bounding_box() for i in range(5)]
    texts = [cells.nth(i).inner_text() for i in range(5)]
    assert texts[:3] == ["✗", "amsgrad", "amsgrad"]
    # the mark, group and case are apart: padding between the texts, not '✗amsgradamsgrad'
    pad = page.evaluate("e => parseFloat(getComputedStyle(e).paddingRight)",
                        cells.nth(1).element_handle())
    assert pad >= 8
    assert all(a["x"] + a["width"] <= b["x"] + 0.5 for a, b in itertools.pairwise(boxes))
    # each setting stays on one line
    for span in report.locator("tbody tr").first.locator("td").nth(3).locator("span").all():
        box = span.bounding_box()
        assert box["height"] < 1.6 * page.evaluate(
            "e => parseFloat(getComputedStyle(e).fontSize)", span.element_handle())
    # the details column is the widest: what went wrong is read, not squeezed
    assert boxes[4]["width"] >= max(b["width"] for b in boxes[:4])
    assert "This looks like: `amsgrad` ignored." in texts[4].replace("\n", " ")
    # below it, the exception is a few lines that still name the mistake
    error = page.locator(".output_error").last  # nbgrader's feedback template
    said = error.inner_text()
    assert "This looks like: `amsgrad` ignored." in said
    assert "largest |error|" not in said
    assert len(said.splitlines()) < 25
    page.evaluate("window.scrollBy(0, -120)")
    screenshot(page, "feedback_failing_report")
