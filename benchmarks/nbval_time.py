"""P4 CI time: every solution notebook under nbval, as `./run test` runs them. Target <= 5 min.

P1–P4 are the course's four performance targets (benchmarks/README.md): P1 feedback latency
(check_latency.py), P2 grading overhead and P3 class throughput (grading.py), P4 CI time (this
script).

The baseline, in the same run, is the same notebooks on one worker: the figure shows what the
second core buys.

    python benchmarks/nbval_time.py [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from optimlab.grade.worker import ONE_THREAD  # as `./run test` sets it: one torch thread a worker

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 300.0


def nbval(workers: int) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
           "--nbval-current-env", "--nbval-sanitize-with", "course/nbval_sanitize.cfg",
           "solutions"]
    if workers > 1:
        cmd[3:3] = ["-n", str(workers), "--dist", "loadfile"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg", **ONE_THREAD})
    seconds = time.perf_counter() - start
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"nbval failed:\n{proc.stdout[-3000:]}")
    return seconds, re.sub(r"=+", "", summary).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    parallel, summary = nbval(args.workers)
    serial, _ = nbval(1)
    row = {"benchmark": "P4 CI time (nbval of all solutions)", "workers": args.workers,
           "seconds": parallel, "one_worker_s": serial, "speedup": serial / parallel,
           "target_s": TARGET_S, "met": parallel <= TARGET_S, "pytest": summary,
           "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}"}
    print(f"{row['benchmark']} on {row['machine']}")
    for key in ("workers", "seconds", "one_worker_s", "speedup", "target_s", "met", "pytest"):
        value = row[key]
        print(f"  {key:<14} {value:.1f}" if isinstance(value, float) else f"  {key:<14} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=2))
    return 0 if row["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
