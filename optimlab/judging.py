"""Judge a submission outside the student's process: the student's code produces data, trusted
code decides.

While grading, the student's notebook runs in its kernel (in a sandbox) as nbgrader runs it:
every cell, in order, magics included. Each check in a test cell (:func:`optimlab.check`, the
``check_*`` exercises, :func:`call`) runs the student's function through :func:`produce`, which
there *records* what the function produced: plain tensors and numbers, one file per test cell.
Then, in the grader's own process, :func:`judge_notebook` runs the master's test cells again
with the same checks, which now *replay* those records instead of calling anything, and compare
them with torch computed here. Nothing the student's process says about itself counts: not its
verdicts, not a token; only what its functions returned.

The hidden cases' gradients come from a seed that the grader chooses per submission
(``OPTIMLAB_GRADING_SEED``), so the trusted side can draw them again.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

RECORD_DIR_ENV = "OPTIMLAB_RECORD_DIR"
SEED_ENV = "OPTIMLAB_GRADING_SEED"
TEST_CELLS_ENV = "OPTIMLAB_TEST_CELLS"
MAX_RECORD_BYTES = 64 * 1024**2
"""A test cell's record larger than this is not read (it is the student's to fill)."""
MAX_TEXT = 4000


class NoRecord(AssertionError):
    """The kernel left no record for a check: the test did not run, or was stopped."""


class NotJudgeable(Exception):
    """A test cell calls the student's code directly, not through a check: it can be judged only
    in the kernel (route student calls through :func:`call`)."""


@dataclass
class _Scope:
    """The test cell being run: its records (replayed) or the file they go to (recorded)."""

    cell: str
    calls: list[Any]
    seed: int
    replay: bool
    path: Path | None = None
    position: int = 0


_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("optimlab_scope",
                                                                      default=None)


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


def test_cell_keys(master: Path) -> list[str]:
    """The keys of a master's graded test cells (the kernel seeds torch before those)."""
    import nbformat

    return [cell_key(c.source) for c in nbformat.read(master, as_version=4).cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
            and not c.metadata.get("nbgrader", {}).get("solution")]


def hidden_seed(label: str) -> int | None:
    """The seed of a hidden case while grading (the same on both sides), else None."""
    scope = _current()
    if scope is None:
        return None
    digest = hashlib.sha256(f"{scope.seed}:{scope.cell}:{label}".encode()).digest()
    return int.from_bytes(digest[:4], "little") or 1


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


def _write(scope: _Scope, entry: dict[str, Any]) -> None:
    scope.calls.append(entry)
    if scope.path is not None:
        with contextlib.suppress(Exception):  # a full disk costs this student's record only
            tmp = scope.path.with_suffix(".tmp")
            torch.save({"cell": scope.cell, "calls": scope.calls}, tmp)
            os.replace(tmp, scope.path)


def grading() -> bool:
    """Whether a check runs for grading (recorded in a kernel, or replayed by the judge)."""
    return _current() is not None


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, as data: for instructors' own test cells. A test cell that calls
    the student's function through ``optimlab.call`` is judged outside the kernel, on what the
    function returned."""
    return produce("optimlab.call", lambda: fn(*args, **kwargs))


# ----------------------------------------------------------------------------- the kernel side
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
        _KERNEL_SCOPE[0] = _Scope(key, [], seed, replay=False, path=path)
        if key in tests:
            torch.manual_seed(cell_seed(seed, key))

    ip.events.register("pre_run_cell", before)


_KERNEL_SCOPE: list[_Scope | None] = [None]
"""The cell a grading kernel is running. A module global, not the context variable: the kernel
may run a cell in another context than its hooks."""


def _current() -> _Scope | None:
    return _scope.get() or _KERNEL_SCOPE[0]


def _ipython() -> Any:
    with contextlib.suppress(Exception):
        from IPython import get_ipython

        return get_ipython()
    return None


# ----------------------------------------------------------------------------- the trusted side
def load_records(folder: Path, keys: list[str]) -> dict[str, list[Any]]:
    """The records a kernel left for the test cells ``keys``: data only, and checked before
    anything reads them (see :func:`_load_one`). A file that fails is as if the test left none."""
    records: dict[str, list[Any]] = {}
    if folder.is_symlink() or not folder.is_dir():
        return records
    for key in dict.fromkeys(keys):
        data = _load_one(folder / f"{key}.pt")
        if data is not None and data.get("cell") == key:
            records[key] = data["calls"]
    return records


MAX_ELEMENTS = 10_000_000
"""Tensor elements in one test cell's record (a real one holds a few thousand)."""
MAX_NODES = 200_000


def _load_one(path: Path) -> dict[str, Any] | None:
    """One record file, or None. A ``torch.save`` file is a zip: every entry must be stored
    uncompressed (so its size on disk is its size in memory), then ``torch.load`` with
    ``weights_only`` admits only tensors and plain containers, and :func:`_plain_enough` bounds
    what came back (no shared containers, no views that expand a tiny storage, no depth)."""
    import zipfile

    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_RECORD_BYTES:
            return None
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if (any(i.compress_type != zipfile.ZIP_STORED for i in infos)
                    or sum(i.file_size for i in infos) > MAX_RECORD_BYTES):
                return None
        data = torch.load(path, weights_only=True, map_location="cpu")
    except Exception:
        return None
    if not (type(data) is dict and type(data.get("calls")) is list and _plain_enough(data)):
        return None
    return data


