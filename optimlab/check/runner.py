"""Run one case: torch.optim's trajectory, the learner's, and what differs between them."""

from __future__ import annotations

import inspect
import os
import re
import zlib
from collections import OrderedDict
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from ..optimizers.adapter import returned_instead_of_updating, written_marks
from ..optimizers.cases import Case
from ..optimizers.mistakes import NOT_IN_PLACE, SHARED_STATE, Mistake
from ..optimizers.registry import Impl, OptimizerSpec
from ..optimizers.trajectory import (
    Comparison,
    Problem,
    Trajectory,
    compare,
    group_of,
    hyper_at,
    problem_for,
    run_oracle,
    run_steps,
    same_values,
    stacked,
)
from .guard import (
    ShortcutUsed,
    TimeLimitExceeded,
    time_limit,
    trimmed_traceback,
    watch_for_shortcuts,
    watch_kernels,
)
from .recording import hidden_seed, produce
from .report import CaseResult, Outcome


def learner_tolerance(spec: OptimizerSpec, dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) for a learner against the oracle.

    float64: the spec's (1e-9 / 1e-12 unless it says otherwise), far above what a different
    order of operations costs (about 1e-15) and far below any catalogued mistake. float32:
    the spec's (1e-4 / 1e-5 unless it says otherwise).
    """
    return spec.float64_tolerance if dtype == torch.float64 else spec.float32_tolerance


def mistake_tolerance(spec: OptimizerSpec, dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) for a learner's wrong trajectory against a catalogued mistake: 1e-6 / 1e-9
    in float64, 1e-3 / 1e-4 in float32, or ten times the spec's learner tolerance where that
    is looser."""
    if dtype != torch.float64:
        rtol, atol = spec.float32_tolerance
        return (max(1e-3, 10 * rtol), max(1e-4, 10 * atol))
    rtol, atol = spec.float64_tolerance
    return (max(1e-6, 10 * rtol), max(1e-9, 10 * atol))


def catalogue(spec: OptimizerSpec) -> list[Mistake]:
    """The mistakes the checker can name for ``spec``: the spec's, and the two it recognises
    by behaviour (shared state, a returned tensor)."""
    return [*spec.catalogue, SHARED_STATE, NOT_IN_PLACE]


class LearnerFailed(Exception):
    """Raised inside the learner's run to stop it, carrying a ready CaseResult's fields."""

    def __init__(self, kind: Outcome, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.kind, self.message, self.fields = kind, message, fields


class Signature:
    """What a learner's function accepts, read once per check."""

    def __init__(self, fn: Callable[..., Any], spec: OptimizerSpec) -> None:
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):  # a builtin or other unintrospectable callable
            params = {}
        self.spec = spec
        self.names = set(params)
        self.takes_var = any(p.kind is p.VAR_KEYWORD for p in params.values())
        self.required = [
            name for name, p in list(params.items())[3:]
            if p.default is p.empty and name in spec.defaults
            and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]

    def kwargs(self, hyper: dict[str, Any]) -> dict[str, Any]:
        """The case's settings, plus torch's default for any hyperparameter the learner
        requires but the case leaves at its default."""
        if not self.takes_var:
            missing = [k for k in hyper if k not in self.names]
            if missing:
                names = ", ".join(f"`{k}`" for k in missing)
                raise LearnerFailed(
                    "signature", f"your function has no parameter {names}; it should take "
                    f"(param, grad, state, *, {', '.join(self.spec.defaults)})")
        out = dict(hyper)
        for name in self.required:
            out.setdefault(name, self.spec.defaults[name])
        return out


@dataclass
class LearnerRun(Trajectory):
    """A learner's trajectory, and whether its function wrote to ``param`` on step 1."""

    wrote: bool = True


def _shares_memory(a: Tensor, b: Tensor) -> bool:
    return a.device == b.device and a.untyped_storage().data_ptr() == \
        b.untyped_storage().data_ptr() and b.numel() > 0


