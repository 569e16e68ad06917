"""optimlab.learn.schedules: the capstone's schedules, runs and the warmup_cosine check."""

from __future__ import annotations

import math

import nbformat
import pytest
import torch
from torch.optim import lr_scheduler

from optimlab.grade import course
from optimlab.learn import data, schedules
from optimlab.learn.exercises import warmup_cosine_answer
from optimlab.learn.schedules import check_warmup_cosine
from optimlab.optimizers import SPECS


# ------------------------------------------------------------------ answers, right and wrong
def lambda_answer(optimizer, warmup_steps, total_steps):
    def factor(t):
        if t < warmup_steps:
            return (t + 1) / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (t - warmup_steps) / (total_steps - warmup_steps)))
    return lr_scheduler.LambdaLR(optimizer, factor)


def progress_answer(optimizer, warmup_steps, total_steps):
    """Written differently: a fraction of the decay done, and cos² of half the angle."""
    def factor(t):
        if t + 1 <= warmup_steps:
            return min(1.0, (t + 1) / warmup_steps)
        done = (t - warmup_steps) / (total_steps - warmup_steps)
        return math.cos(math.pi * done / 2) ** 2
    return lr_scheduler.LambdaLR(optimizer, [factor] * len(optimizer.param_groups))


class ByHand:
    """A scheduler of one's own: it writes each group's lr from the group's initial rate."""

    def __init__(self, optimizer, warmup_steps, total_steps, shared=False):
        self.opt, self.w, self.n, self.t = optimizer, warmup_steps, total_steps, 0
        self.base = [g["lr"] for g in optimizer.param_groups]
        if shared:
            self.base = [self.base[0]] * len(self.base)
        self._write()

    def _write(self):
        for group, base in zip(self.opt.param_groups, self.base, strict=True):
            group["lr"] = base * warmup_cosine_answer(self.t, self.w, self.n)

    def step(self):
        self.t += 1
        self._write()


def by_hand(optimizer, warmup_steps, total_steps):
    return ByHand(optimizer, warmup_steps, total_steps)


def one_rate_for_all(optimizer, warmup_steps, total_steps):
    return ByHand(optimizer, warmup_steps, total_steps, shared=True)


def starts_at_zero(optimizer, warmup_steps, total_steps):
    def factor(t):
        if t < warmup_steps:
            return t / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (t - warmup_steps) / (total_steps - warmup_steps)))
    return lr_scheduler.LambdaLR(optimizer, factor)


def zero_at_last_step(optimizer, warmup_steps, total_steps):
    def factor(t):
        if t < warmup_steps:
            return (t + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps - 1)
        return 0.5 * (1 + math.cos(math.pi * (t - warmup_steps) / span))
    return lr_scheduler.LambdaLR(optimizer, factor)


def cosine_from_step_zero(optimizer, warmup_steps, total_steps):
    def factor(t):
        if t < warmup_steps:
            return (t + 1) / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * t / total_steps))
    return lr_scheduler.LambdaLR(optimizer, factor)


def linear_decay(optimizer, warmup_steps, total_steps):
    def factor(t):
        if t < warmup_steps:
            return (t + 1) / warmup_steps
        return 1 - (t - warmup_steps) / (total_steps - warmup_steps)
    return lr_scheduler.LambdaLR(optimizer, factor)


def no_scheduler(optimizer, warmup_steps, total_steps):
    return [warmup_cosine_answer(t, warmup_steps, total_steps) for t in range(total_steps)]


@pytest.mark.parametrize("fn", [lambda_answer, progress_answer, by_hand])
@pytest.mark.parametrize("hidden", [False, True])
def test_right_answers_written_differently_pass(fn, hidden):
    assert check_warmup_cosine(fn, hidden=hidden) == "warmup_cosine: the whole schedule matches"
    for part in ("warmup", "cosine"):
        assert part in check_warmup_cosine(fn, hidden=hidden, part=part)


@pytest.mark.parametrize(("fn", "part", "says"), [
    (starts_at_zero, "warmup", r"at step 0 \(warmup\) param group 0 has lr 0, expected 0\.02\. "
                               r"The first step runs at lr 0"),
    (zero_at_last_step, "cosine", r"at step 6 \(cosine\).*reaches 0 at the last step, T − 1"),
    (cosine_from_step_zero, "cosine", r"at step 5 \(cosine\).*start at the full base rate at "
                                      r"step w"),
    (linear_decay, "cosine", r"at step 6 \(cosine\).*half a cosine wave"),
    (one_rate_for_all, "warmup", r"param group 1 .*Group 0 is right but group 1 is not"),
    (no_scheduler, "warmup", r"return a scheduler \(an object with \.step\(\)\), got list"),
])
def test_wrong_answers_fail_with_a_hint(fn, part, says):
    with pytest.raises(AssertionError, match=says):
        check_warmup_cosine(fn)
    with pytest.raises(AssertionError, match=says.split(r"\.")[0] if fn is no_scheduler
                       else r"\(" + part):
        check_warmup_cosine(fn, part=part)


