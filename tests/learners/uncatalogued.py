"""Wrong step functions whose mistake is in no optimizer's catalogue.

Each is written as a learner might write it (plain Python math, `.data`, `torch.where`, renamed
state keys, `**kwargs`, int step counters), and each is wrong in one way that the checker has
no name for: it must fail, and it must not be told it made a catalogued mistake it did not
make. Some are subtle (a step 1.001 times too long, wrong only on the 0-d tensor, only after
step 10, only by crashing on the empty tensor). None imports optimlab.
"""

import math

import torch


# ---------------------------------------------------------------- gradient descent
def gd_step_too_long(param, grad, state, *, lr=1e-3):
    """The right direction, but every step is 1.001 times too long."""
    param.data -= 1.001 * lr * grad


def gd_in_float16(p, g, state, lr=1e-3):
    """The update is computed in float16 and cast back (about 1e-3 relative error)."""
    p.copy_((p.half() - lr * g.half()).to(p.dtype))


# ---------------------------------------------------------------- SGD
def sgd_dampening_twice(param, grad, state, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                        nesterov=False, maximize=False):
    """Dampening applied to the gradient twice: b ← μ·b + (1 − τ)²·g."""
    d_p = -grad if maximize else grad
    if weight_decay != 0:
        d_p = d_p + weight_decay * param.data
    if momentum != 0:
        damped = (1 - dampening) * d_p
        if "buf" not in state:
            state["buf"] = d_p.clone()
        else:
            state["buf"].mul_(momentum).add_(damped, alpha=1 - dampening)
        d_p = d_p + momentum * state["buf"] if nesterov else state["buf"]
    param.data.add_(d_p, alpha=-lr)


def sgd_momentum_clipped(param, grad, state, **hp):
    """The momentum buffer is clipped to [-1, 1] after every update."""
    lr, mom = hp.get("lr", 1e-3), hp.get("momentum", 0.0)
    g = grad.neg() if hp.get("maximize", False) else grad
    g = g + hp.get("weight_decay", 0.0) * param
    if mom:
        if "velocity" in state:
            v = mom * state["velocity"] + (1 - hp.get("dampening", 0.0)) * g
        else:
            v = g.clone()
        v = v.clamp(-1.0, 1.0)  # "to keep it stable"
        state["velocity"] = v
        g = g + mom * v if hp.get("nesterov", False) else v
    param.sub_(lr * g)


def sgd_scalar_shortcut(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                        weight_decay=0.0, nesterov=False, maximize=False):
    """Wrong only on the 0-d tensor: it gets a plain step, without weight decay or momentum."""
    if param.dim() == 0:  # a single number: plain Python math
        g = -float(grad) if maximize else float(grad)
        param.fill_(float(param) - float(lr) * g)
        return
    g = -grad if maximize else grad
    g = g + weight_decay * param
    if momentum:
        b = state.get("momentum_buffer")
        b = g.clone() if b is None else momentum * b + (1 - dampening) * g
        state["momentum_buffer"] = b
        g = g + momentum * b if nesterov else b
    param.sub_(lr * g)


def sgd_nesterov_old_buffer(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                            weight_decay=0.0, nesterov=False, maximize=False):
    """Nesterov looks ahead with the buffer from before this step's update: g + μ·b_{t−1}."""
    g = -grad if maximize else grad
    if weight_decay:
        g = g + weight_decay * param
    if momentum:
        old = state.get("momentum_buffer")
        new = g.clone() if old is None else momentum * old + (1 - dampening) * g
        state["momentum_buffer"] = new
        if nesterov:  # noqa: SIM108 (written as a learner would)
            g = g + momentum * (new if old is None else old)
        else:
            g = new
    param.add_(g, alpha=-lr)