def learner_trajectory(fn: Callable[..., Any], spec: OptimizerSpec, case: Case,
                       problem: Problem, time_limit_s: float | None,
                       allow_reference: bool = False, watch_all_steps: bool = False
                       ) -> LearnerRun:
    """Run the learner's function on the problem, checking its behaviour after every call.

    As in training, each tensor's ``grad`` is one tensor object refilled in place every step
    (``zero_grad(set_to_none=False)``), so a function that keeps ``grad`` itself is caught.
    """
    params = [p.detach().clone(memory_format=torch.preserve_format) for p in problem.params]
    # (sparse gradients, SparseAdam's, are fresh tensors every step instead)
    grads = [None if g.is_sparse else torch.empty_like(p)
             for p, g in zip(params, problem.grads[0], strict=True)]
    states: list[dict[str, Any]] = [{} for _ in params]
    history: list[list[Tensor]] = []
    n = len(params)
    sig = Signature(fn, spec)
    versions = [p._version for p in params]
    wrote = True
    # torch's kernels are watched on the first step and one other, which differs by case
    watched = {1, 2 + zlib.crc32(case.name.encode()) % max(problem.steps - 1, 1)}
    with torch.no_grad(), time_limit(time_limit_s), watch_for_shortcuts() as hits:
        for t, row in enumerate(problem.grads, start=1):
            per_group = [sig.kwargs(hyper_at(case, k, t)) for k in (0, 1)]
            for i, (p, g) in enumerate(zip(params, row, strict=True)):
                kwargs = dict(per_group[group_of(i, n, case)])
                grad = grads[i]
                if grad is None:
                    grad = g.clone()
                else:
                    grad.copy_(g)
                shape, dtype, device = p.shape, p.dtype, p.device
                where = {"step": t, "tensor": i, "shape": tuple(shape)}
                watch = watch_kernels(hits) if t in watched or watch_all_steps else nullcontext()
                before = written_marks(p)
                try:
                    with watch:
                        out = fn(p, grad, states[i], **kwargs)
                except (TimeLimitExceeded, KeyboardInterrupt):
                    raise
                except Exception as exc:
                    raise LearnerFailed("exception", f"your function raised {type(exc).__name__} "
                                        f"at step {t} on tensor {i} (shape {tuple(shape)})",
                                        traceback=trimmed_traceback(exc), exc=exc, **where) from exc
                if hits and not allow_reference:
                    raise ShortcutUsed(f"your function called {hits[0]}; the exercise is to "
                                       "write the update yourself")
                if returned_instead_of_updating(out, p, written_marks(p) != before):
                    raise LearnerFailed("returned", f"your function returned a new tensor at "
                                        f"step {t} and left `param` as it was; it must update "
                                        "`param` in place (param.sub_(...), param.copy_(...))",
                                        **where)
                if not (torch.equal(grad.to_dense(), g.to_dense()) if g.is_sparse
                        else torch.equal(grad, g)):
                    raise LearnerFailed("grad_modified", f"your function changed `grad` in place "
                                        f"at step {t} (tensor {i}); compute with a new tensor, "
                                        "e.g. `g = grad + wd * param`, not `grad.add_(...)`",
                                        **where)
                kept = [] if grad.is_sparse else [
                    k for k, v in states[i].items()
                    if isinstance(v, Tensor) and _shares_memory(v, grad)]
                if kept:
                    raise LearnerFailed("grad_kept", f"your function keeps `grad` itself in "
                                        f"state[{kept[0]!r}] (step {t}, tensor {i}); in training "
                                        "torch refills the same `.grad` tensor every step, so "
                                        "store a copy: `grad.clone()`", **where)
                for what, before, after in (("shape", shape, p.shape),
                                            ("dtype", dtype, p.dtype),
                                            ("device", device, p.device)):
                    if before != after:
                        raise LearnerFailed(what, f"after step {t}, tensor {i} has {what} "
                                            f"{after}, not {before}: update `param` in place, "
                                            f"keeping its {what}", **where)
            if t == 1:
                wrote = any(p._version != v for p, v in zip(params, versions, strict=True))
            history.append([p.clone() for p in params])
    return LearnerRun(history, states, wrote)


