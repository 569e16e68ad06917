"""The trajectory engine: run optimizers on a fixed gradient sequence and compare what they hold.

A fixed sequence of gradients (not a training run) is how we compare: on a real loss a tiny
rounding difference changes the next gradient, and float32 trajectories drift apart even
between torch's own implementations. ``verify`` and the checker both run cases through here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .adapter import StepFunction, StepFunctionOptimizer
from .cases import SHAPES, Case

if TYPE_CHECKING:
    from .registry import Impl, OptimizerSpec

_TRANSPOSED = 3  # index of the shape stored transposed, so the parameter is non-contiguous
_SPARSE_GRAD = 5  # index of the parameter whose gradient has coordinates that are always zero
ZERO_STEP = 7  # every tensor gets an all-zero gradient on this step


@dataclass
class Problem:
    """Initial parameters and a gradient sequence ``grads[t][i]`` for step ``t``, tensor ``i``."""

    params: list[Tensor]
    grads: list[list[Tensor]]

    @property
    def steps(self) -> int:
        return len(self.grads)

    def fresh_params(self) -> list[Tensor]:
        """Leaf copies of the initial parameters that keep their strides."""
        return [torch.empty_like(p).copy_(p).requires_grad_() for p in self.params]


def make_problem(
    *,
    steps: int = 20,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    seed: int = 0,
    shapes: Sequence[tuple[int, ...]] = SHAPES,
    zero_steps: Sequence[int] = (ZERO_STEP,),
    decades: float = 0.0,
    sparse: bool = False,
) -> Problem:
    """A reproducible problem. Every tensor in ``zero_steps`` gets an all-zero gradient.

    With ``decades > 0`` each coordinate's gradient is scaled by a fixed factor drawn from
    ``10**U(-decades, 0)``, so small and large gradients meet the same eps and learning rate.
    """
    gen = torch.Generator().manual_seed(seed)
    params = []
    for i, shape in enumerate(shapes):
        if i == _TRANSPOSED and len(shape) == 2:
            p = torch.randn(shape, generator=gen, dtype=dtype).t()
        else:
            p = torch.randn(shape, generator=gen, dtype=dtype)
        params.append(p.to(device))
    scales = [
        10 ** (-decades * torch.rand(p.shape, generator=gen, dtype=dtype)).to(device)
        if decades
        else None
        for p in params
    ]
    grads = []
    for t in range(steps):
        row = []
        for i, p in enumerate(params):
            g = torch.randn(p.shape, generator=gen, dtype=dtype).to(device)
            # A slow drift plus noise, so moments and accumulators have something to track.
            g = g + 0.5 * torch.sin(torch.tensor(0.1 * t, dtype=dtype))
            if scales[i] is not None:
                g = g * scales[i]
            if i == _SPARSE_GRAD:
                g[::2] = 0
            if t in zero_steps:
                g = torch.zeros_like(g)
            if sparse:  # as embedding rows: each coordinate used on some steps, not others
                unused = torch.rand(p.shape, generator=gen, dtype=dtype).to(device) < 0.4
                g = g.masked_fill(unused, 0)
            row.append(g.to_sparse() if sparse else torch.empty_like(p).copy_(g))
        grads.append(row)
    return Problem(params, grads)


def problem_for(case: Case, device: str | torch.device, seed: int,
                spec: OptimizerSpec | None = None) -> Problem:
    """The case's problem: its steps, dtype and gradient scales, on ``device``, with the
    optimizer's tensors and kind of gradient (:attr:`OptimizerSpec.shapes`,
    :attr:`OptimizerSpec.sparse_grads`)."""
    return make_problem(steps=case.steps, dtype=case.dtype, device=device, seed=seed,
                        decades=case.decades, shapes=spec.shapes if spec else SHAPES,
                        sparse=spec.sparse_grads if spec else False)


def copy_grad(g: Tensor) -> Tensor:
    """A gradient's copy as ``.grad`` would hold it (a sparse one has no memory format)."""
    return g.clone() if g.is_sparse else g.clone(memory_format=torch.preserve_format)


