"""Learning-rate schedules and warm-up on real data (the capstone, notebook 15).

Every experiment here is a minibatch run on :func:`optimlab.learn.data.digits` repeated over a
few seeds (the seed sets the network's initialization and the order of the batches), so a
difference between two settings can be read against the spread between seeds. The notebook
runs the learner's own step functions with these settings; ``tests/test_claims_capstone.py``
runs ``torch.optim`` with the same ones, so a sentence in the notebook can't drift from them.

:func:`check_warmup_cosine` grades the capstone's ``warmup_cosine(optimizer, warmup_steps,
total_steps)``, with hints for the usual slips (an off-by-one warm-up, a cosine over the wrong
number of steps, a schedule that ignores a group's own base rate).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.optim import lr_scheduler

from ..check.recording import produce
from . import data
from .exercises import _lr_table, _seed, warmup_cosine_answer
from .orthogonal import Together, split_by_ndim

SEEDS = (0, 1, 2)
KINDS = ("constant", "step decay", "cosine", "warm-up + cosine")

#: The noisy run: SGD with momentum at a high constant lr, small batches, L2 decay (so that no
#: weights fit every example, and the batches' gradients still disagree at the best weights).
NOISY = {"lr": 0.3, "momentum": 0.9, "weight_decay": 3e-3}
NOISY_RUN = {"epochs": 20, "batch_size": 32}

#: The warm-up run: Adam at a high lr on a wider network, with and without one epoch of warm-up.
WARMUP_LR = 0.1
WARMUP_RUN = {"epochs": 10, "batch_size": 64, "hidden": 256}

#: The race: each optimizer at the learning rate :func:`sweep` picked (10 epochs, batches of 64,
#: three seeds), on the validation split, never on the test set the race reports: γ ∈ SWEEP_LRS,
#: the highest mean validation accuracy (:func:`pick`). ``python -m optimlab.learn.schedules``
#: reruns it. Its picks, mean validation accuracy (γ/3 and 3γ beside it):
#: SGD+Nesterov 0.3: 0.980 (0.974, 0.964); Adagrad 0.3: 0.975 (0.975, 0.933);
#: Adadelta 3: 0.974 (0.969; the grid's top); RMSProp 3e-3: 0.974 (0.959, 0.974);
#: Adam 1e-2: 0.974 (0.964, 0.970); AdamW 1e-2: 0.974 (0.964, 0.970);
#: Adamax 3e-2: 0.973 (0.970, 0.973); NAdam 3e-2: 0.975 (0.972, 0.953);
#: RAdam 0.1: 0.977 (0.968, 0.968), higher than Adam's because in 220 steps its rectification
#: r_t averages about 0.2 (notebook 11); Adafactor 0.3, the relative step of notebook 12:
#: 0.981 (0.975, 0.979); Muon 3e-2 for the weight matrices, the biases on AdamW at AdamW's
#: rate (:func:`muon_with_adamw`): 0.988 (0.983, 0.962); Rprop 1e-2, the initial step size:
#: 0.968 (0.956, 0.967). Neighbours one validation image apart are a coin toss: the pick among
#: them is noise, and the race's test accuracies say so.
RACE_LR = {"sgd": 0.3, "adagrad": 0.3, "adadelta": 3.0, "rmsprop": 3e-3, "adam": 1e-2,
           "adamw": 1e-2, "adamax": 3e-2, "nadam": 3e-2, "radam": 0.1, "adafactor": 0.3,
           "muon": 3e-2, "rprop": 1e-2}
RACE_EXTRA: dict[str, dict[str, Any]] = {"sgd": {"momentum": 0.9, "nesterov": True}}
RACE_RUN = {"epochs": 10, "batch_size": 64}


def muon_with_adamw(make_muon: Callable[..., Any], make_adamw: Callable[..., Any]
                    ) -> Callable[..., Together]:
    """``make(params, **kw)``: ``make_muon(matrices, **kw)`` on the 2-D parameters and
    ``make_adamw(rest, lr=RACE_LR["adamw"])`` on the others (the biases), stepped as one, as
    torch's documentation and notebook 13 set Muon up."""
    def make(params: Iterable[Tensor], **kw: Any) -> Together:
        matrices, rest = split_by_ndim(params)
        return Together(make_muon(matrices, **kw), make_adamw(rest, lr=RACE_LR["adamw"]))
    return make


