"""Landscapes for notebooks 00–02: noise near saddles and local minima, GD's rate on a quadratic.

- :func:`descend` runs ``torch.optim.SGD`` from many starting points at once, optionally with
  seeded Gaussian noise added to every gradient (what a minibatch gradient adds to the full one);
- :func:`steps_until` reads off when a path first leaves a region;
- :func:`convergence_rate_answer` and :func:`check_convergence_rate` grade notebook 01's exercise,
  the factor by which one gradient-descent step shrinks the error on a quadratic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .exercises import _call, _seed
from .problems import Surface

F64 = torch.float64


# ----------------------------------------------------------------------- 00: noise on a surface
def descend(f: Surface, starts: Tensor | tuple[float, float], *, lr: float, steps: int,
            noise: float | Tensor = 0.0, seed: int = 0, quiet: int = 0) -> Tensor:
    """Gradient descent (``torch.optim.SGD(lr=lr)``) on ``f`` from every row of ``starts``.

    With ``noise`` σ > 0, each step's gradient is the true one plus σ·ξ, ξ standard normal per
    coordinate and drawn from a generator seeded with ``seed``: the loss each step sees is
    ``f(θ) + σ ξ·θ``, a random tilt, as a minibatch's loss is the full loss plus a random error.
    The last ``quiet`` steps take no noise (the points settle in the basin where they are).
    ``noise`` may be a tensor that broadcasts against ``starts``, to run several noise levels
    at once (``starts`` of shape ``(levels, points, 2)``, ``noise`` of shape ``(levels, 1, 1)``).
    Returns the path, shape ``(steps + 1, *starts.shape)``, in float64.
    """
    gen = torch.Generator().manual_seed(seed)
    points = torch.as_tensor(starts, dtype=F64).clone().requires_grad_()
    opt = torch.optim.SGD([points], lr=lr)
    path = [points.detach().clone()]
    for t in range(steps):
        opt.zero_grad()
        loss = f(points).sum()  # a sum over independent points: each gets its own gradient
        xi = torch.randn(points.shape, generator=gen, dtype=F64)  # drawn every step, always
        if t < steps - quiet and bool(torch.as_tensor(noise).any()):
            loss = loss + (noise * xi * points).sum()
        loss.backward()
        opt.step()
        path.append(points.detach().clone())
    return torch.stack(path)


def steps_until(path: Tensor, leaves: Callable[[Tensor], Tensor]) -> int | None:
    """The first step at which ``leaves(point)`` holds on a single path ``(steps + 1, 2)``."""
    hits = leaves(path).nonzero()
    return int(hits[0]) if len(hits) else None


# ----------------------------------------------------------------------- 01: GD's rate
def convergence_rate_answer(H: Tensor, lr: float) -> float:
    """The factor by which one step of GD with ``lr`` shrinks the worst-case error on
    ``½ θᵀHθ`` (H symmetric positive definite): the largest ``|1 − lr·h|`` over H's eigenvalues,
    which is also the spectral norm of ``I − lr·H``. At least 1: GD does not converge."""
    h = torch.linalg.eigvalsh(H.to(F64))
    return float((1 - lr * h).abs().max())


def _spd(eigenvalues: Tensor, gen: torch.Generator) -> Tensor:
    """A symmetric matrix with these eigenvalues, in a random orthogonal basis."""
    d = len(eigenvalues)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=F64))
    H = Q @ torch.diag(eigenvalues.to(F64)) @ Q.T
    return (H + H.T) / 2


def _rate_cases(hidden: bool) -> list[tuple[Tensor, float, torch.dtype]]:
    """(H, lr, dtype): the visible ones, then drawn ones from the hidden seed."""
    gen = torch.Generator().manual_seed(_seed(hidden, "convergence_rate"))
    ravine = torch.diag(torch.tensor([1.0, 10.0], dtype=F64))
    three = _spd(torch.tensor([0.5, 2.0, 4.0]), gen)
    cases = [(ravine, 0.1, F64),   # the flat direction is the slow one: 0.9
             (ravine, 0.19, F64),  # the stiff direction overshoots: |1 − 1.9| = 0.9 > 0.81
             (three, 0.45, F64),   # rotated: |1 − 0.45·4| = 0.8 > 1 − 0.45·0.5 = 0.775
             (three, 0.6, F64)]    # past 2/h_max: 1.4, GD diverges
    if hidden:
        for k in range(6):
            d = int(torch.randint(1, 7, (), generator=gen))
            h = 10 ** (4 * torch.rand(d, generator=gen, dtype=F64) - 2)  # 0.01 … 100
            lr = float(torch.rand((), generator=gen) * 2.4 / h.max())
            cases.append((_spd(h, gen), lr, torch.float32 if k % 2 else F64))
    return cases


def _wrong_rates(H: Tensor, lr: float) -> dict[str, float]:
    """What plausible mistakes return, with the hint each deserves."""
    h = torch.linalg.eigvalsh(H.to(F64))
    return {
        "1 − γ·h_min: right while γh_max ≤ 1, but past that the stiff direction overshoots "
        "(1 − γh < 0), and the size |1 − γh_max| of its factor can be the larger one":
            float(1 - lr * h.min()),
        "|1 − γ·h_max|: the stiff direction alone, but the flat one may shrink more slowly":
            float((1 - lr * h.max()).abs()),
        "the smallest factor: the error shrinks only as fast as its slowest component":
            float((1 - lr * h).abs().min()),
    }


def check_convergence_rate(fn: Callable[..., Any], hidden: bool = False) -> str:
    """The learner's ``convergence_rate(H, lr)``: GD's worst-case contraction factor per step on
    the quadratic with Hessian ``H``."""
    for H, lr, dtype in _rate_cases(hidden):
        H = H.to(dtype)
        d = H.shape[0]
        where = (f"H {d}×{d} ({str(dtype).removeprefix('torch.')}) with eigenvalues "
                 f"{[round(v, 4) for v in torch.linalg.eigvalsh(H.to(F64)).tolist()]}, lr={lr:.4g}")
        out = _call(fn, H.clone(), lr)
        try:
            got = float(out)
        except (TypeError, ValueError, RuntimeError):
            raise AssertionError(f"{where}: return one number (a float or a 0-d tensor), got "
                                 f"{type(out).__name__}") from None
        want = convergence_rate_answer(H, lr)
        tol = 1e-9 if dtype == F64 else 1e-5
        if not abs(got - want) <= tol * max(1.0, abs(want)):
            hint = next((name for name, value in _wrong_rates(H, lr).items()
                         if abs(got - value) <= tol * max(1.0, abs(value))), None)
            raise AssertionError(
                f"{where}: your rate is {got:.6g}, expected {want:.6g}"
                + (f". You returned {hint}." if hint else
                   ". Follow the error along each eigenvector of H for one step: which factor "
                   "decides how fast the whole error shrinks?"))
    return "convergence_rate: GD's per-step factor matches on every quadratic"
