"""Hyperparameters from an outside source: torch's own optimizer test inputs.

``torch.testing._internal.common_optimizers`` lists the configurations torch tests its
optimizers with (it needs ``expecttest``). Every reference must match torch on each of them.
"""

from __future__ import annotations

import pytest
import torch

from optimlab.optimizers.cases import Case
from optimlab.optimizers.registry import SPECS
from optimlab.optimizers.verify import verify

common = pytest.importorskip(
    "torch.testing._internal.common_optimizers", reason="needs torch's test inputs (expecttest)"
)

BY_CLASS = {spec.torch_cls: spec for spec in SPECS.values() if spec.name != "gd"}
SWITCHES = {"foreach", "fused", "capturable", "differentiable"}


def _inputs(device: str):
    out = []
    for info in common.optim_db:
        spec = BY_CLASS.get(info.optim_cls)
        if spec is None:
            continue
        for inp in info.optim_inputs_func(device, torch.float64):
            hyper = {k: v for k, v in inp.kwargs.items() if k not in SWITCHES}
            case = Case("torch's inputs", inp.desc, hyper)
            out.append(pytest.param(spec, case, id=f"{spec.name}-{inp.desc}"))
    return out


@pytest.mark.parametrize(("spec", "case"), _inputs("cpu"))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_torch_inputs_cpu(spec, case, dtype):
    for impl in spec.impls(case, "cpu"):
        check = verify(spec, case, dtype=dtype, impl=impl)
        assert check.ok, f"{impl}: {check.diff.describe()}"


def test_there_are_torch_inputs_for_every_optimizer():
    covered = {p.values[0].name for p in _inputs("cpu")}
    assert covered == set(SPECS) - {"gd"}


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize(("spec", "case"), _inputs("cuda"))
def test_torch_inputs_cuda(spec, case):
    for impl in spec.impls(case, "cuda"):
        check = verify(spec, case, dtype=torch.float32, impl=impl, device="cuda")
        assert check.ok, f"{impl}: {check.diff.describe()}"
