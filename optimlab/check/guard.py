"""Run a learner's function under guard: a time limit, a watch for shortcuts, a trimmed traceback.

Nothing here can stop a determined attacker who shares the process (see the README's instructor
section); it makes honest mistakes and casual shortcuts fail with a clear message.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
import types
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_TORCH_OPTIM_DIR = os.path.dirname(torch.optim.__file__) + os.sep
_OPTIMLAB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

#: Attribute names that only a shortcut needs: torch.optim itself and torch's fused kernels.
_SHORTCUT_NAMES = ("optim",)
_SHORTCUT_PREFIXES = ("_fused_", "_single_tensor_", "_multi_tensor_")


class TimeLimitExceeded(Exception):
    """The learner's function ran past the time limit of one case."""


class ShortcutUsed(Exception):
    """The learner's function called torch.optim or optimlab's references to do the work."""


def _reference_modules() -> dict[str, str]:
    """The modules that hold references, by name, with their files: every registered
    optimizer's module, and the pieces the references share."""
    from ..optimizers import SPECS

    names = {s.step_fn.__module__ for s in SPECS.values()}
    names |= {"optimlab.reference", "optimlab.optimizers._common", "optimlab.optimizers.mistakes"}
    out = {}
    for name in names:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file:
            out[name] = file
    return out


def _reference_files() -> set[str]:
    files = set(_reference_modules().values())
    return files | {os.path.abspath(f) for f in files}


def _is_reference_module(mod: str, references: dict[str, str]) -> bool:
    return mod in references or mod.startswith("optimlab.reference")


def _shortcut_file(filename: str, references: set[str]) -> str | None:
    if filename.startswith(_TORCH_OPTIM_DIR):
        return "torch.optim"
    if filename in references:
        return "optimlab's reference implementations"
    return None


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` in the block after ``seconds`` (main thread, Unix).

    Elsewhere (another thread, Windows) there is no limit rather than a wrong one.
    """
    usable = (
        seconds is not None
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeLimitExceeded(f"still running after {seconds:g} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


#: The C++ optimizer kernels, as the dispatcher names them (aten::_fused_adam_, ...).
_KERNEL_MARK = "::_fused_"


class watch_kernels(TorchDispatchMode):
    """Sees every tensor op the learner's function runs, however it reached it (a built name,
    ``torch._C._VariableFunctions``, ``torch.ops.aten``): the fused optimizer kernels are
    recorded in ``hits`` as shortcuts.

    Each op then passes through Python, which makes a step about 2.5 times slower, so the
    runner watches two steps of every case: the first, and one that differs by case."""

    def __init__(self, hits: list[str]) -> None:
        super().__init__()
        self.hits = hits

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        name = func.name()
        if _KERNEL_MARK in name:
            self.hits.append(f"torch's fused optimizer kernel ({name})")
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def watch_for_shortcuts() -> Iterator[list[str]]:
    """Record, in the list it yields, every call into torch.optim's Python code (its classes
    and functional API) or into optimlab's references (:class:`watch_kernels` adds torch's
    fused C++ kernels).

    The caller raises :class:`ShortcutUsed` afterwards: raising inside the trace function
    could be swallowed by the learner's own ``try``/``except``.
    """
    hits: list[str] = []
    old = sys.gettrace()
    references = _reference_files()

    def tracer(frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "call":
            where = _shortcut_file(frame.f_code.co_filename, references)
            if where is not None:
                hits.append(f"{where} ({frame.f_code.co_name})")
        return None

    sys.settrace(tracer)
    try:
        yield hits
    finally:
        sys.settrace(old)


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def static_shortcuts(fn: Callable[..., Any]) -> list[str]:
    """Shortcuts visible in the function's code: names it reads, globals it refers to."""
    found: list[str] = []
    code = getattr(fn, "__code__", None)
    if code is None:
        return found
    gl = getattr(fn, "__globals__", {})
    references = _reference_modules()
    for c in _code_objects(code):
        for name in c.co_names:
            if name in _SHORTCUT_NAMES or name.startswith(_SHORTCUT_PREFIXES):
                found.append(f"`{name}`")
            obj = gl.get(name)
            mod = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
            if isinstance(mod, str) and (
                mod.startswith("torch.optim") or _is_reference_module(mod, references)
            ):
                found.append(f"`{name}` (from {mod})")
    for cell in getattr(fn, "__closure__", None) or ():
        with contextlib.suppress(ValueError):
            mod = getattr(cell.cell_contents, "__module__", "") or ""
            if mod.startswith("torch.optim") or _is_reference_module(mod, references):
                found.append(f"a captured object from {mod}")
    return sorted(set(found))


def trimmed_traceback(exc: BaseException, limit: int = 6) -> str:
    """The traceback of the learner's code only: frames inside optimlab and torch are dropped."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(_OPTIMLAB_DIR)
        and not f.filename.startswith(os.path.dirname(torch.__file__))
    ]
    lines = traceback.format_list(frames[-limit:])
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()
