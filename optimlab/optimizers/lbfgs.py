"""L-BFGS, as ``torch.optim.LBFGS`` computes it, on one flat parameter vector.

L-BFGS is not per-tensor: its curvature pairs (s, y) span all parameters at once, and each
``step(closure)`` runs up to ``max_iter`` iterations, each evaluating the loss again. So its
reference is not a step function: :func:`lbfgs_step` takes the flat vector ``x`` and a function
``evaluate()`` that returns ``(loss, flat gradient)`` at the current ``x``, as torch's closure
does for its parameters. :func:`verify_lbfgs` runs it beside ``torch.optim.LBFGS`` on the
problems in :data:`PROBLEMS`, with and without the strong-Wolfe line search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

Evaluate = Callable[[], tuple[float, Tensor]]
"""The loss and the flat gradient at the current ``x``."""


def cubic_interpolate(x1: Any, f1: Any, g1: Any, x2: Any, f2: Any, g2: Any,
                      bounds: tuple[Any, Any] | None = None) -> Any:
    """The minimizer of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to ``bounds``
    (by default [min(x1, x2), max(x1, x2)]); the bounds' midpoint if the cubic has none."""
    if bounds is not None:
        lo, hi = bounds
    else:
        lo, hi = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = d2_square.sqrt()
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, lo), hi)
    return (lo + hi) / 2.0


def strong_wolfe(along: Callable[[Any], tuple[float, Tensor]], t: Any, d: Tensor, f: float,
                 g: Tensor, gtd: Tensor, c1: float = 1e-4, c2: float = 0.9,
                 tolerance_change: float = 1e-9, max_ls: int = 25
                 ) -> tuple[float, Tensor, Any, int]:
    """A step size t along d meeting the strong Wolfe conditions (Nocedal and Wright, 3.5–3.6):
    sufficient decrease f(x + t·d) ≤ f + c1·t·gᵀd and curvature |∇f(x + t·d)ᵀd| ≤ −c2·gᵀd.

    ``along(t)`` is (f, ∇f) at x + t·d. First it brackets an acceptable t, growing t by cubic
    extrapolation (at most tenfold a step); then it shrinks the bracket by cubic interpolation,
    each trial kept at least 10 % of the bracket away from its ends. Returns (f, ∇f, t, number
    of evaluations) at the best point found.
    """
    d_norm = d.abs().max()
    g = g.clone(memory_format=torch.contiguous_format)
    f_new, g_new = along(t)
    evals = 1
    gtd_new = g_new.dot(d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    # bracketing phase
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g = [g_prev, g_new.clone(memory_format=torch.contiguous_format)]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g = [g_prev, g_new.clone(memory_format=torch.contiguous_format)]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                              bounds=(min_step, max_step))
        t_prev, f_prev = tmp, f_new
        g_prev = g_new.clone(memory_format=torch.contiguous_format)
        gtd_prev = gtd_new
        f_new, g_new = along(t)
        evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
    if ls_iter == max_ls:  # reached the limit while bracketing
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]
    # zoom phase
    insuf_progress = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                              bracket[1], bracket_f[1], bracket_gtd[1])
        # keep the trial at least 10 % of the bracket away from its ends
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) \
                    else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = along(t)
        evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low]:
            bracket[high], bracket_f[high] = t, f_new
            bracket_g[high] = g_new.clone(memory_format=torch.contiguous_format)
            bracket_gtd[high] = gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low] = t, f_new
            bracket_g[low] = g_new.clone(memory_format=torch.contiguous_format)
            bracket_gtd[low] = gtd_new
    return bracket_f[low], bracket_g[low], bracket[low], evals


def two_loop(grad: Tensor, old_dirs: list[Tensor], old_stps: list[Tensor], ro: list[Any],
             h_diag: Any, al: list[Any]) -> Tensor:
    """d = −H·g by the two-loop recursion: H is the inverse-Hessian estimate built from the
    pairs (s_i, y_i), started from h_diag·I (h_diag = sᵀy/yᵀy of the newest pair)."""
    q = grad.neg()
    for i in range(len(old_dirs) - 1, -1, -1):
        al[i] = old_stps[i].dot(q) * ro[i]
        q.add_(old_dirs[i], alpha=-al[i])
    d = r = torch.mul(q, h_diag)
    for i in range(len(old_dirs)):
        be_i = old_dirs[i].dot(r) * ro[i]
        r.add_(old_stps[i], alpha=al[i] - be_i)
    return d