TORCH: dict[str, Callable[..., Any]] = {
    "sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta, "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax,
    "nadam": torch.optim.NAdam, "radam": torch.optim.RAdam,
    "adafactor": torch.optim.Adafactor,
    "muon": muon_with_adamw(torch.optim.Muon, torch.optim.AdamW), "rprop": torch.optim.Rprop}

#: The sweep that picks :data:`RACE_LR`: each rate, three seeds, on the validation split.
SWEEP_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)


def sweep(name: str, lrs: Sequence[float] = SWEEP_LRS, seeds: Sequence[int] = SEEDS,
          split: data.Split | None = None) -> dict[float, float]:
    """Mean held-out accuracy over ``seeds`` of ``torch.optim``'s ``name`` at each rate, with
    the race's settings (:data:`RACE_RUN`, :data:`RACE_EXTRA`), trained and measured on
    :func:`~optimlab.learn.data.digits_validation`: the race's test set plays no part."""
    split = split if split is not None else data.digits_validation()
    extra = RACE_EXTRA.get(name, {})
    return {lr: sum(r.test_accuracy for r in over_seeds(
                lambda p, lr=lr: TORCH[name](p, lr=lr, **extra), seeds, split=split,
                **RACE_RUN)) / len(seeds)
            for lr in lrs}


def pick(scores: dict[float, float]) -> float:
    """The sweep's choice: the highest mean accuracy; the smaller rate on a tie."""
    best = max(scores.values())
    return min(lr for lr, acc in scores.items() if acc == best)


def steps_per_epoch(batch_size: int, split: data.Split | None = None) -> int:
    n = len((split or data.digits()).y_train)
    return math.ceil(n / batch_size)


