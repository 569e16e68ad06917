"""Run optimizers side by side on a fixed gradient sequence and compare what they hold.

A fixed sequence of gradients (not a training run) is how we compare: on a real loss a tiny
rounding difference changes the next gradient, and float32 trajectories drift apart even
between torch's own implementations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .adapter import StepFunction, StepFunctionOptimizer

#: The parameter shapes of the standard problem: 0-d, 1-D, 2-D, a non-contiguous (transposed)
#: 2-D view, an empty tensor, and a 1-D tensor whose gradient is always zero in places.
STANDARD_SHAPES: tuple[tuple[int, ...], ...] = ((), (5,), (3, 4), (4, 3), (0,), (6,))
_TRANSPOSED = 3  # index of the shape stored transposed, so the parameter is non-contiguous
_SPARSE_GRAD = 5  # index of the parameter whose gradient has coordinates that are always zero


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
        out = []
        for p in self.params:
            q = torch.empty_like(p).copy_(p)
            out.append(q.requires_grad_())
        return out


def make_problem(
    *,
    steps: int = 50,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    seed: int = 0,
    shapes: Sequence[tuple[int, ...]] = STANDARD_SHAPES,
    zero_steps: Sequence[int] = (7,),
    decades: float = 0.0,
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
            row.append(torch.empty_like(p).copy_(g))
        grads.append(row)
    return Problem(params, grads)


def split_groups(params: list[Tensor], second: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Two param groups: the first half of the tensors on the optimizer's defaults, the rest with
    the overrides in ``second`` (one group when ``second`` is None)."""
    if second is None:
        return [{"params": params}]
    half = (len(params) + 1) // 2
    return [{"params": params[:half]}, {"params": params[half:], **second}]


@dataclass
class Run:
    """What an optimizer produced: parameters after each step, and the final state per tensor."""

    history: list[list[Tensor]]
    state: list[dict[str, Any]]

    @property
    def params(self) -> list[Tensor]:
        return self.history[-1]


def run_optimizer(
    make: Callable[..., torch.optim.Optimizer],
    problem: Problem,
    hyper: dict[str, Any],
    second_group: dict[str, Any] | None = None,
) -> Run:
    """Feed the problem's gradient sequence to the optimizer ``make(groups, **hyper)`` builds.

    ``hyper`` goes to the constructor, as a user would write it; ``second_group`` overrides some
    of it for the second half of the tensors.
    """
    params = problem.fresh_params()
    opt = make(split_groups(params, second_group), **hyper)
    history = []
    for row in problem.grads:
        for p, g in zip(params, row, strict=True):
            p.grad = g.clone(memory_format=torch.preserve_format)
        opt.step()
        history.append([p.detach().clone() for p in params])
    state = [dict(opt.state.get(p, {})) for p in params]
    return Run(history, state)


def run_step_function(
    step_fn: StepFunction, problem: Problem, hyper: dict[str, Any],
    second_group: dict[str, Any] | None = None,
) -> Run:
    """Run a step function through :class:`StepFunctionOptimizer`."""
    return run_optimizer(
        lambda groups, **kw: StepFunctionOptimizer(groups, step_fn, **kw),
        problem, hyper, second_group,
    )


@dataclass
class Difference:
    """The largest difference found between two runs, and where it first exceeded tolerance."""

    max_abs: float = 0.0
    max_rel: float = 0.0
    first_bad: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad is None

    def add(self, where: str, a: Tensor, b: Tensor, rtol: float, atol: float) -> None:
        if a.shape != b.shape:
            shapes = f"{tuple(a.shape)} != {tuple(b.shape)}"
            self.first_bad = self.first_bad or f"{where}: shape {shapes}"
            return
        if a.numel() == 0:
            return
        a64, b64 = a.detach().double().cpu(), b.detach().double().cpu()
        diff = (a64 - b64).abs()
        finite = torch.isfinite(a64) & torch.isfinite(b64)
        same_nonfinite = (~finite) & ((a64 == b64) | (a64.isnan() & b64.isnan()))
        bad = ~(same_nonfinite | (finite & (diff <= atol + rtol * b64.abs())))
        d = diff[finite]
        if d.numel():
            self.max_abs = max(self.max_abs, d.max().item())
            self.max_rel = max(self.max_rel, (d / b64[finite].abs().clamp_min(1e-300)).max().item())
        if bad.any() and self.first_bad is None:
            idx = tuple(int(i) for i in bad.nonzero()[0])
            self.first_bad = f"{where}{list(idx)}: {a64[idx].item()!r} != {b64[idx].item()!r}"


def compare_runs(got: Run, want: Run, *, rtol: float, atol: float) -> Difference:
    """Compare parameters after every step, then the final state, key by key."""
    diff = Difference()
    for t, (row_g, row_w) in enumerate(zip(got.history, want.history, strict=True), start=1):
        for i, (g, w) in enumerate(zip(row_g, row_w, strict=True)):
            diff.add(f"step {t}, param {i}", g, w, rtol, atol)
    for i, (sg, sw) in enumerate(zip(got.state, want.state, strict=True)):
        if set(sg) != set(sw):
            diff.first_bad = diff.first_bad or (
                f"param {i}: state keys {sorted(sg)} != {sorted(sw)}"
            )
            continue
        for key, w in sw.items():
            g = sg[key]
            if isinstance(w, Tensor) and isinstance(g, Tensor):
                diff.add(f"final state {key!r}, param {i}", g, w, rtol, atol)
            elif g != w:
                diff.first_bad = diff.first_bad or f"param {i}: state {key!r} {g!r} != {w!r}"
    return diff
