"""Run a submission's grading inside a bubblewrap sandbox (``bwrap``, Debian's ``bubblewrap``).

One sandbox per submission: nbgrader's autograde, the kernel it starts and everything those
start run in it, and all of it dies with it. Inside, the file system is read-only and holds only
what running Python needs: the system's ``/usr`` and ``/etc``, the base Python's prefix, the
virtual environment and the ``optimlab`` package. One scratch folder (the submission's copy of
the course: config, a gradebook with no student in it, the submitted notebook) is writable.
Nothing of the instructor's is there: no ``course/source``, no master or solution notebooks, no
real gradebook, no other submission, no grading folder.

    run([sys.executable, "-m", "nbgrader", "autograde", ...], scratch, env, Limits(wall_s=600))
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import optimlab

INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora: "
                "`dnf install bubblewrap`), or pass --sandbox=none to grade without isolation")
PIDS_CGROUP = Path("/sys/fs/cgroup/pids")
MEMORY_CGROUP = Path("/sys/fs/cgroup/memory")


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Every limit applies to the whole sandbox."""

    wall_s: float = 900.0
    """The whole notebook, every cell together: a cell that ignores interrupts, followed by
    many cells, would otherwise cost ``Execute.timeout`` per cell."""
    cpu_s: int = 1800
    """CPU seconds per process (RLIMIT_CPU): a busy loop in a thread the wall clock misses."""
    memory_bytes: int = 6 * 1024**3
    """Address space per process (RLIMIT_AS): a kernel that allocates without end."""
    file_bytes: int = 256 * 1024**2
    """Largest file a process may write (RLIMIT_FSIZE): the scratch folder is on the host's
    disk."""
    total_memory_bytes: int = 8 * 1024**3
    """Memory of all the sandbox's processes together (a memory cgroup, where there is one),
    the private /tmp included."""
    tmp_bytes: int = 1024**3
    """The private /tmp, which lives in memory."""
    processes: int = 256
    """Processes at once (a pids cgroup where the grader may make one, as root; RLIMIT_NPROC
    otherwise, which the kernel does not apply to root): a fork bomb."""


def unavailable() -> str | None:
    """Why no sandbox can be made here, or None when ``bwrap`` works."""
    exe = shutil.which("bwrap")
    if exe is None:
        return f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
    probe = subprocess.run([exe, "--unshare-all", "--die-with-parent", *_system_mounts(),
                            "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        return (f"bwrap cannot make a sandbox here ({why}); user namespaces may be disabled. "
                f"Or {INSTALL_HINT.split(', or ')[1]}")
    return None


def _system_mounts() -> list[str]:
    """Read-only: the system's programs and libraries, and /etc (DNS, fonts, users)."""
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind-try", "/etc", "/etc"]
    for top in ("bin", "lib", "lib32", "lib64", "sbin"):  # merged /usr: symlinks into /usr
        path = Path("/") / top
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def python_mounts() -> list[str]:
    """Read-only: the base Python (a venv's interpreter links into it), the environment's
    prefix (site-packages, the kernelspec), and the optimlab package wherever it lives (an
    editable install points into a checkout; only the package is bound, not the checkout)."""
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
             Path(optimlab.__file__).resolve().parent}
    args: list[str] = []
    for path in sorted(paths, key=lambda p: len(p.parts)):
        args += ["--ro-bind", str(path), str(path)]
    return args


