"""The math facts the course teaches (shared/README §2), each checked against torch.optim itself.

The bitwise matrix shows the references equal torch; these tests pin down *why*, one fact at a
time, in the form a notebook states it.
"""

from __future__ import annotations

import math

import pytest
import torch

from optimlab import reference as ref
from optimlab.optimizers.registry import SPECS

F64 = torch.float64


def first_step(cls, g, p0=None, **kw):
    """Parameter after one torch step from ``p0`` (zeros) with gradient ``g``."""
    p = (torch.zeros_like(g) if p0 is None else p0.clone()).requires_grad_()
    opt = cls([p], foreach=False, **kw)
    p.grad = g.clone()
    opt.step()
    return p.detach(), opt.state[p]


G = torch.tensor([0.3, -2.0, 1e-3, 5.0], dtype=F64)


def test_adam_is_momentum_plus_rmsprop_plus_bias_correction():
    """Step 1: m̂ = g and v̂ = g², so Adam moves every coordinate by lr·g/(|g| + eps)."""
    p, state = first_step(torch.optim.Adam, G, lr=0.1)
    torch.testing.assert_close(p, -0.1 * G / (G.abs() + 1e-8), rtol=1e-14, atol=0)
    assert set(state) == {"step", "exp_avg", "exp_avg_sq"}  # no Adadelta accumulator anywhere


def test_adam_second_moment_correction_uses_beta2():
    """With β1 in v's correction the first step would be about √(0.1/0.001)·... = 10× too large."""
    lr, b1, b2 = 0.1, 0.9, 0.999
    p, _ = first_step(torch.optim.Adam, G, lr=lr)
    m_hat = (1 - b1) * G / (1 - b1)
    v_wrong = (1 - b2) * G**2 / (1 - b1)
    wrong = -lr * m_hat / (v_wrong.sqrt() + 1e-8)
    ratio = (wrong / p)[G.abs() > 1e-2]
    torch.testing.assert_close(ratio, torch.full_like(ratio, 10.0), rtol=1e-6, atol=0)


def test_adam_eps_is_added_after_bias_correction():
    g = torch.tensor([1e-7, -3e-8], dtype=F64)
    p, _ = first_step(torch.optim.Adam, g, lr=1.0)
    torch.testing.assert_close(p, -g / (g.abs() + 1e-8), rtol=1e-13, atol=0)
    bc2 = 1 - 0.999
    eps_before = -g / (bc2**-0.5 * (bc2 * g**2).sqrt() + 1e-8 / bc2**0.5)
    assert not torch.allclose(p, eps_before, rtol=1e-3)


def test_amsgrad_keeps_the_max_of_uncorrected_v():
    p = torch.zeros(3, dtype=F64, requires_grad=True)
    opt = torch.optim.Adam([p], amsgrad=True, foreach=False)
    running_max = torch.zeros(3, dtype=F64)
    for g in ([3.0, 0.1, 1.0], [0.0, 0.2, 5.0], [0.1, 0.1, 0.0]):
        p.grad = torch.tensor(g, dtype=F64)
        opt.step()
        running_max = torch.maximum(running_max, opt.state[p]["exp_avg_sq"])
        assert torch.equal(opt.state[p]["max_exp_avg_sq"], running_max)


def test_rmsprop_has_no_bias_correction():
    """Defaults lr=1e-2, alpha=0.99: v = 0.01·g², so step 1 is lr·g/(0.1·|g|+eps) ≈ 10·lr."""
    p, _ = first_step(torch.optim.RMSprop, G)
    torch.testing.assert_close(p, -1e-2 * G / ((0.01 * G**2).sqrt() + 1e-8), rtol=1e-13, atol=0)
    assert torch.optim.RMSprop([torch.zeros(1, requires_grad=True)]).defaults["alpha"] == 0.99


def test_rmsprop_centered_subtracts_the_squared_mean_gradient():
    p, _ = first_step(torch.optim.RMSprop, G, centered=True, alpha=0.9)
    v, gbar = 0.1 * G**2, 0.1 * G
    torch.testing.assert_close(p, -1e-2 * G / ((v - gbar**2).sqrt() + 1e-8), rtol=1e-12, atol=0)


