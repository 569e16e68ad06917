"""The bubblewrap sandbox that student code is graded in (optimlab.grade.sandbox), with real
``bwrap``.

What is checked, each from inside a sandbox:

* no network: a server on the host's loopback is unreachable (only loopback is ever used);
* a private, empty ``/tmp`` and ``HOME``: nothing of the host's temporary folder is visible and
  nothing written there reaches the host;
* nothing of the instructor's: no ``course/source``, no ``solutions/``, nothing of the checkout
  but the package and the environment, which import but are read-only;
* the scratch folder is the one place on disk that is writable;
* the wall limit kills everything, daemons included; a daemon holding stdout does not stall
  ``run()``; the file-size limit stops a large write;
* ``Pipeline`` refuses to grade when ``bwrap`` cannot be found, and says what to do.

Tests that need ``bwrap`` skip, with the reason ``unavailable()`` gives, where it cannot run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from functools import cache
from pathlib import Path

import pytest

import optimlab
from optimlab.grade import sandbox
from optimlab.grade.course import ROOT
from optimlab.grade.pipeline import Pipeline, SandboxUnavailable

from .hostile import make_course

LIMITS = sandbox.Limits(wall_s=30)


@cache
def _why_not() -> str | None:
    return sandbox.unavailable()


@pytest.fixture
def bwrap() -> None:
    """Skip where no sandbox can be made (with the reason)."""
    why = _why_not()
    if why is not None:
        pytest.skip(why)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    folder = tmp_path / "scratch"
    folder.mkdir()
    return folder


def inside(code: str, scratch: Path, limits: sandbox.Limits = LIMITS, *,
           mode: str = "bwrap") -> sandbox.Outcome:
    """Run Python ``code`` in a sandbox whose scratch folder is ``scratch``."""
    return sandbox.run([sys.executable, "-c", code], scratch, {}, limits, sandbox=mode)


def report(outcome: sandbox.Outcome) -> dict:
    """The JSON object that the code run inside printed last."""
    assert outcome.returncode == 0 and not outcome.timed_out, outcome
    return json.loads(outcome.log.strip().splitlines()[-1])


def running(pattern: str) -> bool:
    """Whether a process on the host (sandboxed ones included) matches ``pgrep -f``."""
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    assert found.returncode in (0, 1), found
    return found.returncode == 0


# ------------------------------------------------------------------ network
class Listener:
    """A TCP server on the host's loopback that records every connection it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.accepted: list[tuple[str, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted.append(peer)
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


CONNECT = """
import errno, socket
s = socket.socket()
s.settimeout(3)
try:
    s.connect(("127.0.0.1", {port}))
except OSError as e:
    print("REFUSED", e.errno, errno.errorcode.get(e.errno or 0, type(e).__name__))
else:
    print("CONNECTED")
print("INTERFACES", [name for _, name in socket.if_nameindex()])
"""


def test_no_network_to_the_host(bwrap: None, scratch: Path) -> None:
    server = Listener()
    try:
        code = CONNECT.format(port=server.port)
        control = inside(code, scratch, mode="none")  # the probe works: unsandboxed, it gets in
        assert "CONNECTED" in control.log, control
        deadline = time.monotonic() + 5
        while not server.accepted and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(server.accepted) == 1

        outcome = inside(code, scratch)
        assert outcome.returncode == 0, outcome
        assert "CONNECTED" not in outcome.log
        assert "REFUSED" in outcome.log, outcome.log
        assert "INTERFACES ['lo']" in outcome.log, outcome.log  # the sandbox's own loopback
        time.sleep(0.2)
        assert len(server.accepted) == 1, f"the sandbox got through: {server.accepted}"
    finally:
        server.close()


# ------------------------------------------------------------------ /tmp and HOME
TMP_AND_HOME = """
import json, os, sys
scratch, marker, name, *mounts = sys.argv[1:]
home = os.environ["HOME"]
seen = []
for folder, dirs, files in os.walk("/tmp"):
    if folder in (scratch, *mounts):  # bound from the host: not the private /tmp's content
        dirs[:] = []
        continue
    seen += [os.path.join(folder, n) for n in dirs + files]
out = {"home": home, "tmp": sorted(seen), "home_entries": os.listdir(home),
       "marker": os.path.exists(marker), "tmpdir": os.environ.get("TMPDIR")}
for where in ("/tmp", home, os.path.dirname(scratch)):
    with open(os.path.join(where, name), "w") as f:
        f.write("from inside")
print(json.dumps(out))
"""


MOUNTS = sorted({Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
                 Path(optimlab.__file__).resolve().parent})