def group_of(i: int, n: int, case: Case) -> int:
    """The param group (0 or 1) of tensor ``i`` of ``n``: the second half is group 1."""
    return 0 if case.second is None or i < (n + 1) // 2 else 1


def split_groups(params: list[Tensor], second: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Param groups as :func:`group_of` assigns them: the second half gets ``second``."""
    if second is None:
        return [{"params": params}]
    half = (len(params) + 1) // 2
    return [{"params": params[:half]}, {"params": params[half:], **second}]


def hyper_at(case: Case, group: int, step: int) -> dict[str, Any]:
    """The hyperparameters tensor ``group`` sees at ``step`` (1-based), lr schedule applied."""
    hyper = dict(case.hyper)
    if group == 1 and case.second:
        hyper.update(case.second)
    if case.lr_change and step >= case.lr_change[0] and "lr" in hyper:
        hyper["lr"] = hyper["lr"] * case.lr_change[1]
    return hyper


@dataclass
class Trajectory:
    """What an optimizer produced: parameters after each step, and the final state per tensor."""

    history: list[list[Tensor]]
    states: list[dict[str, Any]]


def run_optimizer(make: Callable[..., torch.optim.Optimizer], case: Case,
                  problem: Problem) -> Trajectory:
    """Feed the problem's gradients to the optimizer ``make(groups, **case.hyper)`` builds, with
    the case's param groups and lr schedule, as a user would drive it."""
    params = problem.fresh_params()
    opt = make(split_groups(params, case.second), **case.hyper)
    history = []
    for t, row in enumerate(problem.grads, start=1):
        if case.lr_change and t == case.lr_change[0]:
            for g in opt.param_groups:
                g["lr"] = g["lr"] * case.lr_change[1]
        for p, g in zip(params, row, strict=True):
            p.grad = copy_grad(g)
        opt.step()
        history.append([p.detach().clone() for p in params])
    return Trajectory(history, [dict(opt.state.get(p, {})) for p in params])


def run_oracle(spec: OptimizerSpec, case: Case, problem: Problem,
               impl: Impl = "single") -> Trajectory:
    """The oracle on the case: torch's twin in ``impl``, or the reference when there is none."""
    return run_optimizer(
        lambda groups, **kw: spec.torch_optimizer(groups, impl=impl, **kw), case, problem)


def run_adapted(step_fn: StepFunction, case: Case, problem: Problem) -> Trajectory:
    """A step function wrapped by :class:`StepFunctionOptimizer`, driven like torch's."""
    return run_optimizer(
        lambda groups, **kw: StepFunctionOptimizer(groups, step_fn, **kw), case, problem)


def run_steps(step_fn: StepFunction, defaults: dict[str, Any], case: Case, problem: Problem,
              follow: Trajectory | None = None, rtol: float = 0.0,
              atol: float = 0.0) -> Trajectory | None:
    """A trusted step function (a catalogued mistake) called directly, every hyperparameter
    given: ``defaults`` updated by what the case sets for each tensor's group at each step.

    With ``follow``, the run stops, returning None, at the first step whose parameters are not
    within ``atol + rtol·|follow|`` of ``follow``'s: most candidates leave at step 1.
    """
    params = [p.detach().clone(memory_format=torch.preserve_format) for p in problem.params]
    states: list[dict[str, Any]] = [{} for _ in params]
    history = []
    with torch.no_grad():
        for t, row in enumerate(problem.grads, start=1):
            for i, (p, g) in enumerate(zip(params, row, strict=True)):
                hyper = {**defaults, **hyper_at(case, group_of(i, len(params), case), t)}
                step_fn(p, copy_grad(g), states[i], **hyper)
            if follow is not None and not all(
                torch.allclose(p.double().cpu(), q.double().cpu(), rtol=rtol, atol=atol,
                               equal_nan=True)
                for p, q in zip(params, follow.history[t - 1], strict=True)
            ):
                return None
            history.append([p.clone() for p in params])
    return Trajectory(history, states)


@dataclass
class Comparison:
    """How one trajectory compares with another: the largest errors and the first bad element
    (``step``, ``tensor``, ``shape``, ``index``, ``expected``, ``got``, ``nonfinite``), or the
    first state entry that differs (``state``)."""

    ok: bool = True
    max_abs: float = 0.0
    max_rel: float = 0.0
    first: dict[str, Any] | None = None
    state: str | None = None

    def describe(self) -> str:
        """Where the runs first differ, in one line ("" when they agree)."""
        if self.first:
            f = self.first
            return (f"step {f['step']}, param {f['tensor']}{list(f['index'])}: "
                    f"{f['got']!r} != {f['expected']!r}")
        return self.state or ""


def stacked(got: Trajectory, want: Trajectory) -> Iterator[tuple[int, Tensor, Tensor]]:
    """Per tensor ``i``: its values after every step in both runs, stacked, as float64 on the
    CPU (empty tensors skipped)."""
    for i in range(len(want.history[0])):
        a = torch.stack([row[i] for row in got.history]).double().cpu()
        b = torch.stack([row[i] for row in want.history]).double().cpu()
        if a.numel():
            yield i, a, b


def same_values(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise equality in which NaN equals NaN."""
    return (a == b) | (a.isnan() & b.isnan())


def compare(got: Trajectory, want: Trajectory, rtol: float, atol: float) -> Comparison:
    """Parameters after every step, one stacked comparison per tensor. Non-finite values must
    match exactly (NaN where NaN, the same infinity)."""
    out = Comparison()
    for i, a, b in stacked(got, want):
        err = (a - b).abs()
        finite = torch.isfinite(a) & torch.isfinite(b)
        same_nonfinite = ~finite & same_values(a, b)
        bad = ~(same_nonfinite | (finite & (err <= atol + rtol * b.abs())))
        if finite.any():
            out.max_abs = max(out.max_abs, err[finite].max().item())
            rel = err[finite] / b[finite].abs().clamp_min(1e-300)
            out.max_rel = max(out.max_rel, rel.max().item())
        if bad.any():
            out.ok = False
            pos = tuple(int(x) for x in bad.nonzero()[0])
            step, idx = pos[0] + 1, pos[1:]
            if out.first is None or step < out.first["step"]:
                out.first = {"step": step, "tensor": i, "shape": tuple(a.shape[1:]),
                             "index": idx, "expected": b[pos].item(), "got": a[pos].item(),
                             "nonfinite": not bool(torch.isfinite(a[pos]))}
    return out


def compare_states(got: Trajectory, want: Trajectory, rtol: float, atol: float,
                   into: Comparison) -> Comparison:
    """The final states, key for key and value for value, added to ``into``."""
    for i, (sg, sw) in enumerate(zip(got.states, want.states, strict=True)):
        if set(sg) != set(sw):
            into.ok = False
            into.state = into.state or f"param {i}: state keys {sorted(sg)} != {sorted(sw)}"
            continue
        for key, w in sw.items():
            g = sg[key]
            if isinstance(w, Tensor) and isinstance(g, Tensor):
                if g.shape != w.shape or g.dtype != w.dtype:
                    bad = True
                else:
                    a, b = g.double().cpu(), w.double().cpu()
                    err = (a - b).abs()
                    same = same_values(a, b) | (err <= atol + rtol * b.abs())
                    bad = not bool(same.all())
                    if a.numel():
                        finite = torch.isfinite(err)
                        if finite.any():
                            into.max_abs = max(into.max_abs, err[finite].max().item())
            else:
                bad = g != w
            if bad:
                into.ok = False
                into.state = into.state or f"param {i}: state {key!r} {g!r} != {w!r}"
    return into
