"""What a check's student code produced, as data: recorded in the grading kernel, replayed by the
judge. The kernel side of judging outside the student's process (the trusted side is
:mod:`optimlab.grade.judge`).

While grading, the student's notebook runs in its kernel (in a sandbox) as nbgrader runs it:
every cell, in order, magics included. Each check in a test cell (:func:`optimlab.check`, the
``check_*`` exercises, :func:`call`) runs the student's function through :func:`produce`, which
there *records* what the function produced: plain tensors and numbers, one file per test cell
(:func:`start_recording`, hooked into the kernel at start-up). In the grader's own process the
judge runs the master's test cells again with the same checks inside :func:`replaying`, where
:func:`produce` reads those records back instead of calling anything. Outside grading,
:func:`produce` is just a call.

The hidden cases' gradients come from a seed that the grader chooses per submission
(``OPTIMLAB_GRADING_SEED``, :func:`grading_seed`), so the trusted side can draw them again
(:func:`hidden_seed`).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

RECORD_DIR_ENV = "OPTIMLAB_RECORD_DIR"
"""Where a grading kernel writes its records (one ``<cell key>.pt`` per test cell)."""
SEED_ENV = "OPTIMLAB_GRADING_SEED"
"""The submission's grading seed (see :func:`grading_seed`)."""
TEST_CELLS_ENV = "OPTIMLAB_TEST_CELLS"
"""The keys of the graded test cells, comma-separated: torch is seeded before each of them."""
MAX_TEXT = 4000
"""Longest string recorded (and read back)."""


class NoRecord(AssertionError):
    """The kernel left no record for a check: the test did not run, or was stopped."""


@dataclass
class Scope:
    """The test cell being run: its records (replayed) or the file they go to (recorded)."""

    cell: str
    calls: list[Any]
    seed: int
    replay: bool
    path: Path | None = None
    position: int = 0


_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("optimlab_scope",
                                                                     default=None)
_KERNEL_SCOPE: list[Scope | None] = [None]
"""The cell a grading kernel is running. A module global, not the context variable: the kernel
may run a cell in another context than its hooks."""


def cell_key(source: str) -> str:
    """A test cell's name in the records: the hash of its code, the same in the kernel
    (nbgrader restores test cells from the gradebook) and in the master. Blank and comment
    lines do not count: nbgrader heads a test cell it puts back with a comment."""
    code = [ln.strip() for ln in source.splitlines()]
    code = [ln for ln in code if ln and not ln.startswith("#")]
    return hashlib.sha256("\n".join(code).encode()).hexdigest()[:32]


def cell_seed(seed: int, key: str) -> int:
    """torch's global seed at the start of a test cell, on both sides: a test that draws its
    inputs with ``torch.randn`` draws the same ones in the kernel and when judged."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:6], "little")


def grading_seed() -> int:
    """A fresh seed for one submission's hidden cases."""
    return int.from_bytes(os.urandom(4), "little") or 1


def hidden_seed(label: str) -> int | None:
    """The seed of a hidden case while grading (the same on both sides), else None."""
    scope = _current()
    if scope is None:
        return None
    digest = hashlib.sha256(f"{scope.seed}:{scope.cell}:{label}".encode()).digest()
    return int.from_bytes(digest[:4], "little") or 1


def grading() -> bool:
    """Whether a check runs for grading (recorded in a kernel, or replayed by the judge)."""
    return _current() is not None


