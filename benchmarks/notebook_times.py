"""How long each solution notebook takes to run top to bottom (target: 60 s each on 2 cores),
and the whole course (target: 5 minutes). Each is executed as nbval and nbgrader execute it:
a fresh kernel, the pinned kernelspec.

    python benchmarks/notebook_times.py [ASSIGNMENT ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

from optimlab.grade.course import assignments, course_dir, execute, masters

TARGET_EACH_S, TARGET_ALL_S = 60.0, 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--json")
    args = parser.parse_args()
    course = course_dir()
    rows = []
    for name in args.assignments or assignments(course):
        for nb in masters(course, name):
            start = time.perf_counter()
            execute(nb)
            rows.append({"notebook": f"{name}/{nb.name}", "seconds": time.perf_counter() - start})
            print(f"{rows[-1]['notebook']:<50}{rows[-1]['seconds']:>7.1f} s", flush=True)
    total = sum(r["seconds"] for r in rows)
    worst = max(r["seconds"] for r in rows)
    met = worst <= TARGET_EACH_S and total <= TARGET_ALL_S
    print(f"{'total':<50}{total:>7.1f} s   (targets: each ≤ {TARGET_EACH_S:g} s, "
          f"all ≤ {TARGET_ALL_S:g} s: {'met' if met else 'MISSED'})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"notebooks": rows, "total_s": total}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