# ---------------------------------------------------------------- Adagrad
def adagrad_sum_of_abs(param, grad, state, *, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                       initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    """Accumulates |g| instead of g²."""
    t = state["n"] = state.get("n", 0) + 1
    g = (-grad if maximize else grad) + weight_decay * param
    G = state.get("G", torch.full_like(param, initial_accumulator_value)) + g.abs()
    state["G"] = G
    param.sub_(lr / (1 + (t - 1) * lr_decay) * g / (G.sqrt() + eps))


def adagrad_eps_times_lr(param, grad, state, lr=0.01, lr_decay=0, weight_decay=0,
                         initial_accumulator_value=0, eps=1e-10, maximize=False):
    """eps scaled by the learning rate: √s + γ·ε."""
    if not state:
        state["step"] = 0
        state["sum"] = torch.full_like(param, initial_accumulator_value)
    state["step"] += 1
    g = -grad if maximize else grad
    if weight_decay:
        g = g + weight_decay * param
    clr = lr / (1 + (state["step"] - 1) * lr_decay)
    state["sum"] += g * g
    param.data.sub_(clr * g / (state["sum"].sqrt() + lr * eps))


def adagrad_skips_zero_gradients(param, grad, state, *, lr=1e-2, lr_decay=0.0,
                                 weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                                 maximize=False):
    """Wrong only on the empty tensor: it crashes there (max of no elements, to skip g = 0)."""
    if not state:
        state["step"] = 0
        state["sum"] = torch.full_like(param, initial_accumulator_value)
    state["step"] += 1
    if weight_decay == 0 and grad.abs().max() == 0:
        return  # nothing to do: the sum and the parameter would not change
    g = -grad if maximize else grad
    g = g + weight_decay * param
    state["sum"].addcmul_(g, g)
    clr = lr / (1 + (state["step"] - 1) * lr_decay)
    param.addcdiv_(g, state["sum"].sqrt() + eps, value=-clr)


# ---------------------------------------------------------------- Adadelta
def adadelta_u_from_gradient(param, grad, state, *, lr=1.0, rho=0.9, eps=1e-6,
                             weight_decay=0.0, maximize=False):
    """The accumulated update u is an EMA of the gradient's square, not of Δ²."""
    g = grad.neg() if maximize else grad
    if weight_decay:
        g = g + weight_decay * param
    Eg2 = state.get("Eg2", torch.zeros_like(param))
    Edx2 = state.get("Edx2", torch.zeros_like(param))
    Eg2 = rho * Eg2 + (1 - rho) * g**2
    dx = torch.sqrt(Edx2 + eps) / torch.sqrt(Eg2 + eps) * g
    Edx2 = rho * Edx2 + (1 - rho) * g**2
    state["Eg2"], state["Edx2"] = Eg2, Edx2
    param -= lr * dx


def adadelta_restarts_after_10(param, grad, state, **kwargs):
    """Wrong only after step 10: the running averages are reset every 10 steps."""
    lr, rho = kwargs.get("lr", 1.0), kwargs.get("rho", 0.9)
    eps, wd = kwargs.get("eps", 1e-6), kwargs.get("weight_decay", 0.0)
    g = -grad if kwargs.get("maximize") else grad
    g = g + wd * param.data
    step = state.get("step", 0) + 1
    if step % 10 == 1:  # a fresh start now and then "to forget stale history"
        state["square_avg"] = torch.zeros_like(param)
        state["acc_delta"] = torch.zeros_like(param)
    state["step"] = step
    v, u = state["square_avg"], state["acc_delta"]
    v.mul_(rho).addcmul_(g, g, value=1 - rho)
    delta = (u + eps).sqrt() / (v + eps).sqrt() * g
    u.mul_(rho).addcmul_(delta, delta, value=1 - rho)
    param.data.sub_(lr * delta)


def adadelta_lr_in_accumulator(param, grad, state, *, lr=1.0, rho=0.9, eps=1e-6,
                               weight_decay=0.0, maximize=False):
    """u accumulates the square of the step actually taken, (γ·Δ)², not Δ²."""
    g = torch.where(torch.tensor(maximize), -grad, grad)
    if weight_decay != 0:
        g = g + weight_decay * param
    if "sq" not in state:
        state["sq"] = torch.zeros_like(param)
        state["acc"] = torch.zeros_like(param)
    state["sq"] = rho * state["sq"] + (1 - rho) * g * g
    step = lr * torch.sqrt(state["acc"] + eps) / torch.sqrt(state["sq"] + eps) * g
    state["acc"] = rho * state["acc"] + (1 - rho) * step * step
    param.sub_(step)


# ---------------------------------------------------------------- RMSprop
def rmsprop_alpha_only_first_step(param, grad, state, lr=0.01, alpha=0.99, eps=1e-08,
                                  weight_decay=0, momentum=0, centered=False, maximize=False):
    """alpha decays v on the first step only; afterwards v ← v + (1 − α)·g², never forgetting."""
    g = -grad if maximize else grad
    if weight_decay:
        g = g + weight_decay * param
    if "v" not in state:
        state["v"] = alpha * torch.zeros_like(param) + (1 - alpha) * g * g
    else:
        state["v"] = state["v"] + (1 - alpha) * g * g
    v = state["v"]
    if centered:
        ga = alpha * state.get("ga", torch.zeros_like(param)) + (1 - alpha) * g
        state["ga"] = ga
        v = v - ga * ga
    denom = v.sqrt() + eps
    if momentum > 0:
        b = momentum * state.get("b", torch.zeros_like(param)) + g / denom
        state["b"] = b
        param -= lr * b
    else:
        param -= lr * g / denom


def rmsprop_momentum_of_raw_gradient(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8,
                                     weight_decay=0.0, momentum=0.0, centered=False,
                                     maximize=False):
    """Momentum of the raw gradient, b ← μ·b + g, divided by the current √v + ε at each step."""
    g = grad.neg() if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)
    if not state:
        state["square_avg"] = torch.zeros_like(param)
        state["grad_avg"] = torch.zeros_like(param)
        state["buf"] = torch.zeros_like(param)
    sq = state["square_avg"]
    sq.mul_(alpha).addcmul_(g, g, value=1 - alpha)
    if centered:
        state["grad_avg"].lerp_(g, 1 - alpha)
        avg = (sq - state["grad_avg"] ** 2).sqrt().add_(eps)
    else:
        avg = sq.sqrt().add_(eps)
    if momentum > 0:
        state["buf"].mul_(momentum).add_(g)
        param.addcdiv_(state["buf"], avg, value=-lr)
    else:
        param.addcdiv_(g, avg, value=-lr)


