"""optimlab.check: accepts correct step functions in many styles, rejects and names mistakes,
and gives a clear message for every kind of bad behaviour without crashing or hanging."""

from __future__ import annotations

import pytest
import torch

from optimlab import reference as ref
from optimlab.check import catalogue, check, groups_for, select
from optimlab.optimizers.registry import SPECS

from .learners import broken
from .learners.correct import CORRECT
from .learners.interactions import WRONG_TOGETHER

NAMES = list(SPECS)
# optimizers with more to get wrong than a learning rate
RICH = [name for name, spec in SPECS.items() if len(spec.defaults) > 2]


def run(fn, name, groups=None, **kw):
    return check(fn, name, groups, raise_on_failure=False, display=False, **kw)


# ------------------------------------------------------------------ correct code is accepted
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("groups", [None, "hidden"], ids=["visible", "hidden"])
def test_reference_is_accepted(name, groups):
    result = run(getattr(ref, f"{name}_step"), name, groups, allow_reference=True)
    assert result.passed, str(result)


@pytest.mark.parametrize(("name", "fn"), [(n, f) for n, fs in CORRECT.items() for f in fs],
                         ids=lambda x: getattr(x, "__name__", x))
@pytest.mark.parametrize("groups", [None, "hidden"], ids=["visible", "hidden"])
def test_other_correct_styles_are_accepted(name, fn, groups):
    result = run(fn, name, groups)
    assert result.passed, str(result)


def test_hidden_groups_cover_both_dtypes_and_tensor_lrs():
    for name in NAMES:
        hidden = groups_for(name)["hidden"].cases
        assert {c.dtype for c in hidden} == {torch.float32, torch.float64}, name
        assert any(isinstance(c.hyper.get("lr"), torch.Tensor) for c in hidden), name
        assert all(c.seed is None for c in hidden), name


def test_hidden_twins_of_a_group():
    visible = select("adam", "amsgrad")
    hidden = select("adam", "amsgrad", hidden=True)
    assert len(hidden) == 2 * len(visible)
    assert {c.dtype for c in hidden} == {torch.float32, torch.float64}
    assert all(c.seed is None and c.hyper["amsgrad"] for c in hidden)
    mistake = next(m for m in catalogue("adam") if m.key == "amsgrad_max_of_corrected")
    result = run(mistake.step_fn, "adam", "amsgrad", hidden=True, allow_reference=True)
    assert not result.passed and result.mistakes[0].key == mistake.key


def test_hidden_cases_draw_a_fresh_gradient_sequence():
    a = run(ref.gd_step, "gd", "hidden", allow_reference=True)
    b = run(ref.gd_step, "gd", "hidden", allow_reference=True)
    assert [c.seed for c in a.cases] != [c.seed for c in b.cases]


# ------------------------------------------------------------------ the mutation suite
MUTANTS = [
    pytest.param(name, m, id=f"{name}-{m.key}")
    for name in NAMES for m in catalogue(name) if m.step_fn is not None
]


@pytest.mark.parametrize(("name", "mistake"), MUTANTS)
def test_every_catalogued_mistake_is_rejected_and_named(name, mistake):
    # a mistake is the reference with one part changed: it calls optimlab's code, by design
    visible = run(mistake.step_fn, name, allow_reference=True)
    result = visible if not visible.passed else run(mistake.step_fn, name, "hidden",
                                                    allow_reference=True)
    assert not result.passed, f"{mistake.key} was accepted"
    assert not visible.passed, f"{mistake.key} passes every visible case"
    assert mistake.key in [m.key for m in result.mistakes], str(result)
    first_failure = result.failures[0]
    named_there = [m.key for m in first_failure.mistakes]
    if named_there:
        assert mistake.key == result.mistakes[0].key or mistake.key in named_there


@pytest.mark.parametrize("name", RICH)
def test_at_least_five_mistakes_per_optimizer_with_hyperparameters(name):
    assert len([m for m in catalogue(name) if m.step_fn is not None]) >= 5


def test_the_report_names_the_mistake_and_hints_without_code():
    mistake = next(m for m in catalogue("adam") if m.key == "beta1_in_second_moment")
    result = run(mistake.step_fn, "adam", allow_reference=True)
    text = str(result)
    assert "This looks like: β₁ used in the second-moment correction" in text
    assert "Hint:" in text and "first wrong at step 1" in text
    assert "def " not in text