def test_private_tmp_and_home(bwrap: None, scratch: Path) -> None:
    name = f"optimlab-inside-{uuid.uuid4().hex}"
    with tempfile.NamedTemporaryFile(prefix="optimlab-marker-",
                                     dir=tempfile.gettempdir()) as marker:
        outcome = sandbox.run([sys.executable, "-c", TMP_AND_HOME, str(scratch.resolve()),
                               marker.name, name, *map(str, MOUNTS)], scratch, {}, LIMITS)
        out = report(outcome)
    assert out["marker"] is False
    assert not any(os.path.basename(marker.name) in p for p in out["tmp"])
    assert out["home"].startswith("/tmp/") and out["home_entries"] == []
    assert out["tmpdir"] == "/tmp"
    # /tmp holds HOME and the folders leading to the scratch mount point, nothing else
    # (and those leading to the Python mounts, where the checkout itself lives under /tmp)
    expected = {out["home"]}
    for mount in (scratch.resolve(), *MOUNTS):
        if mount.is_relative_to("/tmp"):
            parts = mount.relative_to("/tmp").parts
            expected |= {os.path.join("/tmp", *parts[:i]) for i in range(1, len(parts) + 1)}
    assert set(out["tmp"]) == expected, out["tmp"]
    # what was written to /tmp, HOME and next to the scratch folder stayed inside
    for where in (Path(tempfile.gettempdir()), Path("/tmp"), Path(out["home"]),
                  Path.home(), scratch.parent):
        assert not (where / name).exists(), where / name


# ------------------------------------------------------------------ the instructor's files
INSTRUCTOR = """
import errno, json, os, site, sys
root, paths = sys.argv[1], sys.argv[2:]
import torch, optimlab
out = {"exists": {p: os.path.exists(p) for p in paths}, "root": sorted(os.listdir(root)),
       "optimlab": os.path.dirname(optimlab.__file__), "torch": torch.__version__,
       "site": site.getsitepackages()[0], "writes": {}}
for target in (out["optimlab"], out["site"], sys.base_prefix, root):
    try:
        with open(os.path.join(target, "optimlab-sandbox-probe.txt"), "w") as f:
            f.write("x")
    except OSError as e:
        out["writes"][target] = errno.errorcode[e.errno]
    else:
        out["writes"][target] = "WRITTEN"
print(json.dumps(out))
"""


def test_nothing_of_the_instructors(bwrap: None, scratch: Path) -> None:
    secret = [ROOT / "course" / "source", ROOT / "solutions", ROOT / "course",
              ROOT / "tests" / "hostile.py"]
    assert all(p.exists() for p in secret[:2])  # they are on the host
    targets = [Path(optimlab.__file__).parent, Path(ROOT), Path(sys.base_prefix)]
    leaked: list[Path] = []
    try:
        outcome = sandbox.run([sys.executable, "-c", INSTRUCTOR, str(ROOT),
                               *map(str, secret)], scratch, {}, LIMITS)
        out = report(outcome)
        targets.append(Path(out["site"]))
    finally:  # a sandbox that failed must not leave probes in the checkout or the venv
        for target in targets:
            probe = target / "optimlab-sandbox-probe.txt"
            if probe.exists():
                leaked.append(probe)
                probe.unlink()
    assert leaked == []
    assert out["exists"] == {str(p): False for p in secret}
    # of the checkout only the package and (where it lives there) the environment are bound
    allowed = {p.relative_to(ROOT).parts[0] for p in
               (Path(optimlab.__file__).resolve().parent, Path(sys.prefix).resolve())
               if p.is_relative_to(ROOT)}
    assert set(out["root"]) <= allowed, out["root"]
    assert out["optimlab"] == str(Path(optimlab.__file__).parent)
    # the package, site-packages and the base Python are read-only binds; the checkout's
    # folder inside is only a mount point on bwrap's own tmpfs root: writable there, but what
    # is written there goes nowhere (no leak, checked above)
    writes = out["writes"]
    assert writes.pop(str(ROOT)) in ("WRITTEN", "EROFS")
    assert len(writes) == 3 and set(writes.values()) == {"EROFS"}, writes


# ------------------------------------------------------------------ the scratch folder
SCRATCH = """
import errno, json, os, sys
out = {"cwd": os.getcwd()}
with open("result.txt", "w") as f:
    f.write("written inside")
for target in ("/usr", "/etc", sys.prefix):
    try:
        open(os.path.join(target, "optimlab-sandbox-probe.txt"), "w").close()
    except OSError as e:
        out[target] = errno.errorcode[e.errno]
    else:
        out[target] = "WRITTEN"
print(json.dumps(out))
"""


def test_only_the_scratch_folder_is_writable(bwrap: None, scratch: Path) -> None:
    try:
        out = report(inside(SCRATCH, scratch))
    finally:
        Path(sys.prefix, "optimlab-sandbox-probe.txt").unlink(missing_ok=True)
    assert out.pop("cwd") == str(scratch.resolve())
    assert (scratch / "result.txt").read_text() == "written inside"
    assert set(out.values()) == {"EROFS"}, out


