"""P1, feedback latency: the median time of a full visible check of each optimizer, on CPU.

P1–P4 are the course's four performance targets (benchmarks/README.md): P1 feedback latency
(this script), P2 grading overhead and P3 class throughput (grading.py), P4 CI time
(nbval_time.py).

Baseline, measured in the same run: torch.optim alone stepping through the same cases (the
work no checker can avoid). Target: a median of at most 0.3 s per optimizer.

    python benchmarks/check_latency.py [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from optimlab import reference as ref
from optimlab.check import check, select
from optimlab.optimizers.registry import SPECS
from optimlab.optimizers.trajectory import problem_for, run_oracle

TARGET_S = 0.3


def torch_only(name: str) -> float:
    spec = SPECS[name]
    start = time.perf_counter()
    for case in select(name, None):
        run_oracle(spec, case, problem_for(case, "cpu", 0), "single")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    check(ref.adam_step, "adam", display=False, allow_reference=True)  # warm up imports
    rows = []
    for name in SPECS:
        fn = getattr(ref, f"{name}_step")
        times, base = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = check(fn, name, display=False, allow_reference=True)
            times.append(time.perf_counter() - start)
            base.append(torch_only(name))
        assert result.passed
        med, bmed = statistics.median(times), statistics.median(base)
        rows.append({"optimizer": name, "cases": len(result.cases), "median_s": med,
                     "torch_only_s": bmed, "ratio": med / bmed, "ok": med <= TARGET_S})
    print(f"P1 feedback latency (a learner's full visible check of one optimizer), CPU, torch "
          f"{torch.__version__}, {args.repeats} repeats, 1 thread. Target: median ≤ {TARGET_S} s.")
    print(f"{'optimizer':<10}{'cases':>6}{'median s':>10}{'torch-only s':>14}{'ratio':>7}  target")
    for r in rows:
        print(f"{r['optimizer']:<10}{r['cases']:>6}{r['median_s']:>10.3f}{r['torch_only_s']:>14.3f}"
              f"{r['ratio']:>7.1f}  {'met' if r['ok'] else 'MISSED'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
