"""Check every reference step function against ``torch.optim`` and report the differences.

This is what ``optimlab verify`` prints, and what the test matrix asserts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import torch

from .cases import Case
from .registry import SPECS, Impl, OptimizerSpec
from .trajectory import Comparison, compare, compare_states, make_problem, run_adapted, run_oracle

IMPLS: tuple[Impl, ...] = ("single", "foreach", "fused")

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


def reference_tolerance(dtype: torch.dtype, impl: Impl, case: Case, device: str,
                        spec: OptimizerSpec | None = None) -> tuple[float, float]:
    """The documented tolerance of a reference against torch (see :data:`TOLERANCES`)."""
    if spec is not None and spec.kernel_tolerance is not None and impl != "single":
        usual = TOLERANCES[(dtype, "kernel")]
        return (max(spec.kernel_tolerance[0], usual[0]), max(spec.kernel_tolerance[1], usual[1]))
    if impl == "fused" and case.has_tensor_hyper:
        # torch's fused kernels read a tensor lr/betas in float32, even for float64 parameters:
        # they differ from torch's own single-tensor path by up to 2e-6.
        return TOLERANCES[(torch.float32, "kernel")]
    exact = impl == "single" and torch.device(device).type == "cpu"
    return TOLERANCES[(dtype, "exact" if exact else "kernel")]


def with_second_group(spec: OptimizerSpec, case: Case) -> Case:
    """The case as verify runs it: in two param groups, the second at half the learning rate
    unless the case sets its own."""
    if case.second is not None:
        return case
    lr = case.hyper.get("lr", spec.defaults["lr"])
    return replace(case, second={"lr": 0.5 * float(lr)})


@dataclass
class Verification:
    """One comparison: a reference against one torch implementation on one case."""

    spec: OptimizerSpec
    case: Case
    dtype: torch.dtype
    impl: Impl
    device: str
    diff: Comparison
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
    impl: Impl = "single",
    device: str = "cpu",
    steps: int = 50,
    seed: int = 0,
) -> Verification:
    """Run the reference (through the adapter) and torch.optim side by side; compare the
    parameters after every step and the final state."""
    problem = make_problem(steps=steps, dtype=dtype, device=device, seed=seed,
                           shapes=spec.shapes, sparse=spec.sparse_grads)
    case = with_second_group(spec, case)
    mine = run_adapted(spec.step_fn, case, problem)
    theirs = run_oracle(spec, case, problem, impl)
    rtol, atol = reference_tolerance(dtype, impl, case, device, spec)
    diff = compare_states(mine, theirs, rtol, atol, compare(mine, theirs, rtol, atol))
    return Verification(spec, case, dtype, impl, device, diff, rtol, atol)


def all_checks(
    names: Iterable[str] | None = None,
    *,
    device: str = "cpu",
    dtypes: Iterable[torch.dtype] = (torch.float64, torch.float32),
    progress: Callable[[Verification], None] | None = None,
) -> list[Verification]:
    """Every case × dtype × torch implementation for the named optimizers (all by default)."""
    out = []
    for name in names or SPECS:
        spec = SPECS[name]
        for case in spec.cases():
            for dtype in dtypes:
                for impl in spec.impls(case, device):
                    check = verify(spec, case, dtype=dtype, impl=impl, device=device)
                    out.append(check)
                    if progress:
                        progress(check)
    return out


def format_table(checks: list[Verification],
                 extra_rows: tuple[tuple[str, ...], ...] = ()) -> str:
    """A table with one row per optimizer: runs passed, and the largest differences seen;
    ``extra_rows`` (L-BFGS's) go at the end."""
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
    rows.extend(extra_rows)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failures = [c for c in checks if not c.ok]
    for c in failures:
        lines.append(
            f"FAIL {c.spec.name} [{c.case.name}] {str(c.dtype)[6:]} {c.impl}: {c.diff.describe()}"
        )
    return "\n".join(lines)