def rmsprop_centered_on_abs(param, grad, state, **hyper):
    """centered: the mean subtracted is an EMA of |g|, not of g."""
    lr, alpha, eps = hyper.get("lr", 1e-2), hyper.get("alpha", 0.99), hyper.get("eps", 1e-8)
    mom = hyper.get("momentum", 0.0)
    g = -grad if hyper.get("maximize") else grad
    g = g + hyper.get("weight_decay", 0.0) * param
    state["v"] = alpha * state.get("v", torch.zeros_like(param)) + (1 - alpha) * g * g
    v = state["v"]
    if hyper.get("centered"):
        state["mean"] = alpha * state.get("mean", torch.zeros_like(param)) + (1 - alpha) * g.abs()
        v = v - state["mean"] ** 2
    step = g / (v.sqrt() + eps)
    if mom > 0:
        state["mom"] = mom * state.get("mom", torch.zeros_like(param)) + step
        step = state["mom"]
    param.copy_(param - lr * step)


def rmsprop_float32_state(param, grad, state, lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0,
                          momentum=0, centered=False, maximize=False):
    """State made by `torch.zeros(param.shape)`: float32, so float64 runs are off by ~1e-7."""
    g = -grad if maximize else grad
    if weight_decay:
        g = g + weight_decay * param
    if not state:
        state["square_avg"] = torch.zeros(param.shape)
        state["grad_avg"] = torch.zeros(param.shape)
        state["momentum_buffer"] = torch.zeros(param.shape)
    v = state["square_avg"]
    v.mul_(alpha).add_((1 - alpha) * g * g)
    if centered:
        state["grad_avg"].mul_(alpha).add_((1 - alpha) * g)
        denom = (v - state["grad_avg"] ** 2).sqrt() + eps
    else:
        denom = v.sqrt() + eps
    if momentum > 0:
        state["momentum_buffer"].mul_(momentum).add_(g / denom)
        param.sub_(lr * state["momentum_buffer"])
    else:
        param.sub_(lr * g / denom)


# ---------------------------------------------------------------- Adam
def adam_bias_correction_t_squared(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999),
                                   eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
                                   decoupled_weight_decay=False):
    """Bias correction with t² in the exponent: 1 − βᵗ² instead of 1 − βᵗ."""
    b1, b2 = betas
    g = -grad if maximize else grad
    t = state["t"] = state.get("t", 0) + 1
    if weight_decay:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    m = state["m"] = b1 * state.get("m", torch.zeros_like(param)) + (1 - b1) * g
    v = state["v"] = b2 * state.get("v", torch.zeros_like(param)) + (1 - b2) * g * g
    if amsgrad:
        v = state["vmax"] = torch.maximum(state.get("vmax", v), v)
    m_hat = m / (1 - b1 ** (t**2))
    v_hat = v / (1 - b2 ** (t**2))
    param.sub_(lr * m_hat / (v_hat.sqrt() + eps))


def adam_eps_times_lr(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                      weight_decay=0.0, amsgrad=False, maximize=False,
                      decoupled_weight_decay=False):
    """eps scaled by the learning rate: √v̂ + γ·ε in the denominator."""
    beta1, beta2 = betas
    if "step" not in state:
        state["step"] = torch.tensor(0.0)
        state["exp_avg"] = torch.zeros_like(param)
        state["exp_avg_sq"] = torch.zeros_like(param)
        state["max_exp_avg_sq"] = torch.zeros_like(param)
    state["step"] += 1
    t = state["step"].item()
    g = torch.where(torch.tensor(maximize), -grad, grad)
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            g = g + param * weight_decay
    state["exp_avg"].lerp_(g, 1 - beta1)
    state["exp_avg_sq"].mul_(beta2).add_(g.square() * (1 - beta2))
    v = state["exp_avg_sq"]
    if amsgrad:
        torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        v = state["max_exp_avg_sq"]
    denom = v.sqrt() / math.sqrt(1 - beta2**t) + lr * eps
    param.addcdiv_(state["exp_avg"], denom, value=-(lr / (1 - beta1**t)))


def adam_in_bfloat16(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                     weight_decay=0.0, amsgrad=False, maximize=False,
                     decoupled_weight_decay=False):
    """Moments and update computed in bfloat16 ("saves memory") and cast back."""
    b1, b2 = betas
    half = torch.bfloat16
    g = (-grad if maximize else grad).to(half)
    p = param.to(half)
    t = state["step"] = state.get("step", 0) + 1
    if weight_decay:
        if decoupled_weight_decay:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    m = state["exp_avg"] = b1 * state.get("exp_avg", torch.zeros_like(p)) + (1 - b1) * g
    v = state["exp_avg_sq"] = b2 * state.get("exp_avg_sq", torch.zeros_like(p)) + (1 - b2) * g * g
    if amsgrad:
        v = state["max_exp_avg_sq"] = torch.maximum(state.get("max_exp_avg_sq", v), v)
    p = p - lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
    param.copy_(p.to(param.dtype))


