"""More correct step functions, each written independently in a learner's own style: `.data`
updates, `**kwargs`, `param[...] =`, renamed state keys, `torch.where`, tensor step counters,
`setdefault`, `lerp`+`rsqrt` Adadelta, torch's old `cat`+`amax` Adamax, textbook NAdam.
None imports optimlab.
"""
import math

import torch


# ---------------------------------------------------------------- SGD
def sgd_data_style(p, g, state, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                   nesterov=False, maximize=False):
    d_p = g if not maximize else -g
    if weight_decay != 0:
        d_p = d_p.add(p.data, alpha=weight_decay)
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = torch.clone(d_p).detach()
            state["momentum_buffer"] = buf
        else:
            buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
        if nesterov:  # noqa: SIM108 (written as a learner would)
            d_p = d_p.add(buf, alpha=momentum)
        else:
            d_p = buf
    p.data.add_(d_p, alpha=-lr)


def sgd_kwargs(param, grad, state, **hp):
    lr = hp.get("lr", 1e-3)
    mom = hp.get("momentum", 0.0)
    damp = hp.get("dampening", 0.0)
    wd = hp.get("weight_decay", 0.0)
    nest = hp.get("nesterov", False)
    g = grad * (-1 if hp.get("maximize", False) else 1)
    g = g + wd * param
    if mom > 0:
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = g.detach().clone()
        else:
            state["momentum_buffer"] = mom * state["momentum_buffer"] + (1 - damp) * g
        g = g + mom * state["momentum_buffer"] if nest else state["momentum_buffer"]
    param[...] = param - lr * g


def sgd_sutskever_lr_const(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                           weight_decay=0.0, nesterov=False, maximize=False):
    # buffers named differently: state compare must ignore unknown keys
    g = grad.neg() if maximize else grad
    g = g + weight_decay * param
    if momentum:
        v = state.get("v")
        v = g.clone() if v is None else momentum * v + (1 - dampening) * g
        state["v"] = v
        g = g + momentum * v if nesterov else v
    param.sub_(lr * g)


# ---------------------------------------------------------------- Adagrad
def adagrad_data(param, grad, state, lr=0.01, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, maximize=False):
    if len(state) == 0:
        state["step"] = 0
        state["sum"] = torch.full_like(param, initial_accumulator_value)
    state["step"] += 1
    g = -grad if maximize else grad
    if weight_decay:
        g = g + weight_decay * param
    clr = lr / (1 + (state["step"] - 1) * lr_decay)
    state["sum"].addcmul_(g, g, value=1)
    std = state["sum"].sqrt().add_(eps)
    param.data.addcdiv_(g, std, value=-clr)


# ---------------------------------------------------------------- Adadelta
def adadelta_lerp_rsqrt(param, grad, state, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0,
                        maximize=False):
    # running averages with torch.lerp, the ratio of roots with rsqrt, one tuple of state
    g = grad.neg() if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    sq, acc = state.get("avgs", (torch.zeros_like(param), torch.zeros_like(param)))
    sq = torch.lerp(g * g, sq, rho)
    delta = torch.sqrt(acc + eps) * torch.rsqrt(sq + eps) * g
    acc = torch.lerp(delta * delta, acc, rho)
    state["avgs"] = (sq, acc)
    param.sub_(lr * delta)


# ---------------------------------------------------------------- RMSprop
def rmsprop_plain(param, grad, state, lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0,
                  momentum=0, centered=False, maximize=False):
    g = -grad if maximize else grad
    if weight_decay:
        g = g + weight_decay * param
    v = state.get("square_avg", torch.zeros_like(param))
    v = alpha * v + (1 - alpha) * g ** 2
    state["square_avg"] = v
    if centered:
        ga = state.get("grad_avg", torch.zeros_like(param))
        ga = alpha * ga + (1 - alpha) * g
        state["grad_avg"] = ga
        denom = torch.sqrt(v - ga ** 2) + eps
    else:
        denom = torch.sqrt(v) + eps
    if momentum > 0:
        b = state.get("momentum_buffer", torch.zeros_like(param))
        b = momentum * b + g / denom
        state["momentum_buffer"] = b
        param -= lr * b
    else:
        param -= lr * g / denom


