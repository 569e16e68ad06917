"""Judge a submission outside the student's process: the student's code produces data, trusted
code decides.

In the sandboxed kernel, every check records what the student's functions returned
(:mod:`optimlab.check.recording`). Here, in the grader's own process, :func:`judge_notebook`
loads those records (data only, bounded, checked before anything reads them), runs the master's
test cells again with the same checks, which now *replay* the records instead of calling
anything, and compares them with torch computed here. Nothing the student's process says about
itself counts: not its verdicts, not a token; only what its functions returned.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..check.recording import MAX_TEXT, NoRecord, cell_key, cell_seed, replaying

MAX_RECORD_BYTES = 64 * 1024**2
"""A test cell's record larger than this is not read (it is the student's to fill)."""
MAX_ELEMENTS = 10_000_000
"""Tensor elements in one test cell's record (a real one holds a few thousand)."""
MAX_NODES = 200_000


class NotJudgeable(Exception):
    """A test cell calls the student's code directly, not through a check: it can be judged only
    in the kernel (route student calls through :func:`optimlab.call`)."""


@dataclass
class Verdict:
    passed: bool
    message: str
    judged: bool = True
    """False where the cell calls the student's code directly: the kernel's result stands."""


def test_cells(master: Path) -> list[Any]:
    """A master's graded test cells: code cells nbgrader grades that hold no solution."""
    import nbformat
    from nbgrader.utils import is_grade, is_solution

    return [c for c in nbformat.read(master, as_version=4).cells
            if c.cell_type == "code" and is_grade(c) and not is_solution(c)]


def test_cell_keys(master: Path) -> list[str]:
    """The keys of a master's graded test cells (the kernel seeds torch before those)."""
    return [cell_key(c.source) for c in test_cells(master)]


# ----------------------------------------------------------------------------- reading records
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


# ----------------------------------------------------------------------------- replaying
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


def judge_cell(source: str, calls: list[Any] | None, seed: int,
               carried: dict[str, Any] | None = None) -> Verdict:
    """Run one test cell of the master on the records of the student's kernel.

    ``carried`` holds what earlier test cells imported (see :func:`judge_notebook`); the names
    this cell imports are added to it."""
    import math

    import optimlab
    from optimlab import make_optimizer
    from optimlab.learn import exercises, plots, problems

    base = {"torch": torch, "math": math, "optimlab": optimlab, "make_optimizer": make_optimizer,
            "plots": plots, "problems": problems, "__name__": "__judge__"}
    base.update({k: v for k, v in vars(exercises).items() if k.startswith("check_")})
    base.update(carried or {})
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
        finally:
            if carried is not None:
                carried.update(_imported(names, base))
    if scope.position == 0:  # it ran no check on the student's data
        return Verdict(False, "this test checks nothing outside the kernel", judged=False)
    return Verdict(True, "")


def _imported(names: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The modules, functions and classes of optimlab, torch and the standard library that a
    test cell bound (its imports): trusted code, which later test cells may use as in the
    kernel. Placeholders for the student's names and plain values are not carried."""
    import inspect

    out = {}
    for key, value in names.items():
        if key.startswith("__") or (key in base and base[key] is value):
            continue
        if isinstance(value, _Placeholder):
            continue
        if inspect.ismodule(value):
            out[key] = value
        elif inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value):
            module = getattr(value, "__module__", "") or ""
            if module.split(".")[0] in ("optimlab", "torch", "math", "functools", "itertools"):
                out[key] = value
    return out


def judge_notebook(master: Path, records_dir: Path, seed: int) -> dict[str, Verdict]:
    """Every graded test cell of ``master`` (by ``grade_id``), judged on the records in
    ``records_dir``."""
    cells = test_cells(master)
    records = load_records(records_dir, [cell_key(c.source) for c in cells])
    # in the kernel, a test cell sees what the test cells above it imported (the capstone's
    # second check uses the first's import): carry those names, in notebook order
    carried: dict[str, Any] = {}
    return {c.metadata.nbgrader["grade_id"]: judge_cell(c.source, records.get(cell_key(c.source)),
                                                        seed, carried) for c in cells}
