"""Orthogonalized updates (notebook 13, Muon): Newton–Schulz as a polynomial on singular values.

Muon replaces the momentum matrix ``B = U·Σ·Vᵀ`` by (about) its polar factor ``U·Vᵀ``: the
same singular vectors, every singular value 1. torch gets there without an SVD: it scales
``X = B/‖B‖_F`` (so every σ ≤ 1) and repeats ``X ← aX + b(XXᵀ)X + c(XXᵀ)²X``, which maps each
singular value σ to ``p(σ) = aσ + bσ³ + cσ⁵`` and keeps the vectors. :func:`ns_polynomial`
iterates ``p`` on numbers; :func:`check_newton_schulz` grades the learner's
``newton_schulz(G, ns_coefficients, ns_steps, eps)`` against the reference's bfloat16 result;
:class:`Together` steps several optimizers as one (Muon for the matrices, AdamW for the rest,
as torch's documentation sets it up).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from ..optimizers.muon import NS_COEFFICIENTS, adjusted_lr, newton_schulz
from .exercises import _call, _seed

__all__ = [
    "NS_COEFFICIENTS",
    "TOLERANCE",
    "Together",
    "adjusted_lr",
    "check_newton_schulz",
    "newton_schulz",
    "ns_polynomial",
    "relative_error",
    "singular_values",
    "split_by_ndim",
]

TOLERANCE = 0.2
"""Largest relative Frobenius distance ‖got − want‖/‖want‖ from the reference's bfloat16
Newton–Schulz that the check accepts. bfloat16 keeps 8 significant bits (≈ 0.4 % per
rounding), and the iteration amplifies the rounding of small singular values (p's slope at 0
is a = 3.4445): correct functions that order the products differently, skip the transpose of
a tall matrix or iterate in float32 land up to 0.07 from the reference on the visible cases
and up to ≈ 0.12 over 300 hidden seeds; on the visible cases one iteration too few, the
coefficients in the wrong order or a missing normalization land ≥ 0.27 away or overflow
(tests/test_orthogonal.py measures both)."""


def ns_polynomial(sigma: Tensor, coefficients: Sequence[float] = NS_COEFFICIENTS,
                  steps: int = 1) -> Tensor:
    """``p`` iterated ``steps`` times on each σ, ``p(σ) = aσ + bσ³ + cσ⁵`` (in σ's dtype)."""
    a, b, c = coefficients
    for _ in range(steps):
        sigma = a * sigma + b * sigma**3 + c * sigma**5
    return sigma


def singular_values(x: Tensor) -> Tensor:
    """The singular values of ``x`` in float64, largest first."""
    return torch.linalg.svdvals(x.detach().double())


def relative_error(got: Tensor, want: Tensor) -> float:
    """‖got − want‖_F / ‖want‖_F in float64 (0 when both are 0)."""
    got, want = got.detach().double(), want.detach().double()
    scale = want.norm().item()
    diff = (got - want).norm().item()
    return diff / scale if scale > 0 else diff


# ------------------------------------------------------------------- the graded exercise
def _float_ns(grad: Tensor, coefficients: Sequence[float], steps: int, eps: float,
              normalize: bool = True) -> Tensor:
    """Newton–Schulz in float64 (for naming mistakes, not for grading)."""
    a, b, c = coefficients
    x = grad.double()
    if normalize:
        x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x


def _cases(hidden: bool) -> list[tuple[str, Tensor, tuple[float, float, float], int, float]]:
    gen = torch.Generator().manual_seed(_seed(hidden, "newton_schulz"))

    def draw(rows: int, cols: int, scale: float) -> Tensor:
        if hidden:  # other matrices of the same kinds, well enough conditioned
            return _conditioned(rows, cols, scale, gen)
        return scale * torch.randn(rows, cols, generator=gen)

    cases = [
        ("a wide 4×6 matrix", draw(4, 6, 1.0), NS_COEFFICIENTS, 5, 1e-7),
        ("a tall 8×3 matrix", draw(8, 3, 1.0), NS_COEFFICIENTS, 5, 1e-7),
        ("a square 5×5 matrix of large entries", draw(5, 5, 300.0), NS_COEFFICIENTS, 5, 1e-7),
        ("a tall 6×4 matrix of small entries", draw(6, 4, 1e-3), NS_COEFFICIENTS, 5, 1e-7),
        ("a 16×12 matrix, 2 steps of (2, −1.5, 0.5)", draw(16, 12, 1.0), (2.0, -1.5, 0.5), 2,
         1e-7),
        ("a 7×9 matrix, 1 step", draw(7, 9, 1.0), NS_COEFFICIENTS, 1, 1e-7),
        ("a 12×5 matrix, 3 steps", draw(12, 5, 2.0), NS_COEFFICIENTS, 3, 1e-5),
    ]
    if hidden:
        for _ in range(3):
            rows, cols = (int(v) for v in torch.randint(4, 13, (2,), generator=gen))
            steps = int(torch.randint(2, 6, (), generator=gen))
            # far from 1: for ‖G‖ ≈ 1 a forgotten normalization would go unseen
            exponent = 1.0 + 2.0 * float(torch.rand((), generator=gen))
            scale = 10.0 ** (exponent if torch.rand((), generator=gen) < 0.5 else -exponent)
            cases.append((f"a {rows}×{cols} matrix, {steps} steps",
                          _conditioned(rows, cols, scale, gen), NS_COEFFICIENTS, steps, 1e-7))
    return cases


def _conditioned(rows: int, cols: int, scale: float, gen: torch.Generator) -> Tensor:
    """A random matrix whose singular values lie in [0.3, 1]·scale: near-zero ones would make
    two correct bfloat16 results differ by more than the rounding (p's slope at 0)."""
    k = min(rows, cols)
    u, _ = torch.linalg.qr(torch.randn(rows, k, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(cols, k, generator=gen, dtype=torch.float64))
    sigma = 10.0 ** (-0.5 * torch.rand(k, generator=gen, dtype=torch.float64))
    return (scale * (u * sigma) @ v.T).float()


def _hint(got: Tensor, grad: Tensor, coefficients: tuple[float, float, float], steps: int,
          eps: float) -> str:
    """Why ``got`` may differ: the catalogued mistake it is closest to, if any is close."""
    suspects = {
        "one iteration too few (run ns_steps iterations)":
            _float_ns(grad, coefficients, steps - 1, eps) if steps > 1 else None,
        "one iteration too many (run ns_steps iterations)":
            _float_ns(grad, coefficients, steps + 1, eps),
        "the coefficients in the wrong order (X ← aX + b(XXᵀ)X + c(XXᵀ)²X with (a, b, c) = "
        "ns_coefficients)": _float_ns(grad, coefficients[::-1], steps, eps),
        "G not divided by its Frobenius norm first (p pushes σ towards 1 only on (0, 1])":
            _float_ns(grad, coefficients, steps, eps, normalize=False),
        "G divided by its largest |entry| instead of its Frobenius norm":
            _float_ns(grad / grad.abs().max().clamp(min=eps), coefficients, steps, eps),
    }
    for why, wrong in suspects.items():
        if wrong is not None and torch.isfinite(wrong).all() and wrong.norm() > 0 \
                and relative_error(got, wrong) <= TOLERANCE:
            return f": it matches {why}"
    return ""


def check_newton_schulz(fn: Callable[..., Any], hidden: bool = False) -> str:
    """The learner's ``newton_schulz(G, ns_coefficients, ns_steps, eps)``: it must return a
    matrix of G's shape within :data:`TOLERANCE` (relative, Frobenius) of the reference's
    bfloat16 result, on wide, tall and square matrices, tiny and large ones, and a zero one."""
    cases = _cases(hidden)
    cases.append(("a zero 3×4 matrix (its norm is 0: eps keeps the division finite)",
                  torch.zeros(3, 4), NS_COEFFICIENTS, 5, 1e-7))
    for what, grad, coefficients, steps, eps in cases:
        where = (f"newton_schulz on {what} (ns_coefficients={coefficients}, ns_steps={steps}, "
                 f"eps={eps:g})")
        got = _call(fn, grad.clone(), coefficients, steps, eps)
        want = newton_schulz(grad, coefficients, steps, eps)
        if not isinstance(got, Tensor):
            raise AssertionError(f"{where}: return a tensor, got {type(got).__name__}")
        if got.shape != grad.shape:
            hint = ""
            if got.shape == grad.T.shape:
                hint = (": a tall G is transposed to iterate on the smaller Gram matrix; "
                        "transpose the result back")
            raise AssertionError(f"{where}: the result has shape {tuple(got.shape)}, expected "
                                 f"G's shape {tuple(grad.shape)}{hint}")
        if not torch.isfinite(got.double()).all():
            hint = (" (divide by max(‖G‖, eps), or by ‖G‖ + eps)" if grad.norm() == 0
                    else " (is G divided by its Frobenius norm first? p pushes σ towards 1 "
                    "only on (0, 1]: a larger σ grows like σ⁵ at every iteration)")
            raise AssertionError(f"{where}: the result contains NaN or inf{hint}")
        err = relative_error(got, want)
        if err > TOLERANCE:
            raise AssertionError(
                f"{where}: the result is {err:.3g} away from torch's (relative Frobenius "
                f"distance; bfloat16 rounding accounts for up to {TOLERANCE:g})"
                f"{_hint(got, grad, coefficients, steps, eps)}")
    return f"newton_schulz: within bfloat16 rounding of torch's on {len(cases)} matrices"


# ------------------------------------------------------------ Muon for matrices, AdamW else
def split_by_ndim(params: Iterable[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """(the 2-D parameters, the others): torch's documented split for Muon and AdamW."""
    params = list(params)
    return [p for p in params if p.ndim == 2], [p for p in params if p.ndim != 2]


class Together:
    """Several optimizers stepped as one, for :func:`optimlab.learn.data.train`:
    ``zero_grad`` and ``step`` call each in turn; ``param_groups`` are all of theirs (the first
    one's lr is what ``train`` records)."""

    def __init__(self, *optimizers: Any) -> None:
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for opt in self.optimizers for g in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def __repr__(self) -> str:
        return "Together(" + ", ".join(type(o).__name__ for o in self.optimizers) + ")"
