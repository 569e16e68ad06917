"""Checks for the exercises that are not optimizer step functions (those use :func:`check`).

Each ``check_*`` runs the learner's function on generated data, compares it with the answer
computed here by torch, and raises ``AssertionError`` with a message that says what differs.
The hidden variants use more shapes, float32, and data drawn fresh for every run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from ..check.guard import TimeLimitExceeded, time_limit, trimmed_traceback
from ..check.recording import hidden_seed, produce


def _seed(hidden: bool, label: str = "") -> int:
    """0 for the visible tests; for the hidden ones, fresh on every run, or the grader's."""
    if not hidden:
        return 0
    return hidden_seed(label) or int.from_bytes(os.urandom(4), "little")


def _call(fn: Callable[..., Any], *args: Any, limit: float = 10.0, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` as data (recorded while grading, see
    :mod:`optimlab.check.recording`); an exception or a hang becomes an ``AssertionError`` that
    says so."""
    return produce("a call of your function",
                   lambda: _invoke(fn, *args, limit=limit, **kwargs), errors=(AssertionError,))


def _invoke(fn: Callable[..., Any], *args: Any, limit: float = 10.0, **kwargs: Any) -> Any:
    try:
        with time_limit(limit):
            return fn(*args, **kwargs)
    except TimeLimitExceeded as exc:
        raise AssertionError(f"{fn.__name__} {exc}: look for a loop that never ends") from None
    except Exception as exc:
        raise AssertionError(
            f"{fn.__name__} raised {type(exc).__name__}:\n{trimmed_traceback(exc)}"
        ) from None


def _close(name: str, got: Any, want: Tensor, rtol: float, atol: float, where: str,
           source: str = "the autograd answer") -> None:
    if not isinstance(got, Tensor):
        raise AssertionError(f"{where}: {name} should be a tensor, got {type(got).__name__}")
    if got.shape != want.shape:
        raise AssertionError(f"{where}: {name} has shape {tuple(got.shape)}, "
                             f"expected {tuple(want.shape)}")
    if not torch.isfinite(got).all():
        raise AssertionError(f"{where}: {name} contains NaN or inf")
    if not torch.allclose(got.to(want.dtype), want, rtol=rtol, atol=atol):
        err = (got.to(want.dtype) - want).abs().max().item()
        raise AssertionError(f"{where}: {name} differs from {source} "
                             f"(largest |error| {err:.3g})")


# ----------------------------------------------------------------------- 00: the MSE gradient
def mse_grad_answer(X: Tensor, y: Tensor, w: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """∂/∂w and ∂/∂b of ``mean((X @ w + b − y)²)``, by autograd."""
    w = w.detach().clone().requires_grad_()
    b = b.detach().clone().requires_grad_()
    ((X @ w + b - y) ** 2).mean().backward()
    return w.grad, b.grad


def check_mse_grad(fn: Callable[..., Any], hidden: bool = False, part: str | None = None) -> str:
    """The learner's ``mse_grad(X, y, w, b) -> (dw, db)`` against autograd.

    ``part`` is ``"dw"`` or ``"db"`` to grade one half (both by default).
    """
    parts = ("dw", "db") if part is None else (part,)
    gen = torch.Generator().manual_seed(_seed(hidden, "mse_grad"))
    shapes = [(8, 1), (20, 3), (5, 4)] + ([(1, 2), (64, 7), (3, 1)] if hidden else [])
    dtypes = [torch.float64] + ([torch.float32] if hidden else [])
    for dtype in dtypes:
        for n, d in shapes:
            X = torch.randn(n, d, generator=gen, dtype=dtype)
            y = torch.randn(n, generator=gen, dtype=dtype)
            w = torch.randn(d, generator=gen, dtype=dtype)
            b = torch.randn((), generator=gen, dtype=dtype)
            where = f"X of shape {(n, d)}, {str(dtype).removeprefix('torch.')}"
            out = _call(fn, X.clone(), y.clone(), w.clone(), b.clone())
            if not (isinstance(out, tuple) and len(out) == 2):
                raise AssertionError(f"{where}: return a pair (dw, db), got {type(out).__name__}")
            dw, db = mse_grad_answer(X, y, w, b)
            tol = (1e-10, 1e-12) if dtype == torch.float64 else (1e-4, 1e-5)
            if "dw" in parts:
                _close("dw", out[0], dw, *tol, where)
            if "db" in parts:
                _close("db", torch.as_tensor(out[1], dtype=dtype).reshape(()), db, *tol, where)
    return (f"mse_grad: {' and '.join(parts)} match autograd on "
            f"{len(shapes) * len(dtypes)} problems")


# ----------------------------------------------------------------------- 01: fitting y = Ax + b
def fit_linear_answer(X: Tensor, Y: Tensor, lr: float, steps: int
                      ) -> tuple[Tensor, Tensor, list[float]]:
    """Full-batch gradient descent on the MSE from A = 0, b = 0, with ``torch.optim.SGD``."""
    A = torch.zeros(Y.shape[1], X.shape[1], dtype=X.dtype, requires_grad=True)
    b = torch.zeros(Y.shape[1], dtype=X.dtype, requires_grad=True)
    opt = torch.optim.SGD([A, b], lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((X @ A.T + b - Y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return A.detach(), b.detach(), losses


def check_fit_linear(fn: Callable[..., Any], hidden: bool = False) -> str:
    """The learner's ``fit_linear_gd(X, Y, lr, steps) -> (A, b, losses)`` against SGD."""
    from .problems import linear_data

    sizes = [(64, 3, 2, 0.1, 50)] + ([(32, 1, 1, 0.3, 20), (128, 5, 3, 0.05, 80)] if hidden else [])
    for n, din, dout, lr, steps in sizes:
        data = linear_data(n, din, dout, seed=_seed(hidden, f"fit_linear {n}"))
        X, Y = data.X.double(), data.Y.double()
        where = f"{n} samples, x in R^{din}, y in R^{dout}, lr={lr}, {steps} steps"
        out = _call(fn, X, Y, lr, steps)
        if not (isinstance(out, tuple) and len(out) == 3):
            raise AssertionError(f"{where}: return (A, b, losses), got {type(out).__name__}")
        A, b, losses = fit_linear_answer(X, Y, lr, steps)
        sgd = "the same loop with torch.optim.SGD"
        _close("A", out[0], A, 1e-8, 1e-10, where, sgd)
        _close("b", out[1], b, 1e-8, 1e-10, where, sgd)
        got = torch.as_tensor([float(v) for v in out[2]], dtype=torch.float64)
        _close("losses", got, torch.tensor(losses, dtype=torch.float64), 1e-8, 1e-10, where, sgd)
    return "fit_linear_gd matches torch.optim.SGD step for step"


# ----------------------------------------------------------------------- 02: minibatches
def _batches(fn: Callable[..., Iterable[Any]], X: Tensor, Y: Tensor, bs: int, shuffle: bool,
             seed: int, where: str) -> list[tuple[Tensor, Tensor]]:
    got = _call(lambda: list(fn(X, Y, bs, shuffle=shuffle,
                                generator=torch.Generator().manual_seed(seed))))
    for i, g in enumerate(got):
        if not (isinstance(g, (tuple, list)) and len(g) == 2 and all(
                isinstance(t, Tensor) for t in g)):
            raise AssertionError(f"{where}: batch {i} should be a pair of tensors (x, y)")
        if not torch.equal(g[0][:, 0].long(), g[1] // 10):
            raise AssertionError(f"{where}: batch {i}: x and y are not paired")
    return got


def check_minibatches(fn: Callable[..., Iterable[Any]], hidden: bool = False) -> str:
    """The learner's ``minibatches(X, Y, batch_size, shuffle, generator)``.

    What ``DataLoader(TensorDataset(X, Y), batch_size, shuffle, generator=...)`` guarantees:
    every sample exactly once per epoch, in batches of ``batch_size`` with a smaller last one,
    x and y kept together, the original order without shuffle, and with shuffle an order that
    the generator alone decides (same seed, same batches; another seed, another order).
    """
    cases = [(10, 3), (12, 4), (7, 10)] + ([(1, 1), (100, 32), (33, 8)] if hidden else [])
    for n, bs in cases:
        X = torch.arange(n, dtype=torch.float64).unsqueeze(1) * torch.ones(1, 2)
        Y = torch.arange(n) * 10
        sizes = [min(bs, n - i) for i in range(0, n, bs)]
        seed = _seed(hidden, f"minibatches {n} {bs}") if hidden else 7
        for shuffle in (False, True):
            where = f"n={n}, batch_size={bs}, shuffle={shuffle}"
            got = _batches(fn, X, Y, bs, shuffle, seed, where)
            if [len(g[1]) for g in got] != sizes:
                raise AssertionError(f"{where}: batch sizes {[len(g[1]) for g in got]}, "
                                     f"expected {sizes} (the last batch may be smaller)")
            order = torch.cat([g[1] for g in got]) // 10 if got else torch.empty(0)
            if sorted(order.tolist()) != list(range(n)):
                raise AssertionError(f"{where}: an epoch must visit every sample exactly once; "
                                     f"got samples {order.tolist()}")
            if not shuffle and order.tolist() != list(range(n)):
                raise AssertionError(f"{where}: without shuffle, keep the original order")
            if shuffle and n >= 8:
                if order.tolist() == list(range(n)):
                    raise AssertionError(f"{where}: shuffle=True but the order is unchanged")
                again = torch.cat([g[1] for g in _batches(fn, X, Y, bs, True, seed, where)])
                if not torch.equal(again // 10, order):
                    raise AssertionError(f"{where}: the same generator seed must give the same "
                                         "batches (draw the order from `generator`)")
                other = torch.cat([g[1] for g in _batches(fn, X, Y, bs, True, seed + 1, where)])
                if torch.equal(other // 10, order):
                    raise AssertionError(f"{where}: another generator seed gave the same order: "
                                         "is `generator` used?")
    return "minibatches batches like torch.utils.data.DataLoader"


# ----------------------------------------------------------------------- 11: a schedule
def warmup_cosine_answer(t: int, warmup: int, total: int) -> float:
    """The factor on the base lr at step ``t`` (0-based): linear warm-up, then cosine to 0."""
    import math

    if t < warmup:
        return (t + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (t - warmup) / (total - warmup)))


def _lr_table(fn: Callable[..., Any], base: float, warmup: int, total: int, where: str
              ) -> list[list[float]]:
    """The learning rates of two param groups (lr ``base`` and ``2·base``) before each of
    ``total`` steps, with the learner's scheduler stepped after each."""
    params = [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
    opt = torch.optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 2 * base}],
                          lr=base)
    sched = _invoke(fn, opt, warmup, total)
    if not hasattr(sched, "step"):
        raise AssertionError(f"{where}: return a scheduler (an object with .step()), "
                             f"got {type(sched).__name__}")
    table = []
    for _ in range(total):
        table.append([float(group["lr"]) for group in opt.param_groups])
        opt.step()
        _invoke(sched.step)
    return table
