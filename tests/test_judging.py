"""Judging outside the kernel, without a kernel: a check run in record mode
(optimlab/check/recording.py) leaves data, the same test cell replayed on that data by the judge
(optimlab/grade/judge.py) gives the kernel's verdict, and records a submission could craft are
refused before anything reads them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch

import optimlab
from optimlab.check.recording import _KERNEL_SCOPE, Scope, cell_key
from optimlab.grade.judge import Verdict, judge_cell, load_records

CHECK_GD = ('optimlab.check(gd_step, "gd", "basic")\n### BEGIN HIDDEN TESTS\n'
            '_ = optimlab.check(gd_step, "gd", "basic", hidden=True)\n### END HIDDEN TESTS')
SEED = 1234


def gd_step(param, grad, state, *, lr=1e-3):
    param.sub_(lr * grad)


def gd_wrong(param, grad, state, *, lr=1e-3):
    param.add_(lr * grad)


def record(folder: Path, source: str, namespace: dict, seed: int = SEED) -> bool:
    """Run ``source`` as a grading kernel would (recording); whether it raised nothing."""
    key = cell_key(source)
    _KERNEL_SCOPE[0] = Scope(key, [], seed, replay=False, path=folder / f"{key}.pt")
    try:
        exec(source, {"optimlab": optimlab, "torch": torch, "display": None, **namespace})
        return True
    except AssertionError:
        return False
    finally:
        _KERNEL_SCOPE[0] = None


def judged(folder: Path, source: str, seed: int = SEED) -> Verdict:
    return judge_cell(source, load_records(folder, [cell_key(source)]).get(cell_key(source)),
                      seed)


@pytest.mark.parametrize(("fn", "passes"), [(gd_step, True), (gd_wrong, False)])
def test_replay_gives_the_kernels_verdict(tmp_path, fn, passes):
    assert record(tmp_path, CHECK_GD, {"gd_step": fn}) is passes
    verdict = judged(tmp_path, CHECK_GD)
    assert verdict.judged and verdict.passed is passes
    if not passes:
        assert "does not match torch.optim" in verdict.message


def test_hidden_cases_come_from_the_graders_seed(tmp_path):
    record(tmp_path, CHECK_GD, {"gd_step": gd_step})
    assert not judged(tmp_path, CHECK_GD, seed=SEED + 1).passed  # other gradients, same data


def test_no_record_is_a_fail_and_a_direct_call_is_not_judged(tmp_path):
    assert not judged(tmp_path, CHECK_GD).passed
    direct = "assert sos(torch.ones(2)) == 2"
    verdict = judge_cell(direct, [], SEED)
    assert not verdict.judged and "directly" in verdict.message
    nothing = "assert callable(sos)"
    assert not judge_cell(nothing, None, SEED).judged


def test_call_records_return_values_and_comments_do_not_change_the_key(tmp_path):
    src = "assert torch.allclose(optimlab.call(sos, torch.tensor([1., 2.])), torch.tensor(5.))"
    assert record(tmp_path, src, {"sos": lambda x: (x * x).sum()})
    restored = "# This cell was missing. It was added back by nbgrader.\n\n" + src
    assert judged(tmp_path, restored).passed
    record(tmp_path, src, {"sos": lambda x: x.sum()})
    assert not judged(tmp_path, src).passed


def test_numpy_scalars_are_recorded_as_numbers(tmp_path):
    np = pytest.importorskip("numpy")
    src = "assert float(optimlab.call(f)) == 0.5"
    assert record(tmp_path, src, {"f": lambda: np.float64(0.5)})
    assert judged(tmp_path, src).passed


def _forge(folder: Path, source: str, calls: list, *, compress: bool = False) -> None:
    path = folder / f"{cell_key(source)}.pt"
    torch.save({"cell": cell_key(source), "calls": calls}, path)
    if compress:
        packed = folder / "packed.pt"
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(packed, "w",
                                                           zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                dst.writestr(info.filename, src.read(info))
        packed.replace(path)


def test_crafted_records_are_refused(tmp_path):
    src = "x = optimlab.call(f)"
    bomb: list = ["x"]
    for _ in range(30):
        bomb = [bomb, bomb]
    for calls, compress in [
        ([{"label": "optimlab.call", "out": torch.zeros(1).expand(2**40)}], False),
        ([{"label": "optimlab.call", "out": bomb}], False),
        ([{"label": "optimlab.call", "out": torch.zeros(10)}], True),
    ]:
        _forge(tmp_path, src, calls, compress=compress)
        assert load_records(tmp_path, [cell_key(src)]) == {}, (calls, compress)
    _forge(tmp_path, src, [{"label": "optimlab.call", "out": torch.zeros(10)}])
    assert cell_key(src) in load_records(tmp_path, [cell_key(src)])


def test_an_empty_trajectory_does_not_pass(tmp_path):
    record(tmp_path, CHECK_GD, {"gd_step": gd_step})
    key = cell_key(CHECK_GD)
    calls = load_records(tmp_path, [key])[key]
    for entry in calls:
        if isinstance(entry["out"], dict) and "history" in entry["out"]:
            entry["out"] = {"history": [[torch.empty(0)] * 7] * 20, "states": [{}] * 7}
    _forge(tmp_path, CHECK_GD, calls)
    verdict = judged(tmp_path, CHECK_GD)
    assert verdict.judged and not verdict.passed


def test_a_test_cell_sees_what_the_test_cells_above_it_imported(tmp_path):
    """As in the kernel: the capstone's cosine check uses the name its warm-up check imported.
    (Regression: the judge looked the name up elsewhere, found a stale copy of the check, and
    withdrew an honest student's points.)"""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from optimlab.grade.judge import judge_notebook
    from optimlab.learn.exercises import warmup_cosine_answer

    def warmup_cosine(optimizer, warmup_steps, total_steps):
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda t: warmup_cosine_answer(t, warmup_steps, total_steps))

    first = ("from optimlab.learn.schedules import check_warmup_cosine\n"
             'print(check_warmup_cosine(warmup_cosine, part="warmup"))')
    second = 'print(check_warmup_cosine(warmup_cosine, part="cosine"))'
    from optimlab.learn.schedules import check_warmup_cosine

    assert record(tmp_path, first, {"warmup_cosine": warmup_cosine})
    assert record(tmp_path, second, {"warmup_cosine": warmup_cosine,
                                     "check_warmup_cosine": check_warmup_cosine})
    cells = [new_code_cell(src, metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "points": 1, "grade_id": gid,
        "schema_version": 3}}) for gid, src in (("check_warmup", first), ("check_cosine", second))]
    master = tmp_path / "master.ipynb"
    nbformat.write(new_notebook(cells=cells), master)
    verdicts = judge_notebook(master, tmp_path, SEED)
    assert all(v.passed and v.judged for v in verdicts.values()), verdicts


def test_the_judge_shows_nothing_even_inside_ipython(tmp_path, monkeypatch):
    """An instructor may grade from a notebook: the judge's replays draw no report there, and
    its verdict keeps the full text (the first wrong value, the mistake's name)."""
    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", shown.append)
    assert not record(tmp_path, CHECK_GD, {"gd_step": gd_wrong})
    verdict = judged(tmp_path, CHECK_GD)
    assert not verdict.passed and "first wrong" in verdict.message
    assert len(shown) == 1  # the kernel's own run showed its report; the judge's replay did not
