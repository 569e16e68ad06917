"""The ``optimlab`` command line."""

from __future__ import annotations

import argparse
import sys
import time

import torch


def _device(arg: str) -> str:
    if arg == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if arg == "cuda" and not torch.cuda.is_available():
        raise SystemExit("optimlab: --device cuda asked for, but torch sees no CUDA device")
    return arg


def cmd_verify(args: argparse.Namespace) -> int:
    """Check every reference optimizer against torch.optim and print a table."""
    from .registry import SPECS
    from .verify import all_checks, format_table

    names = args.optimizers or list(SPECS)
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        print(f"optimlab: unknown optimizer(s) {unknown}; known: {', '.join(SPECS)}",
              file=sys.stderr)
        return 2
    device = _device(args.device)
    total = sum(len(SPECS[n].impls(c)) * 2 for n in names for c in SPECS[n].cases)
    done = 0
    start = time.perf_counter()

    def progress(check) -> None:
        nonlocal done
        done += 1
        if not args.quiet and sys.stderr.isatty():
            print(f"\r  {done}/{total} {check.spec.name:<9} {check.case.name:<24}",
                  end="", file=sys.stderr, flush=True)

    print(f"Checking {len(names)} reference optimizers against torch {torch.__version__} "
          f"on {device}: {total} runs of 50 steps, 2 param groups, 6 tensors "
          "(0-d, 1-D, 2-D, non-contiguous, empty, zero-gradient coordinates).", flush=True)
    checks = all_checks(names, device=device, progress=progress)
    if not args.quiet and sys.stderr.isatty():
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    print(format_table(checks))
    failed = sum(not c.ok for c in checks)
    elapsed = time.perf_counter() - start
    print(f"\n{len(checks) - failed}/{len(checks)} runs match torch.optim ({elapsed:.1f} s). "
          "Cells show the largest |difference| in parameters and state; '== (bitwise)' means "
          "identical to the bit.")
    return 1 if failed else 0


def cmd_release(args: argparse.Namespace) -> int:
    """Regenerate the student release and the executed solutions from the masters."""
    from .course import assignments, course_dir, release, stale

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
