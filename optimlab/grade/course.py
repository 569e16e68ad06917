"""The course on disk: master notebooks in ``course/source``, the student release in
``notebooks/``, the executed solutions in ``solutions/``. One source of truth, the masters;
:func:`release` regenerates the rest with nbgrader, and :func:`stale` says what is out of date.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import nbformat

from ..learn.progress import run_notebook

ROOT = Path(__file__).resolve().parents[2]

# nbgrader's Gradebook runs `alembic` from PATH, in this process too (generate_assignment,
# the gradebook reads): put this interpreter's scripts first, so that `optimlab` run as
# .venv/bin/optimlab works without the venv activated.
_SCRIPTS = os.path.dirname(sys.executable)
if _SCRIPTS not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join(filter(None, [_SCRIPTS, os.environ.get("PATH")]))


def course_dir(path: str | Path | None = None) -> Path:
    """The nbgrader course root: ``path``, or ``course/`` beside the package."""
    return Path(path).resolve() if path else ROOT / "course"


def assignments(course: Path) -> list[str]:
    """Assignment names, in course order (the folders of ``source/``)."""
    return sorted(p.name for p in (course / "source").iterdir() if p.is_dir()
                  and not p.name.startswith("."))


def masters(course: Path, assignment: str) -> list[Path]:
    return sorted((course / "source" / assignment).glob("*.ipynb"))


def scratch_course(course: Path, root: Path) -> Path:
    """Copy a course's masters (``source/``) and its ``nbgrader_config.py`` into ``root`` (made
    if missing; files already there are overwritten), for nbgrader to work in away from
    ``course``. Returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(course / "source", root / "source", dirs_exist_ok=True)
    shutil.copy(course / "nbgrader_config.py", root / "nbgrader_config.py")
    return root


