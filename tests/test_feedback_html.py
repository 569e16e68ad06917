"""What a learner reads: the feedback page's math (MathML, no MathJax, nothing fetched) and the
checker's report (one HTML report, then a short exception that still names the mistake)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import optimlab
from optimlab.grade.course import ROOT, course_dir, masters
from optimlab.learn.mathml import markdown_to_html, tex_to_mathml

COURSE = course_dir()

# Adam with `amsgrad` ignored: the catalogue names it.
WRONG_ADAM = '''import torch

def adam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
              weight_decay=0.0, amsgrad=False, maximize=False):
    g = -grad if maximize else grad
    if weight_decay:
        g = g + weight_decay * param
    if not state:
        state["t"] = 0
        state["m"] = torch.zeros_like(param)
        state["v"] = torch.zeros_like(param)
    state["t"] += 1
    t, (b1, b2) = state["t"], betas
    state["m"].lerp_(g, 1 - b1)
    state["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
    denom = (state["v"].sqrt() / (1 - b2 ** t) ** 0.5).add_(eps)
    param.addcdiv_(state["m"], denom, value=-lr / (1 - b1 ** t))
'''


def _meta(cell, grade_id, *, solution=False, grade=False, points=0):
    cell.metadata["nbgrader"] = {"grade_id": grade_id, "solution": solution, "grade": grade,
                                 "locked": not solution, "schema_version": 3,
                                 **({"points": points} if grade else {})}
    return cell


def sample_master(markdown_from: str = "07_adam") -> nbformat.NotebookNode:
    """A small assignment: the markdown (all the math) of a real master, one solution cell and
    two graded checks, one that passes and one that fails (`amsgrad` ignored)."""
    (real,) = masters(COURSE, markdown_from)
    source = nbformat.read(real, as_version=4)
    cells = [new_markdown_cell(c.source) for c in source.cells if c.cell_type == "markdown"
             and "nbgrader" not in c.metadata]
    cells += [
        _meta(new_code_cell("### BEGIN SOLUTION\n" + WRONG_ADAM + "### END SOLUTION"),
              "adam_step", solution=True),
        _meta(new_code_cell('import optimlab\noptimlab.check(adam_step, "adam", "basic")'),
              "check_basic", grade=True, points=1),
        _meta(new_code_cell('optimlab.check(adam_step, "adam", "amsgrad")'),
              "check_amsgrad", grade=True, points=1),
    ]
    nb = new_notebook(cells=cells, metadata=source.metadata)
    return nb


def build_feedback(tmp: Path, student: str = "ada") -> Path:
    """A real nbgrader feedback page for the sample assignment: release, autograde (the
    submission is the master, solution in place), generate_feedback. Returns the HTML file."""
    from optimlab.grade.scratch import Course, submission_with

    src = tmp / "course"
    (src / "source" / "sample").mkdir(parents=True)
    shutil.copy(COURSE / "nbgrader_config.py", src / "nbgrader_config.py")
    master = src / "source" / "sample" / "sample.ipynb"
    nbformat.write(sample_master(), master)
    course = Course(src, tmp / "scratch")
    course.generate("sample")
    course.submit(student, "sample", {"sample.ipynb": submission_with(master)})
    course.autograde("sample")
    grades = course.grades("sample")
    assert grades.scores[student] == (1.0, 2.0)
    (page,) = grades.feedback[student]
    return page


# --------------------------------------------------------------------------- the course's math
def _course_formulas() -> set[str]:
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    found: set[str] = set()

    class Collect(IPythonRenderer):
        def block_math(self, body):
            found.add(body)
            return ""

        def inline_math(self, body):
            found.add(body)
            return ""

        def latex_environment(self, name, body):
            found.add(f"\\begin{{{name}}}{body}\\end{{{name}}}")
            return ""

    for path in sorted((ROOT / "course" / "source").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                MarkdownWithMath(renderer=Collect(escape=False)).render(cell.source)
    return found


def test_every_formula_of_the_course_becomes_mathml():
    formulas = _course_formulas()
    assert len(formulas) > 300
    for tex in formulas:
        out = tex_to_mathml(tex, display="aligned" in tex)
        assert out.startswith("<math"), tex
        text = " ".join(re.findall(r">([^<]+)<", out))
        assert "\\" not in text, f"{tex!r} left TeX in the MathML: {text!r}"
        assert not re.search(r"<mi>&(amp;)?</mi>", out), f"{tex!r}: an alignment & leaked"


def test_aligned_becomes_a_table_aligned_on_its_relations():
    out = tex_to_mathml(r"\begin{aligned} m_t &= \beta_1 m_{t-1} \\ \hat m_t &= \tfrac{m_t}{2}"
                        r"\end{aligned}", display=True)
    assert out.count("<mtr>") == 2
    assert '<mtd columnalign="right">' in out and '<mtd columnalign="left">' in out


def test_markdown_math_renders_as_mathml_and_text_stays_text():
    out = markdown_to_html("The lr $\\gamma$, and `a $b$ c`:\n\n$$\\lVert g \\rVert_2$$\n")
    assert out.count("<math") == 2
    assert "<code>a $b$ c</code>" in out
    head = markdown_to_html("## Bias correction over $1/(1-\\beta_2)$ steps")
    assert "<math" in head and "ns0" not in head


def test_a_formula_that_cannot_convert_shows_its_source():
    assert tex_to_mathml(r"\frac{1}{") .startswith("<code>")


@pytest.mark.slow(seconds=40)
def test_feedback_page_has_mathml_and_loads_nothing(tmp_path):
    page = build_feedback(tmp_path).read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*mathjax|MathJax\.Hub", page, re.I)
    assert not re.search(r"</?ns\d+:", page)  # headings' math is plain <math> too
    assert "<math" in page and 'columnalign="left"' in page
    assert "\\begin{aligned}" not in page
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?https?:""", page)
    # the failing check's report appears once, and the exception below it is short
    assert page.count("largest |error|") == 1
    assert "`amsgrad` ignored" in page and "The report above says why" in page