def bwrap_command(argv: list[str], scratch: Path, env: dict[str, str], limits: Limits
                  ) -> list[str]:
    """The ``bwrap`` command line that runs ``argv`` in ``scratch`` with ``env`` only."""
    scratch = scratch.resolve()
    home = "/tmp/home"
    args = [
        shutil.which("bwrap") or "bwrap",
        # new PID, network, IPC, UTS, user and cgroup namespaces: no other process is visible,
        # no network but the sandbox's own loopback (ZMQ between nbgrader and the kernel)
        "--unshare-all",
        "--die-with-parent",  # the grader dies: so does every process in the sandbox
        "--new-session",  # no TIOCSTI into the grader's terminal
        "--cap-drop", "ALL",
        *_system_mounts(),
        "--proc", "/proc",  # this PID namespace's processes only
        "--dev", "/dev",  # a minimal /dev: null, zero, random, tty
        # private and empty, gone with the sandbox; in memory, so capped. Mounted before the
        # binds below: a checkout (and its venv) or the scratch folder may live under /tmp
        "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
        "--dir", home,  # HOME: private, empty, in that tmpfs
        *python_mounts(),
        "--bind", str(scratch), str(scratch),  # the one writable folder on disk
        "--remount-ro", "/",  # bwrap's own root (where mount points live): read-only too
        "--chdir", str(scratch),
        "--clearenv",  # nothing of the grader's environment but what `env` says
    ]
    base_env = {"HOME": home, "TMPDIR": "/tmp", "PATH": f"{Path(sys.executable).parent}:"
                "/usr/bin:/bin", "LANG": "C.UTF-8", "MPLCONFIGDIR": "/tmp/matplotlib",
                "JUPYTER_CONFIG_DIR": f"{home}/.jupyter", "JUPYTER_DATA_DIR":
                f"{home}/.local/share/jupyter", "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime"}
    for key, value in {**base_env, **env}.items():
        args += ["--setenv", key, value]
    return [*args, "--", sys.executable, "-I", "-c", _LIMITS, str(limits.cpu_s),
            str(limits.memory_bytes), str(limits.file_bytes), str(limits.processes), *argv]


# Runs first inside the sandbox: set the rlimits, then become the command. (-I: this launcher
# reads no environment variable and no user site; the command it execs reads its own.)
_LIMITS = """
import os, resource, sys
cpu, mem, fsize, nproc = (int(x) for x in sys.argv[1:5])
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
os.execv(sys.argv[5], sys.argv[5:])
"""


@dataclass
class Outcome:
    returncode: int
    log: str
    timed_out: bool


def run(argv: list[str], scratch: Path, env: dict[str, str], limits: Limits,
        sandbox: str = "bwrap") -> Outcome:
    """Run ``argv`` (a full path first) in ``scratch``; kill everything at ``limits.wall_s``.

    ``sandbox="none"`` runs it as a plain child process with the same environment and wall
    limit, for machines without bubblewrap (the caller says so loudly).
    """
    with tempfile.TemporaryFile() as log:  # outside the sandbox: a file, not a pipe, so a
        # process that keeps our end open cannot stall us
        if sandbox == "bwrap":
            cmd = bwrap_command(argv, scratch, env, limits)
            child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        else:
            cmd, child_env = argv, {**os.environ, **env}
        groups = _cgroups(limits) if sandbox == "bwrap" else []
        if groups:  # join the cgroups before bwrap forks anything
            cmd = ["/bin/sh", "-c", _JOIN, str(len(groups)), *map(str, groups), *cmd]
        proc = subprocess.Popen(cmd, cwd=scratch, env=child_env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=limits.wall_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc)
            for group in groups:
                _remove_cgroup(group)
        log.seek(0)
        text = log.read(1 << 20).decode(errors="replace")
    return Outcome(proc.returncode if not timed_out else -9, text, timed_out)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill bwrap (its PID namespace dies with it, and with it every process inside) and, in
    the unsandboxed mode, the child's process group."""
    import signal

    for kill in (lambda: os.killpg(proc.pid, signal.SIGKILL), proc.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill()
    proc.wait()


_JOIN = ('n=$0; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 97; shift; '
         'n=$((n - 1)); done; exec "$@"')


def _cgroups(limits: Limits) -> list[Path]:
    """Fresh cgroups (v1, where the grader may make them: as root) capping the sandbox's
    processes and its memory in all (RLIMIT_AS is per process); none elsewhere."""
    wanted = [(PIDS_CGROUP, "pids.max", limits.processes),
              (MEMORY_CGROUP, "memory.limit_in_bytes", limits.total_memory_bytes)]
    made = []
    for root, knob, value in wanted:
        if os.geteuid() != 0 or not os.access(root, os.W_OK):
            continue
        group = root / f"optimlab-{uuid.uuid4().hex[:12]}"
        try:
            group.mkdir()
            (group / knob).write_text(str(value))
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
            continue
        made.append(group)
    return made


def _remove_cgroup(group: Path) -> None:
    import signal
    import time

    for _ in range(50):  # a cgroup can be removed only once its processes are gone
        with contextlib.suppress(OSError):
            for pid in (group / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    os.kill(int(pid), signal.SIGKILL)
            group.rmdir()
            return
        time.sleep(0.1)
