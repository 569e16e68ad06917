"""Re-check a submission outside the notebook's kernel.

nbgrader runs the tests in the same kernel as the student's code, where a submission can
replace ``optimlab.check``, ``torch.allclose`` or ``AssertionError`` before the tests run. This
module runs each graded test cell again in a fresh process that holds only the student's
solution cells, with the checker's functions captured before any student code runs, and reports
any replacement of the checker's or torch's functions as tampering. The pipeline takes the
points back when the kernel's verdict and this one disagree.

The re-check processes are forked from a server that imported torch and optimlab once
(:mod:`optimlab.recheck_preload`), so each one starts in milliseconds.

    python -m optimlab.verdict SUBMISSION.ipynb MASTER.ipynb [CELL_SECONDS]   # prints JSON
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import nbformat

MEMORY_LIMIT = 4 * 1024**3
TIME_LIMIT_S = 300
"""The whole re-check of one notebook."""
CELL_TIME_LIMIT_S = 180.0
"""One cell, unless the caller passes the kernel's ``Execute.timeout``: a cell gets as long
here as it had in the kernel, no less (an honest slow cell keeps its points) and no more (a
cell that hangs is not waited on longer than nbgrader waited)."""


def _cells(path: Path) -> list[Any]:
    return nbformat.read(path, as_version=4).cells


def _watched_objects() -> dict[str, Any]:
    """Everything a submission could replace to fool a check: optimlab's functions, torch's
    functions and tensor methods, builtins."""
    import torch

    import optimlab

    watched: dict[str, Any] = {}
    for name, mod in list(sys.modules.items()):
        if (name == "optimlab" or name.startswith("optimlab.")) and isinstance(
                mod, types.ModuleType):
            for attr, value in vars(mod).items():
                if callable(value) or isinstance(value, types.ModuleType):
                    watched[f"{name}.{attr}"] = value
    holders = [(torch, "torch"), (torch.Tensor, "torch.Tensor"),
               (torch._C.TensorBase, "torch._C.TensorBase"), (torch.testing, "torch.testing"),
               (builtins, "builtins")]
    for holder, label in holders:
        for attr, value in list(vars(holder).items()):  # stored objects: stable identities
            watched[f"{label}.{attr}"] = value
    watched["optimlab"] = optimlab
    return watched


def _replaced(before: dict[str, Any]) -> list[str]:
    after = _watched_objects()
    return sorted(k for k, v in before.items() if after.get(k, v) is not v)


def _test_ids(master: Path) -> list[str]:
    return [c.metadata.nbgrader["grade_id"] for c in _cells(master)
            if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"
            and not c.metadata.nbgrader.get("solution")]


def warm_up() -> None:
    """Use what the tests use once, before any student code: torch imports some modules
    lazily (dynamo wraps ``torch.manual_seed``), and those first-use changes must not look
    like tampering."""
    import torch

    import optimlab

    optimlab.check(optimlab.reference.adam_step, "adam", "basic", display=False,
                   allow_reference=True)
    torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)]),
                                      lambda t: 1.0)


def check_submission(submission: Path, master: Path, cell_time_limit: float = CELL_TIME_LIMIT_S
                     ) -> dict[str, dict[str, Any]]:
    """Run in this process: the verdict for every graded test cell of the master."""
    import math

    import torch

    import optimlab
    from optimlab import exercises, make_optimizer, plots, problems
    from optimlab.check.guard import TimeLimitExceeded, time_limit

    base = {"torch": torch, "math": math, "optimlab": optimlab, "make_optimizer": make_optimizer,
            "plots": plots, "problems": problems}
    base.update({k: v for k, v in vars(exercises).items() if k.startswith("check_")})
    warm_up()
    before = _watched_objects()
    student = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in _cells(submission)
               if c.cell_type == "code"}
    namespace = dict(base)
    results: dict[str, dict[str, Any]] = {}
    loading: list[str] = []
    for cell in _cells(master):
        meta = cell.metadata.get("nbgrader", {})
        if not (meta.get("solution") and cell.cell_type == "code"):
            continue
        mine = student.get(meta["grade_id"])
        if mine is None:
            loading.append(f"solution cell {meta['grade_id']} is missing")
            continue
        try:
            with time_limit(cell_time_limit), contextlib.redirect_stdout(io.StringIO()):
                exec(compile(mine.source, meta["grade_id"], "exec"), namespace)
        except SystemExit:
            return {gid: {"passed": False, "message": "your code tried to end the grading "
                          "process (sys.exit)"} for gid in _test_ids(master)}
        except (Exception, TimeLimitExceeded) as exc:
            loading.append(f"{meta['grade_id']} raised {type(exc).__name__}")
    tampered = _replaced(before)
    for cell in _cells(master):
        meta = cell.metadata.get("nbgrader", {})
        if not (meta.get("grade") and not meta.get("solution") and cell.cell_type == "code"):
            continue
        gid = meta["grade_id"]
        if tampered:
            results[gid] = {"passed": False, "message": "your code replaced "
                            + ", ".join(tampered[:5]) + ": tests must run on the real checker"}
            continue
        # a fresh namespace: the student's definitions, then the genuine checker on top
        env = {**{k: v for k, v in namespace.items() if not k.startswith("__")}, **base}
        try:
            with time_limit(cell_time_limit), contextlib.redirect_stdout(io.StringIO()):
                exec(compile(cell.source, gid, "exec"), env)
        except SystemExit:
            results[gid] = {"passed": False, "message": "your code tried to end the grading "
                            "process (sys.exit)"}
            continue
        except (Exception, TimeLimitExceeded) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            results[gid] = {"passed": False, "message": f"{type(exc).__name__}: {first[:300]}"}
            continue
        after = _replaced(before)
        results[gid] = ({"passed": True, "message": ""} if not after else
                        {"passed": False, "message": "your code replaced "
                         + ", ".join(after[:5]) + " while the tests ran"})
    return results


def _limit_memory() -> None:
    """In the re-check process, before any student code: an address-space limit. (Set here,
    not with ``preexec_fn``, which is unsafe when the grader runs workers in threads.)"""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


_SERVER_LOCK = threading.Lock()
_MAX_MESSAGE = 1 << 20


def _context() -> Any:
    """The fork-server context, its server preloading :mod:`optimlab.recheck_preload`."""
    import multiprocessing

    with _SERVER_LOCK:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["optimlab.recheck_preload"])
        return ctx


def start_server() -> None:
    """Start the fork server now (it takes a few seconds), so the first re-check need not wait."""
    from multiprocessing import forkserver

    _context()
    forkserver.ensure_running()


def _child(conn: Any, token: str, submission: str, master: str, cwd: str,
           cell_time_limit: float, settings: dict[str, str]) -> None:
    """A re-check process: forked from the server, it runs the submission and sends one
    message, ``token`` + the JSON verdicts. ``settings``: the caller's ``OPTIMLAB_*``
    variables (the server keeps those of the moment it started)."""
    for key in [k for k in os.environ if k.startswith("OPTIMLAB_")]:
        del os.environ[key]
    os.environ.update(settings)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # student code's prints go nowhere, not to the grader's terminal
        os.dup2(devnull, fd)
    # as with `python -P`: nothing relative to the submission's folder is importable, so a
    # `torch/` or `optimlab/` handed in beside the notebook cannot stand in for the real one
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.isabs(p)]
    os.chdir(cwd)
    _limit_memory()
    result = check_submission(Path(submission), Path(master), cell_time_limit)
    conn.send_bytes((token + json.dumps(result)).encode())
    conn.close()


def verdict(submission: Path, master: Path, cwd: Path | None = None,
            cell_time_limit: float = CELL_TIME_LIMIT_S) -> dict[str, dict[str, Any]] | str:
    """The verdicts from a fresh, memory- and time-limited process; a string when it died.

    The student's code runs in ``cwd`` (the folder nbgrader ran it in, so that relative paths
    mean the same), or in a scratch folder when ``cwd`` is None. Each cell gets
    ``cell_time_limit`` seconds (pass the kernel's ``Execute.timeout``), the whole re-check
    :data:`TIME_LIMIT_S`. Safe to call from several threads at once.
    """
    import secrets
    import tempfile

    ctx = _context()
    token = secrets.token_hex(16)  # the child sends it with its verdict; student code cannot
    # guess it (it could dig it out of memory: see the README)
    scratch = (contextlib.nullcontext(str(cwd)) if cwd is not None
               else tempfile.TemporaryDirectory(prefix="optimlab-verdict-"))
    messages: list[bytes] = []
    with scratch as where:
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, daemon=True, args=(
            send, token, str(Path(submission).resolve()), str(Path(master).resolve()),
            str(where), cell_time_limit,
            {k: v for k, v in os.environ.items() if k.startswith("OPTIMLAB_")}))
        proc.start()
        send.close()
        deadline = time.monotonic() + TIME_LIMIT_S
        try:
            while True:
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.join()
                    return f"re-checking ran past {TIME_LIMIT_S} s"
                if receive.poll(0.2):
                    messages.append(receive.recv_bytes(_MAX_MESSAGE))
                elif not _exists(proc.pid):
                    break  # ended, and a process it left behind holds the pipe open
        except (EOFError, OSError):  # the child's end closed: it has finished
            pass
        finally:
            receive.close()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    # One message with the token is the verdict, whatever the exit code: the server relays
    # exit codes, and a submission that kills the server must not cost anyone else theirs.
    if not messages:
        return f"the re-check process ended early (exit code {proc.exitcode})"
    text = messages[0].decode(errors="replace")
    if len(messages) != 1 or not text.startswith(token):
        return "the re-check's answer did not come from the re-check"
    return json.loads(text[len(token):])


def _exists(pid: int | None) -> bool:
    """Whether process ``pid`` still exists (the re-check is the fork server's child, not
    ours, so ``is_alive`` only says what the server last reported)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m optimlab.verdict`: the same re-check in this process, for a look by hand."""
    args = sys.argv[1:] if argv is None else argv
    _limit_memory()
    limit = float(args[2]) if len(args) > 2 else CELL_TIME_LIMIT_S
    print(json.dumps(check_submission(Path(args[0]), Path(args[1]), limit), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