def _plain_enough(data: Any) -> bool:
    """Exact plain types only, each container once, bounded depth, nodes and tensor sizes."""
    seen: set[int] = set()
    elements = nodes = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES or depth > 12:
            return False
        kind = type(value)
        if kind is torch.Tensor:
            if value.layout != torch.strided or value.device.type != "cpu":
                return False
            elements += value.numel()
            if (elements > MAX_ELEMENTS or value.untyped_storage().nbytes()
                    < value.numel() * value.element_size()):
                return False
        elif kind in (list, tuple, dict):
            if id(value) in seen:
                return False
            seen.add(id(value))
            items = list(value.items()) if kind is dict else list(value)
            if kind is dict and not all(type(k) is str for k, _ in items):
                return False
            stack += [(v, depth + 1) for v in (dict(items).values() if kind is dict else items)]
        elif kind is str:
            if len(value) > MAX_TEXT:
                return False
        elif not (value is None or kind in (bool, int, float)):
            return False
    return True


@contextlib.contextmanager
def replaying(cell_source: str, calls: list[Any], seed: int) -> Iterator[_Scope]:
    """Run a test cell's checks on recorded data (see :func:`produce`)."""
    scope = _Scope(cell_key(cell_source), list(calls), seed, replay=True)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


@dataclass
class Verdict:
    passed: bool
    message: str
    judged: bool = True
    """False where the cell calls the student's code directly: the kernel's result stands."""


class _Placeholder:
    """Stands for a student's function on the trusted side, where it is never called."""

    def __init__(self, name: str) -> None:
        self.__name__ = self.__qualname__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotJudgeable(f"this test calls `{self.__name__}` directly")

    def __getattr__(self, attr: str) -> Any:
        raise NotJudgeable(f"this test uses `{self.__name__}.{attr}` directly")

    def _direct(self, *args: Any) -> Any:
        raise NotJudgeable(f"this test uses `{self.__name__}` directly")

    __getitem__ = __iter__ = __len__ = __bool__ = __eq__ = __ne__ = __lt__ = __le__ = _direct
    __gt__ = __ge__ = __add__ = __sub__ = __mul__ = __truediv__ = __neg__ = __float__ = _direct
    __int__ = __contains__ = __radd__ = __rsub__ = __rmul__ = __rtruediv__ = _direct
    __hash__ = object.__hash__


class _Names(dict):
    """A test cell's namespace: the student's names are placeholders."""

    def __init__(self, base: dict[str, Any]) -> None:
        super().__init__(base)
        self._builtins = vars(__builtins__) if not isinstance(__builtins__, dict) else (
            __builtins__)

    def __missing__(self, key: str) -> Any:
        if key in self._builtins:
            raise KeyError(key)
        value = _Placeholder(key)
        self[key] = value
        return value


_JUDGE_LOCK = threading.Lock()


def judge_cell(source: str, calls: list[Any] | None, seed: int) -> Verdict:
    """Run one test cell of the master on the records of the student's kernel."""
    import math

    import optimlab
    from optimlab import make_optimizer
    from optimlab.learn import exercises, plots, problems

    base = {"torch": torch, "math": math, "optimlab": optimlab, "make_optimizer": make_optimizer,
            "plots": plots, "problems": problems, "__name__": "__judge__"}
    base.update({k: v for k, v in vars(exercises).items() if k.startswith("check_")})
    names = _Names({**base, "__builtins__": __builtins__,
                    "print": lambda *args, **kwargs: None})  # the test's prints go nowhere
    try:
        code = compile(source, "test cell", "exec")
    except SyntaxError as exc:
        return Verdict(False, f"the test cell does not compile: {exc}")
    # one cell at a time: torch's global generator is the process's, and parallel workers judge
    with _JUDGE_LOCK, replaying(source, calls or [], seed) as scope, torch.random.fork_rng():
        torch.manual_seed(cell_seed(seed, cell_key(source)))
        try:
            exec(code, names, names)
        except NotJudgeable as exc:
            return Verdict(False, str(exc), judged=False)
        except NoRecord as exc:
            return Verdict(False, str(exc) if calls is not None else
                           "the test left no record in your notebook's kernel (it did not run, "
                           "or your code stopped it)")
        except Exception as exc:
            first = str(exc).strip()
            return Verdict(False, f"{type(exc).__name__}: {first[:MAX_TEXT]}" if first
                           else type(exc).__name__)
    if scope.position == 0:  # it ran no check on the student's data
        return Verdict(False, "this test checks nothing outside the kernel", judged=False)
    return Verdict(True, "")


def judge_notebook(master: Path, records_dir: Path, seed: int) -> dict[str, Verdict]:
    """Every graded test cell of ``master``, judged on the records in ``records_dir``."""
    import nbformat

    cells = [c for c in nbformat.read(master, as_version=4).cells
             if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
             and not c.metadata.get("nbgrader", {}).get("solution")]
    records = load_records(records_dir, [cell_key(c.source) for c in cells])
    return {c.metadata.nbgrader["grade_id"]: judge_cell(c.source, records.get(cell_key(c.source)),
                                                        seed) for c in cells}


def grading_seed() -> int:
    """A fresh seed for one submission's hidden cases."""
    return int.from_bytes(os.urandom(4), "little") or 1

