"""The check of notebook 13's exercise ``newton_schulz``: correct functions written in other
styles (other product orders, float32, no transpose for tall G) pass; the plausible wrong ones
fail with a message that names them. Plus the numbers the module's helpers promise."""

from __future__ import annotations

import pytest
import torch

from optimlab.learn import orthogonal
from optimlab.learn.orthogonal import (
    NS_COEFFICIENTS,
    Together,
    check_newton_schulz,
    ns_polynomial,
    relative_error,
    singular_values,
    split_by_ndim,
)


def learner_style(G, ns_coefficients, ns_steps, eps):
    """bfloat16, the Gram polynomial written out, products in another order."""
    a, b, c = ns_coefficients
    X = G.to(torch.bfloat16)
    X = X / (X.norm() + eps)
    tall = X.shape[0] > X.shape[1]
    if tall:
        X = X.mT
    for _ in range(ns_steps):
        A = X @ X.mT
        X = a * X + b * (A @ X) + c * (A @ (A @ X))
    return X.mT if tall else X


def in_float32(G, ns_coefficients, ns_steps, eps):
    a, b, c = ns_coefficients
    X = G.float() / max(G.norm().item(), eps)
    if X.shape[0] > X.shape[1]:
        return in_float32(G.T, ns_coefficients, ns_steps, eps).T
    for _ in range(ns_steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X


def no_transpose(G, ns_coefficients, ns_steps, eps):
    """Iterating on the larger Gram matrix of a tall G: the same polynomial on each σ."""
    a, b, c = ns_coefficients
    X = G.bfloat16()
    X = X / X.norm().clamp(min=eps)
    for _ in range(ns_steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X


def not_normalized(G, ns_coefficients, ns_steps, eps):
    a, b, c = ns_coefficients
    X = G.bfloat16()
    for _ in range(ns_steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X


def transposed_not_back(G, ns_coefficients, ns_steps, eps):
    X = orthogonal.newton_schulz(G, ns_coefficients, ns_steps, eps)
    return X.T if G.shape[0] > G.shape[1] else X


def one_step_short(G, ns_coefficients, ns_steps, eps):
    return orthogonal.newton_schulz(G, ns_coefficients, ns_steps - 1, eps)


def reversed_coefficients(G, ns_coefficients, ns_steps, eps):
    return orthogonal.newton_schulz(G, ns_coefficients[::-1], ns_steps, eps)


def no_eps(G, ns_coefficients, ns_steps, eps):
    return orthogonal.newton_schulz(G, ns_coefficients, ns_steps, 0.0)


def by_max_entry(G, ns_coefficients, ns_steps, eps):
    a, b, c = ns_coefficients
    X = G.bfloat16()
    X = X / X.abs().max().clamp(min=eps)
    for _ in range(ns_steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("fn", [orthogonal.newton_schulz, learner_style, in_float32,
                                no_transpose])
def test_correct_styles_pass(fn, hidden):
    assert "within bfloat16 rounding" in check_newton_schulz(fn, hidden=hidden)


@pytest.mark.parametrize("fn, message", [
    (not_normalized, "divided by its Frobenius norm first?"),
    (transposed_not_back, "transpose the result back"),
    (one_step_short, "one iteration too few"),
    (reversed_coefficients, "coefficients in the wrong order"),
    (no_eps, "NaN or inf (divide by max"),
    (by_max_entry, "NaN or inf (is G divided by its Frobenius norm"),
])
def test_wrong_ones_fail_and_say_why(fn, message):
    with pytest.raises(AssertionError) as info:
        check_newton_schulz(fn)
    assert message in str(info.value)


def test_correct_styles_are_well_inside_the_tolerance_and_mistakes_well_outside():
    correct, wrong = [], []
    for _, G, coefficients, steps, eps in orthogonal._cases(hidden=False):
        want = orthogonal.newton_schulz(G, coefficients, steps, eps)
        correct += [relative_error(fn(G, coefficients, steps, eps), want)
                    for fn in (learner_style, in_float32, no_transpose)]
        wrong += [relative_error(fn(G, coefficients, steps, eps), want)
                  for fn in (reversed_coefficients, by_max_entry)]
        if steps > 1:
            wrong.append(relative_error(one_step_short(G, coefficients, steps, eps), want))
    assert max(correct) < 0.4 * orthogonal.TOLERANCE
    wrong = [e if e == e else float("inf") for e in wrong]  # NaN: it overflowed
    assert min(wrong) > 1.3 * orthogonal.TOLERANCE


def test_correct_styles_pass_the_hidden_cases_of_many_seeds(monkeypatch):
    worst = 0.0
    for seed in range(40):
        monkeypatch.setattr(orthogonal, "_seed", lambda hidden, label="", s=seed: s)
        for _, G, coefficients, steps, eps in orthogonal._cases(hidden=True):
            want = orthogonal.newton_schulz(G, coefficients, steps, eps)
            worst = max(worst, *(relative_error(fn(G, coefficients, steps, eps), want)
                                 for fn in (learner_style, in_float32, no_transpose)))
    assert worst < 0.7 * orthogonal.TOLERANCE


def test_the_polynomial_acts_on_singular_values():
    G = torch.randn(6, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    X = G / G.norm()
    for steps in (1, 3):
        predicted = ns_polynomial(singular_values(X), NS_COEFFICIENTS, steps)
        measured = singular_values(orthogonal._float_ns(G, NS_COEFFICIENTS, steps, 1e-7))
        torch.testing.assert_close(measured, predicted.sort(descending=True).values)


def test_together_steps_both_and_split_by_ndim():
    model = torch.nn.Linear(3, 2)
    mats, rest = split_by_ndim(model.parameters())
    assert [p.shape for p in mats] == [(2, 3)] and [p.shape for p in rest] == [(2,)]
    opt = Together(torch.optim.Muon(mats, lr=0.1), torch.optim.AdamW(rest, lr=0.1))
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    assert all((p != q).any() for p, q in zip(model.parameters(), before, strict=True))
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert len(opt.param_groups) == 2 and "Muon, AdamW" in repr(opt)