def adam_bc2_one_step_ahead(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0, amsgrad=False, maximize=False,
                            decoupled_weight_decay=False):
    """The step counter is advanced between the two corrections: 1 − β₁ᵗ but 1 − β₂ᵗ⁺¹."""
    beta1, beta2 = betas
    g = -grad if maximize else grad
    if weight_decay and decoupled_weight_decay:
        param.mul_(1 - lr * weight_decay)
    elif weight_decay:
        g = g + weight_decay * param
    t = state.get("step", 1)
    state["m"] = torch.lerp(state.get("m", torch.zeros_like(param)), g, 1 - beta1)
    state["v"] = beta2 * state.get("v", torch.zeros_like(param)) + (1 - beta2) * g * g
    if amsgrad:
        state["v_max"] = torch.maximum(state.get("v_max", state["v"]), state["v"])
    m_hat = state["m"] / (1 - beta1**t)
    state["step"] = t + 1
    v_hat = state["v_max" if amsgrad else "v"] / (1 - beta2 ** state["step"])
    param.sub_(lr * m_hat / (v_hat.sqrt() + eps))


# ---------------------------------------------------------------- AdamW
def adamw_no_decay(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                   weight_decay=1e-2, amsgrad=False, maximize=False):
    """The decoupled weight decay is missing entirely (plain Adam)."""
    b1, b2 = betas
    g = -grad if maximize else grad
    t = state.get("t", 0) + 1
    state["t"] = t
    m = state.get("m", torch.zeros_like(param)) * b1 + (1 - b1) * g
    v = state.get("v", torch.zeros_like(param)) * b2 + (1 - b2) * g * g
    state["m"], state["v"] = m, v
    if amsgrad:
        state["vmax"] = torch.max(state.get("vmax", torch.zeros_like(param)), v)
        v = state["vmax"]
    param.sub_(lr * (m / (1 - b1**t)) / (torch.sqrt(v / (1 - b2**t)) + eps))


def adamw_decay_with_corrected_step(param, grad, state, **kw):
    """The decay uses the bias-corrected step size: θ·(1 − λ·γ/(1 − β₁ᵗ))."""
    lr, (b1, b2) = kw.get("lr", 1e-3), kw.get("betas", (0.9, 0.999))
    eps, wd = kw.get("eps", 1e-8), kw.get("weight_decay", 1e-2)
    g = -grad if kw.get("maximize", False) else grad
    if not state:
        state.update(step=0, exp_avg=torch.zeros_like(param), exp_avg_sq=torch.zeros_like(param),
                     max_exp_avg_sq=torch.zeros_like(param))
    state["step"] += 1
    step_size = lr / (1 - b1 ** state["step"])
    param.mul_(1 - step_size * wd)
    state["exp_avg"].mul_(b1).add_(g, alpha=1 - b1)
    state["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
    v = state["exp_avg_sq"]
    if kw.get("amsgrad", False):
        state["max_exp_avg_sq"] = torch.maximum(state["max_exp_avg_sq"], v)
        v = state["max_exp_avg_sq"]
    denom = (v / (1 - b2 ** state["step"])).sqrt() + eps
    param.addcdiv_(state["exp_avg"], denom, value=-step_size)


def adamw_amsgrad_max_of_last_two(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999),
                                  eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False):
    """AMSGrad takes the max of this step's v and the previous step's v, not a running max."""
    b1, b2 = betas
    g = grad.neg() if maximize else grad
    param.data.mul_(1 - lr * weight_decay)
    t = state.get("t", 0) + 1
    prev_v = state.get("v", torch.zeros_like(param))
    m = b1 * state.get("m", torch.zeros_like(param)) + (1 - b1) * g
    v = b2 * prev_v + (1 - b2) * g * g
    state.update(t=t, m=m, v=v)
    denom_v = torch.maximum(prev_v, v) if amsgrad else v
    m_hat = m / (1 - b1**t)
    v_hat = denom_v / (1 - b2**t)
    param.data.sub_(lr * m_hat / (v_hat.sqrt() + eps))


def adamw_step_too_long(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                        weight_decay=1e-2, amsgrad=False, maximize=False):
    """The right decay and direction, but the Adam step is 1.001 times too long."""
    b1, b2 = betas
    g = -grad if maximize else grad
    param.mul_(1 - lr * weight_decay)
    t = state["t"] = state.get("t", 0) + 1
    m = state["m"] = b1 * state.get("m", torch.zeros_like(param)) + (1 - b1) * g
    v = state["v"] = b2 * state.get("v", torch.zeros_like(param)) + (1 - b2) * g * g
    if amsgrad:
        v = state["vmax"] = torch.maximum(state.get("vmax", v), v)
    param.sub_(1.001 * lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps))


