"""The course's teaching conventions, held in every master: a set-up hint, predictions before
answers, and graded exercises that need thought rather than transcription."""

from __future__ import annotations

import re

import nbformat
import pytest

from optimlab.grade.course import assignments, course_dir, masters

COURSE = course_dir()
ASSIGNMENTS = assignments(COURSE)
PREDICT = "**Predict, then run.**"
YOURS = "*Your prediction:*"

#: One graded exercise per notebook whose formula the notebook does not print: (solution
#: cell's grade_id, its test cell's grade_id, the function's name).
NOT_TRANSCRIBED: dict[str, tuple[str, str, str]] = {
    "01_gradient_descent": ("convergence_rate", "check_convergence_rate", "convergence_rate"),
    "03_momentum": ("tuned_heavy_ball", "check_tuned_heavy_ball", "tuned_heavy_ball"),
    "07_adam": ("bias_correction_horizon", "check_bias_correction_horizon",
                "bias_correction_horizon"),
    "08_adamw": ("decoupled_equilibrium", "check_decoupled_equilibrium",
                 "decoupled_equilibrium"),
    "09_adamax": ("adamax_recovery_steps", "check_adamax_recovery_steps",
                  "adamax_recovery_steps"),
    "13_muon": ("newton_schulz", "check_newton_schulz", "newton_schulz"),
    "15_capstone": ("warmup_cosine", "check_warmup", "warmup_cosine"),
}


def cells(assignment):
    (path,) = masters(COURSE, assignment)
    return nbformat.read(path, as_version=4).cells


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_first_code_cell_says_what_to_do_when_the_import_fails(assignment):
    first = next(c for c in cells(assignment) if c.cell_type == "code")
    assert first.source.startswith("# Set-up: if `import optimlab` fails"), first.source[:80]
    assert "./run" in first.source and "pip install -e ." in first.source
    assert "\nimport optimlab\n" in first.source


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_two_predictions_each_before_its_answer(assignment):
    nb = cells(assignment)
    questions = [i for i, c in enumerate(nb)
                 if c.cell_type == "markdown" and c.source.lstrip().startswith(PREDICT)]
    assert len(questions) >= 2, f"{assignment}: {len(questions)} predict-then-run questions"
    for i in questions:
        answer_slot, answer = nb[i + 1], nb[i + 2]
        assert answer_slot.cell_type == "markdown" and answer_slot.source.startswith(YOURS), (
            f"{assignment} cell {i + 1}: a place for the learner's prediction")
        assert "nbgrader" not in answer_slot.metadata, "predictions are not graded"
        assert answer.cell_type == "code", f"{assignment} cell {i + 2}: the run that answers"
        assert "nbgrader" not in answer.metadata or not answer.metadata.nbgrader.get("grade")
        question = re.sub(r"\s+", " ", nb[i].source)
        assert "?" in question, f"{assignment} cell {i}: a question: {question[:80]}"


def test_at_least_four_notebooks_have_an_exercise_that_is_not_a_transcription():
    assert len(NOT_TRANSCRIBED) >= 4, sorted(NOT_TRANSCRIBED)


@pytest.mark.parametrize("assignment", sorted(NOT_TRANSCRIBED))
def test_exercise_is_graded_with_hidden_tests_and_its_formula_unprinted(assignment):
    solution_id, test_id, name = NOT_TRANSCRIBED[assignment]
    nb = cells(assignment)
    by_id = {c.metadata.nbgrader["grade_id"]: (i, c) for i, c in enumerate(nb)
             if "nbgrader" in c.metadata}
    i, solution = by_id[solution_id]
    assert solution.metadata.nbgrader["solution"] and f"def {name}(" in solution.source
    _, test = by_id[test_id]
    assert test.metadata.nbgrader["grade"] and test.metadata.nbgrader["points"] > 0
    assert "### BEGIN HIDDEN TESTS" in test.source and "hidden=True" in test.source
    assert name in test.source
    # the markdown just above states the task, not the answer: no display formula there
    above = nb[i - 1]
    assert above.cell_type == "markdown" and "$$" not in above.source, (
        f"{assignment}: the formula for {name} is printed above it")
