"""The test matrix: every reference × every case × dtype × torch implementation × device.

Each run is 50 steps of a fixed gradient sequence over six tensors (0-d, 1-D, 2-D, a
non-contiguous view, an empty tensor, coordinates whose gradient is always zero) in two param
groups. Parameters after every step and the final state must agree within the documented
tolerances of :data:`optimlab.optimizers.verify.TOLERANCES`:
bitwise against torch's single-tensor path.
"""

from __future__ import annotations

import pytest
import torch

from optimlab.optimizers.registry import SPECS
from optimlab.optimizers.verify import verify

MATRIX = [
    pytest.param(spec, case, dtype, impl, id=f"{spec.name}-{case.name}-{str(dtype)[6:]}-{impl}")
    for spec in SPECS.values()
    for case in spec.cases()
    for dtype in (torch.float64, torch.float32)
    for impl in spec.impls(case)
]


@pytest.mark.parametrize(("spec", "case", "dtype", "impl"), MATRIX)
def test_reference_matches_torch(spec, case, dtype, impl, device):
    if impl not in spec.impls(case, device):
        pytest.skip(f"this torch has no {impl} {spec.name} on {device}")
    check = verify(spec, case, dtype=dtype, impl=impl, device=device)
    assert check.ok, (
        f"{spec.name} [{case.name}] {dtype} {impl} on {device}: {check.diff.describe()} "
        f"(max abs {check.diff.max_abs:.3g}, rtol {check.rtol}, atol {check.atol})"
    )


@pytest.mark.parametrize("name", list(SPECS))
def test_single_tensor_path_is_bitwise(name):
    """The claim the docstrings make: same operations, same order, same bits (CPU)."""
    spec = SPECS[name]
    for case in spec.cases():
        check = verify(spec, case, dtype=torch.float32, impl="single")
        assert check.diff.max_abs == 0.0, (case.name, check.diff.max_abs)


def test_matrix_covers_every_hyperparameter():
    """Each hyperparameter a reference takes is set away from its default by some case."""
    for spec in SPECS.values():
        varied = {k for case in spec.cases() for k in case.hyper}
        assert set(spec.defaults) <= varied, (spec.name, set(spec.defaults) - varied)


def test_references_take_every_torch_hyperparameter():
    """Every hyperparameter torch.optim exposes, but its implementation switches."""
    import inspect

    switches = {"params", "self", "foreach", "fused", "capturable", "differentiable"}
    for spec in SPECS.values():
        if spec.name == "gd":
            continue
        torch_names = set(inspect.signature(spec.torch_cls.__init__).parameters) - switches
        if spec.name == "adamw":
            torch_names.discard("decoupled_weight_decay")  # AdamW always decouples
        assert torch_names == set(spec.defaults), spec.name


def test_defaults_are_torchs():
    import inspect

    for spec in SPECS.values():
        if spec.name == "gd":
            continue
        torch_sig = inspect.signature(spec.torch_cls.__init__).parameters
        for name, default in spec.defaults.items():
            assert torch_sig[name].default == default, (spec.name, name)
        assert (spec.step_fn.__doc__ and "State" in spec.step_fn.__doc__) or spec.name == "gd"


def test_a_mismatch_is_detected():
    """The comparison can fail: a reference with one wrong constant does not pass."""
    import functools

    from optimlab.optimizers.cases import Case
    from optimlab.optimizers.registry import OptimizerSpec
    from optimlab.reference import adam_step

    @functools.wraps(adam_step)
    def off_by_a_hair(param, grad, state, **kw):
        adam_step(param, grad, state, **kw)
        param.mul_(1 + 1e-9)

    bad = OptimizerSpec("adam", "Adam", "07_adam", off_by_a_hair, torch.optim.Adam, visible=())
    check = verify(bad, Case("basic", "default"), dtype=torch.float64, impl="foreach")
    assert not check.ok
