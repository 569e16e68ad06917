"""The outputs nbval compares print the same on any CPU torch supports.

torch picks vectorized kernels for the CPU it runs on (``ATEN_CPU_CAPABILITY``: AVX-512, AVX2,
plain C++ on others), and they round float32 differently in the last bit. A printed ``repr`` of
a float32, or the end of a long float32 training run, then differs from machine to machine.
The notebooks print at the precision a cell's point needs. The few cells whose numbers
legitimately depend on the CPU (training runs) are tagged ``nbval-ignore-output`` and assert
what they claim instead, with :func:`optimlab.learn.problems.compare_runs`.

The main nbval run (``./run test``) executes the solutions with the machine's own kernels on
one torch thread; here they run again with other kernels and two threads.
"""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest
import torch

from optimlab.grade.course import ROOT, assignments, course_dir, masters
from optimlab.learn import problems

IGNORE = "nbval-ignore-output"
NATIVE = torch.backends.cpu.get_cpu_capability().lower()


def ignored_cells():
    course = course_dir()
    for name in assignments(course):
        for path in masters(course, name):
            for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
                if IGNORE in cell.metadata.get("tags", []):
                    yield f"{name} cell {i}", cell


def test_ignored_cells_assert_what_they_print():
    """A cell is never ignored just to make it pass: it asserts its point instead."""
    cells = list(ignored_cells())
    assert cells, "the training-run cells are tagged nbval-ignore-output"
    for where, cell in cells:
        assert cell.cell_type == "code", where
        assert "compare_runs(" in cell.source or "\nassert " in f"\n{cell.source}", (
            f"{where} is tagged {IGNORE} but asserts nothing")


# ------------------------------------------------------------------ compare_runs
def run(final: float = 0.1, steps: int = 50) -> list[float]:
    return [1.0 - (1.0 - final) * t / (steps - 1) for t in range(steps)]


def test_compare_runs_accepts_a_run_that_drifts_late(capsys):
    theirs = run(0.1)
    yours = [*theirs[:-1], 0.105]  # 5 % apart at the end, as float32 on another CPU can be
    problems.compare_runs(yours, theirs, (0.97, 0.98))
    assert capsys.readouterr().out == (
        "spirals: last step's loss yours 0.1050, torch 0.1000; accuracy yours 0.970, torch 0.980\n")


@pytest.mark.parametrize(("yours", "accuracy", "says"), [
    ([1.0, 0.99, *run(0.1)[2:]], None, "parts from torch's at step 2"),
    ([*run(0.1)[:-1], 0.2], None, "last step's loss 0.2 is not within 10% of torch's 0.1"),
    (run(0.1), (0.90, 0.98), "accuracy 0.900 is not within 0.03"),
    (run(0.1)[:-1], None, "49 losses, torch's 50"),
])
def test_compare_runs_rejects_a_different_run(yours, accuracy, says):
    with pytest.raises(AssertionError, match=says):
        problems.compare_runs(yours, run(0.1), accuracy)


# ------------------------------------------------------------------ other kernels, threads
CAPABILITIES = ["default"] + (["avx2"] if NATIVE.startswith("avx512") else [])
SOLUTIONS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "solutions").glob("*/*.ipynb"))


@pytest.mark.slow(seconds=200)
@pytest.mark.parametrize("capability", CAPABILITIES)
def test_solutions_print_the_same_with_other_cpu_kernels(capability):
    """nbval on the solutions with torch's ``capability`` kernels and two threads.

    Each solution runs under one other kernel, in turn (with avx512 here: every other notebook
    on the plain ``default`` kernels, the rest on ``avx2``, a common laptop's), so the course
    runs once more in all, not once per kernel: CI's time stays in check."""
    if capability == NATIVE:
        pytest.skip(f"this CPU's own kernels are {NATIVE}: the main nbval run covers them")
    mine = SOLUTIONS[CAPABILITIES.index(capability)::len(CAPABILITIES)]
    # two threads, and threads that sleep while they wait: under pytest -n the other worker
    # holds a core, and spinning OpenMP threads would fight it (several times slower)
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "OMP_NUM_THREADS": "2",
           "MKL_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE", "MPLBACKEND": "Agg"}
    env.pop("PYTEST_XDIST_WORKER", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--nbval", "--nbval-current-env", "--nbval-sanitize-with",
         "course/nbval_sanitize.cfg", *mine],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