def lbfgs_step(
    evaluate: Evaluate,
    x: Tensor,
    state: dict,
    *,
    lr: float = 1.0,
    max_iter: int = 20,
    max_eval: int | None = None,
    tolerance_grad: float = 1e-7,
    tolerance_change: float = 1e-9,
    history_size: int = 100,
    line_search_fn: str | None = None,
) -> float:
    r"""One ``torch.optim.LBFGS.step(closure)``: up to ``max_iter`` iterations on the flat
    vector ``x``, in place. Returns the loss at the start.

    .. code-block:: text

        f, g ← evaluate()                       stop if max|g| ≤ tolerance_grad
        repeat up to max_iter times:
            if first iteration ever: d ← −g, H₀ ← 1
            else:
                y ← g − g_prev, s ← t·d
                if yᵀs > 1e-10: keep (s, y), ρ ← 1/yᵀs, the oldest dropped past
                                history_size; H₀ ← yᵀs / yᵀy
                d ← −H·g                        two-loop recursion, from H₀·I
            t ← min(1, 1/‖g‖₁)·γ on the very first iteration, else γ
            stop if gᵀd > −tolerance_change     not a descent direction
            strong_wolfe: t, f, g ← line search along d;  x ← x + t·d
            otherwise:    x ← x + t·d;  f, g ← evaluate() (not on the last iteration)
            stop at max_iter, at max_eval evaluations, if max|g| ≤ tolerance_grad,
            if max|t·d| ≤ tolerance_change or if |f − f_prev| < tolerance_change

    ``max_eval`` defaults to max_iter·5//4. State, kept across calls: ``func_evals``,
    ``n_iter``, ``d``, ``t``, ``old_dirs`` (the y's), ``old_stps`` (the s's), ``ro``,
    ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``al``.
    """
    if max_eval is None:
        max_eval = max_iter * 5 // 4
    state.setdefault("func_evals", 0)
    state.setdefault("n_iter", 0)
    loss, flat_grad = evaluate()
    orig_loss = loss
    current_evals = 1
    state["func_evals"] += 1
    opt_cond = flat_grad.abs().max() <= tolerance_grad
    if opt_cond:
        return orig_loss
    d, t = state.get("d"), state.get("t")
    old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
    h_diag = state.get("H_diag")
    prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        state["n_iter"] += 1
        if state["n_iter"] == 1:
            d = flat_grad.neg()
            old_dirs, old_stps, ro = [], [], []
            h_diag = 1
        else:
            y = flat_grad.sub(prev_flat_grad)
            s = d.mul(t)
            ys = y.dot(s)
            if ys > 1e-10:  # keep only pairs of positive curvature
                if len(old_dirs) == history_size:
                    old_dirs.pop(0)
                    old_stps.pop(0)
                    ro.pop(0)
                old_dirs.append(y)
                old_stps.append(s)
                ro.append(1.0 / ys)
                h_diag = ys / y.dot(y)
            if "al" not in state:
                state["al"] = [None] * history_size
            d = two_loop(flat_grad, old_dirs, old_stps, ro, h_diag, state["al"])
        if prev_flat_grad is None:
            prev_flat_grad = flat_grad.clone(memory_format=torch.contiguous_format)
        else:
            prev_flat_grad.copy_(flat_grad)
        prev_loss = loss
        t = min(1.0, 1.0 / flat_grad.abs().sum()) * lr if state["n_iter"] == 1 else lr
        gtd = flat_grad.dot(d)
        if gtd > -tolerance_change:
            break
        evals = 0
        if line_search_fn is not None:
            if line_search_fn != "strong_wolfe":
                raise RuntimeError("only 'strong_wolfe' is supported")
            start = x.clone(memory_format=torch.contiguous_format)

            def along(step: Any, start: Tensor = start, d: Tensor = d) -> tuple[float, Tensor]:
                x.add_(d, alpha=step)
                out = evaluate()
                x.copy_(start)
                return out

            loss, flat_grad, t, evals = strong_wolfe(along, t, d, loss, flat_grad, gtd,
                                                     max_ls=max_eval - current_evals)
            x.add_(d, alpha=t)
            opt_cond = flat_grad.abs().max() <= tolerance_grad
        else:
            x.add_(d, alpha=t)
            if n_iter != max_iter:  # no evaluation after the last iteration
                loss, flat_grad = evaluate()
                opt_cond = flat_grad.abs().max() <= tolerance_grad
                evals = 1
        current_evals += evals
        state["func_evals"] += evals
        if n_iter == max_iter or current_evals >= max_eval or opt_cond:
            break
        if d.mul(t).abs().max() <= tolerance_change:
            break
        if abs(loss - prev_loss) < tolerance_change:
            break
    state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag,
                 prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
    return orig_loss


# ------------------------------------------------------------------ verification
def rosenbrock(x: Tensor) -> Tensor:
    """Σ 100(x_{i+1} − x_i²)² + (1 − x_i)²: a curved valley, minimum at 1."""
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def _quadratic(dim: int, seed: int) -> Callable[[Tensor], Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=gen, dtype=torch.float64)
    h = a @ a.T / dim + 0.1 * torch.eye(dim, dtype=torch.float64)
    b = torch.randn(dim, generator=gen, dtype=torch.float64)
    return lambda x: 0.5 * x @ h.to(x) @ x - b.to(x) @ x


