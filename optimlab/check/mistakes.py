"""A catalogue of common wrong versions of each optimizer, written as step functions.

When a learner's trajectory fails and matches one of these on the same gradient sequence, the
checker names the mistake and gives its hint (never the code). Each entry changes one thing.
The flawed steps are written plainly (no in-place tricks) so they read like learners' code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class Mistake:
    """A named wrong version of an optimizer, with a hint that teaches without giving code."""

    key: str
    name: str
    hint: str
    step_fn: Callable[..., Any] | None = None
    error_pattern: str | None = None
    """For mistakes that crash rather than mislead: a fragment of the error message."""


def _t(state: dict, flaw: str) -> int:
    """Learner-style step counter: an int, first step 1 (or 2 with the off-by-one flaw)."""
    state["t"] = state.get("t", 0) + 1
    return state["t"] + (1 if flaw == "bc_off_by_one" else 0)


def _val(x: Any) -> Any:
    return x.item() if isinstance(x, Tensor) else x


def _signed(grad: Tensor, maximize: bool, flaw: str) -> Tensor:
    return -grad if maximize and flaw != "maximize_ignored" else grad


def _update(param: Tensor, new: Tensor, flaw: str) -> None:
    if flaw == "sign_flipped":
        new = 2 * param - new
    param.copy_(new)


def _l2(grad: Tensor, param: Tensor, wd: float, flaw: str) -> Tensor:
    if wd == 0 or flaw in ("decay_after_update", "decoupled_instead_of_l2"):
        return grad
    return grad + wd * param


def _post_decay(param: Tensor, wd: float, lr: Any, flaw: str, decoupled: bool) -> None:
    """Flaws that put weight decay in the wrong place, applied after the update."""
    if wd == 0:
        return
    if flaw == "decay_after_update":
        if decoupled:
            param.mul_(1 - _val(lr) * wd)
        else:
            param.sub_(_val(lr) * wd * param)


# --------------------------------------------------------------------------- SGD and GD
def _sgd(param, grad, state, *, flaw, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
         nesterov=False, maximize=False):
    lr = _val(lr)
    g = _signed(grad, maximize, flaw)
    if flaw == "decoupled_instead_of_l2" and weight_decay:
        param.mul_(1 - lr * weight_decay)
    g = _l2(g, param, weight_decay, flaw)
    if momentum != 0:
        if flaw == "sutskever_lr_in_buffer":
            v = state.get("v", torch.zeros_like(param))
            v = momentum * v + lr * g
            state["v"] = v
            step = g * lr + momentum * v if nesterov else v
            _update(param, param - step, flaw)
            return
        if "b" not in state:
            b = (1 - dampening) * g if flaw == "dampening_on_first_step" else g.clone()
        elif flaw == "ema_momentum":
            b = momentum * state["b"] + (1 - momentum) * g
        else:
            b = momentum * state["b"] + (1 - dampening) * g
        state["b"] = b
        g = g + momentum * b if nesterov and flaw != "nesterov_ignored" else b
    _update(param, param - lr * g, flaw)
    _post_decay(param, weight_decay, lr, flaw, decoupled=False)


# --------------------------------------------------------------------------- Adagrad
def _adagrad(param, grad, state, *, flaw, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
             initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    lr = _val(lr)
    t = _t(state, flaw)
    g = _l2(_signed(grad, maximize, flaw), param, weight_decay, flaw)
    init = 0.0 if flaw == "initial_accumulator_ignored" else initial_accumulator_value
    s = state.get("s", torch.full_like(param, init))
    decay_t = t if flaw == "lr_decay_off_by_one" else t - 1
    clr = lr if flaw == "lr_decay_ignored" else lr / (1 + decay_t * lr_decay)
    new_s = s + g * g
    if flaw == "eps_inside_sqrt":
        denom = torch.sqrt(new_s + eps)
    elif flaw == "accumulate_after_update":
        denom = torch.sqrt(s) + eps
    else:
        denom = torch.sqrt(new_s) + eps
    state["s"] = new_s
    _update(param, param - clr * g / denom, flaw)
    _post_decay(param, weight_decay, lr, flaw, decoupled=False)


# --------------------------------------------------------------------------- Adadelta
def _adadelta(param, grad, state, *, flaw, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0,
              maximize=False):
    lr = _val(lr)
    g = _l2(_signed(grad, maximize, flaw), param, weight_decay, flaw)
    v = state.get("v", torch.zeros_like(param))
    u = state.get("u", torch.zeros_like(param))
    w = 1 - rho if flaw == "rho_swapped" else rho
    v = w * v + (1 - w) * g * g
    if flaw == "eps_outside_roots":
        delta = (torch.sqrt(u) + eps) / (torch.sqrt(v) + eps) * g
    else:
        delta = torch.sqrt(u + eps) / torch.sqrt(v + eps) * g
    state["v"], state["u"] = v, w * u + (1 - w) * delta * delta
    step = delta if flaw == "lr_ignored" else lr * delta
    _update(param, param - step, flaw)
    _post_decay(param, weight_decay, lr, flaw, decoupled=False)


# --------------------------------------------------------------------------- RMSprop
def _rmsprop(param, grad, state, *, flaw, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
             momentum=0.0, centered=False, maximize=False):
    lr = _val(lr)
    t = _t(state, flaw)
    g = _l2(_signed(grad, maximize, flaw), param, weight_decay, flaw)
    a = 1 - alpha if flaw == "alpha_swapped" else alpha
    v = a * state.get("v", torch.zeros_like(param)) + (1 - a) * g * g
    state["v"] = v
    if flaw == "bias_correction_added":
        v = v / (1 - alpha**t)
    if centered and flaw != "centered_ignored":
        gbar = a * state.get("gbar", torch.zeros_like(param)) + (1 - a) * g
        state["gbar"] = gbar
        v = v - (gbar if flaw == "centered_mean_not_squared" else gbar * gbar)
    denom = torch.sqrt(v + eps) if flaw == "eps_inside_sqrt" else torch.sqrt(v) + eps
    if momentum > 0:
        if flaw == "lr_in_momentum_buffer":
            b = momentum * state.get("b", torch.zeros_like(param)) + lr * g / denom
            state["b"] = b
            _update(param, param - b, flaw)
            return
        b = momentum * state.get("b", torch.zeros_like(param)) + g / denom
        state["b"] = b
        _update(param, param - lr * b, flaw)
    else:
        _update(param, param - lr * g / denom, flaw)
    _post_decay(param, weight_decay, lr, flaw, decoupled=False)


# --------------------------------------------------------------------------- Adam / AdamW
def _adam(param, grad, state, *, flaw, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
          amsgrad=False, maximize=False, decoupled_weight_decay=False):
    lr = _val(lr)
    b1, b2 = (_val(b) for b in betas)
    t = _t(state, flaw)
    g = _signed(grad, maximize, flaw)
    decoupled = decoupled_weight_decay
    if flaw == "l2_instead_of_decoupled":
        decoupled = False
    elif flaw == "decoupled_instead_of_l2":
        decoupled = True
    if weight_decay and flaw != "decay_after_update":
        if decoupled:
            wd_lr = 1.0 if flaw == "decoupled_decay_without_lr" else lr
            param.mul_(1 - wd_lr * weight_decay)
        else:
            g = g + weight_decay * param
    m = b1 * state.get("m", torch.zeros_like(param)) + (1 - b1) * g
    v = b2 * state.get("v", torch.zeros_like(param)) + (1 - b2) * g * g
    state["m"], state["v"] = m, v
    if amsgrad and flaw != "amsgrad_ignored":
        vmax = torch.maximum(state.get("vmax", torch.zeros_like(param)),
                             v / (1 - b2**t) if flaw == "amsgrad_max_of_corrected" else v)
        state["vmax"] = vmax
        v_used = vmax
    else:
        v_used = v
    if flaw == "no_bias_correction":
        m_hat, v_hat = m, v_used
    elif flaw == "beta1_in_second_moment":
        m_hat, v_hat = m / (1 - b1**t), v_used / (1 - b1**t)
    else:
        m_hat, v_hat = m / (1 - b1**t), v_used / (1 - b2**t)
    if flaw == "amsgrad_max_of_corrected" and amsgrad:
        v_hat = v_used
    if flaw == "eps_inside_sqrt":
        denom = torch.sqrt(v_hat + eps)
    elif flaw == "eps_before_bias_correction":
        denom = (torch.sqrt(v_used) + eps) / (1 - b2**t) ** 0.5
    else:
        denom = torch.sqrt(v_hat) + eps
    _update(param, param - lr * m_hat / denom, flaw)
    _post_decay(param, weight_decay, lr, flaw, decoupled)


def _adamw(param, grad, state, *, flaw, weight_decay=1e-2, **kw):
    _adam(param, grad, state, flaw=flaw, weight_decay=weight_decay, decoupled_weight_decay=True,
          **kw)


# --------------------------------------------------------------------------- Adamax
def _adamax(param, grad, state, *, flaw, lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
            weight_decay=0.0, maximize=False):
    lr = _val(lr)
    b1, b2 = betas
    t = _t(state, flaw)
    g = _l2(_signed(grad, maximize, flaw), param, weight_decay, flaw)
    m = b1 * state.get("m", torch.zeros_like(param)) + (1 - b1) * g
    u_prev = state.get("u", torch.zeros_like(param))
    if flaw == "no_eps" or flaw == "eps_outside_max":
        u = torch.maximum(b2 * u_prev, g.abs())
    elif flaw == "beta2_ignored":
        u = torch.maximum(u_prev, g.abs() + eps)
    else:
        u = torch.maximum(b2 * u_prev, g.abs() + eps)
    state["m"], state["u"] = m, u
    denom = u + eps if flaw == "eps_outside_max" else u
    if flaw == "bias_correction_on_u":
        denom = denom / (1 - b2**t)
    clr = lr if flaw == "no_bias_correction" else lr / (1 - b1**t)
    _update(param, param - clr * m / denom, flaw)
    _post_decay(param, weight_decay, lr, flaw, decoupled=False)


# --------------------------------------------------------------------------- NAdam
def _nadam(param, grad, state, *, flaw, lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
           weight_decay=0.0, momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
    lr = _val(lr)
    b1, b2 = betas
    t = _t(state, flaw)
    g = _signed(grad, maximize, flaw)
    decoupled = decoupled_weight_decay
    if flaw == "l2_instead_of_decoupled":
        decoupled = False
    if weight_decay and flaw != "decay_after_update":
        if decoupled:
            param.mul_(1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    psi = 4e-3 if flaw == "momentum_decay_ignored" else momentum_decay

    def mu(k: int) -> float:
        if flaw == "no_momentum_schedule":
            return b1
        return b1 * (1 - 0.5 * 0.96 ** (k * psi))

    mu_t = mu(t)
    mu_next = mu_t if flaw == "mu_next_is_mu_t" else mu(t + 1)
    prod = state.get("prod", 1.0) * mu_t
    state["prod"] = prod
    m = b1 * state.get("m", torch.zeros_like(param)) + (1 - b1) * g
    v = b2 * state.get("v", torch.zeros_like(param)) + (1 - b2) * g * g
    state["m"], state["v"] = m, v
    v_hat = v / (1 - b2**t)
    denom = torch.sqrt(v_hat + eps) if flaw == "eps_inside_sqrt" else torch.sqrt(v_hat) + eps
    new = param - lr * (1 - mu_t) / (1 - prod) * g / denom
    new = new - lr * mu_next / (1 - prod * mu_next) * m / denom
    _update(param, new, flaw)
    _post_decay(param, weight_decay, lr, flaw, decoupled)


# --------------------------------------------------------------------------- the catalogue
SHARED_STATE = Mistake(
    "shared_state", "state shared across tensors",
    "Each parameter tensor gets its own `state` dict; keep that tensor's memory there, not in a "
    "global or a default argument.",
    error_pattern=r"(must match the size|doesn't match the broadcast shape|size of tensor)",
)
NOT_IN_PLACE = Mistake(
    "returned_new_tensor", "a new tensor returned instead of an in-place update",
    "Update `param` itself: `param.add_(...)`, `param.sub_(...)`, `param.copy_(...)` or "
    "`param -= ...`. `param = param - ...` only rebinds your local name.",
)

_COMMON = {
    "sign_flipped": ("sign flipped (gradient ascent)",
                     "The step goes *against* the gradient: θ ← θ − γ·(…)."),
    "maximize_ignored": ("`maximize` ignored",
                         "With maximize=True, torch negates the gradient first, before weight "
                         "decay and everything else."),
    "decay_after_update": ("weight decay applied after the update",
                           "torch applies weight decay before the rest of the step (L2: added to "
                           "the gradient; decoupled: θ·(1 − γλ) first)."),
}
_SPECIFIC: dict[str, dict[str, tuple[str, str]]] = {
    "gd": {},
    "sgd": {
        "decoupled_instead_of_l2": ("decoupled decay where L2 is wanted",
                                    "SGD's weight_decay adds λ·θ to the gradient (L2) before "
                                    "momentum."),
        "dampening_on_first_step": ("dampening applied on the first step",
                                    "On the first step torch sets the buffer to the gradient "
                                    "itself, with no (1 − dampening) factor."),
        "ema_momentum": ("momentum written as an EMA (1 − μ)·g",
                         "torch's buffer is μ·b + (1 − dampening)·g: the gradient is not scaled by "
                         "(1 − μ)."),
        "nesterov_ignored": ("`nesterov` ignored",
                             "With nesterov=True torch steps along g + μ·b, not along b."),
        "sutskever_lr_in_buffer": ("Sutskever-form momentum with the buffer scaled by lr",
                                   "torch's buffer carries no learning rate: b ← μ·b + g, then "
                                   "θ ← θ − γ·(…). The two forms agree only while lr is constant."),
    },
    "adagrad": {
        "eps_inside_sqrt": ("eps inside the square root",
                            "torch adds eps after the root: √sum + ε."),
        "lr_decay_off_by_one": ("lr_decay off by one step",
                                "The decayed rate is γ / (1 + (t − 1)·η): no decay on step 1."),
        "lr_decay_ignored": ("`lr_decay` ignored", "γ̃ = γ / (1 + (t − 1)·lr_decay)."),
        "initial_accumulator_ignored": ("`initial_accumulator_value` ignored",
                                        "The sum of squares starts at "
                                        "initial_accumulator_value, not 0."),
        "accumulate_after_update": ("sum updated after it is used",
                                    "Add g² to the sum first, then divide by its root."),
    },
    "adadelta": {
        "eps_outside_roots": ("eps outside the square roots",
                              "Adadelta puts eps *inside* both roots: √(u + ε) / √(v + ε)."),
        "lr_ignored": ("`lr` ignored", "torch multiplies the step by lr (default 1.0)."),
        "rho_swapped": ("rho and 1 − rho swapped", "v ← ρ·v + (1 − ρ)·g²: ρ weighs the past."),
    },
    "rmsprop": {
        "bias_correction_added": ("bias correction added",
                                  "torch's RMSprop has no bias correction: divide by √v + ε."),
        "eps_inside_sqrt": ("eps inside the square root", "torch adds eps after the root."),
        "alpha_swapped": ("alpha and 1 − alpha swapped",
                          "v ← α·v + (1 − α)·g²: alpha weighs the past."),
        "centered_ignored": ("`centered` ignored",
                             "centered=True subtracts the square of an EMA of g from v."),
        "centered_mean_not_squared": ("centered: the mean gradient not squared",
                                      "Subtract ḡ², the square of the EMA of g."),
        "lr_in_momentum_buffer": ("lr inside the momentum buffer",
                                  "torch's buffer is μ·b + g/d, and the step is γ·b: lr stays out "
                                  "of the buffer."),
    },
    "adam": {
        "no_bias_correction": ("bias correction missing",
                               "Divide m by 1 − β₁ᵗ and v by 1 − β₂ᵗ: both start at zero."),
        "bc_off_by_one": ("bias correction off by one step",
                          "The step count t is 1 on the first step."),
        "beta1_in_second_moment": ("β₁ used in the second-moment correction",
                                   "v̂ = v / (1 − β₂ᵗ): the second moment has its own β."),
        "eps_inside_sqrt": ("eps inside the square root",
                            "torch adds eps after the root of the corrected v: √v̂ + ε."),
        "eps_before_bias_correction": ("eps added before bias correction",
                                       "Correct v first, take the root, then add eps."),
        "amsgrad_max_of_corrected": ("AMSGrad: max of the corrected v̂",
                                     "torch keeps the running max of the *uncorrected* v, then "
                                     "corrects it."),
        "amsgrad_ignored": ("`amsgrad` ignored",
                            "With amsgrad=True, normalise by the running max of v."),
        "decoupled_instead_of_l2": ("decoupled decay where L2 is wanted",
                                    "Adam's weight_decay adds λ·θ to the gradient before the "
                                    "moments (L2); θ·(1 − γλ) is AdamW."),
        "l2_instead_of_decoupled": ("L2 decay where decoupled decay is wanted",
                                    "With decoupled_weight_decay, multiply θ by (1 − γλ) before "
                                    "the moments; do not add λ·θ to the gradient."),
    },
    "adamax": {
        "no_eps": ("Adamax without eps",
                   "torch uses max(β₂·u, |g| + ε): without eps, a coordinate that never had a "
                   "gradient gives 0/0."),
        "eps_outside_max": ("eps added to the denominator instead of inside the max",
                            "eps belongs inside the max: max(β₂·u, |g| + ε)."),
        "beta2_ignored": ("β₂ not applied to u", "u ← max(β₂·u, |g| + ε)."),
        "no_bias_correction": ("bias correction missing", "The step size is γ / (1 − β₁ᵗ)."),
        "bias_correction_on_u": ("bias correction applied to u",
                                 "Only m is corrected in Adamax; the max needs none."),
        "bc_off_by_one": ("bias correction off by one step",
                          "The step count t is 1 on the first step."),
    },
    "nadam": {
        "no_momentum_schedule": ("NAdam without the momentum schedule",
                                 "torch uses μ_t = β₁·(1 − 0.5·0.96^(t·ψ)) and the running "
                                 "product Π of the μ's, not a constant β₁."),
        "mu_next_is_mu_t": ("μ_t used where μ_{t+1} belongs",
                            "The momentum term looks one step ahead: μ_{t+1} / (1 − Π_t·μ_{t+1})."),
        "momentum_decay_ignored": ("`momentum_decay` ignored",
                                   "ψ in μ_t = β₁·(1 − 0.5·0.96^(t·ψ)) is momentum_decay."),
        "eps_inside_sqrt": ("eps inside the square root", "d = √v̂ + ε."),
        "l2_instead_of_decoupled": ("L2 decay where decoupled decay is wanted",
                                    "With decoupled_weight_decay, multiply θ by (1 − γλ) before "
                                    "the moments."),
        "bc_off_by_one": ("step count off by one", "The step count t is 1 on the first step."),
    },
}
_SPECIFIC["adamw"] = {
    k: _SPECIFIC["adam"][k]
    for k in ("no_bias_correction", "bc_off_by_one", "eps_inside_sqrt", "amsgrad_max_of_corrected",
              "beta1_in_second_moment", "amsgrad_ignored")
}
_SPECIFIC["adamw"]["l2_instead_of_decoupled"] = (
    "L2 decay where decoupled decay is wanted",
    "AdamW multiplies θ by (1 − γλ) before the moments; it does not add λ·θ to the gradient.",
)
_SPECIFIC["adamw"]["decoupled_decay_without_lr"] = (
    "decoupled decay not scaled by lr", "torch's AdamW decays by θ·(1 − γ·λ), with γ = lr.")

def _tweaked(base: Callable[..., Any],
             tweak: Callable[[dict, dict[str, Any]], None]) -> Callable[..., Any]:
    """The optimizer right in every way, but for what ``tweak(state, hyper)`` does to the
    hyperparameters it is called with."""

    def step(param: Tensor, grad: Tensor, state: dict, **hyper: Any) -> None:
        tweak(state, hyper)
        base(param, grad, state, flaw="none", **hyper)

    return step


LR_CACHED = ("lr read once, on the first step",
             "Use the `lr` passed on every call: a learning-rate scheduler changes it between "
             "steps, so keep nothing computed from it in `state`.")


def _keep_first_lr(state: dict, hyper: dict[str, Any]) -> None:
    hyper["lr"] = state.setdefault("first_lr", hyper["lr"])


MAXIMIZE_AFTER_DECAY = ("`maximize` applied after L2 weight decay",
                        "torch negates the gradient first and then adds λ·θ: the decay still "
                        "pulls θ towards 0 when maximizing.")


def _negate_after_decay(state: dict, hyper: dict[str, Any]) -> None:
    """−(g + λθ) where torch has −g + λθ: torch's step with −λ."""
    if hyper.get("maximize") and not hyper.get("decoupled_weight_decay"):
        hyper["weight_decay"] = -hyper.get("weight_decay", 0.0)


_FAMILY = {"gd": _sgd, "sgd": _sgd, "adagrad": _adagrad, "adadelta": _adadelta,
           "rmsprop": _rmsprop, "adam": _adam, "adamw": _adamw, "adamax": _adamax,
           "nadam": _nadam}


def catalogue(name: str) -> list[Mistake]:
    """The catalogued mistakes for one optimizer, the generic ones included."""
    base = _FAMILY[name]
    entries = {**_COMMON, **_SPECIFIC[name]}
    if name == "gd":
        entries = {"sign_flipped": _COMMON["sign_flipped"]}
    out = [
        Mistake(key, title, hint, functools.partial(base, flaw=key))
        for key, (title, hint) in entries.items()
    ]
    out.append(Mistake("lr_cached", *LR_CACHED, _tweaked(base, _keep_first_lr)))
    if name not in ("gd", "adamw"):  # the optimizers with L2 weight decay
        out.append(Mistake("maximize_after_decay", *MAXIMIZE_AFTER_DECAY,
                           _tweaked(base, _negate_after_decay)))
    return [*out, SHARED_STATE, NOT_IN_PLACE]
