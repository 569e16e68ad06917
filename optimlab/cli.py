"""The ``optimlab`` command line."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import torch


def _device(arg: str) -> str:
    if arg == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if arg == "cuda" and not torch.cuda.is_available():
        raise SystemExit("optimlab: --device cuda asked for, but torch sees no CUDA device")
    return arg


def cmd_verify(args: argparse.Namespace) -> int:
    """Check every reference optimizer against torch.optim and print a table."""
    from .optimizers import lbfgs
    from .optimizers.registry import SPECS
    from .optimizers.verify import all_checks, format_table

    known = [*SPECS, "lbfgs"]
    names = args.optimizers or known
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"optimlab: unknown optimizer(s) {unknown}; known: {', '.join(known)}",
              file=sys.stderr)
        return 2
    with_lbfgs = "lbfgs" in names
    names = [n for n in names if n != "lbfgs"]
    from tqdm import tqdm

    device = _device(args.device)
    total = sum(len(SPECS[n].impls(c, device)) * 2 for n in names for c in SPECS[n].cases())
    start = time.perf_counter()
    print(f"Checking {len(names) + with_lbfgs} reference optimizers against torch "
          f"{torch.__version__} on {device}: {total} runs of 50 steps in 2 param groups, each on "
          "7 tensors (0-d, 1-D, 2-D, non-contiguous, empty, zero-gradient coordinates; "
          "matrices only for Muon, sparse gradients for SparseAdam)"
          + (f", and L-BFGS: {len(lbfgs.PROBLEMS) * len(lbfgs.SETTINGS) * 2} runs of "
             "step(closure) on a flat vector" if with_lbfgs else "") + ".", flush=True)
    # a bar on a terminal only: redirected output stays the table alone
    with tqdm(total=total, unit="run", file=sys.stderr, leave=False, dynamic_ncols=True,
              disable=args.quiet or not sys.stderr.isatty()) as bar:

        def progress(check) -> None:
            bar.set_postfix_str(f"{check.spec.name} {check.case.name}", refresh=False)
            bar.update()

        checks = all_checks(names, device=device, progress=progress)
    quasi_newton = lbfgs.verify_all(device=device) if with_lbfgs else []
    print(format_table(checks, (lbfgs.format_row(quasi_newton),) if quasi_newton else ()))
    for c in quasi_newton:
        if not c.ok:
            print(f"FAIL lbfgs [{c.problem}, {c.setting}] {str(c.dtype)[6:]}: largest |difference| "
                  f"{c.max_diff:.3g}")
    checks = [*checks, *quasi_newton]
    failed = sum(not c.ok for c in checks)
    elapsed = time.perf_counter() - start
    print(f"\n{len(checks) - failed}/{len(checks)} runs match torch.optim ({elapsed:.1f} s). "
          "Cells show the largest |difference| in parameters and state; '== (bitwise)' means "
          "identical to the bit.")
    return 1 if failed else 0


def cmd_release(args: argparse.Namespace) -> int:
    """Regenerate the student release and the executed solutions from the masters."""
    from .grade.course import assignments, course_dir, release, stale

    course = course_dir(args.course_dir)
    if not (course / "source").is_dir():
        print(f"optimlab: no course at {course} (expected {course / 'source'})", file=sys.stderr)
        return 2
    known = assignments(course)
    unknown = [a for a in args.assignments if a not in known]
    if unknown:
        print(f"optimlab: unknown assignment(s) {unknown}; known: {', '.join(known)}",
              file=sys.stderr)
        return 2
    if args.check:
        problems = stale(course)
        for p in problems:
            print(p)
        print("release is up to date" if not problems else
              f"{len(problems)} file(s) out of date: run `optimlab release`")
        return 1 if problems else 0
    start = time.perf_counter()
    release(course, args.assignments or None, execute_solutions=not args.no_solutions,
            progress=lambda msg: print(msg, flush=True))
    print(f"done in {time.perf_counter() - start:.0f} s: notebooks/ and solutions/ regenerated")
    return 0


def _say(msg: str) -> None:
    print(msg, flush=True)


def _print_report(report, started: float, db_url: str) -> None:
    print()
    print(report.table())
    for problem in report.problems:
        print(f"problem: {problem}")
    print()
    print(f"grades CSV:      {report.csv}")
    print(f"feedback (HTML): {report.feedback}/<student>/<assignment>/")
    from sqlalchemy.engine import make_url

    shown = make_url(db_url).render_as_string(hide_password=True)  # never print a password
    print(f"gradebook:       {shown.removeprefix('sqlite:///')}")
    print(f"done in {time.perf_counter() - started:.0f} s")


def _default_jobs() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _jobs(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("--jobs must be at least 1")
    return value


def _grade_and_print(pipe, assignments: list[str], problems: list[str], jobs: int,
                     started: float) -> int:
    report = pipe.grade(assignments, jobs=jobs)
    report.problems[:0] = problems
    _print_report(report, started, pipe.db_url)
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    """Autograde submissions (a folder or an LMS zip), write feedback and a grades CSV."""
    from .grade.course import course_dir
    from .grade.pipeline import Pipeline, SandboxUnavailable, known_assignments

    started = time.perf_counter()
    course = course_dir(args.course_dir)
    source = Path(args.submissions)
    if not source.exists():
        print(f"optimlab: {source} does not exist", file=sys.stderr)
        return 2
    try:
        chosen = known_assignments(course, args.assignment)
    except ValueError as exc:
        print(f"optimlab: {exc}", file=sys.stderr)
        return 2
    try:
        pipe = Pipeline(course, Path(args.workdir), db_url=args.db, progress=_say,
                        sandbox=args.sandbox, notebook_timeout=args.notebook_timeout,
                        progress_bar=sys.stdout.isatty())
    except SandboxUnavailable as exc:
        print(f"optimlab: {exc}", file=sys.stderr)
        return 2
    if source.is_file():
        if len(args.assignment or []) != 1:
            print("optimlab: a zip holds one assignment: name it with --assignment",
                  file=sys.stderr)
            return 2
        try:
            pipe.collect_zip(source, chosen[0], args.zip_regex)
        except (ValueError, RuntimeError) as exc:
            print(f"optimlab: {exc}", file=sys.stderr)
            return 1
        problems = []
    else:
        problems = pipe.collect_folder(source, chosen, trust_timestamps=args.trust_timestamps)
    return _grade_and_print(pipe, chosen, problems, args.jobs, started)


def cmd_demo(args: argparse.Namespace) -> int:
    """Grade a demo class end to end: the README's main job."""
    from .grade.course import course_dir
    from .grade.demo import ASSIGNMENTS, CLASS, write_class
    from .grade.pipeline import Pipeline
    from .grade.sandbox import unavailable as sandbox_unavailable

    started = time.perf_counter()
    course = course_dir(args.course_dir)
    workdir = Path(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    submissions = write_class(course, workdir / "submissions")
    print(f"Demo class: {len(CLASS)} sample students ({', '.join(CLASS)}), "
          f"{len(ASSIGNMENTS)} assignments; submissions in {submissions}", flush=True)
    sandbox = args.sandbox or ("bwrap" if sandbox_unavailable() is None else "none")
    print("Student code runs " + ("in a bubblewrap sandbox, one per submission" if sandbox ==
          "bwrap" else f"WITHOUT a sandbox ({sandbox_unavailable()})"), flush=True)
    pipe = Pipeline(course, workdir / "nbgrader", progress=_say, sandbox=sandbox,
                    progress_bar=sys.stdout.isatty())
    problems = pipe.collect_folder(submissions, ASSIGNMENTS)
    return _grade_and_print(pipe, ASSIGNMENTS, problems, args.jobs, started)


def cmd_progress(args: argparse.Namespace) -> int:
    """Run the visible checks of your own notebooks and say what is left."""
    from .learn.progress import format_progress, progress, progress_html

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"optimlab: {folder} is not a folder of notebooks", file=sys.stderr)
        return 2
    results = progress(folder, args.assignment, say=_say)
    if not results:
        print(f"optimlab: no notebooks found under {folder}/<assignment>/", file=sys.stderr)
        return 2
    print()
    print(format_progress(results))
    if args.html:
        out = Path(args.html)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(progress_html(results), encoding="utf-8")
        print(f"\nreport (HTML): {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optimlab",
        description="optimlab: a course on neural-network optimizers, checked against torch.optim.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"optimlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("verify", help="check every reference optimizer against torch.optim")
    p.add_argument("optimizers", nargs="*", help="names (default: all)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where to run (default: auto, CUDA when present)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("release", help="generate notebooks/ (student release) and solutions/ "
                       "(executed) from the masters in course/source")
    p.add_argument("assignments", nargs="*", help="names (default: all)")
    p.add_argument("--course-dir", help="nbgrader course root (default: course/)")
    p.add_argument("--no-solutions", action="store_true", help="skip executing the solutions")
    p.add_argument("--check", action="store_true",
                   help="only report what is out of date; exit 1 if anything is")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("grade", help="autograde a class: feedback HTML, grades CSV, a table")
    p.add_argument("submissions", help="a folder <student>/<assignment>/<notebook>.ipynb, "
                   "or an LMS zip for one assignment (with --assignment)")
    p.add_argument("--assignment", action="append",
                   help="grade only this assignment (repeatable; default: all)")
    p.add_argument("--course-dir", help="nbgrader course root (default: course/)")
    p.add_argument("--workdir", default="grading",
                   help="nbgrader's working folder and gradebook (default: ./grading)")
    p.add_argument("--db", help="gradebook database URL (default: sqlite in --workdir)")
    p.add_argument("-j", "--jobs", type=_jobs, default=_default_jobs(),
                   help="submissions graded at once (default: the CPU count, at most 8)")
    p.add_argument("--zip-regex", default=None,
                   help="file-name pattern for zips, with (?P<student_id>) and (?P<file_id>)")
    p.add_argument("--trust-timestamps", action="store_true",
                   help="use the timestamp.txt in a student's folder for late penalties "
                   "(students can write it: off by default; zips get theirs from the LMS)")
    p.add_argument("--sandbox", choices=["bwrap", "none"], default="bwrap",
                   help="run each submission in a bubblewrap sandbox (default; refuses to "
                   "grade where bwrap cannot run) or, with 'none', without isolation")
    p.add_argument("--notebook-timeout", type=float, default=900.0,
                   help="seconds one submission's notebooks may run in all (default: 900)")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("demo", help="grade a demo class end to end (the README's main job)")
    p.add_argument("--course-dir", help="nbgrader course root (default: course/)")
    p.add_argument("--workdir", default="grading-demo", help="where to work (default: "
                   "./grading-demo, replaced on each run)")
    p.add_argument("-j", "--jobs", type=_jobs, default=_default_jobs(),
                   help="submissions graded at once (default: the CPU count, at most 8)")
    p.add_argument("--sandbox", choices=["bwrap", "none"], default=None,
                   help="default: bwrap where it works here, else none (and it says so)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("progress", help="run the visible checks of your notebooks; your files "
                       "are not modified")
    p.add_argument("folder", nargs="?", default="notebooks",
                   help="your notebooks, one folder per assignment (default: notebooks)")
    p.add_argument("--assignment", action="append", help="only this one (repeatable)")
    p.add_argument("--html", metavar="FILE", nargs="?", const="progress.html",
                   help="also write a one-page HTML report (default FILE: progress.html)")
    p.set_defaults(func=cmd_progress)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
