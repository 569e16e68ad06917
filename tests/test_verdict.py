"""The out-of-kernel re-check on its own: honest work passes, a faked answer does not count,
and a submission that kills the re-check's fork server costs no other student anything."""

from __future__ import annotations

import threading
import time

import nbformat
import pytest

from optimlab.verdict import verdict

from .hostile import GD, master, submission

PASSED = {"check_gd": {"passed": True, "message": ""}, "check_sos": {"passed": True, "message": ""}}


@pytest.fixture
def course(tmp_path):
    path = tmp_path / "master.ipynb"
    nbformat.write(master(), path)

    def hand_in(name: str, prelude: str = ""):
        nb = tmp_path / f"{name}.ipynb"
        nb.write_text(submission(prelude + GD), encoding="utf-8")
        return nb

    return path, hand_in


def test_honest_work_passes_and_a_faked_answer_does_not(course, monkeypatch):
    monkeypatch.setenv("OPTIMLAB_TIME_LIMIT", "5")
    master_nb, hand_in = course
    assert verdict(hand_in("honest"), master_nb, cell_time_limit=15) == PASSED
    fake = hand_in("fake", "import gc, os\nfrom multiprocessing.connection import Connection\n"
                   "for c in gc.get_objects():\n    if isinstance(c, Connection):\n"
                   "        c.send_bytes(b'0' * 32 + b'{}')\nos._exit(0)\n")
    assert verdict(fake, master_nb, cell_time_limit=15) == (
        "the re-check's answer did not come from the re-check")


def test_a_hanging_cell_gets_the_kernels_time_limit(course):
    master_nb, hand_in = course
    started = time.monotonic()
    result = verdict(hand_in("hangs", "while True:\n    pass\n"), master_nb, cell_time_limit=2)
    assert isinstance(result, dict) and not result["check_gd"]["passed"]
    assert time.monotonic() - started < 60  # stopped after 2 s, not the default 180


def test_killing_the_server_costs_no_one_else(course):
    master_nb, hand_in = course
    slow = hand_in("slow", "import time\ntime.sleep(3)\n")
    killer = hand_in("killer", "import os, signal, time\ntime.sleep(0.5)\n"
                     "os.kill(os.getppid(), signal.SIGKILL)\n")
    assert verdict(hand_in("warm"), master_nb, cell_time_limit=15) == PASSED  # server is up
    out = {}
    threads = [threading.Thread(target=lambda n=n, nb=nb: out.update({n: verdict(
        nb, master_nb, cell_time_limit=15)})) for n, nb in (("slow", slow), ("killer", killer))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out["slow"] == PASSED
    assert verdict(hand_in("after"), master_nb, cell_time_limit=15) == PASSED  # a new server
