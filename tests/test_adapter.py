"""StepFunctionOptimizer: a step function becomes a real torch.optim.Optimizer."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from optimlab import StepFunctionOptimizer, make_optimizer
from optimlab.optimizers.registry import SPECS
from optimlab.reference import adam_step, sgd_step

F64 = torch.float64
NAMES = list(SPECS)


def training_hyper(spec):
    """Every flag the spec's extras set at once (but maximize), at the lr of its schedule case:
    settings that move a 40-step run visibly, read from the registry."""
    flags = dict(next((h for n, h in spec.extras if n == "all flags"), {}))
    flags.pop("maximize", None)
    lr = next(c.hyper["lr"] for c in spec.groups["basic"].cases if c.lr_change)
    return {**flags, "lr": lr}


def data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=gen, dtype=F64)
    w = torch.tensor([[1.5], [-2.0], [0.5]], dtype=F64)
    y = torch.tanh(x @ w) + 0.1 * torch.randn(64, 1, generator=gen, dtype=F64)
    return x, y


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).to(F64)


class Lookup(nn.Module):
    """Each input's first feature, bucketed, picks an embedding row: sparse gradients."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(16, 8, sparse=True).to(F64)
        self.head = nn.Linear(8, 1).to(F64)

    def forward(self, x):
        rows = (x[:, 0] * 4).long().clamp(-8, 7) + 8
        return self.head(torch.tanh(self.emb(rows)))


def trained(spec, net):
    """The parameters the optimizer takes: the matrices for Muon (its docs give the rest to
    AdamW), the embedding for SparseAdam; the others stay fixed."""
    if spec.sparse_grads:
        return [net.emb.weight]
    if all(len(shape) == 2 for shape in spec.shapes):
        return [p for p in net.parameters() if p.ndim == 2]
    return list(net.parameters())


def losses(net, opt, steps=40, closure=False):
    x, y = data()
    out = []
    for _ in range(steps):
        def loss_fn():
            opt.zero_grad()
            loss = nn.functional.mse_loss(net(x), y)
            loss.backward()
            return loss

        if closure:
            out.append(opt.step(loss_fn).item())
        else:
            out.append(loss_fn().item())
            opt.step()
    return out


def twins(name):
    spec = SPECS[name]
    hyper = training_hyper(spec)
    build = Lookup if spec.sparse_grads else model
    a, b = build(), build()
    ours = StepFunctionOptimizer(trained(spec, a), spec.step_fn, **hyper)
    theirs = spec.torch_optimizer(trained(spec, b), **hyper)
    return a, ours, b, theirs


@pytest.mark.parametrize("name", NAMES)
def test_trains_a_network_to_the_same_loss_curve(name):
    a, ours, b, theirs = twins(name)
    mine, torchs = losses(a, ours), losses(b, theirs)
    assert mine == torchs  # float64, same operations: identical to the bit
    assert mine[-1] < 0.9 * mine[0], "the run should actually train"


