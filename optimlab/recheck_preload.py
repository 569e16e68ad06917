"""Imported once by the re-check's fork server (see :func:`optimlab.verdict.verdict`).

Every re-check process is forked from a server that has already imported torch, optimlab and
nbformat and run the warm-up, so a re-check costs its checks and not 3 s of imports. Torch runs
on one thread there: the server forks, and a forked OpenMP pool would hang.
"""

from __future__ import annotations

import contextlib
import os

os.environ["MPLBACKEND"] = "Agg"
os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"

import torch

from optimlab import verdict

torch.set_num_threads(1)
with contextlib.suppress(Exception):  # a failed warm-up costs only speed: each re-check
    verdict.warm_up()                 # warms up again
