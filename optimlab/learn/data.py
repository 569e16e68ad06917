"""Real data, trained the way practitioners train: minibatches, a held-out test set, epochs.

The data set is scikit-learn's handwritten digits (1,797 grey 8×8 images of the digits 0–9,
from the UCI repository), which ships inside scikit-learn: nothing is downloaded. Every
function takes a seed, so a run reproduces: the split, the network's initialization and the
order of the minibatches all come from it.

    split = digits()                                  # 1,348 train, 449 test, standardized
    model = digits_network(seed=0)                    # 64-32-10 tanh MLP
    history = train(model, torch.optim.SGD(model.parameters(), lr=0.1), split, epochs=10)
    history.test_accuracy[-1]                         # about 0.95
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

OptimizerFactory = Callable[[Iterable[Tensor]], torch.optim.Optimizer]


@dataclass(frozen=True)
class Split:
    """A train/test split of a classification data set (float32 features, int64 labels)."""

    X_train: Tensor
    y_train: Tensor
    X_test: Tensor
    y_test: Tensor
    held: str = "test"
    """What the held-out part is: ``"test"``, or ``"validation"`` (:func:`digits_validation`)."""

    @property
    def classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max()) + 1

    def __repr__(self) -> str:
        return (f"Split({len(self.y_train)} train, {len(self.y_test)} {self.held}, "
                f"{self.X_train.shape[1]} features, {self.classes} classes)")


@functools.cache
def _digits_arrays() -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_digits  # imported here: only the notebooks that use it pay

    bunch = load_digits()
    return (torch.tensor(bunch.data, dtype=torch.float32),
            torch.tensor(bunch.target, dtype=torch.int64))


def digits(test_fraction: float = 0.25, seed: int = 0) -> Split:
    """scikit-learn's digits, split at random (``seed``) into train and test.

    Pixels (0–16) are standardized with the training set's mean and standard deviation only:
    the test set stays unseen. ``test_fraction`` 0.25 gives 1,348 train and 449 test images.
    """
    X, y = _digits_arrays()
    test, train = _split_indices(len(y), test_fraction, seed)
    return _standardized(X, y, train, test)


def digits_validation(fraction: float = 0.2, seed: int = 0) -> Split:
    """The training set of :func:`digits` (``seed``), split again into train and *validation*
    (held in the returned split's ``X_test``/``y_test``): choose settings on this one, and report
    on :func:`digits`' test set, which a choice never saw. ``fraction`` 0.2 of its 1,348 images
    gives 1,078 train and 270 validation. Standardized with the smaller training set's
    statistics only."""
    X, y = _digits_arrays()
    _, train = _split_indices(len(y), 0.25, seed)
    held, rest = _split_indices(len(train), fraction, seed + 1)
    return _standardized(X, y, train[rest], train[held], "validation")


def _split_indices(n: int, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """``round(fraction·n)`` indices held out, and the others, in a random order (``seed``)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held = round(fraction * n)
    return order[:held], order[held:]


def _standardized(X: Tensor, y: Tensor, train: Tensor, held: Tensor,
                  name: str = "test") -> Split:
    mean = X[train].mean(0)
    std = X[train].std(0).clamp_min(1.0)  # a few border pixels are always 0: leave them at 0
    X = (X - mean) / std
    return Split(X[train], y[train], X[held], y[held], name)


def digits_network(seed: int = 0, hidden: int = 32) -> nn.Module:
    """A 64-``hidden``-10 tanh network for :func:`digits`, initialized from ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, hidden), nn.Tanh(), nn.Linear(hidden, 10))


def minibatches(X: Tensor, y: Tensor, batch_size: int, generator: torch.Generator
                ) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch: the data shuffled by ``generator``, cut into batches (the last may be short)."""
    order = torch.randperm(len(y), generator=generator)
    for start in range(0, len(y), batch_size):
        idx = order[start:start + batch_size]
        yield X[idx], y[idx]


@dataclass
class History:
    """What one training run measured: per step, and per epoch on the test set."""

    step_loss: list[float] = field(default_factory=list)
    """The minibatch loss of every step (noisy: each batch is a different sample)."""
    train_loss: list[float] = field(default_factory=list)
    """Per epoch: the mean minibatch loss over the epoch."""
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    """The learning rate of every step (the first group's)."""

    @property
    def diverged(self) -> bool:
        return not all(math.isfinite(v) for v in self.step_loss)

    def final(self) -> str:
        return (f"train loss {self.train_loss[-1]:.3f}, test loss {self.test_loss[-1]:.3f}, "
                f"test accuracy {self.test_accuracy[-1]:.3f}")


def evaluate(model: nn.Module, X: Tensor, y: Tensor) -> tuple[float, float]:
    """(cross-entropy loss, accuracy) of a classifier on ``X, y``."""
    with torch.no_grad():
        logits = model(X)
        return (nn.functional.cross_entropy(logits, y).item(),
                (logits.argmax(1) == y).float().mean().item())


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    split: Split,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    seed: int = 0,
    scheduler: Any = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = nn.functional.cross_entropy,
    stop_on_divergence: bool = True,
) -> History:
    """Minibatch training for ``epochs`` epochs; the test set is measured after each epoch.

    ``scheduler`` (a ``torch.optim.lr_scheduler``) steps once per optimizer step. A run whose
    loss turns NaN or inf stops there when ``stop_on_divergence``: its :attr:`History.diverged`
    is True, and its test numbers are NaN and 0.1-ish chance.
    """
    history = History()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        epoch_losses = []
        for xb, yb in minibatches(split.X_train, split.y_train, batch_size, generator):
            history.lr.append(float(optimizer.param_groups[0]["lr"]))
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            epoch_losses.append(loss.item())
            history.step_loss.append(loss.item())
            if stop_on_divergence and not math.isfinite(loss.item()):
                break
        model.eval()
        history.train_loss.append(sum(epoch_losses) / len(epoch_losses))
        test_loss, test_acc = evaluate(model, split.X_test, split.y_test)
        history.test_loss.append(test_loss)
        history.test_accuracy.append(test_acc)
        if stop_on_divergence and history.diverged:
            break
    return history


def train_digits(make: OptimizerFactory, *, epochs: int = 10, batch_size: int = 64,
                 seed: int = 0, hidden: int = 32, split: Split | None = None,
                 schedule: Callable[[torch.optim.Optimizer], Any] | None = None) -> History:
    """A fresh :func:`digits_network` (``seed``) trained on :func:`digits` with ``make``'s
    optimizer; ``schedule(optimizer)`` may build an lr scheduler that steps every step."""
    split = split if split is not None else digits()
    model = digits_network(seed=seed, hidden=hidden)
    optimizer = make(model.parameters())
    scheduler = schedule(optimizer) if schedule is not None else None
    return train(model, optimizer, split, epochs=epochs, batch_size=batch_size, seed=seed,
                 scheduler=scheduler)


def lr_sweep(make: Callable[[Iterable[Tensor], float], torch.optim.Optimizer],
             lrs: Sequence[float], *, epochs: int = 5, seed: int = 0,
             split: Split | None = None, **train_kwargs: Any) -> list[History]:
    """One :func:`train_digits` run per learning rate, from the same initialization and batches."""
    split = split if split is not None else digits()
    return [train_digits(lambda p, lr=lr: make(p, lr), epochs=epochs, seed=seed, split=split,
                         **train_kwargs) for lr in lrs]