# ---------------------------------------------------------------- Adam family
def adam_textbook_hat(param, grad, state, *, lr=0.001, betas=(0.9, 0.999), eps=1e-8,
                      weight_decay=0, amsgrad=False, maximize=False,
                      decoupled_weight_decay=False):
    b1, b2 = betas
    g = -grad if maximize else grad
    if weight_decay:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * param
    t = state["step"] = state.get("step", 0) + 1
    m = state["exp_avg"] = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * g
    v = state["exp_avg_sq"] = (b2 * state.get("exp_avg_sq", torch.zeros_like(param))
                               + (1 - b2) * g * g)
    if amsgrad:
        vmax = state["max_exp_avg_sq"] = torch.maximum(
            state.get("max_exp_avg_sq", torch.zeros_like(param)), v)
        v_use = vmax
    else:
        v_use = v
    m_hat = m / (1 - b1 ** t)
    v_hat = v_use / (1 - b2 ** t)
    param -= lr * m_hat / (v_hat.sqrt() + eps)


def adam_where(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
               weight_decay=0.0, amsgrad=False, maximize=False, decoupled_weight_decay=False):
    beta1, beta2 = betas
    if "step" not in state:
        state["step"] = torch.tensor(0.0)
        state["exp_avg"] = torch.zeros_like(param)
        state["exp_avg_sq"] = torch.zeros_like(param)
        if amsgrad:
            state["max_exp_avg_sq"] = torch.zeros_like(param)
    state["step"] += 1
    step = state["step"].item()
    grad = torch.where(torch.tensor(maximize), -grad, grad)
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            grad = grad + param * weight_decay
    state["exp_avg"].lerp_(grad, 1 - beta1)
    state["exp_avg_sq"].mul_(beta2).add_(grad.square() * (1 - beta2))
    bc1 = 1 - beta1 ** step
    bc2 = 1 - beta2 ** step
    if amsgrad:
        torch.maximum(state["max_exp_avg_sq"], state["exp_avg_sq"],
                      out=state["max_exp_avg_sq"])
        denom = (state["max_exp_avg_sq"].sqrt() / math.sqrt(bc2)).add_(eps)
    else:
        denom = (state["exp_avg_sq"].sqrt() / math.sqrt(bc2)).add_(eps)
    param.addcdiv_(state["exp_avg"], denom, value=-(lr / bc1))


def adamw_textbook(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                   weight_decay=1e-2, amsgrad=False, maximize=False):
    b1, b2 = betas
    g = -grad if maximize else grad
    param.mul_(1 - lr * weight_decay)
    t = state.get("t", 0) + 1
    state["t"] = t
    m = state.get("m", torch.zeros_like(param)) * b1 + (1 - b1) * g
    v = state.get("v", torch.zeros_like(param)) * b2 + (1 - b2) * g * g
    state["m"], state["v"] = m, v
    if amsgrad:
        vmax = torch.max(state.get("vmax", torch.zeros_like(param)), v)
        state["vmax"] = vmax
        v = vmax
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    param.sub_(lr * m_hat / (torch.sqrt(v_hat) + eps))


def adamax_plain(param, grad, state, lr=0.002, betas=(0.9, 0.999), eps=1e-08,
                 weight_decay=0, maximize=False):
    b1, b2 = betas
    g = grad.neg() if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    t = state.setdefault("step", 0) + 1
    state["step"] = t
    m = state.setdefault("exp_avg", torch.zeros_like(param))
    u = state.setdefault("exp_inf", torch.zeros_like(param))
    m.mul_(b1).add_((1 - b1) * g)
    u.copy_(torch.maximum(b2 * u, g.abs() + eps))
    param.sub_((lr / (1 - b1 ** t)) * m / u)


def adamax_cat(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
               weight_decay=0.0, maximize=False):
    # torch's own historical formulation with cat + amax
    b1, b2 = betas
    if maximize:
        grad = -grad
    if weight_decay:
        grad = grad.add(param, alpha=weight_decay)
    if not state:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(param)
        state["exp_inf"] = torch.zeros_like(param)
    state["step"] += 1
    state["exp_avg"].lerp_(grad, 1 - b1)
    norm_buf = torch.cat([state["exp_inf"].mul_(b2).unsqueeze(0),
                          grad.abs().add_(eps).unsqueeze_(0)], 0)
    state["exp_inf"].copy_(torch.amax(norm_buf, 0, keepdim=False))
    clr = lr / (1 - b1 ** state["step"])
    param.addcdiv_(state["exp_avg"], state["exp_inf"], value=-clr)


def nadam_textbook(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
                   weight_decay=0.0, momentum_decay=4e-3, decoupled_weight_decay=False,
                   maximize=False):
    b1, b2 = betas
    g = -grad if maximize else grad
    if weight_decay:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    t = state.get("step", 0) + 1
    state["step"] = t
    mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    prod = state.get("prod", 1.0) * mu
    state["prod"] = prod
    m = state["exp_avg"] = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * g
    v = state["exp_avg_sq"] = (b2 * state.get("exp_avg_sq", torch.zeros_like(param))
                               + (1 - b2) * g ** 2)
    v_hat = v / (1 - b2 ** t)
    m_bar = mu_next * m / (1 - prod * mu_next) + (1 - mu) * g / (1 - prod)
    param -= lr * m_bar / (v_hat.sqrt() + eps)


