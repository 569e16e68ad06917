"""Claims of notebook 14 (Rprop, ASGD, SparseAdam, L-BFGS), each computed as the notebook
computes it, with torch.optim and the same seeds (the notebook's Rprop runs use the learner's
rprop_step where the checks show it equal to torch's). A claim a test here contradicts is
changed in the notebook.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch

from optimlab.learn import data, problems
from optimlab.optimizers import SPECS
from optimlab.optimizers.lbfgs import lbfgs_step

F64 = torch.float64


# ------------------------------------------------------------------ Rprop: the flip
def rprop_trace(step_fn=None, steps=7):
    """(x after, step size) per step of Rprop, lr=0.3, on ½x² from x = 1."""
    x = torch.tensor([1.0], dtype=F64, requires_grad=True)
    opt = torch.optim.Rprop([x], lr=0.3)
    state: dict = {}
    out = []
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * x**2).sum().backward()
        if step_fn is None:
            opt.step()
            size = opt.state[x]["step_size"].item()
        else:
            with torch.no_grad():
                step_fn(x, x.grad, state, lr=0.3)
            size = state["step_size"].item()
        out.append((round(x.item(), 6), round(size, 6)))
    return out


def test_rprop_flip_no_move_then_factor_one():
    trace = rprop_trace()
    assert [s for _, s in trace[:3]] == [0.3, 0.36, 0.432]  # grows by 1.2 while the sign holds
    assert trace[2][0] == -0.092  # step 3 jumps over 0
    assert trace[3] == (-0.092, 0.216)  # step 4: halved, and x does not move
    assert trace[4] == (0.124, 0.216)  # step 5: factor 1, the step is taken
    assert trace[5] == (0.124, 0.108)  # step 6: a new flip, halved, no move


def test_rprop_without_zeroing_punishes_one_overshoot_twice():
    mistake = next(m for m in SPECS["rprop"].mistakes if m.key == "flip_not_forgotten")
    trace = rprop_trace(mistake.step_fn)
    assert trace[3] == (0.124, 0.216)  # step 4 already steps back with the halved size
    assert trace[4][1] == 0.108  # step 5 sees another "flip" and halves again


# ------------------------------------------------------------------ Rprop on the ravine
def test_rprop_beats_gd_on_the_ravine_by_orders_of_magnitude():
    start, steps = (-4.0, 1.0), 60
    rprop = problems.run_on_surface(problems.ravine, lambda p: torch.optim.Rprop(p, lr=0.05),
                                    start, steps)
    gd = problems.run_on_surface(problems.ravine, lambda p: torch.optim.SGD(p, lr=0.07),
                                 start, steps)
    assert 0.07 < 2 / 25
    assert problems.ravine(rprop[-1]).item() < 1e-10
    assert 1e-3 < problems.ravine(gd[-1]).item() < 2e-3


# ------------------------------------------------------------------ Rprop and minibatches
@functools.cache
def split():
    return data.digits()


@functools.cache
def digits_rprop(batch_size, epochs):
    torch.set_num_threads(1)
    model = data.digits_network(seed=0)
    opt = torch.optim.Rprop(model.parameters())
    history = data.train(model, opt, split(), epochs=epochs, batch_size=batch_size, seed=0)
    sizes = torch.cat([s["step_size"].flatten() for s in opt.state.values()])
    train_loss, _ = data.evaluate(model, split().X_train, split().y_train)
    return sizes, len(history.step_loss), train_loss


def full():
    return digits_rprop(len(split().y_train), 100)


def mini():
    return digits_rprop(64, 5)


def test_minibatch_noise_drives_rprop_step_sizes_to_the_floor():
    (s_full, n_full, loss_full), (s_mini, n_mini, loss_mini) = full(), mini()
    assert (n_full, n_mini) == (100, 110)
    at_floor = [(s <= 1.01e-6).float().mean().item() for s in (s_full, s_mini)]
    assert 0.02 < at_floor[0] < 0.1  # a few percent, full batch
    assert 0.45 < at_floor[1] < 0.65  # about half, batches of 64
    assert (s_mini < 1e-5).float().mean().item() > 0.9  # over 90 % below 1e-5
    assert loss_mini > 0.1  # the whole training set's loss, above 0.1
    assert loss_full < 1e-8  # full batch: about 1e-9


def test_the_bar_at_lr_is_the_weights_of_always_zero_pixels():
    dead = int((split().X_train == 0).all(0).sum())  # pixels 0 in every training image
    for sizes, _, _ in (full(), mini()):
        assert int((sizes == torch.tensor(1e-2)).sum()) == dead * 32  # 32 hidden units


def test_coin_toss_signs_shrink_log_step_by_017_per_step():
    drift = 2 / 3 * 0.5 * (math.log(1.2) + math.log(0.5))
    assert abs(drift + 0.17) < 0.001
    assert 50 < math.log(1e-2 / 1e-6) / -drift < 60  # about 55 steps to the floor
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(20000, dtype=F64, requires_grad=True)
    opt = torch.optim.Rprop([x], lr=1.0, step_sizes=(1e-300, 1e300))
    steps = 400
    for _ in range(steps):
        x.grad = torch.randn(20000, generator=gen, dtype=F64)
        opt.step()
    mean_drift = opt.state[x]["step_size"].log().mean().item() / steps
    assert abs(mean_drift - drift) < 0.005


# ------------------------------------------------------------------ ASGD
def asgd_run(t0, dim=20, steps=2000, seed=1):
    gen = torch.Generator().manual_seed(0)
    h = torch.logspace(-1, 0, dim, dtype=F64)
    theta_star = torch.randn(dim, generator=gen, dtype=F64)
    noise = torch.Generator().manual_seed(seed)
    theta = torch.zeros(dim, dtype=F64, requires_grad=True)
    opt = torch.optim.ASGD([theta], lr=0.1, t0=t0)
    last, average = [], []
    for _ in range(steps):
        theta.grad = h * (theta.detach() - theta_star) + torch.randn(dim, generator=noise,
                                                                      dtype=F64)
        opt.step()
        last.append((theta.detach() - theta_star).norm().item())
        average.append((opt.state[theta]["ax"] - theta_star).norm().item())
    return last, average


def test_asgd_average_beats_the_last_iterate():
    last, average = asgd_run(200)
    assert last[:201] == average[:201]  # one curve up to t0 (and the step after)
    assert average[-1] < last[-1] / 4  # more than four times nearer at t = 2000
    assert all(0.8 < d < 3.2 for d in last[200:])  # the last iterate hovers
    assert average[-1] < average[499] < average[200]


def test_asgd_default_t0_averages_nothing():
    last, average = asgd_run(1e6)
    assert last == average


# ------------------------------------------------------------------ SparseAdam
def two_steps(sparse, make):
    torch.manual_seed(0)
    emb = torch.nn.Embedding(6, 3, sparse=sparse).double()
    opt = make(emb.parameters())
    moved = []
    for rows in ([1, 3], [4]):
        before = emb.weight.detach().clone()
        opt.zero_grad()
        emb(torch.tensor(rows)).sum().backward()
        opt.step()
        moved.append((emb.weight.detach() != before).any(1).nonzero().flatten().tolist())
    return moved


def test_sparse_adam_moves_only_the_batch_rows():
    assert two_steps(True, lambda p: torch.optim.SparseAdam(p, lr=0.1)) == [[1, 3], [4]]
    assert two_steps(False, lambda p: torch.optim.Adam(p, lr=0.1)) == [[1, 3], [1, 3, 4]]


def test_sparse_adam_adds_eps_to_the_uncorrected_root_and_counts_the_optimizers_steps():
    """"ε added to √v before the correction … the bias correction of the optimizer's step count":
    a row seen for the first time at step 3 moves by γ·√(1−β₂³)/(1−β₁³)·m/(√v+ε), where Adam
    would add ε to √v̂."""
    lr, (b1, b2), eps = 0.1, (0.9, 0.999), 1e-6
    theta = torch.zeros(3, 2, dtype=F64, requires_grad=True)
    opt = torch.optim.SparseAdam([theta], lr=lr, betas=(b1, b2), eps=eps)
    g = torch.tensor([1e-5, 1.0], dtype=F64)
    for row in (0, 0, 2):  # row 2 first shows up at step 3
        theta.grad = torch.sparse_coo_tensor([[row, row], [0, 1]], g, (3, 2))
        opt.step()
    m, v = (1 - b1) * g, (1 - b2) * g**2
    sparse = -lr * math.sqrt(1 - b2**3) / (1 - b1**3) * m / (v.sqrt() + eps)
    adam = -lr * (m / (1 - b1**3)) / ((v / (1 - b2**3)).sqrt() + eps)
    torch.testing.assert_close(theta.detach()[2], sparse, rtol=1e-12, atol=0)
    assert abs(float(sparse[0] - adam[0])) > 0.1 * abs(float(adam[0]))  # √v ≈ ε: they differ
    assert float(sparse[1] - adam[1]) == pytest.approx(0, abs=1e-3 * abs(float(adam[1])))


# ------------------------------------------------------------------ L-BFGS
def loss_of(w):
    X, y = split().X_train.double(), split().y_train
    logits = X @ w[:640].view(64, 10) + w[640:]
    return torch.nn.functional.cross_entropy(logits, y) + 1e-3 * (w[:640] ** 2).sum()


@functools.cache
def torch_lbfgs(line_search_fn, budget=100, tolerance_grad=1e-7, tolerance_change=1e-9):
    torch.set_num_threads(1)
    w = torch.zeros(650, dtype=F64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=budget, max_eval=budget,
                            line_search_fn=line_search_fn, tolerance_grad=tolerance_grad,
                            tolerance_change=tolerance_change)
    curve = []

    def closure():
        opt.zero_grad()
        loss = loss_of(w)
        loss.backward()
        curve.append(loss.item())
        return loss

    opt.step(closure)
    return tuple(curve)


def reference_lbfgs(line_search_fn, budget=100):
    x, state, curve = torch.zeros(650, dtype=F64), {}, []

    def evaluate():
        w = x.clone().requires_grad_()
        loss = loss_of(w)
        loss.backward()
        curve.append(loss.item())
        return loss.item(), w.grad

    lbfgs_step(evaluate, x, state, max_iter=budget, max_eval=budget,
               line_search_fn=line_search_fn)
    return tuple(curve)


def first_order(make, budget=100):
    w = torch.zeros(650, dtype=F64, requires_grad=True)
    opt, curve = make([w]), []
    for _ in range(budget):
        opt.zero_grad()
        loss = loss_of(w)
        loss.backward()
        curve.append(loss.item())
        opt.step()
    return curve


def test_reference_lbfgs_gives_torchs_losses():
    for line_search_fn in (None, "strong_wolfe"):
        assert reference_lbfgs(line_search_fn) == torch_lbfgs(line_search_fn)


def test_lbfgs_orders_of_magnitude_nearer_with_fewer_evaluations():
    best = min(torch_lbfgs("strong_wolfe", 200, 1e-12, 1e-15))
    plain, wolfe = torch_lbfgs(None), torch_lbfgs("strong_wolfe")
    adam = first_order(lambda p: torch.optim.Adam(p, lr=0.05))
    gd = first_order(lambda p: torch.optim.SGD(p, lr=0.5))
    assert 50 <= len(plain) <= 60 and 50 <= len(wolfe) <= 60  # they stop on their own
    assert abs(plain[-1] - plain[-2]) < 1e-9 or abs(wolfe[-1] - wolfe[-2]) < 1e-9
    assert plain[-1] - best < 1e-7 and wolfe[-1] - best < 1e-7  # about 1e-8
    assert 1e-3 < adam[-1] - best < 3e-3  # about 1e-3 above it after 100
    assert gd[-1] - best > adam[-1] - best
    # the two L-BFGS runs fall together: within 3x of each other at 10, 20, 30, 40 evaluations
    for n in (10, 20, 30, 40):
        a, b = plain[n - 1] - best, wolfe[n - 1] - best
        assert max(a, b) < 3 * min(a, b)