def test_a_wrong_phase_does_not_cost_the_other_phase():
    assert "cosine" in check_warmup_cosine(starts_at_zero, part="cosine")
    assert "warmup" in check_warmup_cosine(zero_at_last_step, part="warmup")


# ------------------------------------------------------------------ schedules and runs
@pytest.mark.parametrize("kind", (*schedules.KINDS, "warm-up"))
def test_schedule_shapes(kind):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0)
    sched = schedules.schedule(kind, opt, 40, warmup=4)
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched is not None:
            sched.step()
    if kind == "constant":
        assert lrs == [1.0] * 40
    elif kind == "step decay":
        assert lrs[19] == 1.0 and lrs[20] == pytest.approx(0.1) and lrs[30] == pytest.approx(0.01)
    elif kind == "cosine":
        assert lrs[0] == 1.0 and lrs[20] == pytest.approx(0.5) and 0 < lrs[-1] < 0.01
    elif kind == "warm-up":
        assert lrs[:5] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0]) and lrs[-1] == 1.0
    else:
        assert lrs == pytest.approx([warmup_cosine_answer(t, 4, 40) for t in range(40)])


def test_unknown_schedule_is_refused():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(ValueError, match="unknown schedule"):
        schedules.schedule("linear", opt, 10)


def test_run_reports_the_objective_with_the_decay_term():
    split = data.digits()
    r = schedules.run(lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=1e-2), epochs=1,
                      split=split, weight_decay=1e-2)
    model = data.digits_network(0)
    assert r.objective > r.train_loss > 0
    assert len(r.history.test_accuracy) == 1 and r.test_accuracy == r.history.test_accuracy[-1]
    assert sum(p.numel() for p in model.parameters()) == 64 * 32 + 32 + 32 * 10 + 10


def test_spread_and_its_text():
    s = schedules.spread([0.2, 0.4, 0.3])
    assert (s.mean, s.low, s.high) == (pytest.approx(0.3), 0.2, 0.4)
    assert str(s) == "0.300 (seeds 0.200 to 0.400)"


# ------------------------------------------------------------------ the race's entrants
def test_the_race_loads_every_step_function_from_the_solutions_and_none_from_blanks():
    from optimlab.learn.capstone import EXERCISES, load_step_functions

    solved = load_step_functions(course.ROOT / "solutions")
    assert list(solved) == list(EXERCISES) == list(schedules.RACE_LR)
    assert {"radam", "adafactor", "muon", "rprop"} <= set(solved)
    assert all(loaded.yours for loaded in solved.values()), [str(v) for v in solved.values()]
    blank = load_step_functions(course.ROOT / "notebooks")
    assert {loaded.why for loaded in blank.values()} == {"not written yet"}
    assert all(loaded.step_fn is SPECS[name].step_fn for name, loaded in blank.items())


def test_muon_is_loaded_with_the_learners_newton_schulz(tmp_path):
    from optimlab.learn.capstone import load_one

    src = course.ROOT / "solutions" / "13_muon" / "13_muon.ipynb"
    nb = nbformat.read(src, as_version=4)
    (tmp_path / "13_muon").mkdir()
    assert load_one("muon", course.ROOT / "solutions").yours
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "newton_schulz":
            cell.source = cell.source.replace("def newton_schulz", "def ns_renamed")
    nbformat.write(nb, tmp_path / "13_muon" / "13_muon.ipynb")
    loaded = load_one("muon", tmp_path)
    assert not loaded.yours and "basic check" in loaded.why
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "newton_schulz":
            cell.metadata["nbgrader"]["grade_id"] = "elsewhere"
    nbformat.write(nb, tmp_path / "13_muon" / "13_muon.ipynb")
    assert load_one("muon", tmp_path).why == "no `newton_schulz` cell in 13_muon.ipynb"


def test_muon_with_adamw_splits_matrices_from_biases():
    made = {}

    def record(kind):
        def make(params, **kw):
            made[kind] = ([tuple(p.shape) for p in params], kw)
            return torch.optim.SGD(params, lr=kw.get("lr", 0.1))
        return make

    opt = schedules.muon_with_adamw(record("muon"), record("adamw"))(
        data.digits_network(seed=0).parameters(), lr=0.5)
    assert made["muon"] == ([(32, 64), (10, 32)], {"lr": 0.5})
    assert made["adamw"] == ([(32,), (10,)], {"lr": schedules.RACE_LR["adamw"]})
    assert len(opt.param_groups) == 2