def radam_lerp_factored(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                        weight_decay=0.0, decoupled_weight_decay=False, maximize=False):
    """State via ``get``, lerp for m, the rectification as three ratios, addcdiv for the step."""
    b1, b2 = betas
    g = grad.neg() if maximize else grad.clone()
    t = state["step"] = state.get("step", torch.tensor(0.0)) + 1
    t = float(t)
    if weight_decay != 0 and decoupled_weight_decay:
        param.mul_(1 - lr * weight_decay)
    elif weight_decay != 0:
        g.add_(param, alpha=weight_decay)
    m = state.setdefault("exp_avg", torch.zeros_like(param))
    v = state.setdefault("exp_avg_sq", torch.zeros_like(param))
    m.lerp_(g, 1 - b1)
    v.mul_(b2).add_((1 - b2) * g * g)
    rho_inf = (1 + b2) / (1 - b2)
    rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
    step = lr / (1 - b1**t)
    if rho_t <= 5:
        param.sub_(step * m)
        return
    r = ((rho_t - 4) / (rho_inf - 4) * (rho_t - 2) / (rho_inf - 2) * rho_inf / rho_t) ** 0.5
    param.addcdiv_(m * (step * r * (1 - b2**t) ** 0.5), v.sqrt() + eps, value=-1)


def muon_float32_ns(param, grad, state, *, lr=1e-3, weight_decay=0.1, momentum=0.95,
                    nesterov=True, ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7,
                    ns_steps=5, adjust_lr_fn=None):
    """Newton–Schulz in float32, on the wide orientation always."""
    a, b, c = ns_coefficients
    if "momentum_buffer" not in state:
        state["momentum_buffer"] = torch.zeros_like(grad)
    buf = state["momentum_buffer"]
    buf.lerp_(grad, 1 - momentum)
    u = torch.lerp(grad, buf, momentum) if nesterov else buf
    x = u.float()
    flip = x.size(0) > x.size(1)
    x = x.mT if flip else x
    x = x / x.norm().clamp_min(eps)
    for _ in range(ns_steps):
        A = x @ x.mT
        x = a * x + b * A @ x + c * A @ A @ x
    x = x.mT if flip else x
    rows, cols = param.shape
    ratio = 0.2 * max(rows, cols) ** 0.5 if adjust_lr_fn == "match_rms_adamw" else \
        max(1.0, rows / cols) ** 0.5
    param.mul_(1 - lr * weight_decay).add_(x.to(param.dtype), alpha=-lr * ratio)


# ---------------------------------------------------------------- what a step returns
def sgd_returns_the_alias(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                          weight_decay=0.0, nesterov=False, maximize=False):
    # in place, and returns what `sub_` returns: an alias of param, not a new tensor
    g = (-grad if maximize else grad) + weight_decay * param
    if momentum:
        buf = state.get("momentum_buffer")
        buf = g.clone() if buf is None else buf.mul_(momentum).add_(g, alpha=1 - dampening)
        state["momentum_buffer"] = buf
        g = g + momentum * buf if nesterov else buf
    return param.data.sub_(lr * g)


def sgd_returns_its_state(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                          weight_decay=0.0, nesterov=False, maximize=False):
    # in place, then hands its state back, as some learners do
    g = (-grad if maximize else grad) + weight_decay * param
    if momentum:
        if "buf" in state:
            state["buf"] = momentum * state["buf"] + (1 - dampening) * g
        else:
            state["buf"] = g.clone()
        g = g + momentum * state["buf"] if nesterov else state["buf"]
    param.sub_(lr * g)
    return state


MORE_CORRECT = {
    "sgd": [sgd_data_style, sgd_kwargs, sgd_sutskever_lr_const, sgd_returns_the_alias,
            sgd_returns_its_state],
    "gd": [],
    "adagrad": [adagrad_data],
    "adadelta": [adadelta_lerp_rsqrt],
    "rmsprop": [rmsprop_plain],
    "adam": [adam_textbook_hat, adam_where],
    "adamw": [adamw_textbook],
    "adamax": [adamax_plain, adamax_cat],
    "nadam": [nadam_textbook],
    "radam": [radam_lerp_factored],
    "muon": [muon_float32_ns],
}
