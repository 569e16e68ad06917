"""Run one case: torch.optim's trajectory, the learner's, and what differs between them."""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

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
)
from .guard import (
    ShortcutUsed,
    TimeLimitExceeded,
    time_limit,
    trimmed_traceback,
    watch_for_shortcuts,
)
from .recording import hidden_seed, produce
from .report import CaseResult, Outcome


def learner_tolerance(spec: OptimizerSpec, dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) for a learner against the oracle.

    float64: the spec's (1e-9 / 1e-12 unless it says otherwise), far above what a different
    order of operations costs (about 1e-15) and far below any catalogued mistake. float32:
    1e-4 / 1e-5.
    """
    return spec.float64_tolerance if dtype == torch.float64 else (1e-4, 1e-5)


def mistake_tolerance(spec: OptimizerSpec, dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) for a learner's wrong trajectory against a catalogued mistake: 1e-6 / 1e-9
    in float64 (ten times the spec's learner tolerance where that is looser), 1e-3 / 1e-4 in
    float32."""
    if dtype != torch.float64:
        return (1e-3, 1e-4)
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


def learner_trajectory(fn: Callable[..., Any], spec: OptimizerSpec, case: Case,
                       problem: Problem, time_limit_s: float | None,
                       allow_reference: bool = False) -> Trajectory:
    """Run the learner's function on the problem, checking its behaviour after every call."""
    params = [p.detach().clone(memory_format=torch.preserve_format) for p in problem.params]
    states: list[dict[str, Any]] = [{} for _ in params]
    history: list[list[Tensor]] = []
    n = len(params)
    sig = Signature(fn, spec)
    with torch.no_grad(), time_limit(time_limit_s), watch_for_shortcuts() as hits:
        for t, row in enumerate(problem.grads, start=1):
            per_group = [sig.kwargs(hyper_at(case, k, t)) for k in (0, 1)]
            for i, (p, g) in enumerate(zip(params, row, strict=True)):
                kwargs = dict(per_group[group_of(i, n, case)])
                grad = g.clone(memory_format=torch.preserve_format)
                shape, dtype, device = p.shape, p.dtype, p.device
                where = {"step": t, "tensor": i, "shape": tuple(shape)}
                try:
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
                if out is not None and out is not p:
                    raise LearnerFailed("returned", f"your function returned a "
                                        f"{type(out).__name__} at step {t}; it must update "
                                        "`param` in place and return None", **where)
                if not torch.equal(grad, g):
                    raise LearnerFailed("grad_modified", f"your function changed `grad` in place "
                                        f"at step {t} (tensor {i}); compute with a new tensor, "
                                        "e.g. `g = grad + wd * param`, not `grad.add_(...)`",
                                        **where)
                for what, before, after in (("shape", shape, p.shape),
                                            ("dtype", dtype, p.dtype),
                                            ("device", device, p.device)):
                    if before != after:
                        raise LearnerFailed(what, f"after step {t}, tensor {i} has {what} "
                                            f"{after}, not {before}: update `param` in place, "
                                            f"keeping its {what}", **where)
            history.append([p.clone() for p in params])
    return Trajectory(history, states)


def recorded_trajectory(fn: Callable[..., Any], spec: OptimizerSpec, case: Case,
                        problem: Problem, time_limit_s: float | None,
                        allow_reference: bool = False) -> Trajectory:
    """:func:`learner_trajectory` as data: while grading, the kernel records it and the
    trusted side replays it (:mod:`optimlab.judging`); the comparison with torch is the same."""

    def run() -> dict[str, Any]:
        got = learner_trajectory(fn, spec, case, problem, time_limit_s, allow_reference)
        return {"history": got.history, "states": got.states}

    out = produce(f"{spec.name}: {case.name}", run,
                  errors=(TimeLimitExceeded, ShortcutUsed, LearnerFailed), rebuild=_failure)
    return _checked(out, problem)


def _checked(out: Any, problem: Problem) -> Trajectory:
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
    return Trajectory(list(history), list(states))


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


def name_mistakes(spec: OptimizerSpec, case: Case, problem: Problem, got: Trajectory,
                  want: Trajectory) -> list[Mistake]:
    """The catalogued mistakes whose trajectory the learner's reproduces on this case.

    A mistake that this case cannot tell from torch (``maximize`` ignored, when maximize is
    False) is never named.
    """
    rtol, atol = mistake_tolerance(spec, case.dtype)
    strict = learner_tolerance(spec, case.dtype)
    found: list[tuple[float, Mistake]] = []
    for m in catalogue(spec):
        if m.step_fn is None:
            continue
        try:
            theirs = run_steps(m.step_fn, spec.defaults, case, problem)
        except Exception:  # a mistake that crashes on this case cannot be what the learner did
            continue
        if compare(theirs, want, *strict).ok:
            continue
        cmp = compare(got, theirs, rtol, atol)
        if cmp.ok:
            found.append((cmp.max_abs, m))
    if not found:
        return []
    # Several mistakes can come close; keep those about as close as the closest one.
    best = min(err for err, _ in found)
    return [m for err, m in sorted(found, key=lambda x: x[0]) if err <= max(100 * best, 1e-12)]


def run_case(fn: Callable[..., Any], spec: OptimizerSpec, case: Case, *, device: str,
             impls: tuple[Impl, ...], time_limit_s: float | None, explain: bool,
             allow_reference: bool = False) -> CaseResult:
    """Everything about one case, as a CaseResult."""
    seed = case.seed if case.seed is not None else (
        hidden_seed(f"{spec.name}: {case.name}") or new_seed())
    problem = problem_for(case, device, seed)
    wants = {impl: run_oracle(spec, case, problem, impl) for impl in impls}
    result = CaseResult(case, passed=False, seed=seed)
    try:
        got = recorded_trajectory(fn, spec, case, problem, time_limit_s, allow_reference)
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
        if first["step"] == 1 and all(
            torch.equal(g, p) for g, p in zip(got.history[0], problem.params, strict=True)
        ):
            result.message = ("`param` did not change at all on step 1: update it in place "
                              "(`param.sub_(...)` or `param -= ...`); `param = ...` only "
                              "rebinds the local name")
        elif result.kind == "nonfinite":
            result.message = "your parameters became NaN or infinite where torch's stay finite"
        if impl != "single":
            result.message += f" (against torch's {impl} implementation)"
        if not result.message:
            result.message = state_precision_note(got.states, problem.params, first["tensor"],
                                                  spec.float32_state) or ""
        if explain:
            result.mistakes = name_mistakes(spec, case, problem, got, wants["single"])
        return result
    for i, (sg, sw) in enumerate(zip(got.states, wants[impls[0]].states, strict=True)):
        problem_msg = compare_state(sg, sw, rtol, atol, spec.float32_state)
        if problem_msg:
            result.kind, result.message, result.tensor = "state", problem_msg, i
            return result
    result.passed, result.kind = True, "ok"
    return result