# --------------------------------------------------------------------------- the check report
def _failing(display_shown: bool, monkeypatch) -> str:
    import importlib

    check_module = importlib.import_module("optimlab.check")  # not optimlab.check, the function
    monkeypatch.setattr(check_module, "_show", lambda result: display_shown)
    ns: dict = {}
    exec(WRONG_ADAM, ns)
    with pytest.raises(AssertionError) as info:
        optimlab.check(ns["adam_step"], "adam", "amsgrad", device="cpu")
    return str(info.value)


def test_a_displayed_report_raises_a_short_message_that_names_the_mistake(monkeypatch):
    text = _failing(True, monkeypatch)
    lines = text.splitlines()
    assert len(lines) <= 6
    assert "✗ amsgrad / amsgrad: first wrong at step" in text
    assert "This looks like: `amsgrad` ignored." in text and "Hint:" in text
    assert "largest |error|" not in text  # the report above has it

    from optimlab.learn.progress import _message

    said = _message([{"output_type": "error", "ename": "AssertionError", "evalue": text}])
    assert "This looks like: `amsgrad` ignored." in said and "first wrong" in said


def test_without_a_display_the_exception_has_the_whole_report(monkeypatch):
    text = _failing(False, monkeypatch)
    assert "largest |error|" in text and "This looks like: `amsgrad` ignored." in text


def test_the_html_report_has_spaced_cells_and_unbroken_settings():
    ns: dict = {}
    exec(WRONG_ADAM, ns)
    result = optimlab.check(ns["adam_step"], "adam", ["basic", "amsgrad"], device="cpu",
                            raise_on_failure=False)
    out = result._repr_html_()
    assert "border-collapse:collapse" in out and "padding:3px 10px" in out
    assert '<span style="white-space:nowrap">lr=0.01</span>' in out
    assert "<b>This looks like:</b> `amsgrad` ignored." in out
    assert out.count("<tr>") == len(result.cases) + 1
