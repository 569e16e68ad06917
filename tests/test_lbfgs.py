"""L-BFGS's flat-vector reference against torch.optim.LBFGS, with and without the line search."""

from __future__ import annotations

import pytest
import torch

from optimlab.optimizers import lbfgs

CASES = [pytest.param(p, name, hyper, dtype, id=f"{p.name}-{name}-{str(dtype)[6:]}")
         for p in lbfgs.PROBLEMS for name, hyper in lbfgs.SETTINGS
         for dtype in (torch.float64, torch.float32)]


@pytest.mark.parametrize(("problem", "setting", "hyper", "dtype"), CASES)
def test_reference_is_bitwise_with_torch(problem, setting, hyper, dtype):
    check = lbfgs.verify_lbfgs(problem, hyper, setting, dtype)
    assert check.ok, (check.max_diff, check.losses)
    assert check.losses[0][-1] < check.losses[0][0]  # it optimizes


def test_the_line_search_runs_and_the_history_is_trimmed():
    problem = lbfgs.PROBLEMS[0]
    x = problem.start(torch.float64)

    def evaluate():
        with torch.enable_grad():
            leaf = x.detach().requires_grad_()
            loss = problem.loss(leaf)
            loss.backward()
        return float(loss.detach()), leaf.grad

    state: dict = {}
    for _ in range(3):
        lbfgs.lbfgs_step(evaluate, x, state, line_search_fn="strong_wolfe", history_size=4)
    # the line search evaluates more than once per iteration, and at most 4 pairs are kept
    assert state["func_evals"] > state["n_iter"] + 3
    assert len(state["old_dirs"]) == 4
    assert (x - 1).abs().max() < 0.05  # near Rosenbrock's minimum at 1 after 3 calls


def test_a_wrong_two_loop_recursion_is_told_apart(monkeypatch):
    """The comparison can fail: without the curvature pairs, L-BFGS is gradient descent."""
    def steepest(grad, *args):
        return grad.neg()

    monkeypatch.setattr(lbfgs, "two_loop", steepest)
    check = lbfgs.verify_lbfgs(lbfgs.PROBLEMS[1], {"line_search_fn": "strong_wolfe"},
                               "strong_wolfe")
    assert not check.ok and check.max_diff > 1e-3


def test_an_unknown_line_search_is_refused_as_torch_refuses_it():
    x = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="only 'strong_wolfe'"):
        lbfgs.lbfgs_step(lambda: (1.0, torch.ones(3, dtype=torch.float64)), x, {},
                         line_search_fn="armijo")
