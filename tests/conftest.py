"""Shared fixtures: devices to run on (CUDA tests skip cleanly where there is none)."""

from __future__ import annotations

import pytest
import torch

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.cuda,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
        ],
    ),
]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


# ------------------------------------------------------------------ scheduling under -n
#: Files of end-to-end tests that share nothing between tests: under ``--dist loadfile`` each
#: of their tests is its own unit of work, so that two of them can run on two workers.
SPLIT_FILES = {"tests/test_course.py", "tests/test_hostile.py", "tests/test_pipeline.py",
               "tests/test_portable_outputs.py"}


def cost(item: pytest.Item) -> float:
    """Seconds a test is expected to take: ``@pytest.mark.slow(seconds=...)``, else 0."""
    mark = item.get_closest_marker("slow")
    return 0.0 if mark is None else float(mark.kwargs.get("seconds", 30))


def pytest_collection_modifyitems(config, items):
    """Longest first (a stable sort: notebooks' cells keep their order), so that the long
    end-to-end runs start at once instead of last and the workers finish together."""
    items.sort(key=lambda item: -cost(item))


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with the units above, handed out in collection order."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongestFirst(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return nodeid if file in SPLIT_FILES else file

    config.option.loadscopereorder = False  # keep the order above, not "most tests first"
    return LongestFirst(config, log)
