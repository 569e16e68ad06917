"""Step functions right for each flag alone and wrong for two flags together: each passes every
visible group, and the hidden twins of each group (one flag at a time); only a group's
*interactions* with the groups before it (``optimlab.optimizers.cases.interactions``) catch it.
Written independently, from a red-team pass on the checker. None imports optimlab."""
import torch

# (optimizer, the group whose hidden check must fail, function): see the bottom of the file


def rmsprop_centered_drops_momentum(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8,
                                    weight_decay=0.0, momentum=0.0, centered=False,
                                    maximize=False):
    """The centered branch steps directly and forgets the momentum buffer."""
    if not state:
        state["square_avg"] = torch.zeros_like(param)
        state["grad_avg"] = torch.zeros_like(param)
        state["momentum_buffer"] = torch.zeros_like(param)
    g = -grad if maximize else grad
    if weight_decay:
        g = g + weight_decay * param
    sa = state["square_avg"]
    sa.mul_(alpha).addcmul_(g, g, value=1 - alpha)
    if centered:
        ga = state["grad_avg"]
        ga.mul_(alpha).add_(g, alpha=1 - alpha)
        param.addcdiv_(g, (sa - ga * ga).sqrt() + eps, value=-lr)
        return
    avg = sa.sqrt() + eps
    if momentum > 0:
        buf = state["momentum_buffer"]
        buf.mul_(momentum).addcdiv_(g, avg)
        param.sub_(lr * buf)
    else:
        param.addcdiv_(g, avg, value=-lr)


def adam_amsgrad_forgets_maximize(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999),
                                  eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False):
    """maximize handled only in the non-amsgrad branch."""
    b1, b2 = betas
    if not state:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(param)
        state["exp_avg_sq"] = torch.zeros_like(param)
        state["max_exp_avg_sq"] = torch.zeros_like(param)
    state["step"] += 1
    t = state["step"]
    g = (grad if amsgrad or not maximize else -grad) + weight_decay * param
    state["exp_avg"].mul_(b1).add_(g, alpha=1 - b1)
    state["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
    v = state["exp_avg_sq"]
    if amsgrad:
        torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        v = state["max_exp_avg_sq"]
    param.sub_(lr / (1 - b1**t) * state["exp_avg"] / ((v / (1 - b2**t)).sqrt() + eps))


def sgd_nesterov_forgets_maximize(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                                  weight_decay=0.0, nesterov=False, maximize=False):
    """The Nesterov look-ahead uses +grad even when maximizing."""
    g = (-grad if maximize else grad) + weight_decay * param
    if momentum:
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = g.clone()
        else:
            state["momentum_buffer"].mul_(momentum).add_(g, alpha=1 - dampening)
        buf = state["momentum_buffer"]
        g = grad + weight_decay * param + momentum * buf if nesterov else buf
    param.sub_(lr * g)


def nadam_decoupled_ignored_when_maximizing(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999),
                                            eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
                                            decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    state["t"] = t = state.get("t", 0) + 1
    if "m" not in state:
        state["m"] = torch.zeros_like(param)
        state["v"] = torch.zeros_like(param)
        state["p"] = 1.0

    def mu(k):
        return b1 * (1 - 0.5 * 0.96 ** (k * momentum_decay))

    if maximize:
        g = -grad + weight_decay * param  # forgot the decoupled case here
    else:
        g = grad
        if weight_decay:
            if decoupled_weight_decay:
                param.mul_(1 - lr * weight_decay)
            else:
                g = g + weight_decay * param
    state["p"] *= mu(t)
    prod = state["p"]
    state["m"].mul_(b1).add_(g * (1 - b1))
    state["v"].mul_(b2).add_(g * g * (1 - b2))
    d = (state["v"] / (1 - b2**t)).sqrt() + eps
    param.sub_(lr * ((1 - mu(t)) / (1 - prod) * g
                     + mu(t + 1) / (1 - prod * mu(t + 1)) * state["m"]) / d)


def adamw_amsgrad_forgets_maximize(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                   weight_decay=1e-2, amsgrad=False, maximize=False):
    """Negates the update for maximize only when amsgrad is off."""
    b1, b2 = betas
    if not state:
        state["t"] = 0
        state["m"] = torch.zeros_like(param)
        state["v"] = torch.zeros_like(param)
        state["vm"] = torch.zeros_like(param)
    state["t"] += 1
    t = state["t"]
    param.mul_(1 - lr * weight_decay)
    state["m"].mul_(b1).add_(grad, alpha=1 - b1)
    state["v"].mul_(b2).addcmul_(grad, grad, value=1 - b2)
    if amsgrad:
        torch.maximum(state["vm"], state["v"], out=state["vm"])
        param.sub_(lr / (1 - b1**t) * state["m"] / ((state["vm"] / (1 - b2**t)).sqrt() + eps))
    else:
        sign = -1 if maximize else 1
        param.sub_(sign * lr / (1 - b1**t) * state["m"]
                   / ((state["v"] / (1 - b2**t)).sqrt() + eps))


WRONG_TOGETHER = [
    ("rmsprop", "momentum", rmsprop_centered_drops_momentum),
    ("adam", "maximize", adam_amsgrad_forgets_maximize),
    ("sgd", "nesterov", sgd_nesterov_forgets_maximize),
    ("nadam", "maximize", nadam_decoupled_ignored_when_maximizing),
    ("adamw", "maximize", adamw_amsgrad_forgets_maximize),
]