def recorded_trajectory(fn: Callable[..., Any], spec: OptimizerSpec, case: Case,
                        problem: Problem, time_limit_s: float | None,
                        allow_reference: bool = False, label: str | None = None,
                        watch_all_steps: bool = False) -> LearnerRun:
    """:func:`learner_trajectory` as data: while grading, the kernel records it and the
    trusted side replays it (:mod:`optimlab.check.recording`); the comparison with torch is
    the same."""

    def run() -> dict[str, Any]:
        got = learner_trajectory(fn, spec, case, problem, time_limit_s, allow_reference,
                                 watch_all_steps)
        return {"history": got.history, "states": got.states, "wrote": got.wrote}

    out = produce(label or f"{spec.name}: {case.name}", run,
                  errors=(TimeLimitExceeded, ShortcutUsed, LearnerFailed), rebuild=_failure)
    return _checked(out, problem)


def _checked(out: Any, problem: Problem) -> LearnerRun:
    """A recorded trajectory with the problem's steps, tensors, shapes and dtypes, or a failure:
    what the kernel checked after every call, checked again on the trusted side."""
    n = len(problem.params)
    history = out.get("history") if isinstance(out, dict) else None
    states = out.get("states") if isinstance(out, dict) else None
    ok = (isinstance(history, list) and len(history) == problem.steps
          and isinstance(states, list) and len(states) == n
          and all(isinstance(s, dict) for s in states)
          and all(isinstance(row, list) and len(row) == n and all(
              isinstance(t, Tensor) and t.shape == p.shape and t.dtype == p.dtype
              for t, p in zip(row, problem.params, strict=True)) for row in history))
    if not ok:
        raise LearnerFailed("shape", "the recorded results of your function do not have the "
                            "parameters' steps, shapes and dtypes")
    wrote = out.get("wrote")
    return LearnerRun(list(history), list(states), wrote if isinstance(wrote, bool) else True)


def _failure(err: dict[str, Any]) -> BaseException:
    """A learner's failure, as the kernel recorded it."""
    message = str(err.get("message", ""))
    if err.get("__raised__") == "TimeLimitExceeded":
        return TimeLimitExceeded(message)
    if err.get("__raised__") == "ShortcutUsed":
        return ShortcutUsed(message)
    fields = err.get("fields") if isinstance(err.get("fields"), dict) else {}
    return LearnerFailed(str(err.get("kind") or "exception"), message, **fields)


def compare_state(got: dict[str, Any], want: dict[str, Any], rtol: float, atol: float,
                  float32_state: tuple[str, ...] = ("step",)
                  ) -> str | None:
    """Compare the state entries the learner named as torch does. None when they agree."""
    for key, w in want.items():
        if key not in got:
            continue
        g = got[key]
        try:
            g_t = torch.as_tensor(g, dtype=torch.float64).cpu()
        except (TypeError, ValueError, RuntimeError):
            return f"state[{key!r}] is a {type(g).__name__}; torch keeps a tensor there"
        w_t = torch.as_tensor(w, dtype=torch.float64).cpu()
        if g_t.shape != w_t.shape and g_t.numel() != w_t.numel():
            return f"state[{key!r}] has shape {tuple(g_t.shape)}; torch's has {tuple(w_t.shape)}"
        r = max(rtol, 1e-6) if key in float32_state else rtol  # rounded in float32 by torch
        if not torch.allclose(g_t.reshape(w_t.shape), w_t, rtol=r, atol=atol, equal_nan=True):
            return (f"state[{key!r}] differs from torch's (its parameters match): torch's "
                    f"{key} holds something else; see the algorithm box")
    return None


#: A float64 run this close to torch's, and no closer, has float32 somewhere, or a small slip.
NEAR_FLOAT32 = (1e-5, 1e-7)
NEAR_FLOAT32_NOTE = (
    "close to torch's (within about 1e-5), but a float64 run should agree to about 1e-12: "
    "something is computed in float32, e.g. a step count or constant made with "
    "`torch.tensor(...)` or `torch.zeros(...)` without a dtype, or `torch.where(mask, 1.2, "
    "0.5)` with Python numbers (both float32 by default; keep the parameter's dtype, or use "
    "Python floats); or eps sits in a slightly different place than in torch's formula")