def _logistic(n: int, dim: int, seed: int) -> Callable[[Tensor], Tensor]:
    gen = torch.Generator().manual_seed(seed)
    data = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    labels = (data @ torch.randn(dim, generator=gen, dtype=torch.float64) > 0).double()
    return lambda x: (torch.nn.functional.binary_cross_entropy_with_logits(
        data.to(x) @ x, labels.to(x)) + 1e-3 * (x * x).sum())


@dataclass(frozen=True)
class Problem:
    """A loss of a flat vector, its start, and how many ``step`` calls to make."""

    name: str
    loss: Callable[[Tensor], Tensor]
    start: Callable[[torch.dtype], Tensor]
    """The starting point in a dtype, on the CPU."""
    calls: int


PROBLEMS = (
    Problem("rosenbrock (10-D)", rosenbrock,
            lambda dt: torch.full((10,), -1.0, dtype=dt).index_fill_(0, torch.tensor([0]), 0.5),
            5),
    Problem("quadratic (20-D)", _quadratic(20, 0),
            lambda dt: torch.zeros(20, dtype=dt), 3),
    Problem("logistic regression (8-D)", _logistic(64, 8, 1),
            lambda dt: torch.zeros(8, dtype=dt), 3),
)

SETTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("defaults", {}),
    ("strong_wolfe", {"line_search_fn": "strong_wolfe"}),
    ("short history, lr 0.5", {"history_size": 3, "lr": 0.5, "max_iter": 10}),
    ("strong_wolfe, short history", {"line_search_fn": "strong_wolfe", "history_size": 4}),
)


def _split(x: Tensor) -> list[Tensor]:
    """torch's side of the comparison: the same vector as three parameter tensors (a
    matrix, a vector and a scalar where the size allows), so the flattening is exercised."""
    n = x.numel()
    rows = 2 if n >= 8 else 1
    cols = (n - 2) // rows
    head = rows * cols
    return [x[:head].reshape(rows, cols).clone(), x[head:n - 1].clone(), x[n - 1].clone()]


@dataclass
class LBFGSVerification:
    """One comparison: the reference and torch on one problem, setting and dtype."""

    problem: str
    setting: str
    dtype: torch.dtype
    max_diff: float
    """The largest |difference| in x after any ``step`` call."""
    losses: tuple[list[float], list[float]]
    """The losses each ``step`` returned: the reference's and torch's."""

    @property
    def ok(self) -> bool:
        return self.max_diff == 0.0 and self.losses[0] == self.losses[1]


def verify_lbfgs(problem: Problem, hyper: dict[str, Any], setting: str,
                 dtype: torch.dtype = torch.float64, device: str = "cpu") -> LBFGSVerification:
    """:func:`lbfgs_step` and ``torch.optim.LBFGS`` side by side, ``problem.calls`` steps."""
    x = problem.start(dtype).to(device)
    params = [p.requires_grad_() for p in _split(x.clone())]
    opt = torch.optim.LBFGS(params, **hyper)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = problem.loss(torch.cat([p.reshape(-1) for p in params]))
        loss.backward()
        return loss

    def evaluate() -> tuple[float, Tensor]:
        with torch.enable_grad():
            leaf = x.detach().requires_grad_()
            loss = problem.loss(leaf)
            loss.backward()
        return float(loss.detach()), leaf.grad

    state: dict = {}
    mine, theirs, worst = [], [], 0.0
    for _ in range(problem.calls):
        mine.append(float(lbfgs_step(evaluate, x, state, **hyper)))
        theirs.append(float(opt.step(closure).detach()))
        flat = torch.cat([p.detach().reshape(-1) for p in params])
        worst = max(worst, (flat - x).abs().max().item())
    return LBFGSVerification(problem.name, setting, dtype, worst, (mine, theirs))


def verify_all(dtypes: tuple[torch.dtype, ...] = (torch.float64, torch.float32),
               device: str = "cpu") -> list[LBFGSVerification]:
    """Every problem × setting × dtype."""
    return [verify_lbfgs(p, hyper, name, dtype, device) for p in PROBLEMS
            for name, hyper in SETTINGS for dtype in dtypes]


def format_row(checks: list[LBFGSVerification]) -> tuple[str, ...]:
    """The verify table's row for L-BFGS: it has one implementation in torch."""
    cells = ["lbfgs", str(len({(c.problem, c.setting) for c in checks})),
             f"{sum(c.ok for c in checks)}/{len(checks)}"]
    for dtype in (torch.float64, torch.float32):
        worst = max((c.max_diff for c in checks if c.dtype == dtype), default=None)
        cells.append("-" if worst is None else "== (bitwise)" if worst == 0 else f"{worst:.1e}")
    return (*cells, "-", "-", "-", "-")
