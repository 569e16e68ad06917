"""``optimlab progress``: a learner's own view of where they stand, without touching their files.

Each notebook is copied to a scratch folder (beside copies of its siblings, which the capstone
reads) and run there; the visible check cells say which exercises pass.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

KERNEL = "python3"
"""The kernelspec every notebook is written for, run with and graded with."""


def run_notebook(nb: Any, folder: Path, *, timeout: int, allow_errors: bool = False) -> Any:
    """Execute ``nb`` in place, as nbval and nbgrader do: a fresh kernel of the pinned
    kernelspec, started in ``folder``, ``timeout`` seconds a cell. Returns ``nb``."""
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name=KERNEL, allow_errors=allow_errors,
                   record_timing=False, resources={"metadata": {"path": str(folder)}}).execute()
    return nb


@dataclass
class Part:
    grade_id: str
    points: float
    passed: bool
    message: str = ""


@dataclass
class NotebookProgress:
    assignment: str
    parts: list[Part]
    problem: str | None = None

    @property
    def done(self) -> int:
        return sum(p.passed for p in self.parts)


def _message(outputs: list) -> str:
    for out in outputs:
        if out.get("output_type") == "error":
            text = out.get("evalue", "")
            lines = [ln for ln in text.splitlines() if ln.strip()]
            keep = [ln for ln in lines if any(k in ln for k in (
                "first wrong", "This looks like", "Hint", "raised", "differs", "expected",
                "not run", "time limit", "did not change"))]
            name = out.get("ename", "Error")
            return "\n".join((keep or lines)[:6]) or name
    return ""


def check_notebook(path: Path, timeout: int = 120) -> NotebookProgress:
    """Run a copy of one notebook; report its graded check cells."""
    from nbgrader.utils import is_grade, is_solution

    assignment = path.parent.name
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        return NotebookProgress(assignment, [], f"cannot read the notebook: {exc}")
    with tempfile.TemporaryDirectory(prefix="optimlab-progress-") as tmp:
        root = Path(tmp)
        for sibling in path.parent.parent.iterdir():
            if sibling.is_dir():
                shutil.copytree(sibling, root / sibling.name,
                                ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        try:
            run_notebook(nb, root / assignment, timeout=timeout, allow_errors=True)
        except Exception as exc:  # a dead kernel, a cell past the timeout
            return NotebookProgress(assignment, [], f"the notebook did not run: {exc}")
    parts = []
    for cell in nb.cells:
        if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell):
            meta = cell.metadata.nbgrader
            msg = _message(cell.get("outputs", []))
            parts.append(Part(meta["grade_id"], meta.get("points", 0), not msg, msg))
    return NotebookProgress(assignment, parts)


def progress(folder: Path, assignments: list[str] | None = None,
             say: Callable[[str], None] = print) -> list[NotebookProgress]:
    """Check every notebook under ``folder/<assignment>/`` and print a summary."""
    paths = sorted(p for p in folder.glob("*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if assignments:
        paths = [p for p in paths if p.parent.name in assignments]
    results = []
    for i, path in enumerate(paths, 1):
        say(f"[{i}/{len(paths)}] running {path.parent.name}/{path.name} ...")
        results.append(check_notebook(path))
    return results


def _first_failure(results: list[NotebookProgress]) -> tuple[str, Part] | None:
    return next(((r.assignment, p) for r in results if not r.problem
                 for p in r.parts if not p.passed), None)


def _points(r: NotebookProgress) -> str:
    total = sum(p.points for p in r.parts)
    return f"{sum(p.points for p in r.parts if p.passed):g}/{total:g}"


def _mark(r: NotebookProgress) -> str:
    if r.problem:
        return "✗"
    return "✓" if r.parts and r.done == len(r.parts) else "·"


def format_progress(results: list[NotebookProgress]) -> str:
    """A table (one row per notebook: checks passing, visible points, what is left), then the
    first failing check's message: what to do next."""
    from tabulate import tabulate

    rows = []
    for r in results:
        if r.problem:
            rows.append([f"✗ {r.assignment}", "", "", r.problem])
            continue
        todo = ", ".join(p.grade_id for p in r.parts if not p.passed)
        rows.append([f"{_mark(r)} {r.assignment}", f"{r.done}/{len(r.parts)} checks pass",
                     _points(r), todo])
    lines = [tabulate(rows, headers=["notebook", "checks", "visible points", "to do"],
                      tablefmt="simple", disable_numparse=True,
                      maxcolwidths=[None, None, None, 60])]
    first = _first_failure(results)
    if first:
        a, p = first
        lines.append("")
        lines.append(f"Next: {a} / {p.grade_id}")
        lines.extend("    " + ln for ln in p.message.splitlines())
    elif results and not any(r.problem for r in results):
        lines.append("")
        lines.append("Every visible check passes. (Hidden tests run when your work is graded.)")
    return "\n".join(lines)