# ----------------------------------------------------------------------------- data only
def to_plain(value: Any, depth: int = 0) -> Any:
    """Tensors, numbers, strings, None and lists / tuples / str-keyed dicts of them; anything
    else becomes a description. This is all that leaves the sandbox."""
    if depth > 8:
        return {"__object__": "nested too deep"}
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        t = t.to_dense() if t.layout != torch.strided else t
        return t.as_subclass(torch.Tensor).contiguous().clone()
    if value is None:
        return None
    for exact in (bool, int, float, str):  # subclasses (numpy's float64) become the plain type
        if isinstance(value, exact):
            return exact(value)[:MAX_TEXT] if exact is str else exact(value)
    if type(value).__module__.startswith("numpy"):
        with contextlib.suppress(Exception):
            return torch.as_tensor(value).clone()
    if isinstance(value, (list, tuple)):
        items = [to_plain(v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {str(k): to_plain(v, depth + 1) for k, v in value.items()}
    return {"__object__": type(value).__name__}


def _error(exc: BaseException) -> dict[str, Any]:
    fields = {k: to_plain(v if k != "exc" else repr(v)) for k, v in
              getattr(exc, "fields", {}).items()}
    return {"__raised__": type(exc).__name__, "message": str(exc)[:MAX_TEXT],
            "kind": getattr(exc, "kind", None), "fields": fields}


def produce(label: str, thunk: Callable[[], Any],
            errors: tuple[type[BaseException], ...] = (Exception,),
            rebuild: Callable[[dict[str, Any]], BaseException] | None = None) -> Any:
    """``thunk()``: what the student's code produced for this step of a check.

    Outside grading, just ``thunk()``. In the kernel while grading, the result (or the error,
    one of ``errors``) is also recorded, as plain data. On the trusted side it is read back from
    the record, never computed: ``rebuild`` turns a recorded error into the exception to raise.
    """
    scope = _current()
    if scope is None:
        return thunk()
    if scope.replay:
        if scope.position >= len(scope.calls):
            raise NoRecord(f"no record of {label}: the test did not run to here in your "
                           "notebook's kernel")
        entry = scope.calls[scope.position]
        scope.position += 1
        if not (isinstance(entry, dict) and entry.get("label") == label):
            raise NoRecord(f"the record does not match the test at {label}: did your code "
                           "change the checks?")
        out = entry.get("out")
        if isinstance(out, dict) and "__raised__" in out:
            raise (rebuild or _rebuild)(out)
        return out
    try:
        out = thunk()
    except errors as exc:
        _write(scope, {"label": label, "out": _error(exc)})
        raise
    _write(scope, {"label": label, "out": to_plain(out)})
    return out


def _rebuild(err: dict[str, Any]) -> BaseException:
    return AssertionError(str(err.get("message", "")))


def _write(scope: Scope, entry: dict[str, Any]) -> None:
    scope.calls.append(entry)
    if scope.path is not None:
        with contextlib.suppress(Exception):  # a full disk costs this student's record only
            tmp = scope.path.with_suffix(".tmp")
            torch.save({"cell": scope.cell, "calls": scope.calls}, tmp)
            os.replace(tmp, scope.path)


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, as data: for instructors' own test cells. A test cell that calls
    the student's function through ``optimlab.call`` is judged outside the kernel, on what the
    function returned."""
    return produce("optimlab.call", lambda: fn(*args, **kwargs))


# ----------------------------------------------------------------------------- the kernel
def start_recording() -> None:
    """In a grading kernel (IPython startup): record every cell's checks into
    ``$OPTIMLAB_RECORD_DIR/<cell key>.pt``. A student who unhooks this loses only the records
    of their own tests."""
    folder = os.environ.get(RECORD_DIR_ENV)
    ip = _ipython()
    if not folder or ip is None:
        return
    seed = int(os.environ.get(SEED_ENV, "0"))
    tests = set(os.environ.get(TEST_CELLS_ENV, "").split(","))
    Path(folder).mkdir(parents=True, exist_ok=True)

    def before(info: Any) -> None:
        key = cell_key(getattr(info, "raw_cell", "") or "")
        path = Path(folder) / f"{key}.pt"
        with contextlib.suppress(OSError):
            path.unlink()  # the last run of a cell is the one that counts
        _KERNEL_SCOPE[0] = Scope(key, [], seed, replay=False, path=path)
        if key in tests:
            torch.manual_seed(cell_seed(seed, key))

    ip.events.register("pre_run_cell", before)


def _current() -> Scope | None:
    return _scope.get() or _KERNEL_SCOPE[0]


def judging() -> bool:
    """Whether the judge is replaying a test cell here (nothing is shown then)."""
    scope = _current()
    return scope is not None and scope.replay


def _ipython() -> Any:
    with contextlib.suppress(Exception):
        from IPython import get_ipython

        return get_ipython()
    return None


# ----------------------------------------------------------------------------- the judge's hook
@contextlib.contextmanager
def replaying(cell_source: str, calls: list[Any], seed: int) -> Iterator[Scope]:
    """Run a test cell's checks on recorded data (see :func:`produce`): what the judge
    (:mod:`optimlab.grade.judge`) runs each test cell in. ``scope.position`` afterwards says
    how many records the cell read."""
    scope = Scope(cell_key(cell_source), list(calls), seed, replay=True)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)