# ------------------------------------------------------------------ wall limit, daemons
DAEMON = """
import os, sys, time
seconds, flag, then = sys.argv[1], sys.argv[2], float(sys.argv[3])
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:  # the daemon: no parent, own session, stdout still ours
        os.close(r)
        open(flag, "w").close()
        print("daemon up", flush=True)
        os.write(w, b"!")
        os.execvp("sleep", ["sleep", seconds])
    os._exit(0)
os.close(w)
os.read(r, 1)  # the daemon is up
print("parent: daemon started", flush=True)
time.sleep(then)
"""


def test_wall_limit_kills_everything(bwrap: None, scratch: Path) -> None:
    pattern = "sleep 4321.5"
    assert not running(pattern), "a sleep 4321.5 from elsewhere is running"
    seen = threading.Event()
    stop = threading.Event()

    def watch() -> None:  # the daemon is visible from the host while the sandbox runs
        while not stop.is_set() and not seen.is_set():
            if running(pattern):
                seen.set()
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.monotonic()
    try:
        outcome = sandbox.run([sys.executable, "-c", DAEMON, "4321.5", "up", "60"], scratch,
                              {}, sandbox.Limits(wall_s=2))
    finally:
        elapsed = time.monotonic() - start
        stop.set()
        watcher.join(timeout=5)
    assert outcome.timed_out and outcome.returncode == -9, outcome
    assert elapsed < 6, elapsed
    assert (scratch / "up").exists() and "parent: daemon started" in outcome.log, outcome
    assert seen.is_set(), "the daemon never showed up on the host"
    assert not running(pattern), "the daemon outlived the sandbox"


def test_a_plain_sleep_is_stopped_at_the_wall_limit(bwrap: None, scratch: Path) -> None:
    start = time.monotonic()
    outcome = inside("import time; time.sleep(60)", scratch, sandbox.Limits(wall_s=2))
    elapsed = time.monotonic() - start
    assert outcome.timed_out, outcome
    assert 2 <= elapsed < 6, elapsed


def test_a_daemon_holding_stdout_does_not_stall_run(bwrap: None, scratch: Path) -> None:
    pattern = "sleep 300.25"
    assert not running(pattern)
    start = time.monotonic()
    outcome = sandbox.run([sys.executable, "-c", DAEMON, "300.25", "up", "0"], scratch, {},
                          LIMITS)
    elapsed = time.monotonic() - start
    assert not outcome.timed_out and outcome.returncode == 0, outcome
    assert elapsed < 5, elapsed
    assert "daemon up" in outcome.log and "parent: daemon started" in outcome.log, outcome
    assert not running(pattern), "the daemon outlived the sandbox"


# ------------------------------------------------------------------ file size
BIG_FILE = """
import errno, signal
print("SIGXFSZ", signal.getsignal(signal.SIGXFSZ), flush=True)
try:
    with open("big.bin", "wb") as f:
        for _ in range(20):
            f.write(b"x" * 100_000)
            f.flush()
except OSError as e:
    print("OSError", errno.errorcode[e.errno], flush=True)
else:
    print("WROTE")
"""


def test_file_size_limit(bwrap: None, scratch: Path) -> None:
    outcome = inside(BIG_FILE, scratch, sandbox.Limits(wall_s=30, file_bytes=1_000_000))
    assert not outcome.timed_out, outcome
    assert "WROTE" not in outcome.log
    # Python ignores SIGXFSZ (and the launcher's exec keeps that), so the write fails with
    # EFBIG; a program that does not ignore it would be killed by SIGXFSZ instead
    assert "OSError EFBIG" in outcome.log or outcome.returncode == -25, outcome
    assert (scratch / "big.bin").stat().st_size <= 1_000_000


# ------------------------------------------------------------------ no bwrap
def test_pipeline_refuses_without_a_sandbox(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert shutil.which("bwrap") is None
    assert "not installed" in (sandbox.unavailable() or "")

    course = make_course(tmp_path / "course")
    said: list[str] = []
    with pytest.raises(SandboxUnavailable) as refused:
        Pipeline(course, tmp_path / "grading", progress=said.append, sandbox="bwrap")
    message = str(refused.value)
    assert "apt-get install bubblewrap" in message and "--sandbox=none" in message, message
    assert not (tmp_path / "grading").exists()  # refused before touching anything

    pipeline = Pipeline(course, tmp_path / "grading", progress=said.append, sandbox="none")
    assert pipeline.sandbox == "none"
    assert (tmp_path / "grading" / "source").is_dir()