def schedule(kind: str, optimizer: torch.optim.Optimizer, total: int,
             warmup: int = 0) -> Any:
    """A torch scheduler of shape ``kind`` (one of :data:`KINDS`) over ``total`` steps.

    step decay: ×0.1 at half and at three quarters of the run; cosine: from the base rate to 0;
    warm-up + cosine: ``warmup`` steps rising linearly to the base rate, then the cosine (the
    capstone exercise's schedule); warm-up: the same rise, then the constant base rate.
    """
    if kind == "constant":
        return None
    if kind == "step decay":
        return lr_scheduler.MultiStepLR(optimizer, [total // 2, 3 * total // 4], gamma=0.1)
    if kind == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if kind == "warm-up + cosine":
        return lr_scheduler.LambdaLR(
            optimizer, lambda t: warmup_cosine_answer(min(t, total - 1), warmup, total))
    if kind == "warm-up":
        return lr_scheduler.LambdaLR(optimizer, lambda t: min(1.0, (t + 1) / warmup))
    raise ValueError(f"unknown schedule {kind!r}; one of {(*KINDS, 'warm-up')}")


@dataclass
class Run:
    """One training run: its history and where it ended on the whole training set."""

    history: data.History
    train_loss: float
    """Cross-entropy on the whole training set at the end."""
    objective: float
    """What the optimizer minimizes: ``train_loss + λ/2·‖θ‖²`` (λ the L2 weight decay)."""
    optimizer: Any = field(default=None, repr=False)
    """The optimizer at the end of the run (its state: Rprop's step sizes)."""

    @property
    def test_accuracy(self) -> float:
        return self.history.test_accuracy[-1]


def run(make: Callable[[Iterable[Tensor]], torch.optim.Optimizer], *, seed: int = 0,
        epochs: int = 10, batch_size: int = 64, hidden: int = 32, kind: str = "constant",
        warmup: int = 0, weight_decay: float = 0.0, split: data.Split | None = None,
        scheduler: Callable[[torch.optim.Optimizer, int], Any] | None = None) -> Run:
    """A fresh digits network (``seed``) trained by ``make``'s optimizer with schedule
    ``kind`` (or ``scheduler(optimizer, total_steps)``, which builds one)."""
    split = split if split is not None else data.digits()
    model = data.digits_network(seed=seed, hidden=hidden)
    optimizer = make(model.parameters())
    total = epochs * steps_per_epoch(batch_size, split)
    sched = (scheduler(optimizer, total) if scheduler is not None
             else schedule(kind, optimizer, total, warmup))
    history = data.train(model, optimizer, split, epochs=epochs, batch_size=batch_size,
                         seed=seed, scheduler=sched)
    loss, _ = data.evaluate(model, split.X_train, split.y_train)
    with torch.no_grad():
        norm2 = sum(float((p.double() ** 2).sum()) for p in model.parameters())
    return Run(history, loss, loss + weight_decay / 2 * norm2, optimizer)


def over_seeds(make: Callable[[Iterable[Tensor]], torch.optim.Optimizer],
               seeds: Sequence[int] = SEEDS, **kwargs: Any) -> list[Run]:
    """:func:`run` once per seed, with the same settings."""
    return [run(make, seed=s, **kwargs) for s in seeds]


def noisy(make_sgd: Callable[..., torch.optim.Optimizer], kind: str, *, full_batch: bool = False,
          seeds: Sequence[int] = SEEDS, split: data.Split | None = None) -> list[Run]:
    """The schedule experiment: ``make_sgd(params, **NOISY)`` with schedule ``kind``, over
    ``seeds``; ``full_batch`` takes the same number of steps with exact gradients."""
    split = split if split is not None else data.digits()
    epochs, batch = NOISY_RUN["epochs"], NOISY_RUN["batch_size"]
    warmup = steps_per_epoch(batch, split)
    if full_batch:
        epochs, batch = epochs * steps_per_epoch(batch, split), len(split.y_train)
    return over_seeds(lambda p: make_sgd(p, **NOISY), seeds, epochs=epochs, batch_size=batch,
                      kind=kind, warmup=warmup, weight_decay=NOISY["weight_decay"], split=split)


def warmup_runs(make_adam: Callable[..., torch.optim.Optimizer], warm: bool, *,
                seeds: Sequence[int] = SEEDS, split: data.Split | None = None) -> list[Run]:
    """The warm-up experiment: ``make_adam(params, lr=WARMUP_LR)`` with (``warm``) or without
    a linear warm-up over the first epoch, then the constant rate."""
    split = split if split is not None else data.digits()
    w = steps_per_epoch(WARMUP_RUN["batch_size"], split)
    return over_seeds(lambda p: make_adam(p, lr=WARMUP_LR), seeds,
                      kind="warm-up" if warm else "constant", warmup=w, split=split,
                      **WARMUP_RUN)


def first_epoch_peak(r: Run) -> float:
    """The highest minibatch loss of the first epoch (the start is ln 10 ≈ 2.30)."""
    return max(r.history.step_loss[:steps_per_epoch(WARMUP_RUN["batch_size"])])


@dataclass(frozen=True)
class Spread:
    """A mean over seeds and the lowest and highest seed."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:.3f} (seeds {self.low:.3f} to {self.high:.3f})"


def spread(values: Iterable[float]) -> Spread:
    v = list(values)
    return Spread(sum(v) / len(v), min(v), max(v))


def band(ax: Any, curves: Sequence[Sequence[float]], *, label: str, style: str = "-",
         marker: str | None = None, first: int = 1, color: str | None = None,
         markevery: Any = None) -> None:
    """The mean of ``curves`` (one per seed) as a line, the lowest–highest seed as a band."""
    t = torch.tensor([list(c) for c in curves], dtype=torch.float64)
    x = list(range(first, first + t.shape[1]))
    (line,) = ax.plot(x, t.mean(0).tolist(), style, marker=marker, label=label, color=color,
                      markevery=markevery, markersize=5)
    ax.fill_between(x, t.min(0).values.tolist(), t.max(0).values.tolist(),
                    color=line.get_color(), alpha=0.15, linewidth=0)


def race_figure(race: dict[str, Sequence[Run]], newer: Sequence[str] = (),
                titles: tuple[str, str] = ("notebooks 02–10", "notebooks 11–14")) -> Any:
    """The race: each optimizer's training loss per epoch (mean over seeds, band = lowest to
    highest seed), the optimizers in ``newer`` in a panel of their own beside the others (with
    Adam's curve repeated in grey for scale; ``titles`` name the two panels), and each one's
    test accuracy as a mean with error bars."""
    from . import plots

    plots.use_style()
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(15, 5))
    older_ax = fig.add_subplot(1, 3, 1)
    newer_ax = fig.add_subplot(1, 3, 2, sharey=older_ax)
    acc_ax = fig.add_subplot(1, 3, 3)
    markers = "osv^DPX*h<>d"
    colors = [f"C{i}" for i in range(10)] + ["black", "saddlebrown"]
    styles = ("-", "--", "-.", ":")
    for i, (name, runs) in enumerate(race.items()):
        band(newer_ax if name in newer else older_ax, [r.history.train_loss for r in runs],
             label=name, style=styles[i % 4], marker=markers[i % 12],
             markevery=(i % 3, 3), color=colors[i % 12])
    if "adam" in race:
        band(newer_ax, [r.history.train_loss for r in race["adam"]], color="lightgrey",
             label="adam (as on the left)")
    older = [n for n in race if n not in newer]
    for ax, title in zip((older_ax, newer_ax), titles, strict=True):
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(f"Training loss, {title}")
        ax.legend(ncol=2, fontsize=9)
    older_ax.set_ylabel("training loss (mean over the epoch's batches)")
    for i, runs in enumerate(race.values()):
        acc = spread(r.test_accuracy for r in runs)
        acc_ax.errorbar(acc.mean, i, xerr=[[acc.mean - acc.low], [acc.high - acc.mean]],
                        fmt=markers[i % 12], capsize=4, markersize=8, color=colors[i % 12])
    acc_ax.set_yticks(range(len(race)), list(race))
    if newer:
        acc_ax.axhline(len(older) - 0.5, color="grey", linewidth=0.8, linestyle=":")
    acc_ax.invert_yaxis()
    acc_ax.set_xlabel("test accuracy after the last epoch")
    acc_ax.set_title("Test accuracy: mean over the seeds;\nbars: lowest to highest seed")
    fig.suptitle(f"The race: mean over {len(next(iter(race.values())))} seeds, "
                 "band = lowest to highest seed")
    fig.tight_layout()
    return fig


def target_figure(warmup: int = 5, total: int = 20, base: float = 0.1) -> Any:
    """The schedule the exercise asks for, drawn step by step (no formula printed)."""
    from . import plots

    plots.use_style()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.5, 3.8))
    lrs = [base * warmup_cosine_answer(t, warmup, total) for t in range(total)]
    ax.plot(range(warmup), lrs[:warmup], "o-", label=f"warm-up: steps 0 to {warmup - 1}")
    ax.plot(range(warmup, total), lrs[warmup:], "s--",
            label=f"decay: steps {warmup} to {total - 1}")
    ax.axhline(base, color="grey", linewidth=0.8, linestyle=":", label="base lr")
    ax.axvline(total, color="grey", linewidth=0.8, linestyle="-.",
               label=f"total_steps = {total}")
    ax.set_xlabel("step t (the lr is read before the step)")
    ax.set_ylabel("learning rate")
    ax.set_title(f"The schedule to build: base lr {base}, warmup_steps={warmup}, "
                 f"total_steps={total}")
    ax.set_xticks(range(0, total + 1, 2))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # off the curve: t = 0 shows
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- the graded exercise
def _hint(got: list[float], base: float, warmup: int, total: int, t: int) -> str:
    """Why a schedule parts from the answer at step ``t``, from its shape."""
    def f(s: int) -> float:
        return got[s] / base

    if t == 0 and abs(f(0)) < 1e-12:
        return (" The first step runs at lr 0, so it does not move: the warm-up's first rate "
                "is already one w-th of the base rate, and it reaches the base rate at step "
                "w − 1.")
    if t < warmup:
        if warmup > 1 and abs(f(warmup - 1) - (warmup - 1) / warmup) < 1e-9:
            return " The warm-up is one step behind: step w − 1 should run at the full rate."
        return " The warm-up should rise in equal steps, from base/w at step 0 to base at w − 1."
    if abs(f(warmup) - 1.0) > 1e-9:
        return (" The decay should start at the full base rate at step w (the top of the "
                "cosine), then fall.")
    if total - warmup > 1 and abs(f(total - 1)) < 1e-12:
        return (" Your decay reaches 0 at the last step, T − 1; it should reach 0 at step T, "
                "one step after the run ends (spread the half cosine over T − w steps).")
    return (" The decay should follow half a cosine wave from the base rate at step w down to "
            "0 at step T: flat at the start, steepest in the middle.")


def check_warmup_cosine(fn: Callable[..., Any], hidden: bool = False,
                        part: str | None = None) -> str:
    """The learner's ``warmup_cosine(optimizer, warmup_steps, total_steps)`` scheduler.

    Its learning rates, read before each of ``total_steps`` steps and for each of two param
    groups (base rates ``b`` and ``2b``), must be the base rate times
    :func:`optimlab.learn.exercises.warmup_cosine_answer`. ``part`` ("warmup" or "cosine")
    grades one phase.
    """
    cases = [(0.1, 5, 20), (1e-3, 10, 100), (0.5, 1, 8)]
    if hidden:
        gen = torch.Generator().manual_seed(_seed(True, "warmup_cosine"))
        for _ in range(3):
            base = float(torch.rand((), generator=gen)) + 0.01
            w = int(torch.randint(1, 30, (), generator=gen))
            cases.append((base, w, w + int(torch.randint(5, 80, (), generator=gen))))
    for base, warmup, total in cases:
        where = f"base lr {base:g}, warmup_steps={warmup}, total_steps={total}"
        table = produce(f"warmup_cosine {where}", lambda b=base, w=warmup, n=total, at=where:
                        _lr_table(fn, b, w, n, at), errors=(AssertionError,))
        if len(table) != total or any(len(row) != 2 for row in table):
            raise AssertionError(f"{where}: expected {total} steps of 2 param groups")
        for t in range(total):
            phase = "warmup" if t < warmup else "cosine"
            if part not in (None, phase):
                continue
            for k, b in enumerate((base, 2 * base)):
                want = b * warmup_cosine_answer(t, warmup, total)
                got = float(table[t][k])
                if abs(got - want) <= 1e-9 * max(1.0, want):
                    continue
                if k == 1 and abs(float(table[t][0]) - base * warmup_cosine_answer(
                        t, warmup, total)) <= 1e-9 * max(1.0, want):
                    hint = (" Group 0 is right but group 1 is not: scale each group's own base "
                            "rate (its initial lr), not one number for all groups.")
                else:
                    hint = _hint([float(row[k]) for row in table], b, warmup, total, t)
                raise AssertionError(
                    f"{where}: at step {t} ({phase}) param group {k} has lr {got:.6g}, "
                    f"expected {want:.6g}.{hint}")
    return f"warmup_cosine: the {part or 'whole'} schedule matches"


if __name__ == "__main__":  # the sweep behind RACE_LR: python -m optimlab.learn.schedules [names]
    import sys

    for optimizer in sys.argv[1:] or list(TORCH):
        scores = sweep(optimizer)
        row = "  ".join(f"{lr:g}: {acc:.3f}" for lr, acc in scores.items())
        print(f"{optimizer:9} picks {pick(scores):g} (race {RACE_LR[optimizer]:g})   {row}",
              flush=True)
