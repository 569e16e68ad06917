"""The real data set and the minibatch training loop the notebooks use."""

from __future__ import annotations

import math

import torch

from optimlab.learn import data


def test_digits_split_is_disjoint_reproducible_and_standardized_on_train_only():
    split = data.digits()
    assert (len(split.y_train), len(split.y_test)) == (1348, 449)
    assert split.classes == 10 and split.X_train.shape[1] == 64
    torch.testing.assert_close(data.digits().X_test, split.X_test, rtol=0, atol=0)
    assert not torch.equal(data.digits(seed=1).y_test, split.y_test)
    train_rows = {tuple(r.tolist()) for r in split.X_train}
    overlap = sum(tuple(r.tolist()) in train_rows for r in split.X_test)
    assert overlap < 5  # the few digits that happen to be pixel-identical images
    assert split.X_train.mean(0).abs().max() < 1e-5  # standardized with train's statistics
    assert split.X_test.mean(0).abs().max() > 1e-3  # ...and not with the test set's


def test_validation_split_is_carved_from_the_training_set_and_never_sees_the_test_set():
    val = data.digits_validation()
    assert (len(val.y_train), len(val.y_test), val.held) == (1078, 270, "validation")
    assert "270 validation" in repr(val) and "449 test" in repr(data.digits())
    X, y = data._digits_arrays()
    test, train = data._split_indices(len(X), 0.25, 0)
    held, rest = data._split_indices(len(train), 0.2, 1)
    assert torch.equal(val.y_test, y[train[held]]) and torch.equal(val.y_train, y[train[rest]])
    assert torch.equal(data.digits().y_test, y[test])
    assert sorted([*train[held].tolist(), *train[rest].tolist()]) == sorted(train.tolist())
    assert not set(train.tolist()) & set(test.tolist())
    assert val.X_train.mean(0).abs().max() < 1e-5  # its own, smaller training set's statistics
    assert val.X_test.mean(0).abs().max() > 1e-3
    torch.testing.assert_close(data.digits_validation().X_test, val.X_test, rtol=0, atol=0)


def test_minibatches_cover_every_example_once_per_epoch():
    split = data.digits()
    batches = list(data.minibatches(split.X_train, split.y_train, 64, torch.Generator()))
    assert [len(y) for _, y in batches] == [64] * 21 + [4]
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == sorted(split.y_train.tolist())


def test_training_learns_and_is_reproducible():
    def run():
        return data.train_digits(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), epochs=3)

    first, second = run(), run()
    assert first.step_loss == second.step_loss
    assert len(first.test_accuracy) == 3 and len(first.step_loss) == 3 * 22
    assert first.test_accuracy[-1] > 0.9
    assert first.train_loss[-1] < first.train_loss[0]


def test_divergence_stops_the_run_and_is_reported():
    # tanh saturates, so a large lr alone keeps the loss finite: only an overflow is divergence
    history = data.train_digits(lambda p: torch.optim.SGD(p, lr=1e38), epochs=5)
    assert history.diverged
    assert len(history.train_loss) == 1
    assert not math.isfinite(history.step_loss[-1])


def test_lr_sweep_gives_one_run_per_lr_with_the_lr_recorded():
    runs = data.lr_sweep(lambda p, lr: torch.optim.SGD(p, lr=lr), [0.01, 0.1], epochs=1)
    assert [r.lr[0] for r in runs] == [0.01, 0.1]
    assert runs[1].train_loss[-1] < runs[0].train_loss[-1]