def test_adamax_eps_sits_inside_the_max():
    """u = max(β2·u, |g| + eps): a coordinate that never had a gradient stays finite."""
    g = torch.tensor([0.0, 2.0], dtype=F64)
    p = torch.zeros(2, dtype=F64, requires_grad=True)
    opt = torch.optim.Adamax([p], foreach=False)
    for _ in range(3):
        p.grad = g.clone()
        opt.step()
    assert torch.isfinite(p).all() and p[0] == 0
    assert opt.state[p]["exp_inf"][0].item() > 0
    u_textbook = torch.zeros(2, dtype=F64)
    for _ in range(3):
        u_textbook = torch.maximum(0.999 * u_textbook, g.abs())  # the usual form, without eps
    m = opt.state[p]["exp_avg"]
    assert torch.isnan(m[0] / u_textbook[0])  # 0/0


def test_adamax_step_is_lr_over_bias_correction_times_m_over_u():
    p, _ = first_step(torch.optim.Adamax, G)
    torch.testing.assert_close(p, -2e-3 / 0.1 * (0.1 * G) / (G.abs() + 1e-8), rtol=1e-13, atol=0)


def sutskever_nag(w, grad_fn, lrs, mu):
    """Sutskever et al. (2013): v ← μ·v + lr·∇f(w − μ·v); w ← w − v. Returns look-ahead points."""
    v = torch.zeros_like(w)
    look = []
    for lr in lrs:
        v = mu * v + lr * grad_fn(w - mu * v)
        w = w - v
        look.append(w - mu * v)
    return look


def torch_nesterov(theta, grad_fn, lrs, mu):
    p = theta.clone().requires_grad_()
    opt = torch.optim.SGD([p], lr=lrs[0], momentum=mu, nesterov=True, foreach=False)
    out = []
    for lr in lrs:
        opt.param_groups[0]["lr"] = lr
        p.grad = grad_fn(p.detach())
        opt.step()
        out.append(p.detach().clone())
    return out


A = torch.tensor([[10.0, 2.0], [2.0, 1.0]], dtype=F64)


def quad_grad(x):
    return A @ x


