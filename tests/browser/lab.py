"""A real JupyterLab server for browser tests, and the few things a test does in it.

:func:`start_lab` starts ``jupyter lab`` with this interpreter (so its kernel is the project's
``python3`` kernel, with optimlab importable) on a free loopback port with a random token, in
a folder of the test's choosing. It keeps per-user Jupyter config out (a private HOME and
config dir), waits until the server answers, and at the end stops the server and every
process it started (kernels included: they share its process group).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Lab settings for a quiet first start: no news or update toasts over the notebook.
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
}


@dataclass
class JupyterLab:
    url: str
    token: str
    root: Path
    log: Path

    def lab_url(self, path: str = "") -> str:
        """JupyterLab with ``path`` open and nothing else: ``reset`` drops the tabs an earlier
        page left in the server's workspace."""
        return f"{self.url}/lab/tree/{path}?reset&token={self.token}"

    def page_url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.url}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path: str) -> object:
        req = urllib.request.Request(f"{self.url}/api/{path}",
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def start_lab(root: Path, *, cwd: Path | None = None, timeout: float = 90) -> Iterator[JupyterLab]:
    """Serve ``root`` with JupyterLab (run from ``cwd``, default ``root``: nbgrader's server
    extensions read ``nbgrader_config.py`` there) until the block ends."""
    private = root.parent / f".{root.name}-jupyter"
    home, settings = private / "home", private / "settings"
    for d in (home, settings, private / "config", private / "runtime", private / "workspaces"):
        d.mkdir(parents=True, exist_ok=True)
    for name, value in SETTINGS.items():
        target = settings / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value))
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(HOME=str(home), JUPYTER_CONFIG_DIR=str(private / "config"),
               JUPYTER_RUNTIME_DIR=str(private / "runtime"), IPYTHONDIR=str(home / ".ipython"),
               MPLBACKEND="module://matplotlib_inline.backend_inline",
               PATH=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]),
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))
    log = private / "lab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--ServerApp.allow_root=True",
           "--ServerApp.port_retries=0", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.user_settings_dir={settings}",
           f"--LabApp.workspaces_dir={private / 'workspaces'}"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd or root, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    lab = JupyterLab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({proc.returncode}):\n{log.read_text()}")
            try:
                lab.api("status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab not ready in {timeout:.0f} s:\n"
                                       f"{log.read_text()}") from None
                time.sleep(0.3)
        yield lab
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (its kernels too), then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            # kernels of the group may outlive the server for a moment
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


# ----------------------------------------------------------------------------- in the page
def open_notebook(page, lab: JupyterLab, path: str) -> None:
    """Open ``path`` (relative to the lab's root) and wait until its kernel is idle."""
    page.goto(lab.lab_url(path))
    page.wait_for_function(
        """(path) => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            return !!(w && w.context && w.context.path === path && w.context.isReady
                      && w.content && w.content.widgets.length > 0);
        }""", arg=path, timeout=90_000, polling=250)
    wait_idle(page)


def command(page, name: str, args: dict | None = None) -> None:
    """Run a JupyterLab command (what a menu item or shortcut does)."""
    page.evaluate("([n, a]) => window.jupyterapp.commands.execute(n, a)", [name, args or {}])


def wait_idle(page, timeout: float = 180) -> None:
    """Until the current notebook's kernel is idle and no cell waits to run."""
    page.wait_for_function(
        """() => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            if (!w || !w.sessionContext || !w.sessionContext.session) return false;
            const k = w.sessionContext.session.kernel;
            if (!k || k.status !== 'idle') return false;
            return ![...w.node.querySelectorAll('.jp-InputPrompt')]
                .some(p => p.textContent.includes('*'));
        }""", timeout=timeout * 1000, polling=250)


def cell_outputs(page) -> list[list[dict]]:
    """Each cell's outputs in the open notebook, as nbformat dicts."""
    return page.evaluate(
        """() => {
            const m = window.jupyterapp.shell.currentWidget.content.model;
            const out = [];
            for (let i = 0; i < m.cells.length; i++) {
                const c = m.cells.get(i);
                out.push(c.type === 'code' ? c.sharedModel.outputs || [] : []);
            }
            return out;
        }""")


def set_cell_source(page, index: int, source: str) -> None:
    page.evaluate(
        "([i, s]) => window.jupyterapp.shell.currentWidget.content.model.cells.get(i)"
        ".sharedModel.setSource(s)", [index, source])


def run_cell(page, index: int) -> None:
    """Select cell ``index`` and run it (Ctrl+Enter), then wait until the kernel is idle."""
    page.evaluate(
        "(i) => { const n = window.jupyterapp.shell.currentWidget.content; n.activeCellIndex = i;"
        " n.deselectAll(); }", index)
    command(page, "notebook:run-cell")
    page.wait_for_timeout(300)
    wait_idle(page)


def cell_node(page, index: int):
    """Cell ``index`` of the open notebook, as an element (scrolled into view)."""
    handle = page.evaluate_handle(
        "(i) => { const n = window.jupyterapp.shell.currentWidget.content;"
        " n.scrollToItem(i); return n.widgets[i].node; }", index).as_element()
    handle.scroll_into_view_if_needed()
    return handle
