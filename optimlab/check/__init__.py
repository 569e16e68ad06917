"""Check a learner's step function against ``torch.optim``: :func:`check`."""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import torch

from ..optimizers.cases import Case, Group
from ..optimizers.cases import interactions as _interactions
from ..optimizers.cases import select as _select
from ..optimizers.mistakes import Mistake
from ..optimizers.registry import get_spec
from .guard import static_shortcuts
from .recording import grading, produce
from .report import CaseResult, CheckResult
from .runner import catalogue as _catalogue
from .runner import run_case

__all__ = ["Case", "CaseResult", "CheckResult", "Mistake", "catalogue", "check", "groups_for",
           "select"]


def groups_for(optimizer: str) -> dict[str, Group]:
    """The groups of one optimizer, visible ones first and ``hidden`` last."""
    return get_spec(optimizer).groups


def select(optimizer: str, groups: str | list[str] | None, hidden: bool = False) -> list[Case]:
    """The cases a check of ``groups`` runs (see :func:`optimlab.optimizers.cases.select`)."""
    return _select(groups_for(optimizer), groups, hidden, owner=optimizer)


def catalogue(optimizer: str) -> list[Mistake]:
    """Every mistake the checker can name for ``optimizer``."""
    return _catalogue(get_spec(optimizer))


#: The most wrong cases one check diagnoses (each diagnosis reruns the function twice).
MAX_DIAGNOSED = 4


def _accepted(fn: Callable[..., Any]) -> list[str] | None:
    """The keyword names ``fn`` takes, or None when it takes any (``**kwargs``) or cannot say."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _groups_it_cannot_take(table: dict[str, Group], accepted: Any) -> dict[str, list[str]]:
    """Visible groups (``basic`` aside) that set a hyperparameter the function does not take,
    with those names: a bare ``check(fn, name)`` skips them and says so."""
    if not isinstance(accepted, list):
        return {}
    out = {}
    for name, grp in table.items():
        if grp.hidden or name == "basic":
            continue
        needed = {k for c in grp.cases for k in (*c.hyper, *(c.second or {}))}
        missing = sorted(needed - set(accepted))
        if missing:
            out[name] = missing
    return out


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' asked for, but torch sees no CUDA device")
    return device


def check(
    fn: Callable[..., Any],
    optimizer: str,
    groups: str | Sequence[str] | None = None,
    *,
    hidden: bool = False,
    device: str = "auto",
    raise_on_failure: bool = True,
    time_limit: float | None = None,
    explain: bool = True,
    display: bool = True,
    allow_reference: bool = False,
) -> CheckResult:
    """Compare a learner's step function with ``torch.optim``, case by case.

    ``fn(param, grad, state, **hyperparameters)`` must update ``param`` in place. The cases
    are those of the named ``groups`` (all visible groups by default). ``hidden=True`` runs the
    hidden twins of those groups instead (float32 and float64 on fresh gradient sequences); the
    ``extras`` group holds extreme values, tensor lrs and all flags at once, and ``hidden`` all
    of it. On CUDA (``device="auto"`` picks it when present) the learner is also compared with
    torch's foreach and fused implementations.

    Returns a :class:`CheckResult` (text via ``str()``, HTML as a notebook cell's value). When a
    case fails and ``raise_on_failure`` is true, ``AssertionError`` is raised so that an nbgrader
    test cell fails: inside IPython the HTML report is displayed first (``display``) and the
    exception says in a few lines what went wrong first (:meth:`CheckResult.short`); elsewhere,
    or with ``display=False``, it carries the whole text report.

    With no ``groups``, a group that sets a hyperparameter your function does not take is
    skipped, and the report says which and why (name the group to run it anyway).

    ``allow_reference=True`` lets the function call optimlab's references; it exists to check
    the references themselves, and no exercise uses it.
    """
    spec = get_spec(optimizer)
    # while grading, the CPU on both sides: the sandboxed kernel sees no GPU
    dev = "cpu" if grading() else _resolve_device(device)
    if time_limit is None:  # graders may shorten it for a whole class: OPTIMLAB_TIME_LIMIT
        time_limit = float(os.environ.get("OPTIMLAB_TIME_LIMIT", "10"))
    skipped: dict[str, list[str]] = {}
    if groups is None:  # every visible group the function can take
        accepted = produce("accepts", lambda: _accepted(fn))
        skipped = _groups_it_cannot_take(spec.groups, accepted)
        groups = [g for g, grp in spec.groups.items() if not grp.hidden and g not in skipped]
    names = [groups] if isinstance(groups, str) else list(groups)
    cases: list[Case] = select(spec.name, names, hidden)
    if hidden:  # each part beside the parts taught before it (trusted: nothing the kernel says)
        cases += [c for g in names for c in _interactions(spec.groups, g)
                  if spec.accepts(c.hyper)]
    name = getattr(fn, "__name__", repr(fn))
    start = time.perf_counter()
    results: list[CaseResult] = []
    shortcuts = [] if allow_reference else produce("shortcuts", lambda: static_shortcuts(fn))
    if shortcuts:
        msg = (f"your function uses {', '.join(shortcuts)}: calling torch.optim or optimlab's "
               "reference implementations is not allowed; write the update yourself")
        results = [CaseResult(c, passed=False, kind="shortcut", message=msg) for c in cases]
    else:
        stopped = None
        # Wrong trajectories are diagnosed in order until one gets a name (at most
        # MAX_DIAGNOSED): which cases fail on a fresh hidden sequence can vary, but each
        # diagnosis runs on fixed sequences, so the names do not.
        diagnose, diagnosed = explain, 0
        for case in cases:
            if stopped is not None:
                results.append(CaseResult(case, passed=False, kind="skipped", message=stopped))
                continue
            impls = spec.impls(case, dev) if torch.device(dev).type == "cuda" else ("single",)
            if case.alone is not None and not run_case(
                    fn, spec, case.alone, device=dev, impls=impls, time_limit_s=time_limit,
                    explain=False, allow_reference=allow_reference).passed:
                continue  # that part fails alone: its own check counts it, not this join
            res = run_case(fn, spec, case, device=dev, impls=impls,
                           time_limit_s=time_limit, explain=diagnose,
                           allow_reference=allow_reference)
            results.append(res)
            if diagnose and res.kind in ("mismatch", "nonfinite"):
                diagnosed += 1
                diagnose = not res.mistakes and diagnosed < MAX_DIAGNOSED
            if res.kind in ("timeout", "shortcut"):
                stopped = f"not run: an earlier case ended with {res.kind}"
    result = CheckResult(spec.name, name, dev, results, time.perf_counter() - start, skipped)
    if not result.passed and raise_on_failure:
        # the exception hides the return value, so show the report first; the exception then
        # says only what the report's first lines say (nbgrader shows both, one above the other)
        shown = display and _show(result)
        __tracebackhide__ = True  # IPython and pytest show _fail's three lines, not these
        _fail(result.short() if shown else str(result))
    return result


def _fail(message: str) -> NoReturn:
    """Fail the test cell: what went wrong is in the message, and in the report above it."""
    raise AssertionError(message)


def _show(result: CheckResult) -> bool:
    """Display the HTML report when running inside IPython (True); do nothing elsewhere, nor
    while the judge replays a test cell (an instructor may grade from a notebook: the verdicts
    then keep their full text and nothing is drawn in the instructor's notebook)."""
    from .recording import judging

    if judging():
        return False
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return False
    if get_ipython() is None:
        return False
    display(result)
    return True
