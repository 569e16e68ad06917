"""P2 grading overhead and P3 class throughput, each against a baseline measured in the same run.

P1–P4 are the course's four performance targets (benchmarks/README.md): P1 feedback latency
(check_latency.py), P2 grading overhead and P3 class throughput (this script), P4 CI time
(nbval_time.py).

P2: one student hands in the solution of every assignment. optimlab's pipeline grades it
(autograde, out-of-kernel re-check, feedback, export) against plain nbgrader doing the same steps
on the same notebooks with the checks removed (every graded test cell emptied). Target <= 1.2.

P3: a class of sample students (complete, partial, blank, mistaken and broken work, cycled) graded
one at a time and with ``--jobs 2``. Target speed-up >= 1.7 on 2 cores, grades identical.

Wrong against right: one assignment graded for a class of right submissions (the solution) and
for a class of wrong ones (a catalogued mistake, which fails a check and is diagnosed), one
submission at a time. A wrong answer must not cost more than 1.2 times a right one.

    python benchmarks/grading.py p2 [--json out.json]
    python benchmarks/grading.py p3 [--students 30] [--assignment 04_adagrad] [--json out.json]
    python benchmarks/grading.py wrong [--students 10] [--assignment 07_adam] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import nbformat
from nbgrader.utils import is_grade, is_solution

from optimlab.grade import course as nbcourse
from optimlab.grade import judge, sandbox
from optimlab.grade.course import assignments, course_dir, masters, nbgrader, scratch_course
from optimlab.grade.demo import notebook_for
from optimlab.grade.pipeline import Pipeline
from optimlab.grade.scratch import submission_with

P2_TARGET, P3_TARGET, WRONG_TARGET = 1.2, 1.7, 1.2
KINDS = ["solution", "mistake", "blank", "first exercise only", "solution", "not a notebook"]


def machine() -> str:
    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, torch {torch.__version__}")


class Timer:
    """Wall time spent inside the wrapped functions, by label."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)

    def wrap(self, module, name: str, label: str) -> None:
        """Time ``module.name`` under ``label``."""
        original = getattr(module, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.spent[label] += time.perf_counter() - start

        timed.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(module, name, timed)


def without_checks(course: Path, dest: Path) -> Path:
    """A copy of the course whose graded test cells are empty: nbgrader runs only the rest."""
    shutil.copytree(course, dest)
    for nb_path in (dest / "source").rglob("*.ipynb"):
        nb = nbformat.read(nb_path, as_version=4)
        for cell in nb.cells:
            if is_grade(cell) and not is_solution(cell) and cell.cell_type == "code":
                cell.source = "pass"
        nbformat.write(nb, nb_path)
    return dest


def hand_in(course: Path, folder: Path, student: str, names: list[str]) -> None:
    for name in names:
        for master in masters(course, name):
            target = folder / student / name / master.name
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(submission_with(master), target)


def plain_nbgrader(course: Path, work: Path, names: list[str], timer: Timer) -> float:
    """nbgrader alone: release, autograde, feedback and export, as the pipeline does."""
    scratch_course(course, work)
    db = f"--db=sqlite:///{work / 'gradebook.db'}"

    def run(*args: str) -> None:
        begin = time.perf_counter()
        nbgrader([*args, db, "--log-level=WARN"], work)
        timer.spent[f"nbgrader {args[0]}"] += time.perf_counter() - begin

    start = time.perf_counter()
    for name in names:
        run("generate_assignment", name, "--force")
        run("autograde", name, "--force", "--create")
        run("generate_feedback", name, "--force")
    run("export", f"--to={work / 'grades.csv'}")
    return time.perf_counter() - start


def p2(tmp: Path) -> dict:
    course = course_dir()
    names = assignments(course)
    hand_in(course, tmp / "subs", "solver", names)
    timer = Timer()
    timer.wrap(judge, "judge_notebook", "judge outside the kernel")
    timer.wrap(sandbox, "run", "autograde in the sandbox")
    timer.wrap(nbcourse, "generate_assignment", "nbgrader generate_assignment (in process)")
    timer.wrap(nbcourse, "generate_feedback", "nbgrader generate_feedback")
    timer.wrap(nbcourse, "export_grades", "nbgrader export (in process)")
    pipe = Pipeline(course, tmp / "optimlab", progress=lambda m: None)
    pipe.collect_folder(tmp / "subs", names)
    start = time.perf_counter()
    report = pipe.grade(names, jobs=1)
    ours = time.perf_counter() - start
    assert not report.problems, report.problems
    bare = without_checks(course, tmp / "bare-course")
    (tmp / "bare").mkdir()
    shutil.copytree(tmp / "subs", tmp / "bare" / "submitted")
    base_timer = Timer()
    base = plain_nbgrader(bare, tmp / "bare", names, base_timer)
    score = sum(r.score or 0 for r in report.rows)
    top = sum(r.max_score for r in report.rows)
    return {"benchmark": "P2 grading overhead (optimlab grade / plain nbgrader, same steps)",
            "assignments": len(names),
            "optimlab_s": ours, "plain_nbgrader_s": base, "ratio": ours / base,
            "target": P2_TARGET, "met": ours / base <= P2_TARGET, "score": f"{score:g}/{top:g}",
            "optimlab_breakdown_s": dict(timer.spent),
            "plain_nbgrader_breakdown_s": dict(base_timer.spent)}


def p3(tmp: Path, students: int, assignment: str) -> dict:
    course = course_dir()
    subs = tmp / "subs"
    kinds = [k for k in KINDS if k != "mistake" or assignment in ("04_adagrad", "07_adam")]
    (master,) = masters(course, assignment)
    for i in range(students):
        target = subs / f"student{i:02d}" / assignment / master.name
        target.parent.mkdir(parents=True)
        target.write_text(notebook_for(course, assignment, kinds[i % len(kinds)]))
    results = {}
    for jobs in (1, 2):
        pipe = Pipeline(course, tmp / f"jobs{jobs}", progress=lambda m: None)
        pipe.collect_folder(subs, [assignment])
        start = time.perf_counter()
        report = pipe.grade([assignment], jobs=jobs)
        results[jobs] = (time.perf_counter() - start, report.scores())
    (serial, scores1), (parallel, scores2) = results[1], results[2]
    return {"benchmark": "P3 class throughput (a class with --jobs 2 against one at a time)",
            "students": students, "assignment": assignment,
            "serial_s": serial, "jobs2_s": parallel, "speedup": serial / parallel,
            "target": P3_TARGET, "met": serial / parallel >= P3_TARGET,
            "identical_grades": scores1 == scores2}


def wrong(tmp: Path, students: int, assignment: str) -> dict:
    course = course_dir()
    (master,) = masters(course, assignment)
    results = {}
    for kind in ("solution", "mistake"):
        subs = tmp / kind / "subs"
        for i in range(students):
            target = subs / f"student{i:02d}" / assignment / master.name
            target.parent.mkdir(parents=True)
            target.write_text(notebook_for(course, assignment, kind))
        timer = Timer()
        timer.wrap(judge, "judge_notebook", "judge outside the kernel")
        timer.wrap(sandbox, "run", "autograde in the sandbox")
        pipe = Pipeline(course, tmp / kind / "grading", progress=lambda m: None)
        pipe.collect_folder(subs, [assignment])
        start = time.perf_counter()
        report = pipe.grade([assignment], jobs=1)
        results[kind] = (time.perf_counter() - start, report, dict(timer.spent))
        for module, name in ((judge, "judge_notebook"), (sandbox, "run")):
            setattr(module, name, getattr(module, name).__wrapped__)
    (right_s, right, right_parts), (wrong_s, bad, wrong_parts) = (results["solution"],
                                                                   results["mistake"])
    ratio = wrong_s / right_s
    return {"benchmark": "Wrong against right (a class of wrong submissions / a class of right "
                         "ones, same assignment, one at a time)",
            "students": students, "assignment": assignment,
            "right_s": right_s, "wrong_s": wrong_s, "ratio": ratio,
            "right_scores": sorted({r.score for r in right.rows}),
            "wrong_scores": sorted({r.score for r in bad.rows}),
            "target": WRONG_TARGET, "met": ratio <= WRONG_TARGET,
            "right_breakdown_s": right_parts, "wrong_breakdown_s": wrong_parts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["p2", "p3", "wrong"])
    parser.add_argument("--students", type=int, default=None,
                        help="class size (p3: 30, wrong: 10 of each)")
    parser.add_argument("--assignment", default=None, help="p3: 04_adagrad, wrong: 07_adam")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="optimlab-bench-") as tmp:
        if args.which == "p2":
            row = p2(Path(tmp))
        elif args.which == "p3":
            row = p3(Path(tmp), args.students or 30, args.assignment or "04_adagrad")
        else:
            row = wrong(Path(tmp), args.students or 10, args.assignment or "07_adam")
    row["machine"] = machine()
    print(f"{row['benchmark']} on {row['machine']}")
    for key, value in row.items():
        if key in ("benchmark", "machine"):
            continue
        if isinstance(value, dict):
            for k, v in value.items():
                print(f"  {key}: {k:<40} {v:8.1f}")
        else:
            print(f"  {key:<18} {value:.2f}" if isinstance(value, float) else
                  f"  {key:<18} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=2))
    return 0 if row["met"] and row.get("identical_grades", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