# ---------------------------------------------------------------- Adamax
def adamax_max_of_m(param, grad, state, lr=0.002, betas=(0.9, 0.999), eps=1e-08,
                    weight_decay=0, maximize=False):
    """The infinity norm tracks |m| instead of |g|: u ← max(β₂·u, |m| + ε)."""
    b1, b2 = betas
    g = grad.neg() if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    t = state.setdefault("step", 0) + 1
    state["step"] = t
    m = state.setdefault("exp_avg", torch.zeros_like(param))
    u = state.setdefault("exp_inf", torch.zeros_like(param))
    m.mul_(b1).add_((1 - b1) * g)
    u.copy_(torch.maximum(b2 * u, m.abs() + eps))
    param.sub_((lr / (1 - b1**t)) * m / u)


def adamax_beta2_after_max(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
                           weight_decay=0.0, maximize=False):
    """β₂ applied after the max: u ← β₂·max(u, |g| + ε)."""
    b1, b2 = betas
    g = -grad if maximize else grad
    g = g + weight_decay * param
    t = state["k"] = state.get("k", 0) + 1
    m = b1 * state.get("m", torch.zeros_like(param)) + (1 - b1) * g
    u = b2 * torch.where(state.get("u", torch.zeros_like(param)) > g.abs() + eps,
                         state.get("u", torch.zeros_like(param)), g.abs() + eps)
    state["m"], state["u"] = m, u
    param.copy_(param - lr / (1 - b1**t) * m / u)


def adamax_eps_times_lr(param, grad, state, **hp):
    """eps scaled by the learning rate inside the max: max(β₂·u, |g| + γ·ε)."""
    lr, (b1, b2) = hp.get("lr", 2e-3), hp.get("betas", (0.9, 0.999))
    eps = hp.get("eps", 1e-8)
    g = -grad if hp.get("maximize") else grad
    if hp.get("weight_decay"):
        g = g + hp["weight_decay"] * param
    if not state:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(param)
        state["exp_inf"] = torch.zeros_like(param)
    state["step"] += 1
    state["exp_avg"].lerp_(g, 1 - b1)
    state["exp_inf"] = torch.maximum(b2 * state["exp_inf"], g.abs() + lr * eps)
    clr = lr / (1 - b1 ** state["step"])
    param.addcdiv_(state["exp_avg"], state["exp_inf"], value=-clr)


# ---------------------------------------------------------------- NAdam
def nadam_mu_next_default_psi(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
                              weight_decay=0.0, momentum_decay=4e-3,
                              decoupled_weight_decay=False, maximize=False):
    """μ_{t+1} always uses ψ = 0.004 (the default), whatever momentum_decay is; μ_t is right."""
    b1, b2 = betas
    g = -grad if maximize else grad
    t = state["step"] = state.get("step", 0) + 1
    if weight_decay:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    mu = b1 * (1 - 0.5 * math.pow(0.96, t * momentum_decay))
    mu_next = b1 * (1 - 0.5 * math.pow(0.96, (t + 1) * 0.004))
    prod = state["mu_product"] = state.get("mu_product", 1.0) * mu
    m = state["exp_avg"] = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * g
    v = state["exp_avg_sq"] = (b2 * state.get("exp_avg_sq", torch.zeros_like(param))
                               + (1 - b2) * g * g)
    d = (v / (1 - b2**t)).sqrt() + eps
    param.sub_(lr * (1 - mu) / (1 - prod) * g / d + lr * mu_next / (1 - prod * mu_next) * m / d)


def nadam_no_product(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
                     weight_decay=0.0, momentum_decay=4e-3, decoupled_weight_decay=False,
                     maximize=False):
    """The product of the μ's is never kept: μ_t stands where Π_t belongs."""
    b1, b2 = betas
    if maximize:
        grad = -grad
    if not state:
        state["t"] = 0
        state["m"] = torch.zeros_like(param)
        state["v"] = torch.zeros_like(param)
    state["t"] += 1
    t = state["t"]
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.data.mul_(1 - lr * weight_decay)
        else:
            grad = grad + weight_decay * param
    mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_t1 = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    state["m"].mul_(b1).add_(grad, alpha=1 - b1)
    state["v"].mul_(b2).addcmul_(grad, grad, value=1 - b2)
    denom = (state["v"] / (1 - b2**t)).sqrt() + eps
    param.data.addcdiv_(grad, denom, value=-lr * (1 - mu_t) / (1 - mu_t))
    param.data.addcdiv_(state["m"], denom, value=-lr * mu_t1 / (1 - mu_t * mu_t1))


