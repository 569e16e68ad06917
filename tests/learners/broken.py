"""Step functions that misbehave, each in one way, for the checker's bad-behaviour tests."""

import time

import torch

_SHARED: dict = {}


def raises(param, grad, state, *, lr=1e-3):
    helper = {"lr": lr}
    return helper["learning_rate"]  # KeyError in the learner's own code


def makes_nan(param, grad, state, *, lr=1e-3):
    param.sub_(lr * grad / (grad - grad))  # 0/0


def changes_shape(param, grad, state, *, lr=1e-3):
    param.data = (param - lr * grad).reshape(-1)


def changes_dtype(param, grad, state, *, lr=1e-3):
    param.data = (param - lr * grad).to(torch.float16)


def changes_device(param, grad, state, *, lr=1e-3):
    param.data = (param - lr * grad).cpu()


def changes_grad(param, grad, state, *, lr=1e-3):
    grad.mul_(lr)
    param.sub_(grad)


def returns_new(param, grad, state, *, lr=1e-3):
    return param - lr * grad


def rebinds(param, grad, state, *, lr=1e-3):
    param = param - lr * grad


def hangs(param, grad, state, *, lr=1e-3):
    while True:
        pass


def sleeps(param, grad, state, *, lr=1e-3):
    time.sleep(60)


def shared_state(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False):
    buf = _SHARED.get("b")
    buf = grad.clone() if buf is None else momentum * buf + grad
    _SHARED["b"] = buf
    param.sub_(lr * (buf if momentum else grad))


def uses_torch_optim(param, grad, state, *, lr=1e-3):
    p = param.clone().requires_grad_()
    opt = torch.optim.SGD([p], lr=lr)
    p.grad = grad.clone()
    opt.step()
    param.copy_(p.detach())


def uses_fused_kernel(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                      weight_decay=0.0, amsgrad=False, maximize=False,
                      decoupled_weight_decay=False):
    state.setdefault("step", torch.tensor(0.0))
    torch._fused_adam_([param], [grad], [], [], [], [state["step"]], lr=lr, beta1=betas[0],
                       beta2=betas[1], weight_decay=weight_decay, eps=eps, amsgrad=amsgrad,
                       maximize=maximize)


def _hidden_helper(param, grad, state, lr):
    mod = getattr(torch, "op" + "tim")
    p = param.clone().requires_grad_()
    p.grad = grad.clone()
    getattr(mod, "S" + "GD")([p], lr=lr).step()
    param.copy_(p.detach())


def uses_torch_optim_obfuscated(param, grad, state, *, lr=1e-3):
    _hidden_helper(param, grad, state, lr)


def uses_reference(param, grad, state, *, lr=1e-3):
    import importlib

    ref = importlib.import_module("optimlab" + ".reference")
    ref.gd_step(param, grad, state, lr=lr)


def swallows_everything(param, grad, state, *, lr=1e-3):
    try:  # noqa: SIM105  (written the way a learner hiding an error would)
        _hidden_helper(param, grad, state, lr)
    except BaseException:
        pass


def no_maximize_parameter(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                          weight_decay=0.0, nesterov=False):
    param.sub_(lr * grad)


def float32_state(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                  weight_decay=0.0, amsgrad=False, maximize=False,
                  decoupled_weight_decay=False):
    """Right algorithm, state made with ``torch.zeros(param.shape)``: float32 whatever the
    parameter's dtype, and in-place updates keep it so."""
    b1, b2 = betas
    if not state:
        state["step"] = 0
        state["exp_avg"] = torch.zeros(param.shape)
        state["exp_avg_sq"] = torch.zeros(param.shape)
    state["step"] += 1
    t = state["step"]
    state["exp_avg"].mul_(b1).add_(grad, alpha=1 - b1)
    state["exp_avg_sq"].mul_(b2).addcmul_(grad, grad, value=1 - b2)
    v_hat = state["exp_avg_sq"] / (1 - b2**t)
    param.sub_(lr / (1 - b1**t) * state["exp_avg"] / (v_hat.sqrt() + eps))