def test_torch_nesterov_is_sutskever_nag_at_the_look_ahead_point():
    """torch's θ is Sutskever's look-ahead point u = w − μ·v, with v = lr·b (constant lr)."""
    w0 = torch.tensor([1.0, -2.0], dtype=F64)
    lrs = [0.05] * 40
    for a, b in zip(torch_nesterov(w0, quad_grad, lrs, 0.9),
                    sutskever_nag(w0, quad_grad, lrs, 0.9), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_the_two_nesterov_forms_differ_when_lr_changes():
    w0 = torch.tensor([1.0, -2.0], dtype=F64)
    lrs = [0.05] * 10 + [0.01] * 10
    a = torch_nesterov(w0, quad_grad, lrs, 0.9)[-1]
    b = sutskever_nag(w0, quad_grad, lrs, 0.9)[-1]
    assert (a - b).abs().max() > 1e-6


def test_nadam_uses_torchs_momentum_schedule():
    b1, b2, lr, psi, eps = 0.9, 0.999, 2e-3, 4e-3, 1e-8
    p, _ = first_step(torch.optim.NAdam, G)
    mu1 = b1 * (1 - 0.5 * 0.96 ** (1 * psi))
    mu2 = b1 * (1 - 0.5 * 0.96 ** (2 * psi))
    assert ref.nadam_momentum(1, b1, psi) == mu1
    m = (1 - b1) * G
    d = ((1 - b2) * G**2 / (1 - b2)).sqrt() + eps
    want = -lr * (1 - mu1) / (1 - mu1) * G / d - lr * mu2 / (1 - mu1 * mu2) * m / d
    torch.testing.assert_close(p, want, rtol=1e-6, atol=0)  # mu_product is float32 in torch
    textbook = -lr * (b1 * m / (1 - b1**2) + (1 - b1) * G / (1 - b1)) / d
    assert not torch.allclose(p, textbook, rtol=1e-3)


def test_nadam_mu_product_is_float32_unless_default_dtype_is_float64():
    _, state = first_step(torch.optim.NAdam, G)
    assert state["mu_product"].dtype == torch.float32
    s: dict = {}
    ref.nadam_step(torch.zeros(4, dtype=F64), G, s)
    assert s["mu_product"].dtype == torch.float32
    old = torch.get_default_dtype()
    try:
        torch.set_default_dtype(F64)
        _, state = first_step(torch.optim.NAdam, G)
        s = {}
        ref.nadam_step(torch.zeros(4, dtype=F64), G, s)
        assert state["mu_product"].dtype == s["mu_product"].dtype == F64
        assert s["step"].dtype == F64
    finally:
        torch.set_default_dtype(old)


@pytest.mark.parametrize("name", list(SPECS))
def test_references_bitwise_with_float64_default_dtype(name):
    from optimlab.optimizers.registry import SPECS
    from optimlab.optimizers.verify import verify

    old = torch.get_default_dtype()
    try:
        torch.set_default_dtype(F64)
        spec = SPECS[name]
        for case in spec.cases():
            if not case.has_tensor_hyper:
                assert verify(spec, case, impl="single").diff.max_abs == 0.0
    finally:
        torch.set_default_dtype(old)


def test_maximize_negates_the_gradient_first():
    p, _ = first_step(torch.optim.SGD, G, lr=0.1, maximize=True, weight_decay=0.5,
                      p0=torch.ones(4, dtype=F64))
    torch.testing.assert_close(p, 1 + 0.1 * (G - 0.5), rtol=1e-15, atol=0)


def test_decoupled_weight_decay_multiplies_before_the_moments():
    """With a zero gradient AdamW only shrinks θ by exactly (1 − lr·wd); Adam's L2 moves it more."""
    p0 = torch.tensor([1.0, -3.0], dtype=F64)
    p, state = first_step(torch.optim.AdamW, torch.zeros(2, dtype=F64), p0=p0, lr=0.1,
                          weight_decay=0.5)
    assert torch.equal(p, p0 * (1 - 0.1 * 0.5))
    assert torch.equal(state["exp_avg"], torch.zeros(2, dtype=F64))
    p_l2, state_l2 = first_step(torch.optim.Adam, torch.zeros(2, dtype=F64), p0=p0, lr=0.1,
                                weight_decay=0.5)
    assert not torch.equal(state_l2["exp_avg"], torch.zeros(2, dtype=F64))
    torch.testing.assert_close(p_l2, p0 - 0.1 * p0.sign(), rtol=1e-7, atol=0)


def test_adagrad_decayed_rate_accumulator_and_eps():
    p0 = torch.zeros(4, dtype=F64, requires_grad=True)
    opt = torch.optim.Adagrad([p0], lr=0.1, lr_decay=0.5, initial_accumulator_value=0.2,
                              foreach=False)
    assert opt.defaults["eps"] == 1e-10
    assert torch.equal(opt.state[p0]["sum"], torch.full((4,), 0.2, dtype=F64))  # at construction
    total = torch.full((4,), 0.2, dtype=F64)
    want = torch.zeros(4, dtype=F64)
    for t in (1, 2, 3):
        p0.grad = G * t
        opt.step()
        total = total + (G * t) ** 2
        want = want - 0.1 / (1 + (t - 1) * 0.5) * (G * t) / (total.sqrt() + 1e-10)
    torch.testing.assert_close(p0.detach(), want, rtol=1e-14, atol=0)


def test_adadelta_eps_inside_both_roots_and_lr_one():
    assert torch.optim.Adadelta([torch.zeros(1, requires_grad=True)]).defaults["lr"] == 1.0
    p, _ = first_step(torch.optim.Adadelta, G)
    eps = 1e-6
    want = -math.sqrt(eps) / ((0.1 * G**2) + eps).sqrt() * G
    torch.testing.assert_close(p, want, rtol=1e-13, atol=0)


def test_sgd_momentum_first_step_has_no_dampening():
    p = torch.zeros(4, dtype=F64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5, foreach=False)
    p.grad = G.clone()
    opt.step()
    assert torch.equal(opt.state[p]["momentum_buffer"], G)
    p.grad = G.clone()
    opt.step()
    assert torch.equal(opt.state[p]["momentum_buffer"], 0.9 * G + 0.5 * G)


@pytest.mark.parametrize("cls", [torch.optim.Adam, torch.optim.Adagrad, torch.optim.Adadelta,
                                 torch.optim.RMSprop, torch.optim.Adamax, torch.optim.NAdam])
def test_step_counts_from_one_as_a_tensor(cls):
    _, state = first_step(cls, G)
    assert isinstance(state["step"], torch.Tensor) and state["step"].item() == 1.0