# What a grader's nbgrader run must not read: student code runs as the grader's OS user, so it
# can write any per-user location. jupyter_core (5.x, paths.py) loads `jupyter_config.py` and
# `nbgrader_config.py` from jupyter_config_path(): $JUPYTER_CONFIG_PATH, JUPYTER_CONFIG_DIR
# (default ~/.jupyter), the user site's etc/jupyter (when site.ENABLE_USER_SITE),
# {sys.prefix}/etc/jupyter, /usr/local/etc/jupyter and /etc/jupyter (JUPYTER_PREFER_ENV_PATH
# only reorders these). JUPYTER_NO_CONFIG=1 cuts that list down to one blank temporary folder,
# which covers all of them, including the venv's etc/jupyter that the grader's user can write;
# nbgrader still loads the course's nbgrader_config.py from cwd and CourseDirectory.root, which
# does not go through that list. Data (kernelspecs, nbconvert templates for the feedback) is
# still searched in $JUPYTER_PATH, JUPYTER_DATA_DIR (made private here), {sys.prefix}/share/jupyter
# (where the python3 kernelspec is) and /usr/local/share/jupyter, /usr/share/jupyter.
# Not covered: $JUPYTER_PATH and other variables of the grader's own environment; anything
# the grader's user can write in the venv itself (site-packages, .pth files, share/jupyter,
# etc/ipython) or in the folder nbgrader runs in (it is on sys.path).
# Dropped, so that they fall back to the private HOME (XDG_*: matplotlib, platformdirs).
_UNSET = ("JUPYTER_CONFIG_PATH", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")


def _private_home(home: Path) -> dict[str, str]:
    """Variables pointing every per-user Jupyter/IPython location into the empty ``home``."""
    dirs = {"JUPYTER_CONFIG_DIR": home / ".jupyter", "JUPYTER_DATA_DIR": home / "data",
            "JUPYTER_RUNTIME_DIR": home / "runtime", "IPYTHONDIR": home / ".ipython",
            # jupyter_core makes its blank config folder in TMPDIR: removed along with home
            "TMPDIR": home / "tmp"}
    for d in dirs.values():
        d.mkdir()
    return {"HOME": str(home), "JUPYTER_NO_CONFIG": "1", **{k: str(v) for k, v in dirs.items()}}


def nbgrader(args: list[str], cwd: Path, *, env_extra: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess:
    """Run an nbgrader command with this Python; raise with its log when it fails.

    It runs with a fresh, empty HOME and no per-user Jupyter config (see above), so only the
    course's nbgrader_config.py in ``cwd`` is loaded; ``env_extra`` (e.g. IPYTHONDIR) wins.
    """
    home = Path(tempfile.mkdtemp(prefix="optimlab-nbgrader-home-"))
    try:
        env = {k: v for k, v in os.environ.items() if k not in _UNSET}
        env.update({**_private_home(home), **(env_extra or {}), "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])})
        # nbgrader runs `alembic` from PATH: put this environment's scripts first.
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
        env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env,
                              capture_output=True, text=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def course_config(root: Path) -> Any:
    """The traitlets config of the course in ``root``: its ``nbgrader_config.py`` and nothing
    else (no per-user or system Jupyter config, which :func:`nbgrader` also keeps out)."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    return config


def generate_assignment(root: Path, assignment: str, db_url: str | None = None) -> None:
    """``nbgrader generate_assignment --force`` for the course in ``root`` (its own gradebook,
    or ``db_url``), in this process through nbgrader's Python API: it reads the course's config
    alone (:func:`course_config`) and the masters, runs no notebook and no nbconvert template,
    so nothing a student's code could have written is loaded. Raises with nbgrader's log."""
    from nbgrader.apps.api import NbGraderAPI

    config = course_config(root)
    if db_url:
        config.CourseDirectory.db_url = db_url
    config.NbGraderAPI.log_level = "WARN"
    with tempfile.TemporaryDirectory(prefix="optimlab-exchange-") as exchange:
        # the API looks for an exchange when it starts: an empty one (none is used) keeps it
        # from reporting a missing /usr/local/share/nbgrader/exchange
        config.Exchange.root = exchange
        result = NbGraderAPI(config=config).generate_assignment(assignment, force=True,
                                                                create=True)
    if not result["success"]:
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n"
                           f"{result.get('log', '')}\n{result.get('error', '')}")


def generate_feedback(root: Path, assignment: str, db_url: str | None = None) -> None:
    """``nbgrader generate_feedback --force``: HTML from the autograded notebooks.

    Not through nbgrader's Python API but in a child process (:func:`nbgrader`): nbconvert looks
    up its HTML templates in the per-user Jupyter data folders (``~/.local/share/jupyter``,
    ``$JUPYTER_PATH``), which a student's code running as the grader could have written, and
    this process cannot point them elsewhere without changing its own environment under the
    worker threads. The child gets a private HOME and data folder instead. It also renders what
    students wrote: a notebook that makes nbconvert blow up takes down that child, not us."""
    nbgrader(["generate_feedback", assignment, "--force", *_db_arg(db_url), "--log-level=WARN"],
             root)


def export_grades(root: Path, to: Path, db_url: str | None = None) -> None:
    """``nbgrader export``, in this process: the course's configured export plugin (nbgrader's
    CSV one by default) over the gradebook. It reads the gradebook and the course's config only
    (nbgrader's Python API has no export; this is what its export app runs)."""
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.plugins import CsvExportPlugin
    from traitlets.utils.importstring import import_item

    config = course_config(root)
    if db_url:
        config.CourseDirectory.db_url = db_url
    plugin_class = config.ExportApp.get("plugin_class", CsvExportPlugin)
    if isinstance(plugin_class, str):
        plugin_class = import_item(plugin_class)
    plugin = plugin_class(config=config)
    plugin.to = str(to)
    where = CourseDirectory(config=config)
    with Gradebook(where.db_url, where.course_id) as gb:
        plugin.export(gb)


def zip_collect(root: Path, assignment: str, regex: str, db_url: str | None = None) -> None:
    """``nbgrader zip_collect --force`` with ``regex`` for the file names.

    In a child process (:func:`nbgrader`), not through the Python API (which has no
    zip_collect): it unpacks archives a student or an LMS handed in, and an archive that
    exhausts memory or crashes the extractor takes down that child, not us."""
    nbgrader(["zip_collect", assignment, "--force",
              f"--FileNameCollectorPlugin.named_regexp={regex}", *_db_arg(db_url),
              "--log-level=WARN"], root)


def _db_arg(db_url: str | None) -> list[str]:
    return [f"--db={db_url}"] if db_url else []


def _normalized(nb: Any) -> str:
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def write_notebook(nb: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_normalized(nb), encoding="utf-8")


def generate_release(course: Path, names: Iterable[str], out: Path) -> list[Path]:
    """nbgrader generate_assignment into a scratch copy of the course (no gradebook is written
    in ``course``); the released notebooks are written under ``out/<assignment>/``."""
    written = []
    with tempfile.TemporaryDirectory(prefix="optimlab-release-") as tmp:
        scratch = scratch_course(course, Path(tmp))
        for name in names:
            generate_assignment(scratch, name)
            for nb_path in sorted((scratch / "release" / name).glob("*.ipynb")):
                nb = nbformat.read(nb_path, as_version=4)
                target = out / name / nb_path.name
                write_notebook(nb, target)
                written.append(target)
    return written


def execute(nb_path: Path, *, timeout: int = 300) -> Any:
    """Execute a notebook in its own folder with the pinned kernel; return it with outputs."""
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return run_notebook(nb, nb_path.parent, timeout=timeout)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def without_widgets(nb: Any) -> Any:
    """``nb`` without what a widget leaves in an executed notebook: the saved widget state
    (``metadata.widgets``: random model ids, and the explorers' PNGs again) and the
    ``application/vnd.jupyter.widget-view+json`` part of each output (a random model id,
    which nbval skips anyway). The output's ``text/plain`` stays: nbval compares it, and the
    explorers make it deterministic. A solution thus changes only when its outputs do."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            out.get("data", {}).pop(WIDGET_VIEW, None)
    return nb


def release(course: Path, names: Iterable[str] | None = None, *, notebooks: Path | None = None,
            solutions: Path | None = None, execute_solutions: bool = True,
            progress: Callable[[str], None] = print) -> None:
    """Regenerate the student release and the executed solutions of ``names`` (all)."""
    names = list(names or assignments(course))
    notebooks = notebooks or ROOT / "notebooks"
    solutions = solutions or ROOT / "solutions"
    for i, name in enumerate(names, 1):
        progress(f"[{i}/{len(names)}] {name}: student release")
        shutil.rmtree(notebooks / name, ignore_errors=True)
        generate_release(course, [name], notebooks)
        if execute_solutions:
            shutil.rmtree(solutions / name, ignore_errors=True)
            for master in masters(course, name):
                progress(f"[{i}/{len(names)}] {name}: executing {master.name}")
                write_notebook(without_widgets(execute(master)), solutions / name / master.name)


def _sources(nb: Any) -> list[tuple[str, str, Any]]:
    return [(c.cell_type, c.source, c.metadata.get("nbgrader")) for c in nb.cells]


def stale(course: Path, *, notebooks: Path | None = None, solutions: Path | None = None
          ) -> list[str]:
    """What is out of date: released notebooks that differ from a fresh release, and solution
    notebooks whose cells differ from the masters' (their outputs are nbval's business)."""
    notebooks = notebooks or ROOT / "notebooks"
    solutions = solutions or ROOT / "solutions"
    problems = []
    names = assignments(course)
    with tempfile.TemporaryDirectory(prefix="optimlab-sync-") as tmp:
        fresh = Path(tmp)
        generate_release(course, names, fresh)
        want = {p.relative_to(fresh) for p in fresh.rglob("*.ipynb")}
        have = {p.relative_to(notebooks) for p in notebooks.rglob("*.ipynb")
                if ".ipynb_checkpoints" not in p.parts} if notebooks.exists() else set()
        problems += [f"notebooks/{p}: missing" for p in sorted(want - have)]
        problems += [f"notebooks/{p}: not generated from course/source"
                     for p in sorted(have - want)]
        for rel in sorted(want & have):
            if (fresh / rel).read_text(encoding="utf-8") != (notebooks / rel).read_text(
                    encoding="utf-8"):
                problems.append(f"notebooks/{rel}: stale (differs from a fresh release)")
    for name in names:
        for master in masters(course, name):
            sol = solutions / name / master.name
            if not sol.exists():
                problems.append(f"solutions/{name}/{master.name}: missing")
                continue
            if _sources(nbformat.read(sol, as_version=4)) != _sources(
                    nbformat.read(master, as_version=4)):
                problems.append(f"solutions/{name}/{master.name}: stale (cells differ from the "
                                "master)")
    return problems