def nadam_next_product_for_gradient(param, grad, state, **hyper):
    """The gradient term is divided by 1 − Π_t·μ_{t+1} (the momentum term's), not 1 − Π_t."""
    lr, (b1, b2) = hyper.get("lr", 2e-3), hyper.get("betas", (0.9, 0.999))
    eps, psi = hyper.get("eps", 1e-8), hyper.get("momentum_decay", 4e-3)
    wd = hyper.get("weight_decay", 0.0)
    g = -grad if hyper.get("maximize", False) else grad
    if wd and hyper.get("decoupled_weight_decay", False):
        param.mul_(1 - lr * wd)
    elif wd:
        g = g + wd * param
    t = state.get("step", 0) + 1
    mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
    prod = state.get("prod", 1.0) * mu
    m = torch.lerp(state.get("exp_avg", torch.zeros_like(param)), g, 1 - b1)
    v = b2 * state.get("exp_avg_sq", torch.zeros_like(param)) + (1 - b2) * g**2
    state.update(step=t, prod=prod, exp_avg=m, exp_avg_sq=v)
    bc = 1 - prod * mu_next
    m_bar = (1 - mu) * g / bc + mu_next * m / bc
    param -= lr * m_bar / ((v / (1 - b2**t)).sqrt() + eps)


def nadam_product_of_next_mu(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
                             weight_decay=0.0, momentum_decay=4e-3,
                             decoupled_weight_decay=False, maximize=False):
    """The running product multiplies in μ_{t+1} instead of μ_t."""
    b1, b2 = betas
    g = -grad if maximize else grad
    if weight_decay:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    t = state["step"] = state.get("step", 0) + 1
    mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    prod = state["prod"] = state.get("prod", 1.0) * mu_next
    m = state["exp_avg"] = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * g
    v = state["exp_avg_sq"] = (b2 * state.get("exp_avg_sq", torch.zeros_like(param))
                               + (1 - b2) * g**2)
    d = (v / (1 - b2**t)).sqrt() + eps
    param -= lr * ((1 - mu) * g / (1 - prod) + mu_next * m / (1 - prod * mu_next)) / d


def radam_rho_inf_without_minus_one(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999),
                                    eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False,
                                    maximize=False):
    """ρ_∞ = 2/(1 − β₂): the SMA length off by one everywhere."""
    b1, b2 = betas
    g = -grad if maximize else grad
    t = state["step"] = state.get("step", 0) + 1
    if weight_decay:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    m = state["exp_avg"] = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * g
    v = state["exp_avg_sq"] = (b2 * state.get("exp_avg_sq", torch.zeros_like(param))
                               + (1 - b2) * g**2)
    rho_inf = 2 / (1 - b2)
    rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
    m_hat = m / (1 - b1**t)
    if rho > 5:
        r = ((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)) ** 0.5
        param -= lr * r * m_hat * (1 - b2**t) ** 0.5 / (v.sqrt() + eps)
    else:
        param -= lr * m_hat


def radam_unadapted_step_uses_raw_m(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999),
                                    eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False,
                                    maximize=False):
    """Before the switch, θ − γ·m: m's bias correction forgotten on the un-adapted steps."""
    b1, b2 = betas
    g = -grad if maximize else grad
    t = state["step"] = state.get("step", 0) + 1
    if weight_decay:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    m = state["exp_avg"] = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * g
    v = state["exp_avg_sq"] = (b2 * state.get("exp_avg_sq", torch.zeros_like(param))
                               + (1 - b2) * g**2)
    rho_inf = 2 / (1 - b2) - 1
    rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
    if rho > 5:
        r = ((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)) ** 0.5
        param -= lr * r * m / (1 - b1**t) * (1 - b2**t) ** 0.5 / (v.sqrt() + eps)
    else:
        param -= lr * m


def rprop_step_size_from_lr_each_step(param, grad, state, *, lr=1e-2, etas=(0.5, 1.2),
                                      step_sizes=(1e-6, 50), maximize=False):
    """The step sizes start again from lr on every step: only the last factor counts."""
    g = -grad if maximize else grad
    prev = state.get("prev", torch.zeros_like(param))
    prod = g * prev
    factor = torch.where(prod > 0, etas[1], torch.where(prod < 0, etas[0], torch.ones_like(g)))
    s = (float(lr) * factor).clamp(*step_sizes)
    g = torch.where(prod < 0, torch.zeros_like(g), g)
    param -= g.sign() * s
    state["prev"] = g.clone()


def rprop_clamp_before_scaling(param, grad, state, *, lr=1e-2, etas=(0.5, 1.2),
                               step_sizes=(1e-6, 50), maximize=False):
    """clamp(s)·η: the step size may leave [s_min, s_max] by one factor."""
    g = -grad if maximize else grad
    s = state.get("step_size", torch.full_like(param, float(lr)))
    prev = state.get("prev", torch.zeros_like(param))
    prod = g * prev
    factor = torch.where(prod > 0, etas[1], torch.where(prod < 0, etas[0], torch.ones_like(g)))
    s = s.clamp(*step_sizes) * factor
    g = torch.where(prod < 0, torch.zeros_like(g), g)
    param -= g.sign() * s
    state["step_size"], state["prev"] = s, g.clone()


