"""The course: masters in course/source, the generated release in notebooks/, the executed
solutions in solutions/. The release is never edited by hand; these tests fail when it is stale,
when it leaks solutions or hidden tests, and when grading a master does not give the marks
it should (full for the solution, zero for a blank release, partial for one named mistake)."""

from __future__ import annotations

import json

import nbformat
import pytest

from optimlab.grade.course import ROOT, assignments, course_dir, masters, stale
from optimlab.grade.scratch import Course, solution_code, submission_with

COURSE = course_dir()
ASSIGNMENTS = assignments(COURSE)


def nbgrader_cells(nb):
    return [c for c in nb.cells if "nbgrader" in c.metadata]


def test_course_has_every_notebook():
    assert ASSIGNMENTS == ["00_training", "01_gradient_descent", "02_sgd", "03_momentum",
                           "04_adagrad", "05_adadelta", "06_rmsprop", "07_adam", "08_adamw",
                           "09_adamax", "10_nadam", "11_radam", "12_adafactor", "13_muon",
                           "14_more_optimizers", "15_capstone"]


@pytest.mark.slow(seconds=30)
def test_release_and_solutions_are_in_sync_with_the_masters():
    problems = stale(COURSE)
    assert not problems, "run `./run release` to regenerate:\n" + "\n".join(problems)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_masters_are_clean_and_pinned(assignment):
    for path in masters(COURSE, assignment):
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata.kernelspec.name == "python3"
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
        ids = [c.metadata.nbgrader["grade_id"] for c in nbgrader_cells(nb)]
        assert len(ids) == len(set(ids)), "grade_ids must be unique"
        graded = [c for c in nbgrader_cells(nb) if c.metadata.nbgrader.get("grade")]
        assert graded and all(c.metadata.nbgrader["points"] > 0 for c in graded)
        assert any("### BEGIN HIDDEN TESTS" in c.source for c in graded), "hidden tests"
        text = "".join(c.source for c in nb.cells)
        assert "import optimlab" in text


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_solutions_and_no_hidden_tests(assignment):
    for master in masters(COURSE, assignment):
        released = nbformat.read(ROOT / "notebooks" / assignment / master.name, as_version=4)
        text = json.dumps(released)
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "hidden=True"):
            assert marker not in text, marker
        original = nbformat.read(master, as_version=4)
        for cell in original.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution") and cell.cell_type == "code":
                body = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
                for line in body.strip().splitlines():
                    if len(line.strip()) > 12:
                        assert line.strip() not in text, f"solution line leaked: {line}"
        stubs = [c for c in released.cells
                 if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"]
        assert stubs and all("raise NotImplementedError()" in c.source for c in stubs)
        assert not any(c.get("outputs") for c in released.cells if c.cell_type == "code")


def test_nothing_private_reaches_the_release():
    names = {p.name for p in (ROOT / "notebooks").rglob("*")}
    assert "gradebook.db" not in names and "source" not in names
    assert not list((ROOT / "notebooks").rglob("*.py"))


# One catalogued mistake per notebook: (solution cell, text to change, its replacement, words
# the feedback must show). Each breaks one graded part only, so the marks must be partial.
MISTAKES = {
    "00_training": ("mse_grad", "2 * r.sum() / n", "r.sum() / n", "db differs"),
    "01_gradient_descent": ("fit_linear_gd", "        A.grad = b.grad = None\n", "",
                            "differs from the same loop with torch.optim.SGD"),
    "02_sgd": ("sgd_step", "g = -grad if maximize else grad", "g = grad", "`maximize` ignored"),
    "03_momentum": ("sgd_step", "buf = g.clone()", "buf = (1 - dampening) * g",
                    "dampening applied on the first step"),
    "04_adagrad": ("adagrad_step", "(t - 1) * lr_decay", "t * lr_decay",
                   "lr_decay off by one step"),
    "05_adadelta": ("adadelta_step", "param.sub_(lr * delta)", "param.sub_(delta)",
                    "`lr` ignored"),
    "06_rmsprop": ("rmsprop_step", 'state["grad_avg"] ** 2', 'state["grad_avg"]',
                   "centered: the mean gradient not squared"),
    "07_adam": ("adam_step", '        v = state["max_exp_avg_sq"]\n', "", "`amsgrad` ignored"),
    "08_adamw": ("adamw_step", "param.mul_(1 - lr * weight_decay)", "param.mul_(1 - weight_decay)",
                 "decoupled decay not scaled by lr"),
    "09_adamax": ("adamax_step", "g.abs() + eps", "g.abs()", "Adamax without eps"),
    "10_nadam": ("nadam_step", "param.mul_(1 - lr * weight_decay)", "g = g + weight_decay * param",
                 "L2 decay where decoupled decay is wanted"),
    "11_radam": ("radam_step", "param.mul_(1 - lr * weight_decay)", "g = g + weight_decay * param",
                 "L2 decay where decoupled decay is wanted"),
    "12_adafactor": ("adafactor_step", "param.mul_(1 - lr * weight_decay)",
                     "param.mul_(1 - alpha * weight_decay)", "weight decay scaled by α, not γ"),
    "13_muon": ("muon_step", "if nesterov else buf", "if False else buf", "`nesterov` ignored"),
    "14_more_optimizers": ("rprop_step", ".clamp(s_min, s_max)", "", "step sizes not clamped"),
    "15_capstone": ("warmup_cosine", "(t + 1) / warmup_steps", "t / warmup_steps",
                    "at step 0 (warmup)"),
}


def manual_points(master):
    return sum(c.metadata.nbgrader["points"] for c in nbformat.read(master, as_version=4).cells
               if c.metadata.get("nbgrader", {}).get("grade")
               and c.metadata.nbgrader.get("solution"))


@pytest.mark.slow(seconds=30)
@pytest.mark.parametrize("assignment", list(MISTAKES))
def test_autograde_solution_blank_and_one_mistake(assignment, tmp_path):
    course = Course(COURSE, tmp_path / "course")
    course.generate(assignment)
    (master,) = course.masters(assignment)
    grade_id, old, new, named = MISTAKES[assignment]
    cell = next(c for c in nbformat.read(master, as_version=4).cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    wrong = solution_code(cell.source)
    assert old in wrong
    blank = nbformat.read(ROOT / "notebooks" / assignment / master.name, as_version=4)
    course.submit("solution", assignment, {master.name: submission_with(master)})
    course.submit("blank", assignment, {master.name: blank})
    course.submit("mistake", assignment,
                  {master.name: submission_with(master, {grade_id: wrong.replace(old, new)})})
    course.autograde(assignment)
    grades = course.grades(assignment)
    score, top = grades.scores["solution"]
    assert score == top - manual_points(master) > 0  # written answers wait for a person
    assert grades.scores["blank"] == (0.0, top)
    assert 0 < grades.scores["mistake"][0] < top
    for student in ("solution", "blank", "mistake"):
        assert grades.feedback[student], f"no feedback for {student}"
    feedback = grades.feedback["mistake"][0].read_text(encoding="utf-8")
    assert named in feedback