def save_and_reload(net, opt, make):
    """Round-trip model and optimizer through torch.save; load them into ``make()``."""
    buf = io.BytesIO()
    torch.save({"model": net.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    net2, opt2 = make()
    net2.load_state_dict(saved["model"])
    opt2.load_state_dict(saved["opt"])
    return net2, opt2


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("source", ["torch", "ours"])
def test_state_dict_loads_into_the_twin(name, source):
    """Train 10 steps with one, save, load into the other and train on: the same curve as
    loading it back into the same kind, and (but for NAdam) as never stopping."""
    if name == "gd" and source == "ours":
        pytest.skip("gd's groups hold only lr; torch.optim.SGD needs its full set of keys")
    a, ours, b, theirs = twins(name)
    net, opt = (b, theirs) if source == "torch" else (a, ours)
    losses(net, opt, steps=10)

    def make(kind):
        x, o, y, t = twins(name)
        return (x, o) if kind == "ours" else (y, t)

    other = "ours" if source == "torch" else "torch"
    crossed = losses(*save_and_reload(net, opt, lambda: make(other)), steps=10)
    same = losses(*save_and_reload(net, opt, lambda: make(source)), steps=10)
    uninterrupted = losses(net, opt, steps=10)
    assert crossed == same
    if name != "nadam":
        assert crossed == uninterrupted
    else:
        # torch's load_state_dict casts every state tensor but `step` to the parameter's dtype,
        # so a float32 `mu_product` comes back float64 and the run continues a hair apart.
        assert crossed == pytest.approx(uninterrupted, rel=1e-9)


def test_param_groups_use_their_own_hyperparameters():
    p1 = torch.ones(2, dtype=F64, requires_grad=True)
    p2 = torch.ones(2, dtype=F64, requires_grad=True)
    opt = make_optimizer(sgd_step, [{"params": [p1]}, {"params": [p2], "lr": 0.5}], lr=0.1)
    p1.grad = torch.ones(2, dtype=F64)
    p2.grad = torch.ones(2, dtype=F64)
    opt.step()
    assert torch.equal(p1.detach(), torch.full((2,), 0.9, dtype=F64))
    assert torch.equal(p2.detach(), torch.full((2,), 0.5, dtype=F64))
    assert opt.param_groups[0]["momentum"] == 0.0  # the step function's default


def test_closure_and_zero_grad():
    a, ours, b, theirs = twins("adam")
    assert losses(a, ours, closure=True) == losses(b, theirs, closure=True)
    ours.zero_grad()
    assert all(p.grad is None for p in a.parameters())


def test_skips_parameters_without_gradient():
    p = torch.ones(2, requires_grad=True)
    q = torch.ones(2, requires_grad=True)
    opt = make_optimizer(adam_step, [p, q], lr=0.1)
    p.grad = torch.ones(2)
    opt.step()
    assert torch.equal(q.detach(), torch.ones(2)) and q not in opt.state


def test_lr_scheduler_drives_the_step_function():
    a, ours, b, theirs = twins("sgd")
    sa = torch.optim.lr_scheduler.CosineAnnealingLR(ours, T_max=10)
    sb = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=10)
    curve_a, curve_b = [], []
    for _ in range(10):
        curve_a += losses(a, ours, steps=1)
        curve_b += losses(b, theirs, steps=1)
        sa.step()
        sb.step()
    assert curve_a == curve_b
    assert ours.param_groups[0]["lr"] == theirs.param_groups[0]["lr"]


def test_deepcopy_and_repr():
    opt = make_optimizer(adam_step, [torch.ones(1, requires_grad=True)])
    assert "adam_step" in repr(opt)
    assert copy.deepcopy(opt).step_fn is adam_step


def test_unknown_hyperparameter_is_a_clear_error():
    with pytest.raises(TypeError, match="does not take the hyperparameter"):
        make_optimizer(sgd_step, [torch.ones(1, requires_grad=True)], betas=(0.9, 0.99))


def test_missing_hyperparameter_is_a_clear_error():
    def step(param, grad, state, *, lr):
        param.add_(grad, alpha=-lr)

    with pytest.raises(TypeError, match="needs a value for"):
        make_optimizer(step, [torch.ones(1, requires_grad=True)])
    make_optimizer(step, [torch.ones(1, requires_grad=True)], lr=0.1)


def test_wrong_signature_is_a_clear_error():
    with pytest.raises(TypeError, match=r"must take \(param, grad, state"):
        make_optimizer(lambda param, grad: None, [torch.ones(1, requires_grad=True)])


def test_returning_a_new_tensor_is_a_clear_error():
    def not_in_place(param, grad, state, *, lr=0.1):
        return param - lr * grad

    p = torch.ones(1, requires_grad=True)
    opt = make_optimizer(not_in_place, [p])
    p.grad = torch.ones(1)
    with pytest.raises(TypeError, match="in place"):
        opt.step()


def test_returning_param_itself_is_accepted():
    def returns_param(param, grad, state, *, lr=0.1):
        return param.sub_(lr * grad)

    p = torch.ones(1, requires_grad=True)
    opt = make_optimizer(returns_param, [p])
    p.grad = torch.ones(1)
    opt.step()
    assert p.item() == pytest.approx(0.9)