def asgd_average_of_old_param(param, grad, state, *, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6,
                              weight_decay=0.0, maximize=False):
    """The average updated with θ before the step instead of after it."""
    g = -grad if maximize else grad
    t = state["step"] = state.get("step", 0) + 1
    eta = state.get("eta", float(lr))
    mu = state.get("mu", 1.0)
    if weight_decay:
        g = g + weight_decay * param
    ax = state.get("ax", torch.zeros_like(param))
    state["ax"] = ax + mu * (param - ax) if mu != 1 else param.clone()
    param.mul_(1 - lambd * eta).sub_(eta * g)
    state["eta"] = float(lr) / (1 + lambd * float(lr) * t) ** alpha
    state["mu"] = 1 / max(1, t - t0)


def asgd_alpha_outside(param, grad, state, *, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6,
                       weight_decay=0.0, maximize=False):
    """η = γ / (1 + (λγt)^α): the power on the wrong term."""
    g = -grad if maximize else grad
    t = state["step"] = state.get("step", 0) + 1
    eta = state.get("eta", float(lr))
    mu = state.get("mu", 1.0)
    if weight_decay:
        g = g + weight_decay * param
    param.mul_(1 - lambd * eta).sub_(eta * g)
    ax = state.get("ax", torch.zeros_like(param))
    state["ax"] = ax + mu * (param - ax) if mu != 1 else param.clone()
    state["eta"] = float(lr) / (1 + (lambd * float(lr) * t) ** alpha)
    state["mu"] = 1 / max(1, t - t0)


def _adafactor(param, grad, state, *, lr, beta2_decay, eps, d, weight_decay, maximize,
               eps_added=False, rms_of_grad=False):
    g = -grad if maximize else grad
    eps1 = torch.finfo(param.dtype).eps if eps[0] is None else eps[0]
    t = state["step"] = state.get("step", 0) + 1
    w = t**beta2_decay
    scale = (g if rms_of_grad else param).norm().item() / param.numel() ** 0.5
    alpha = max(eps[1], scale) * min(lr, t**-0.5)
    if weight_decay:
        param.mul_(1 - lr * weight_decay)
    sq = g * g + (eps1 if eps_added else 0.0)
    if g.dim() >= 2:
        r = state["row_var"] = torch.lerp(state.get("row_var", torch.zeros_like(g[..., :1])),
                                          sq.mean(-1, keepdim=True), w)
        c = state["col_var"] = torch.lerp(state.get("col_var", torch.zeros_like(g[..., :1, :])),
                                          sq.mean(-2, keepdim=True), w)
        v = r * c / r.mean(-2, keepdim=True).clamp(min=eps1)
    else:
        v = state["variance"] = torch.lerp(state.get("variance", torch.zeros_like(g)), sq, w)
    u = g / v.clamp(min=eps1**2 if not eps_added else 0.0).sqrt()
    param.sub_(alpha / max(1.0, u.norm().item() / (u.numel() ** 0.5 * d)) * u)


def adafactor_eps_added_to_g2(param, grad, state, *, lr=1e-2, beta2_decay=-0.8,
                              eps=(None, 1e-3), d=1.0, weight_decay=0.0, maximize=False):
    """The paper's ε₁: added to g² before the factors, where torch clamps v̂ at ε₁²."""
    _adafactor(param, grad, state, lr=lr, beta2_decay=beta2_decay, eps=eps, d=d,
               weight_decay=weight_decay, maximize=maximize, eps_added=True)


def adafactor_scale_by_rms_of_grad(param, grad, state, *, lr=1e-2, beta2_decay=-0.8,
                                   eps=(None, 1e-3), d=1.0, weight_decay=0.0, maximize=False):
    """The relative step scaled by RMS(g), not RMS(θ)."""
    _adafactor(param, grad, state, lr=lr, beta2_decay=beta2_decay, eps=eps, d=d,
               weight_decay=weight_decay, maximize=maximize, rms_of_grad=True)


def _muon(param, grad, state, *, lr, weight_decay, momentum, nesterov, ns_coefficients, eps,
          ns_steps, adjust_lr_fn, exact=False, no_normalize=False):
    a, b, c = ns_coefficients
    buf = state["momentum_buffer"] = torch.lerp(
        state.get("momentum_buffer", torch.zeros_like(grad)), grad, 1 - momentum)
    u = torch.lerp(grad, buf, momentum) if nesterov else buf
    if exact:  # the polar factor itself, by SVD: singular values exactly 1
        left, _, right = torch.linalg.svd(u.double(), full_matrices=False)
        x = left @ right
    else:
        x = u.bfloat16()
        x = x if no_normalize else x / x.norm().clamp(min=eps)
        for _ in range(ns_steps):
            A = x @ x.T
            x = a * x + (b * A + c * A @ A) @ x
    rows, cols = param.shape
    ratio = 0.2 * max(rows, cols) ** 0.5 if adjust_lr_fn == "match_rms_adamw" else \
        max(1.0, rows / cols) ** 0.5
    param.mul_(1 - lr * weight_decay).sub_(lr * ratio * x.to(param.dtype))


