"""P1, feedback latency: the time of a learner's check, passing and failing, on CPU.

P1–P4 are the course's four performance targets (benchmarks/README.md): P1 feedback latency
(this script), P2 grading overhead and P3 class throughput (grading.py), P4 CI time
(nbval_time.py).

Passing: a full visible check of each reference. Baseline, measured in the same run: torch.optim
alone stepping through the same cases (the work no checker can avoid). Target: a median of at
most 0.3 s per optimizer.

Failing: every catalogued mistake of every optimizer as the learner's function, checked one
visible group at a time (what a notebook cell runs; the groups it fails are timed) and all
visible groups at once; the median and the worst, beside the passing times of the same run.
Targets: a failing single-group check ≤ 0.3 s median and ≤ 1 s at worst; all visible groups
≤ 1 s median. Each check starts with torch's trajectories uncached, as a learner's first run.

    python benchmarks/check_latency.py [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from optimlab import reference as ref
from optimlab.check import catalogue, check, groups_for, runner, select
from optimlab.optimizers.registry import SPECS
from optimlab.optimizers.trajectory import problem_for, run_oracle

TARGET_S = 0.3
FAILING_GROUP_MEDIAN_S, FAILING_GROUP_WORST_S, FAILING_ALL_MEDIAN_S = 0.3, 1.0, 1.0


def timed_check(fn, name: str, groups=None) -> tuple[float, bool]:
    """Seconds for one check, starting cold (no cached torch trajectory), and whether it passed."""
    runner._ORACLES.clear()
    start = time.perf_counter()
    result = check(fn, name, groups, display=False, raise_on_failure=False, allow_reference=True)
    return time.perf_counter() - start, result.passed


def failing(names: list[str]) -> dict[str, list[float]]:
    """Every catalogued mistake checked per visible group (the failing groups timed) and on
    all visible groups; the references' single-group checks, for comparison."""
    out: dict[str, list[float]] = {"group": [], "all": [], "group_pass": []}
    for name in names:
        visible = [g for g, grp in groups_for(name).items() if not grp.hidden]
        for g in visible:
            out["group_pass"].append(timed_check(getattr(ref, f"{name}_step"), name, g)[0])
        for m in catalogue(name):
            if m.step_fn is None:
                continue
            for g in visible:
                seconds, passed = timed_check(m.step_fn, name, g)
                if not passed:
                    out["group"].append(seconds)
            out["all"].append(timed_check(m.step_fn, name)[0])
    return out


def torch_only(name: str) -> float:
    spec = SPECS[name]
    start = time.perf_counter()
    for case in select(name, None):
        run_oracle(spec, case, problem_for(case, "cpu", 0, spec), "single")
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
            seconds, passed = timed_check(fn, name)
            assert passed
            times.append(seconds)
            base.append(torch_only(name))
        result = check(fn, name, display=False, allow_reference=True)
        med, bmed = statistics.median(times), statistics.median(base)
        rows.append({"optimizer": name, "cases": len(result.cases), "median_s": med,
                     "torch_only_s": bmed, "ratio": med / bmed, "ok": med <= TARGET_S})
    print(f"P1 feedback latency (a learner's full visible check of one optimizer), CPU, torch "
          f"{torch.__version__}, {args.repeats} repeats, 1 thread. Target: median ≤ {TARGET_S} s.")
    print(f"{'optimizer':<10}{'cases':>6}{'median s':>10}{'torch-only s':>14}{'ratio':>7}  target")
    for r in rows:
        print(f"{r['optimizer']:<10}{r['cases']:>6}{r['median_s']:>10.3f}{r['torch_only_s']:>14.3f}"
              f"{r['ratio']:>7.1f}  {'met' if r['ok'] else 'MISSED'}")
    fails = failing(list(SPECS))
    med = {k: statistics.median(v) for k, v in fails.items()}
    worst = {k: max(v) for k, v in fails.items()}
    passing_all = statistics.median(r["median_s"] for r in rows)
    targets = {"group median": med["group"] <= FAILING_GROUP_MEDIAN_S,
               "group worst": worst["group"] <= FAILING_GROUP_WORST_S,
               "all median": med["all"] <= FAILING_ALL_MEDIAN_S}
    print()
    print(f"Failing checks: {len(fails['all'])} catalogued mistakes as the learner's function.")
    print(f"{'check':<28}{'median s':>10}{'worst s':>10}{'passing median s':>18}  target")
    print(f"{'one visible group':<28}{med['group']:>10.3f}{worst['group']:>10.3f}"
          f"{med['group_pass']:>18.3f}  median ≤ {FAILING_GROUP_MEDIAN_S} s "
          f"{'met' if targets['group median'] else 'MISSED'}, worst ≤ {FAILING_GROUP_WORST_S} s "
          f"{'met' if targets['group worst'] else 'MISSED'}")
    print(f"{'all visible groups':<28}{med['all']:>10.3f}{worst['all']:>10.3f}"
          f"{passing_all:>18.3f}  median ≤ {FAILING_ALL_MEDIAN_S} s "
          f"{'met' if targets['all median'] else 'MISSED'}")
    print(f"ratio failing/passing, medians: one group {med['group'] / med['group_pass']:.2f}, "
          f"all groups {med['all'] / passing_all:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"passing": rows, "failing": fails}, f, indent=2)
    return 0 if all(r["ok"] for r in rows) and all(targets.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
