"""Correct step functions in styles other than the references': plain arithmetic, textbook
bias correction, torch.lerp, integer step counters, Python-float products, copy_ updates.

None of them imports optimlab. Each must be accepted by the checker in float64 and float32.
"""

import math

import torch

from .correct_styles import MORE_CORRECT


def gd_minus_equals(param, grad, state, *, lr=1e-3):
    param -= lr * grad


def sgd_plain(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
              nesterov=False, maximize=False):
    g = -grad if maximize else grad
    g = g + weight_decay * param
    if momentum:
        if "momentum_buffer" in state:
            b = momentum * state["momentum_buffer"] + (1 - dampening) * g
        else:
            b = g.clone()
        state["momentum_buffer"] = b
        g = g + momentum * b if nesterov else b
    param.copy_(param - lr * g)


def adagrad_plain(param, grad, state, *, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                  initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    t = state.get("step", 0) + 1
    state["step"] = t
    g = (-grad if maximize else grad) + weight_decay * param
    s = state.get("sum", torch.full_like(param, initial_accumulator_value)) + g**2
    state["sum"] = s
    rate = lr / (1 + (t - 1) * lr_decay)
    param.sub_(rate * g / (s.sqrt() + eps))


def adadelta_plain(param, grad, state, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0,
                   maximize=False):
    g = -grad if maximize else grad
    if weight_decay:
        g = g + weight_decay * param
    v = rho * state.get("square_avg", torch.zeros_like(param)) + (1 - rho) * g * g
    u = state.get("acc_delta", torch.zeros_like(param))
    delta = torch.sqrt(u + eps) / torch.sqrt(v + eps) * g
    state["square_avg"] = v
    state["acc_delta"] = rho * u + (1 - rho) * delta * delta
    param.add_(-lr * delta)


def rmsprop_lerp(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, maximize=False):
    g = grad.neg() if maximize else grad.clone()
    if weight_decay != 0:
        g.add_(param, alpha=weight_decay)
    if not state:
        state["square_avg"] = torch.zeros_like(param)
        state["grad_avg"] = torch.zeros_like(param)
        state["momentum_buffer"] = torch.zeros_like(param)
    v = state["square_avg"]
    v.lerp_(g * g, 1 - alpha)
    if centered:
        state["grad_avg"].lerp_(g, 1 - alpha)
        denom = (v - state["grad_avg"] ** 2).sqrt() + eps
    else:
        denom = v.sqrt() + eps
    if momentum > 0:
        buf = state["momentum_buffer"]
        buf.mul_(momentum).add_(g / denom)
        param.sub_(lr * buf)
    else:
        param.sub_(lr * g / denom)


def adam_textbook(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                  amsgrad=False, maximize=False, decoupled_weight_decay=False):
    beta1, beta2 = betas
    g = -grad if maximize else grad
    t = state["step"] = state.get("step", 0) + 1
    if weight_decay:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    m = state["exp_avg"] = torch.lerp(state.get("exp_avg", torch.zeros_like(param)), g, 1 - beta1)
    v = state["exp_avg_sq"] = (beta2 * state.get("exp_avg_sq", torch.zeros_like(param))
                               + (1 - beta2) * g * g)
    if amsgrad:
        v = state["max_exp_avg_sq"] = torch.maximum(state.get("max_exp_avg_sq", v), v)
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    param.sub_(lr * m_hat / (v_hat.sqrt() + eps))


def adamw_textbook(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                   weight_decay=1e-2, amsgrad=False, maximize=False):
    adam_textbook(param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                  amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)


def adamax_plain(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 maximize=False):
    b1, b2 = betas
    g = -grad if maximize else grad
    g = g + weight_decay * param
    t = state["step"] = state.get("step", 0) + 1
    m = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * g
    u = torch.stack([b2 * state.get("exp_inf", torch.zeros_like(param)), g.abs() + eps]).amax(0)
    state["exp_avg"], state["exp_inf"] = m, u
    param.copy_(param - lr / (1 - b1**t) * m / u)


def nadam_python_floats(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
                        weight_decay=0.0, momentum_decay=4e-3, decoupled_weight_decay=False,
                        maximize=False):
    b1, b2 = betas
    g = -grad if maximize else grad
    t = state["step"] = state.get("step", 0) + 1
    if weight_decay:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    mu = b1 * (1 - 0.5 * math.pow(0.96, t * momentum_decay))
    mu_next = b1 * (1 - 0.5 * math.pow(0.96, (t + 1) * momentum_decay))
    prod = state["mu_product"] = state.get("mu_product", 1.0) * mu
    m = state["exp_avg"] = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * g
    v = state["exp_avg_sq"] = (b2 * state.get("exp_avg_sq", torch.zeros_like(param))
                               + (1 - b2) * g * g)
    d = (v / (1 - b2**t)).sqrt() + eps
    param.sub_(lr * (1 - mu) / (1 - prod) * g / d + lr * mu_next / (1 - prod * mu_next) * m / d)


def nadam_float32_product(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
                          weight_decay=0.0, momentum_decay=4e-3, decoupled_weight_decay=False,
                          maximize=False):
    """Mirrors torch's bookkeeping: a float32 tensor for the product of the μ's."""
    b1, b2 = betas
    if not state:
        state["step"] = torch.tensor(0.0)
        state["mu_product"] = torch.tensor(1.0, dtype=torch.float32)
        state["exp_avg"] = torch.zeros_like(param)
        state["exp_avg_sq"] = torch.zeros_like(param)
    g = grad.neg() if maximize else grad
    state["step"] += 1
    t = state["step"].item()
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            g = g.add(param, alpha=weight_decay)
    mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    state["mu_product"] *= mu
    prod = state["mu_product"].item()
    state["exp_avg"].mul_(b1).add_(g, alpha=1 - b1)
    state["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
    d = (state["exp_avg_sq"] / (1 - b2**t)).sqrt().add_(eps)
    param.addcdiv_(g, d, value=-lr * (1 - mu) / (1 - prod))
    param.addcdiv_(state["exp_avg"], d, value=-lr * mu_next / (1 - prod * mu_next))


def radam_textbook(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                   weight_decay=0.0, decoupled_weight_decay=False, maximize=False):
    """Liu et al.'s algorithm as written, with Python floats for ρ and r."""
    b1, b2 = betas
    g = -grad if maximize else grad
    if not state:
        state["step"] = torch.tensor(0.0)
        state["exp_avg"] = torch.zeros_like(param)
        state["exp_avg_sq"] = torch.zeros_like(param)
    state["step"] += 1
    t = state["step"].item()
    if weight_decay:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m.mul_(b1).add_(g, alpha=1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    m_hat = m / (1 - b1**t)
    rho_inf = 2 / (1 - b2) - 1
    rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
    if rho > 5:
        r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        # torch's eps: after the root of the *uncorrected* v (√(1 − β₂ᵗ) in the numerator)
        param -= lr * r * m_hat * math.sqrt(1 - b2**t) / (v.sqrt() + eps)
    else:
        param -= lr * m_hat


def rprop_where(param, grad, state, *, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50),
                maximize=False):
    """Riedmiller and Braun's iRprop⁻ with torch.where."""
    g = -grad if maximize else grad
    if not state:
        state["step"] = torch.tensor(0.0)
        state["prev"] = torch.zeros_like(param)
        state["step_size"] = torch.full_like(param, float(lr))
    state["step"] += 1
    prod = g * state["prev"]
    # (ones_like: torch.where of two Python numbers would be float32)
    factor = torch.where(prod > 0, etas[1], torch.where(prod < 0, etas[0], torch.ones_like(g)))
    s = (state["step_size"] * factor).clamp(*step_sizes)
    g = torch.where(prod < 0, torch.zeros_like(g), g)
    param -= g.sign() * s
    state["step_size"] = s
    state["prev"] = g.clone()


def asgd_floats(param, grad, state, *, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6,
                weight_decay=0.0, maximize=False):
    """η and μ as float32 tensors, as torch keeps them; the average by lerp."""
    g = -grad if maximize else grad
    if not state:
        state["step"] = torch.tensor(0.0)
        state["eta"] = torch.tensor(float(lr), dtype=torch.float32)
        state["mu"] = torch.tensor(1.0)
        state["ax"] = torch.zeros_like(param)
    state["step"] += 1
    t = state["step"].item()
    if weight_decay:
        g = g + weight_decay * param
    eta = state["eta"].item()
    param.mul_(1 - lambd * eta).sub_(eta * g)
    mu = state["mu"].item()
    state["ax"] = state["ax"].lerp(param, mu) if mu != 1 else param.clone()
    state["eta"] = torch.tensor(float(lr) / (1 + lambd * float(lr) * t) ** alpha,
                                dtype=torch.float32)
    state["mu"] = torch.tensor(1 / max(1, t - t0), dtype=torch.float32)


def adafactor_means(param, grad, state, *, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3),
                    d=1.0, weight_decay=0.0, maximize=False):
    """The factors from (g**2).mean(...), the RMS written out, Python floats for the scalars."""
    g = -grad if maximize else grad
    eps1 = torch.finfo(param.dtype).eps if eps[0] is None else eps[0]
    if not state:
        state["step"] = torch.tensor(0.0)
        if g.dim() >= 2:
            state["row_var"] = torch.zeros_like(g[..., :1])
            state["col_var"] = torch.zeros_like(g[..., :1, :])
        else:
            state["variance"] = torch.zeros_like(g)
    state["step"] += 1
    t = state["step"].item()
    w = t**beta2_decay
    rms = math.sqrt((param.double() ** 2).sum().item() / param.numel())
    alpha = max(eps[1], rms) * min(lr, t**-0.5)
    if weight_decay:
        param.mul_(1 - lr * weight_decay)
    if g.dim() >= 2:
        state["row_var"].lerp_((g * g).mean(dim=-1, keepdim=True), w)
        state["col_var"].lerp_((g * g).mean(dim=-2, keepdim=True), w)
        r, c = state["row_var"], state["col_var"]
        v = r * c / r.mean(dim=-2, keepdim=True).clamp(min=eps1)
    else:
        state["variance"].lerp_(g * g, w)
        v = state["variance"]
    u = g / v.clamp(min=eps1**2).sqrt()
    u_rms = math.sqrt((u.double() ** 2).sum().item() / u.numel())
    param.sub_(alpha / max(1.0, u_rms / d) * u)


def muon_explicit(param, grad, state, *, lr=1e-3, weight_decay=0.1, momentum=0.95,
                  nesterov=True, ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7,
                  ns_steps=5, adjust_lr_fn=None):
    """bfloat16 Newton–Schulz written with plain products (no addmm), buffer by mul/add."""
    a, b, c = ns_coefficients
    buf = state.setdefault("momentum_buffer", torch.zeros_like(grad))
    buf.mul_(momentum).add_((1 - momentum) * grad)
    u = (1 - momentum) * grad + momentum * buf if nesterov else buf
    x = u.to(torch.bfloat16)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x = x / max(x.norm(), eps)
    for _ in range(ns_steps):
        A = x @ x.T
        x = a * x + (b * A + c * (A @ A)) @ x
    if tall:
        x = x.T
    rows, cols = param.shape
    if adjust_lr_fn == "match_rms_adamw":
        scale = 0.2 * math.sqrt(max(rows, cols))
    else:
        scale = math.sqrt(max(1.0, rows / cols))
    param.mul_(1 - lr * weight_decay)
    param.sub_(lr * scale * x.to(param.dtype))



def sparse_adam_dense_mask(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                           maximize=False):
    """Dense tensors and a mask of the gradient's indices, updated with torch.where."""
    b1, b2 = betas
    state["step"] = state.get("step", 0) + 1
    t = state["step"]
    g = grad.coalesce()
    g = -g if maximize else g
    m = state.setdefault("exp_avg", torch.zeros_like(param))
    v = state.setdefault("exp_avg_sq", torch.zeros_like(param))
    if g._nnz() == 0:
        return
    used = torch.zeros_like(param, dtype=torch.bool)
    used[tuple(g.indices())] = True
    dense = g.to_dense()
    m.copy_(torch.where(used, b1 * m + (1 - b1) * dense, m))
    v.copy_(torch.where(used, b2 * v + (1 - b2) * dense * dense, v))
    step = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
    param.sub_(torch.where(used, step * m / (v.sqrt() + eps), torch.zeros_like(param)))


CORRECT = {
    "gd": [gd_minus_equals],
    "sgd": [sgd_plain],
    "adagrad": [adagrad_plain],
    "adadelta": [adadelta_plain],
    "rmsprop": [rmsprop_lerp],
    "adam": [adam_textbook],
    "adamw": [adamw_textbook],
    "adamax": [adamax_plain],
    "nadam": [nadam_python_floats, nadam_float32_product],
    "radam": [radam_textbook],
    "rprop": [rprop_where],
    "asgd": [asgd_floats],
    "adafactor": [adafactor_means],
    "muon": [muon_explicit],
    "sparse_adam": [sparse_adam_dense_mask],
}

for _name, _fns in MORE_CORRECT.items():
    CORRECT.setdefault(_name, []).extend(_fns)