def fused_kernel_by_built_name(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                               weight_decay=0.0, amsgrad=False, maximize=False,
                               decoupled_weight_decay=False):
    """torch's fused Adam kernel, reached through getattr with a name no scan can read."""
    kernel = getattr(torch, "_" + "fus" + "ed_ad" + "am_")
    state.setdefault("step", torch.tensor(0.0))
    state.setdefault("exp_avg", torch.zeros_like(param))
    state.setdefault("exp_avg_sq", torch.zeros_like(param))
    kernel([param], [grad], [state["exp_avg"]], [state["exp_avg_sq"]], [], [state["step"]],
           lr=lr, beta1=betas[0], beta2=betas[1], weight_decay=weight_decay, eps=eps,
           amsgrad=amsgrad, maximize=maximize)


def fused_kernel_through_aten(param, grad, state, *, lr=1e-3):
    """torch's fused SGD kernel, through torch.ops.aten."""
    op = getattr(torch.ops.aten, "_fused_" + "sgd_")
    op([param], [grad], [], weight_decay=0.0, momentum=0.0, lr=lr, dampening=0.0,
       nesterov=False, maximize=False, is_first_step=True)


def functional_api(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                   weight_decay=0.0, amsgrad=False, maximize=False,
                   decoupled_weight_decay=False):
    """torch's functional Adam (torch.optim.adam.adam), imported inside the function."""
    import importlib

    functional = importlib.import_module("torch.optim.adam").adam
    state.setdefault("step", torch.tensor(0.0))
    state.setdefault("exp_avg", torch.zeros_like(param))
    state.setdefault("exp_avg_sq", torch.zeros_like(param))
    functional([param], [grad], [state["exp_avg"]], [state["exp_avg_sq"]], [], [state["step"]],
               foreach=False, amsgrad=amsgrad, beta1=betas[0], beta2=betas[1], lr=lr,
               weight_decay=weight_decay, eps=eps, maximize=maximize)


def keeps_grad(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
               nesterov=False, maximize=False):
    """SGD with momentum whose first buffer is `grad` itself, not a copy: right when every
    call gets a fresh gradient, wrong in training, where `.grad` is refilled in place."""
    g = -grad if maximize else grad
    if weight_decay:
        g = g + weight_decay * param
    if momentum:
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = g
        else:
            state["momentum_buffer"].mul_(momentum).add_(g, alpha=1 - dampening)
        g = g + momentum * state["momentum_buffer"] if nesterov else state["momentum_buffer"]
    param.sub_(lr * g)


def zero_step_in_place(param, grad, state, *, lr=1e-3):
    """Writes to param every step, but the step it computes is zero."""
    param.sub_(0.0 * lr * grad)


def adam_float32_step_count(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0, amsgrad=False, maximize=False):
    """Right but for a float32 step count in the bias corrections (torch.tensor(0.0))."""
    b1, b2 = betas
    if not state:
        state["step"] = torch.tensor(0.0)
        state["m"] = torch.zeros_like(param)
        state["v"] = torch.zeros_like(param)
    state["step"] += 1
    g = -grad if maximize else grad
    state["m"].mul_(b1).add_(g, alpha=1 - b1)
    state["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
    bc1, bc2 = 1 - b1 ** state["step"], 1 - b2 ** state["step"]
    param.sub_(lr * (state["m"] / bc1) / ((state["v"] / bc2).sqrt() + eps))


def adam_rebinds_state(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                       weight_decay=0.0, amsgrad=False, maximize=False):
    """Right on the first step; `state = {...}` makes a dict the next call never sees."""
    b1, b2 = betas
    if not state:
        state = {"step": 0, "m": torch.zeros_like(param), "v": torch.zeros_like(param)}
    state["step"] += 1
    t = state["step"]
    state["m"].mul_(b1).add_(grad, alpha=1 - b1)
    state["v"].mul_(b2).addcmul_(grad, grad, value=1 - b2)
    param.sub_(lr / (1 - b1**t) * state["m"] / ((state["v"] / (1 - b2**t)).sqrt() + eps))