# ------------------------------------------------------------------ bad behaviour
def test_exception_is_reported_with_the_learners_traceback():
    result = run(broken.raises, "gd")
    case = result.failures[0]
    assert case.kind == "exception"
    assert "KeyError" in case.message
    assert "learning_rate" in case.traceback and "broken.py" in case.traceback
    assert "optimlab/check" not in case.traceback


def test_nan_is_reported():
    case = run(broken.makes_nan, "gd").failures[0]
    assert case.kind == "nonfinite" and "NaN" in case.message and case.step == 1


@pytest.mark.parametrize(("fn", "kind"), [(broken.changes_shape, "shape"),
                                          (broken.changes_dtype, "dtype"),
                                          (broken.changes_grad, "grad_modified"),
                                          (broken.returns_new, "returned")])
def test_contract_violations_are_reported(fn, kind):
    result = run(fn, "gd")
    case = result.failures[0]
    assert case.kind == kind, str(result)
    assert case.step == 1 and case.message
    if kind == "returned":
        assert case.mistakes[0].key == "returned_new_tensor"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_moving_param_off_the_gpu_is_reported():
    case = run(broken.changes_device, "gd", device="cuda").failures[0]
    assert case.kind == "device" and "cpu" in case.message


def test_state_in_another_dtype_is_explained():
    """float32 state on float64 parameters passes in float32 and drifts by ~1e-8 in float64:
    the report says why rather than leaving a learner to stare at the 9th digit."""
    hidden = run(broken.float32_state, "adam", "basic", hidden=True).cases
    assert all(c.passed for c in hidden if c.case.dtype == torch.float32)
    case = run(broken.float32_state, "adam", "basic").failures[0]
    assert case.kind == "mismatch" and case.case.dtype == torch.float64
    assert "is float32 while the parameter is float64" in case.message
    assert "zeros_like" in case.message


def test_rebinding_param_is_explained():
    case = run(broken.rebinds, "gd").failures[0]
    assert "did not change at all" in case.message and "rebinds" in case.message


@pytest.mark.parametrize("fn", [broken.hangs, broken.sleeps])
def test_a_hang_hits_the_time_limit_and_later_cases_are_skipped(fn):
    import time

    start = time.perf_counter()
    result = run(fn, "gd", time_limit=0.5)
    assert time.perf_counter() - start < 5
    assert result.cases[0].kind == "timeout" and "0.5 s" in result.cases[0].message
    assert all(c.kind == "skipped" for c in result.cases[1:])


def test_state_shared_across_tensors_is_named():
    result = run(broken.shared_state, "sgd", "momentum")
    assert "shared_state" in [m.key for m in result.mistakes], str(result)


@pytest.mark.parametrize("fn", [broken.uses_torch_optim, broken.uses_fused_kernel,
                                broken.uses_torch_optim_obfuscated, broken.uses_reference,
                                broken.swallows_everything])
def test_shortcuts_are_refused(fn):
    name = "adam" if fn is broken.uses_fused_kernel else "gd"
    result = run(fn, name)
    assert not result.passed
    assert all(c.kind in ("shortcut", "skipped") for c in result.cases), str(result)
    assert "write the update yourself" in str(result)


def test_reference_is_refused_as_a_shortcut():
    result = run(ref.adam_step, "adam")
    assert result.cases[0].kind == "shortcut"


def test_missing_hyperparameter_in_signature_is_explained():
    result = run(broken.no_maximize_parameter, "sgd", ["basic", "maximize"])
    assert result.groups["basic"] and not result.groups["maximize"]
    case = next(c for c in result.failures if c.case.group == "maximize")
    assert case.kind == "signature" and "`maximize`" in case.message


def test_a_crashing_learner_does_not_stop_other_groups():
    result = run(broken.raises, "gd", ["basic", "hidden"])
    groups = groups_for("gd")
    assert len(result.cases) == len(groups["basic"].cases) + len(groups["hidden"].cases)
    assert all(c.kind == "exception" for c in result.cases)


# ------------------------------------------------------------------ the result object
def test_failure_raises_assertion_error_with_the_report():
    mistake = next(m for m in catalogue("sgd") if m.key == "ema_momentum")
    with pytest.raises(AssertionError, match="momentum written as an EMA"):
        check(mistake.step_fn, "sgd", "momentum", display=False, allow_reference=True)