def state_precision_note(states: list[dict[str, Any]], params: list[Tensor], first: int = 0,
                         float32_state: tuple[str, ...] = ("step",)) -> str | None:
    """Why a trajectory that is only slightly off may be: state kept in another dtype.

    ``torch.zeros(param.shape)`` makes a float32 tensor whatever the parameter's dtype, and
    in-place updates keep it float32, so float64 runs drift by about 1e-8. ``float32_state``
    (``step``, and NAdam's ``mu_product``) is exempt: torch itself keeps it as float32 scalars.
    """
    order = [first, *(i for i in range(len(params)) if i != first)]
    for i in order:
        state, p = states[i], params[i]
        for key, value in state.items():
            if (isinstance(value, Tensor) and value.is_floating_point()
                    and key not in float32_state and value.dtype != p.dtype):
                return (f"state[{key!r}] of tensor {i} is {str(value.dtype).removeprefix('torch.')}"
                        f" while the parameter is {str(p.dtype).removeprefix('torch.')}: "
                        "create state with `torch.zeros_like(param)`, which keeps the "
                        "parameter's dtype and device")
    return None


def new_seed() -> int:
    return int.from_bytes(os.urandom(4), "little") or 1


#: The gradient sequences a diagnosis runs on: fixed, so the same function always gets the
#: same names (a hidden case's own sequence is drawn fresh), and two of them, so a name must
#: hold on more than one sequence.
DIAGNOSIS_SEEDS = (0, 1)
#: A named mistake is at least this many times closer to the learner than torch is, at every
#: step where the mistake and torch differ.
CLOSER = 20.0

_CACHE_SIZE = 256
_ORACLES: OrderedDict[str, tuple[Problem, dict[Impl, Trajectory]]] = OrderedDict()


def oracle(spec: OptimizerSpec, case: Case, seed: int, device: str,
           impls: tuple[Impl, ...]) -> tuple[Problem, dict[Impl, Trajectory]]:
    """The case's problem and the oracle's trajectories on it. They depend only on the case
    and the seed, so they are computed once and kept (a check run again, a diagnosis)."""
    key = repr((id(spec), spec.name, case.group, case.name, sorted(case.hyper.items()),
                case.dtype, case.steps, case.second, case.lr_change, case.decades, seed,
                str(device)))
    problem, wants = _ORACLES.pop(key, None) or (problem_for(case, device, seed, spec), {})
    for impl in impls:
        if impl not in wants:
            wants[impl] = run_oracle(spec, case, problem, impl)
    _ORACLES[key] = (problem, wants)
    while len(_ORACLES) > _CACHE_SIZE:
        _ORACLES.popitem(last=False)
    return problem, {impl: wants[impl] for impl in impls}


def _per_step(a: Trajectory, b: Trajectory, rtol: float = 0.0,
              atol: float = 0.0) -> tuple[Tensor, Tensor]:
    """Per step: the largest |a − b| over every tensor, and whether any element is beyond
    ``atol + rtol·|b|`` (non-finite values count as equal only where both are the same)."""
    steps = len(b.history)
    err = torch.zeros(steps, dtype=torch.float64)
    bad = torch.zeros(steps, dtype=torch.bool)
    for _, x, y in stacked(a, b):
        x, y = x.reshape(steps, -1), y.reshape(steps, -1)
        d = (x - y).abs()
        d = torch.where(same_values(x, y), torch.zeros_like(d), d.nan_to_num(float("inf")))
        err = torch.maximum(err, d.max(dim=1).values)
        bad |= (d > atol + rtol * y.abs().nan_to_num(0.0)).any(dim=1)
    return err, bad


def _closeness(got: Trajectory, theirs: Trajectory, want: Trajectory,
               strict: tuple[float, float]) -> float | None:
    """How much closer the learner is to the mistake than to torch, at worst over the steps
    where the mistake and torch differ: infinity when they never differ (this sequence cannot
    tell them apart), None when the learner is not :data:`CLOSER` times closer at every one of
    those steps."""
    _, differs = _per_step(theirs, want, *strict)
    if not differs.any():
        return float("inf")
    to_mistake, _ = _per_step(got, theirs)
    to_torch, _ = _per_step(got, want)
    ratio = (to_torch[differs] / to_mistake[differs].clamp_min(1e-300)).min().item()
    return min(ratio, 1e300) if ratio >= CLOSER else None  # finite: this sequence told them apart


