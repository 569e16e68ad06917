"""The check of notebook 07's exercise ``bias_correction_horizon``: it accepts right answers
written in other ways and rejects the plausible wrong ones, saying why."""

from __future__ import annotations

import math
import re

import pytest

from optimlab.learn.moments import (
    bias_correction_horizon_answer,
    check_bias_correction_horizon,
    correction_factor,
)


def by_loop(beta2, tol):
    t = 1
    while 1 / (1 - beta2**t) > 1 + tol:
        t += 1
    return t


def by_logs(beta2, tol):
    return max(1, math.ceil(math.log(tol / (1 + tol)) / math.log(beta2)))


def by_log1p(beta2, tol):  # the same, written with log1p, returned as a float
    return float(max(1, math.ceil(-math.log1p(1 / tol) / math.log(beta2))))


def test_the_answer_is_the_first_step_within_tol():
    for beta2, tol in [(0.999, 0.01), (0.9, 0.01), (0.99, 0.1), (0.3, 2.0), (0.9999, 1e-3)]:
        t = bias_correction_horizon_answer(beta2, tol)
        assert correction_factor(beta2, t) <= 1 + tol
        assert t == 1 or correction_factor(beta2, t - 1) > 1 + tol
    assert bias_correction_horizon_answer(0.999, 0.01) == 4613  # about 4.6 horizons 1/(1 − β₂)


@pytest.mark.parametrize("right", [by_loop, by_logs, by_log1p])
def test_right_answers_pass_visible_and_hidden(right):
    assert "right step" in check_bias_correction_horizon(right)
    for _ in range(3):
        check_bias_correction_horizon(right, hidden=True)


def wrong_power_below_tol(beta2, tol):
    return max(1, math.ceil(math.log(tol) / math.log(beta2)))


def wrong_horizon(beta2, tol):
    return round(1 / (1 - beta2))


def wrong_last_step_outside(beta2, tol):
    return by_loop(beta2, tol) - 1


def wrong_step_factor(beta2, tol):  # the square root of the correction, as on Adam's step
    t = 1
    while 1 / math.sqrt(1 - beta2**t) > 1 + tol:
        t += 1
    return t


@pytest.mark.parametrize("wrong, words", [
    (wrong_power_below_tol, "β₂^t ≤ tol is close"),
    (wrong_horizon, "is the average's horizon"),
    (wrong_last_step_outside, "still more than 1 + tol"),
    (wrong_step_factor, "still more than 1 + tol"),
    (lambda beta2, tol: by_loop(beta2, tol) + 0.5, "whole number"),
    (lambda beta2, tol: by_loop(beta2, tol) + 1, "return the first such step"),
    (lambda beta2, tol: "4613", "whole number"),
    (lambda beta2, tol: 0, "count from t = 1"),
])
def test_wrong_answers_fail_with_a_reason(wrong, words):
    with pytest.raises(AssertionError, match=re.escape(words)):
        check_bias_correction_horizon(wrong)


def test_an_error_in_the_function_is_reported():
    def broken(beta2, tol):
        raise ValueError("no")

    with pytest.raises(AssertionError, match="raised ValueError"):
        check_bias_correction_horizon(broken)
