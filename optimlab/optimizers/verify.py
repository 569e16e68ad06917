"""Check every reference step function against ``torch.optim`` and report the differences.

This is what ``optimlab verify`` prints, and what the test matrix asserts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from .registry import SPECS, Case, OptimizerSpec
from .trajectory import Difference, compare_runs, make_problem, run_optimizer, run_step_function

IMPLS = ("single", "foreach", "fused")

#: Tolerances (rtol, atol) of a reference against torch.optim on a 50-step gradient sequence.
#: On the CPU, torch's single-tensor path (foreach=False) and the references perform the same
#: operations in the same order: they agree to the bit. The foreach and fused kernels round
#: differently; the largest differences measured are about 4e-15 (float64) and 2.3e-6 (float32).
TOLERANCES: dict[tuple[torch.dtype, str], tuple[float, float]] = {
    (torch.float64, "exact"): (0.0, 0.0),
    (torch.float64, "kernel"): (1e-10, 1e-12),
    (torch.float32, "exact"): (0.0, 0.0),
    (torch.float32, "kernel"): (1e-5, 1e-5),
}


def tolerance(dtype: torch.dtype, impl: str, case: Case, device: str) -> tuple[float, float]:
    """The documented tolerance for one comparison (see :data:`TOLERANCES`)."""
    if impl == "fused" and case.has_tensor_hyper:
        # torch's fused kernels read a tensor lr/betas in float32, even for float64 parameters:
        # they differ from torch's own single-tensor path by up to 2e-6.
        return TOLERANCES[(torch.float32, "kernel")]
    exact = impl == "single" and torch.device(device).type == "cpu"
    return TOLERANCES[(dtype, "exact" if exact else "kernel")]


def second_group(spec: OptimizerSpec, case: Case) -> dict[str, float]:
    """The override for the second param group: half the learning rate."""
    lr = case.hyper.get("lr", spec.defaults["lr"])
    return {"lr": 0.5 * float(lr)}


@dataclass
class Check:
    """One comparison: a reference against one torch implementation on one case."""

    spec: OptimizerSpec
    case: Case
    dtype: torch.dtype
    impl: str
    device: str
    diff: Difference
    rtol: float
    atol: float

    @property
    def ok(self) -> bool:
        return self.diff.ok


def verify(
    spec: OptimizerSpec,
    case: Case,
    *,
    dtype: torch.dtype = torch.float64,
    impl: str = "single",
    device: str = "cpu",
    steps: int = 50,
    seed: int = 0,
) -> Check:
    """Run the reference and torch.optim side by side; compare parameters and state."""
    problem = make_problem(steps=steps, dtype=dtype, device=device, seed=seed)
    second = second_group(spec, case)
    mine = run_step_function(spec.step_fn, problem, case.hyper, second)
    theirs = run_optimizer(
        lambda groups, **kw: spec.torch_optimizer(groups, impl=impl, **kw),
        problem, case.hyper, second,
    )
    rtol, atol = tolerance(dtype, impl, case, device)
    diff = compare_runs(mine, theirs, rtol=rtol, atol=atol)
    return Check(spec, case, dtype, impl, device, diff, rtol, atol)


def all_checks(
    names: Iterable[str] | None = None,
    *,
    device: str = "cpu",
    dtypes: Iterable[torch.dtype] = (torch.float64, torch.float32),
    progress: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Every case × dtype × torch implementation for the named optimizers (all by default)."""
    out = []
    for name in names or SPECS:
        spec = SPECS[name]
        for case in spec.cases:
            for dtype in dtypes:
                for impl in spec.impls(case):
                    check = verify(spec, case, dtype=dtype, impl=impl, device=device)
                    out.append(check)
                    if progress:
                        progress(check)
    return out


def format_table(checks: list[Check]) -> str:
    """A table with one row per optimizer: runs passed, and the largest differences seen."""
    header = ("optimizer", "cases", "passed", "single f64", "single f32",
              "foreach f64", "foreach f32", "fused f64", "fused f32")
    rows = [header]
    for name in dict.fromkeys(c.spec.name for c in checks):
        mine = [c for c in checks if c.spec.name == name]
        cells = [name, str(len({c.case.name for c in mine})),
                 f"{sum(c.ok for c in mine)}/{len(mine)}"]
        for impl in IMPLS:
            for dtype in (torch.float64, torch.float32):
                sel = [c for c in mine if c.impl == impl and c.dtype == dtype]
                if not sel:
                    cells.append("-")
                    continue
                worst = max(c.diff.max_abs for c in sel)
                cells.append("== (bitwise)" if worst == 0 else f"{worst:.1e}")
        rows.append(tuple(cells))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failures = [c for c in checks if not c.ok]
    for c in failures:
        lines.append(
            f"FAIL {c.spec.name} [{c.case.name}] {str(c.dtype)[6:]} {c.impl}: {c.diff.first_bad}"
        )
    return "\n".join(lines)