def test_success_returns_a_truthy_result_with_html():
    result = check(CORRECT["adam"][0], "adam", "basic", display=False)
    assert result and result.groups == {"basic": True}
    assert "✓" in result._repr_html_() and "matches torch.optim" in str(result)


def test_html_report_shows_the_failure():
    mistake = next(m for m in catalogue("adamax") if m.key == "no_eps")
    page = run(mistake.step_fn, "adamax", allow_reference=True)._repr_html_()
    assert "✗" in page and "Adamax without eps" in page and "<table" in page


def test_groups_select_cases_for_partial_credit():
    mistake = next(m for m in catalogue("adam") if m.key == "amsgrad_ignored")
    assert run(mistake.step_fn, "adam", "basic", allow_reference=True).passed
    assert not run(mistake.step_fn, "adam", "amsgrad", allow_reference=True).passed


def test_unknown_optimizer_and_group_are_clear_errors():
    with pytest.raises(KeyError, match="unknown optimizer"):
        run(ref.gd_step, "adamm")
    with pytest.raises(KeyError, match="has no group"):
        run(ref.gd_step, "gd", "momentum")


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        run(ref.gd_step, "gd", device="cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_on_cuda_against_single_foreach_and_fused(name):
    result = run(CORRECT[name][0], name, device="cuda")
    assert result.passed and result.device == "cuda", str(result)
    hidden = run(CORRECT[name][0], name, "hidden", device="cuda")
    assert hidden.passed, str(hidden)
    mistake = next(m for m in catalogue(name) if m.key == "sign_flipped")
    assert not run(mistake.step_fn, name, device="cuda", allow_reference=True).passed


# ------------------------------------------------------------------ shortcuts the name scan misses
@pytest.mark.parametrize(("fn", "name"), [(broken.fused_kernel_by_built_name, "adam"),
                                          (broken.fused_kernel_through_aten, "gd"),
                                          (broken.functional_api, "adam")])
def test_shortcuts_through_kernels_and_the_functional_api_are_refused(fn, name):
    result = run(fn, name)
    assert result.cases[0].kind == "shortcut", str(result)
    assert "write the update yourself" in result.cases[0].message


def test_keeping_grad_itself_in_state_is_caught():
    result = run(broken.keeps_grad, "sgd", "momentum")
    case = result.failures[0]
    assert case.kind == "grad_kept" and "grad.clone()" in case.message, str(result)


def test_a_zero_step_is_not_called_a_rebinding():
    case = run(broken.zero_step_in_place, "gd").failures[0]
    assert "writes to `param`" in case.message and "rebinds" not in case.message
    case = run(broken.rebinds, "gd").failures[0]
    assert "rebinds" in case.message


def test_only_the_first_wrong_case_is_diagnosed_and_the_same_way_each_time():
    mistake = next(m for m in catalogue("adam") if m.key == "eps_inside_sqrt")
    reports = [run(mistake.step_fn, "adam", allow_reference=True) for _ in range(2)]
    assert str(reports[0]) == str(reports[1])
    named = [c for c in reports[0].failures if c.mistakes]
    assert named == reports[0].failures[:1]
    hidden = [run(mistake.step_fn, "adam", "hidden", allow_reference=True) for _ in range(3)]
    assert len({tuple(m.key for m in r.mistakes) for r in hidden}) == 1
    assert hidden[0].mistakes[0].key == "eps_inside_sqrt"


def test_a_bare_check_skips_the_groups_a_function_cannot_take_and_says_so():
    def adam_without_decoupling(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                weight_decay=0.0, amsgrad=False, maximize=False):
        ref.adam_step(param, grad, state, lr=lr, betas=betas, eps=eps,
                      weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)

    result = run(adam_without_decoupling, "adam", allow_reference=True)
    assert result.passed and "decoupled_weight_decay" not in result.groups
    assert result.skipped == {"decoupled_weight_decay": ["decoupled_weight_decay"]}
    assert "skipped" in str(result) and "`decoupled_weight_decay`" in result._repr_html_()
    named = run(adam_without_decoupling, "adam", "decoupled_weight_decay", allow_reference=True)
    assert not named.passed and named.failures[0].kind == "signature"


# ------------------------------------------------------------------ two flags together
@pytest.mark.parametrize(("name", "group", "fn"), WRONG_TOGETHER,
                         ids=[fn.__name__ for _, _, fn in WRONG_TOGETHER])
def test_a_feature_wrong_only_beside_another_fails_that_groups_hidden_check(name, group, fn):
    """Every visible group passes, and so does each group's hidden twins alone; the hidden
    check of ``group`` also runs it beside the groups taught before it, and fails there."""
    assert run(fn, name).passed
    assert run(fn, name, group).passed
    result = run(fn, name, group, hidden=True)
    assert not result.passed
    assert all(", with " in r.case.name for r in result.failures), str(result)


@pytest.mark.parametrize("name", NAMES)
def test_every_groups_hidden_check_with_its_interactions_accepts_the_reference(name):
    step = getattr(ref, f"{name}_step")
    for group, grp in groups_for(name).items():
        if grp.hidden:
            continue
        result = run(step, name, group, hidden=True, allow_reference=True)
        assert result.passed, str(result)
        joined = [c for c in result.cases if ", with " in c.case.name]
        assert all(c.case.group == group for c in joined)


def test_interactions_join_each_group_with_those_before_it_where_torch_takes_them():
    names = {c.name for c in check_select_hidden("sgd", "nesterov")}
    assert {"nesterov, with weight_decay (hidden, float32)",
            "nesterov, with maximize (hidden, float64)"} <= names
    names = {c.name for c in check_select_hidden("rmsprop", "momentum")}
    assert "momentum, with centered (hidden, float32)" in names
    assert not [c for c in check_select_hidden("adam", "basic") if ", with " in c.name]
    spec = SPECS["sgd"]
    assert not spec.accepts({"momentum": 0.9, "dampening": 0.5, "nesterov": True})
    assert spec.accepts({"momentum": 0.9, "nesterov": True, "maximize": True})


def check_select_hidden(name, group):
    from optimlab.optimizers.cases import interactions
    return interactions(groups_for(name), group)


@pytest.mark.parametrize(("name", "fn"), [(n, f) for n, fs in CORRECT.items() for f in fs],
                         ids=lambda x: getattr(x, "__name__", x))
def test_correct_styles_pass_every_groups_hidden_check_with_its_interactions(name, fn):
    for group, grp in groups_for(name).items():
        if not grp.hidden and check_select_hidden(name, group):
            result = run(fn, name, group, hidden=True)
            assert result.passed, str(result)


def test_a_mistake_in_one_part_costs_no_later_parts_hidden_points():
    """A join runs only where the earlier part passes alone: Adagrad's lr_decay off by one
    fails lr_decay's checks, and no later part's hidden check (each joins lr_decay)."""
    wrong = next(m for m in catalogue("adagrad") if m.key == "lr_decay_off_by_one").step_fn
    assert not run(wrong, "adagrad", "lr_decay", hidden=True, allow_reference=True).passed
    later = ["initial_accumulator_value", "weight_decay", "maximize"]
    for group in later:
        joins = [c for c in check_select_hidden("adagrad", group) if "lr_decay" in c.hyper]
        assert joins and all(c.alone is not None for c in joins)
        result = run(wrong, "adagrad", group, hidden=True, allow_reference=True)
        assert result.passed, str(result)
        assert not [c for c in result.cases if "lr_decay" in c.case.name], group


def test_a_float64_run_that_agrees_only_to_float32_precision_says_so():
    case = run(broken.adam_float32_step_count, "adam", "basic").failures[0]
    assert case.kind == "mismatch" and "float32" in case.message, case.message
    assert "torch.tensor(...)" in case.message


def test_state_rebound_instead_of_kept_is_named():
    result = run(broken.adam_rebinds_state, "adam", "basic")
    assert not result.passed and result.mistakes[0].key == "state_not_kept", str(result)


def test_the_returned_value_is_ignored_beside_an_in_place_update():
    assert run(lambda p, g, s, *, lr=1e-3: p.data.sub_(lr * g), "gd").passed  # an alias
    assert run(lambda p, g, s, *, lr=1e-3: (p.sub_(lr * g), s)[1], "gd").passed  # its state
    failed = run(broken.returns_new, "gd").failures[0]
    assert failed.kind == "returned" and "left `param` as it was" in failed.message