def name_mistakes(fn: Callable[..., Any], spec: OptimizerSpec, case: Case, *, device: str,
                  time_limit_s: float | None, allow_reference: bool = False,
                  first: tuple[Problem, Trajectory, Trajectory] | None = None) -> list[Mistake]:
    """The catalogued mistakes the learner's function reproduces on this case's settings.

    A mistake is named only when, on each of the :data:`DIAGNOSIS_SEEDS` gradient sequences,
    the learner's trajectory stays within the matching tolerance of the mistake's at every step
    and is :data:`CLOSER` times closer to it than to torch wherever the two differ, and some
    sequence tells the mistake from torch. Otherwise nothing is named: a wrong name is worse
    than none. ``first``: the learner's run on the
    case's own sequence, when that is the first diagnosis seed.
    """
    strict = learner_tolerance(spec, case.dtype)
    near = mistake_tolerance(spec, case.dtype)
    # a candidate's worst ratio so far (infinity: not yet told apart from torch)
    candidates = {m.key: (float("inf"), m) for m in catalogue(spec) if m.step_fn is not None}
    for seed in DIAGNOSIS_SEEDS:
        dcase = replace(case, seed=seed)
        if first is not None and case.seed == seed:
            problem, got, want = first
        else:
            problem, wants = oracle(spec, dcase, seed, device, ("single",))
            want = wants["single"]
            try:
                got = recorded_trajectory(fn, spec, dcase, problem, time_limit_s, allow_reference,
                                          label=f"{spec.name}: {case.name} (diagnosis {seed})")
            except (LearnerFailed, ShortcutUsed, TimeLimitExceeded):
                return []
        kept = {}
        for key, (worst, m) in candidates.items():
            assert m.step_fn is not None
            try:
                theirs = run_steps(m.step_fn, spec.defaults, dcase, problem, follow=got,
                                   rtol=near[0], atol=near[1])
            except Exception:  # a mistake that crashes here cannot be what the learner did
                continue
            ratio = None if theirs is None else _closeness(got, theirs, want, strict)
            if ratio is not None:
                kept[key] = (min(worst, ratio), m)
        candidates = kept
        if not candidates:
            return []
    # named only if some sequence told it apart from torch, and another case agrees
    told = [(r, m) for r, m in candidates.values()
            if r != float("inf") and _confirmed(fn, spec, case, m, device=device,
                                                time_limit_s=time_limit_s,
                                                allow_reference=allow_reference)]
    if not told:
        return []
    # keep those about as close as the closest one
    best = max(r for r, _ in told)
    return [m for r, m in sorted(told, key=lambda x: -x[0]) if r >= best / 100]


def _settings(case: Case) -> str:
    return repr((sorted(case.hyper.items()), case.second, case.lr_change))


def _confirmed(fn: Callable[..., Any], spec: OptimizerSpec, case: Case, mistake: Mistake, *,
               device: str, time_limit_s: float | None, allow_reference: bool) -> bool:
    """The mistake holds on another case too: the first visible case with other settings where
    it differs from torch (an eps too small looks like no eps until a gradient is exactly 0).
    True when no other case can tell it from torch."""
    assert mistake.step_fn is not None
    strict = learner_tolerance(spec, torch.float64)
    near = mistake_tolerance(spec, torch.float64)
    for group in spec.visible:
        for other in group.cases:
            if _settings(other) == _settings(case):
                continue
            problem, wants = oracle(spec, other, 0, device, ("single",))
            try:
                theirs = run_steps(mistake.step_fn, spec.defaults, other, problem)
            except Exception:
                continue
            assert theirs is not None
            if compare(theirs, wants["single"], *strict).ok:
                continue  # this case cannot tell the mistake from torch
            try:
                got = recorded_trajectory(
                    fn, spec, other, problem, time_limit_s, allow_reference,
                    label=f"{spec.name}: {case.name} (confirmed on {other.name})")
            except (LearnerFailed, ShortcutUsed, TimeLimitExceeded):
                return False
            return (compare(got, theirs, *near).ok
                    and _closeness(got, theirs, wants["single"], strict) is not None)
    return True