_PAGE_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #1f2328;
       line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
.sub { color: #59636e; margin-top: 0; }
section { border: 1px solid #d0d7de; border-radius: 6px; margin: 1em 0; padding: 0.6em 1em; }
section.done { border-left: 6px solid #1a7f37; }
section.todo { border-left: 6px solid #bf8700; }
section.broken { border-left: 6px solid #b42318; }
h2 { font-size: 1.15em; margin: 0.2em 0 0.4em; display: flex; gap: 1em;
     justify-content: space-between; }
h2 .score { font-weight: normal; color: #59636e; white-space: nowrap; }
table { border-collapse: collapse; width: 100%; }
td { padding: 0.25em 0.6em 0.25em 0; border-top: 1px solid #eaeef2; vertical-align: top; }
td.mark { width: 1.5em; font-weight: bold; }
td.pts { width: 6em; color: #59636e; white-space: nowrap; text-align: right; }
.ok { color: #1a7f37; } .no { color: #b42318; }
.hint { background: #fff8c5; border: 1px solid #eed888; border-radius: 4px; padding: 0.4em 0.7em;
        margin: 0.3em 0 0.2em; }
.hint pre { margin: 0.2em 0 0; white-space: pre-wrap; overflow-wrap: break-word;
            font-size: 0.9em; }
.next { background: #ddf4ff; border: 1px solid #54aeff; border-radius: 6px; padding: 0.6em 1em; }
footer { color: #59636e; font-size: 0.9em; margin-top: 2em; }
"""


def progress_html(results: list[NotebookProgress], title: str = "Your progress") -> str:
    """A one-page, self-contained HTML report (inline CSS, no script, nothing fetched): each
    notebook, each check passed or not, and under the first failing check of a notebook what
    it said (the mistake it looks like and the hint, when the checker named one)."""
    from html import escape

    n_parts = sum(len(r.parts) for r in results)
    n_done = sum(r.done for r in results)
    out = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>{escape(title)}</title><style>{_PAGE_CSS}</style></head><body>",
           f"<h1>{escape(title)}</h1>",
           f'<p class="sub">{n_done} of {n_parts} visible checks pass, in {len(results)} '
           "notebooks. Hidden tests run when your work is graded.</p>"]
    first = _first_failure(results)
    if first:
        a, p = first
        out.append(f'<div class="next"><b>Next:</b> {escape(a)} / <code>{escape(p.grade_id)}'
                   "</code></div>")
    for r in results:
        state = "broken" if r.problem else ("done" if _mark(r) == "✓" else "todo")
        score = "" if r.problem else (f"{r.done}/{len(r.parts)} checks · {_points(r)} "
                                      "visible points")
        out.append(f'<section class="{state}" id="{escape(r.assignment)}"><h2>'
                   f"<span>{escape(_mark(r))} {escape(r.assignment)}</span>"
                   f'<span class="score">{score}</span></h2>')
        if r.problem:
            out.append(f'<div class="hint">{escape(r.problem)}</div>')
        rows, hinted = [], False
        for p in r.parts:
            mark = '<td class="mark ok">✓</td>' if p.passed else '<td class="mark no">✗</td>'
            hint = ""
            if not p.passed and not hinted:
                hinted = True
                hint = (f'<div class="hint">{_hint_html(p.message)}</div>' if p.message
                        else "")
            rows.append(f"<tr>{mark}<td><code>{escape(p.grade_id)}</code>{hint}</td>"
                        f'<td class="pts">{p.points:g} pt</td></tr>')
        if rows:
            out.append("<table>" + "".join(rows) + "</table>")
        out.append("</section>")
    out.append("<footer>Written by <code>optimlab progress --html</code>; your notebooks were "
               "run on copies and not modified.</footer></body></html>")
    return "\n".join(out)


def _hint_html(message: str) -> str:
    """A failing check's message: its "This looks like" and "Hint" lines set apart."""
    from html import escape

    named = [ln for ln in message.splitlines() if ln.startswith(("This looks like:", "Hint:"))]
    rest = [ln for ln in message.splitlines() if ln not in named]
    parts = []
    for ln in named:
        label, _, text = ln.partition(":")
        parts.append(f"<div><b>{escape(label)}:</b>{escape(text)}</div>")
    if rest:
        parts.append(f"<pre>{escape(chr(10).join(rest))}</pre>")
    return "".join(parts)