def muon_exact_polar_factor(param, grad, state, *, lr=1e-3, weight_decay=0.1, momentum=0.95,
                            nesterov=True, ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7,
                            ns_steps=5, adjust_lr_fn=None):
    """U·Vᵀ from an SVD: torch's five quintic steps leave singular values in about [0.7, 1.2]."""
    _muon(param, grad, state, lr=lr, weight_decay=weight_decay, momentum=momentum,
          nesterov=nesterov, ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps,
          adjust_lr_fn=adjust_lr_fn, exact=True)


def muon_unnormalized(param, grad, state, *, lr=1e-3, weight_decay=0.1, momentum=0.95,
                      nesterov=True, ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7,
                      ns_steps=5, adjust_lr_fn=None):
    """Newton–Schulz on G as it is, not G/‖G‖: it converges only while ‖G‖ is below about 1."""
    _muon(param, grad, state, lr=lr, weight_decay=weight_decay, momentum=momentum,
          nesterov=nesterov, ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps,
          adjust_lr_fn=adjust_lr_fn, no_normalize=True)


def _sparse_adam(param, grad, state, *, lr, betas, eps, maximize, own_count=False,
                 eps_inside=False):
    b1, b2 = betas
    g = grad.coalesce()
    g = -g if maximize else g
    state["step"] = state.get("step", 0) + 1
    m = state.setdefault("exp_avg", torch.zeros_like(param))
    v = state.setdefault("exp_avg_sq", torch.zeros_like(param))
    counts = state.setdefault("counts", torch.zeros_like(param))
    if g._nnz() == 0:
        return
    idx = tuple(g.indices())
    vals = g.values()
    m[idx] = b1 * m[idx] + (1 - b1) * vals
    v[idx] = b2 * v[idx] + (1 - b2) * vals**2
    counts[idx] += 1
    t = counts[idx] if own_count else torch.full_like(vals, state["step"])
    m_hat = m[idx] / (1 - b1**t)
    v_hat = v[idx] / (1 - b2**t)
    denom = (v_hat + eps).sqrt() if eps_inside else v[idx].sqrt() / (1 - b2**t).sqrt() + eps
    param[idx] -= lr * m_hat / denom


def sparse_adam_bias_correction_per_row(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999),
                                        eps=1e-8, maximize=False):
    """Each entry's own update count in the bias correction, not the step count."""
    _sparse_adam(param, grad, state, lr=lr, betas=betas, eps=eps, maximize=maximize,
                 own_count=True)


def sparse_adam_eps_inside_sqrt(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                maximize=False):
    """eps inside the square root of the corrected v."""
    _sparse_adam(param, grad, state, lr=lr, betas=betas, eps=eps, maximize=maximize,
                 eps_inside=True)


UNCATALOGUED = [
    ("gd", gd_step_too_long),
    ("gd", gd_in_float16),
    ("sgd", sgd_dampening_twice),
    ("sgd", sgd_momentum_clipped),
    ("sgd", sgd_scalar_shortcut),
    ("sgd", sgd_nesterov_old_buffer),
    ("adagrad", adagrad_sum_of_abs),
    ("adagrad", adagrad_eps_times_lr),
    ("adagrad", adagrad_skips_zero_gradients),
    ("adadelta", adadelta_u_from_gradient),
    ("adadelta", adadelta_restarts_after_10),
    ("adadelta", adadelta_lr_in_accumulator),
    ("rmsprop", rmsprop_alpha_only_first_step),
    ("rmsprop", rmsprop_momentum_of_raw_gradient),
    ("rmsprop", rmsprop_centered_on_abs),
    ("rmsprop", rmsprop_float32_state),
    ("adam", adam_bias_correction_t_squared),
    ("adam", adam_eps_times_lr),
    ("adam", adam_in_bfloat16),
    ("adam", adam_bc2_one_step_ahead),
    ("adamw", adamw_no_decay),
    ("adamw", adamw_decay_with_corrected_step),
    ("adamw", adamw_amsgrad_max_of_last_two),
    ("adamw", adamw_step_too_long),
    ("adamax", adamax_max_of_m),
    ("adamax", adamax_beta2_after_max),
    ("adamax", adamax_eps_times_lr),
    ("nadam", nadam_mu_next_default_psi),
    ("nadam", nadam_no_product),
    ("nadam", nadam_next_product_for_gradient),
    ("nadam", nadam_product_of_next_mu),
    ("radam", radam_rho_inf_without_minus_one),
    ("radam", radam_unadapted_step_uses_raw_m),
    ("rprop", rprop_step_size_from_lr_each_step),
    ("rprop", rprop_clamp_before_scaling),
    ("asgd", asgd_average_of_old_param),
    ("asgd", asgd_alpha_outside),
    ("adafactor", adafactor_eps_added_to_g2),
    ("adafactor", adafactor_scale_by_rms_of_grad),
    ("muon", muon_exact_polar_factor),
    ("muon", muon_unnormalized),
    ("sparse_adam", sparse_adam_bias_correction_per_row),
    ("sparse_adam", sparse_adam_eps_inside_sqrt),
]
"""(optimizer, step function) for every function above."""