def run_case(fn: Callable[..., Any], spec: OptimizerSpec, case: Case, *, device: str,
             impls: tuple[Impl, ...], time_limit_s: float | None, explain: bool,
             allow_reference: bool = False, watch_all_steps: bool = False) -> CaseResult:
    """Everything about one case, as a CaseResult. ``watch_all_steps``: watch for torch's
    kernels on every step, not only the first (see :class:`~.guard.watch_kernels`)."""
    seed = case.seed if case.seed is not None else (
        hidden_seed(f"{spec.name}: {case.name}") or new_seed())
    problem, wants = oracle(spec, case, seed, device, impls)
    result = CaseResult(case, passed=False, seed=seed)
    try:
        got = recorded_trajectory(fn, spec, case, problem, time_limit_s, allow_reference,
                                  watch_all_steps=watch_all_steps)
    except TimeLimitExceeded as exc:
        result.kind = "timeout"
        result.message = (f"your function {exc}: the limit is {time_limit_s:g} s per case. "
                          "Look for a loop that never ends.")
        return result
    except ShortcutUsed as exc:
        result.kind, result.message = "shortcut", str(exc)
        return result
    except LearnerFailed as exc:
        result.kind, result.message = exc.kind, exc.message
        fields = {k: v for k, v in exc.fields.items() if k in ("step", "tensor", "shape")}
        for k, v in fields.items():
            setattr(result, k, v)
        result.traceback = exc.fields.get("traceback")
        if exc.kind == "returned":
            result.mistakes = [NOT_IN_PLACE]
        if exc.kind == "exception" and SHARED_STATE.error_pattern and re.search(
            SHARED_STATE.error_pattern, str(exc.fields.get("exc"))
        ) and exc.fields.get("tensor", 0) > 0:
            result.mistakes = [SHARED_STATE]
        return result
    rtol, atol = learner_tolerance(spec, case.dtype)
    worst: tuple[Comparison, Impl] | None = None
    for impl, want in wants.items():
        cmp = compare(got, want, rtol, atol)
        if worst is None or (not cmp.ok and worst[0].ok) or cmp.max_abs > worst[0].max_abs:
            worst = (cmp, impl)
    assert worst is not None
    cmp, impl = worst
    first = cmp.first
    result.max_abs_err = cmp.max_abs
    if not cmp.ok and first is not None:
        result.kind = "nonfinite" if first.pop("nonfinite") else "mismatch"
        for k, v in first.items():
            setattr(result, k, v)
        unchanged = first["step"] == 1 and all(
            torch.equal(g, p) for g, p in zip(got.history[0], problem.params, strict=True))
        if unchanged and not got.wrote:
            result.message = ("`param` did not change at all on step 1: update it in place "
                              "(`param.sub_(...)` or `param -= ...`); `param = ...` only "
                              "rebinds the local name")
        elif unchanged:
            result.message = ("your function writes to `param`, but its step 1 leaves `param` "
                              "exactly as it was: the update it computes is zero")
        elif result.kind == "nonfinite":
            result.message = "your parameters became NaN or infinite where torch's stay finite"
        if impl != "single":
            result.message += f" (against torch's {impl} implementation)"
        if not result.message:
            result.message = state_precision_note(got.states, problem.params, first["tensor"],
                                                  spec.float32_state) or ""
        if (not result.message and case.dtype == torch.float64
                and compare(got, wants[impl], *NEAR_FLOAT32).ok):
            result.message = NEAR_FLOAT32_NOTE
        if explain:
            result.mistakes = name_mistakes(fn, spec, case, device=device,
                                            time_limit_s=time_limit_s,
                                            allow_reference=allow_reference,
                                            first=(problem, got, wants["single"]))
        return result
    for i, (sg, sw) in enumerate(zip(got.states, wants[impls[0]].states, strict=True)):
        problem_msg = compare_state(sg, sw, rtol, atol, spec.float32_state)
        if problem_msg:
            result.kind, result.message, result.tensor = "state", problem_msg, i
            return result
    result.passed, result.kind = True, "ok"
    return result
