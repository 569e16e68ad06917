"""Catalogued mistakes, each written as the reference with one part changed.

When a learner's trajectory fails and matches a mistake's on the same gradient sequence, the
checker names the mistake and gives its hint (never the code). A mistake is built from the
reference by one of these edits:

- :func:`edit`: the reference with one of its named parts (a small module-level function it
  calls, such as ``adam_denominator``) replaced;
- :func:`with_hyper`: the reference with a hyperparameter overridden (a flag ignored);
- :func:`tweaked`: the reference after a change to what it is called with (an lr kept from
  the first step, a buffer carrying the lr);
- :func:`sign_flipped`, :func:`decay_after_update`: a change to where the update goes.

:func:`common_mistakes` adds those that every optimizer with the hyperparameter can make.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from .adapter import StepFunction, hyperparameters_of


def _completed(defaults: dict[str, Any], hyper: dict[str, Any]) -> dict[str, Any]:
    """``hyper`` with the step's defaults (read once, when the mistake is built) for what the
    caller left out."""
    return {**defaults, **hyper}


@dataclass(frozen=True)
class Mistake:
    """A named wrong version of an optimizer, with a hint that teaches without giving code."""

    key: str
    name: str
    hint: str
    step_fn: StepFunction | None = None
    error_pattern: str | None = None
    """For mistakes that crash rather than mislead: a fragment of the error message."""


def edit(step: StepFunction, **parts: Callable[..., Any]) -> StepFunction:
    """``step`` with the named parts it calls replaced: the same code, other globals.

    Each name must be one that ``step`` looks up (a typo raises ``ValueError``).
    """
    code = step.__code__
    unknown = [name for name in parts if name not in code.co_names]
    if unknown:
        raise ValueError(f"{step.__name__} calls no part named {', '.join(unknown)}")
    scope = {**step.__globals__, **parts}
    out = types.FunctionType(code, scope, step.__name__, step.__defaults__, step.__closure__)
    out.__kwdefaults__ = dict(step.__kwdefaults__ or {})
    out.__doc__, out.__qualname__, out.__module__ = step.__doc__, step.__qualname__, step.__module__
    return out


Tweak = Callable[[Tensor, dict, dict[str, Any], dict[str, Any]], None]
"""``tweak(param, state, hyper, memo)``: changes what the step is called with. ``memo`` is the
tweak's own memory for this tensor, kept out of the ``state`` the step sees."""

_MEMO = "__mistake_memo__"


def tweaked(step: StepFunction, tweak: Tweak) -> StepFunction:
    """``step``, after ``tweak`` has changed what it is called with."""
    defaults = hyperparameters_of(step)

    @functools.wraps(step)
    def wrong(param: Tensor, grad: Tensor, state: dict, **hyper: Any) -> None:
        memo = state.pop(_MEMO, {})
        hyper = _completed(defaults, hyper)
        tweak(param, state, hyper, memo)
        step(param, grad, state, **hyper)
        state[_MEMO] = memo

    return wrong


def with_hyper(step: StepFunction, **fixed: Any) -> StepFunction:
    """``step`` with some hyperparameters fixed, whatever it is called with."""

    def tweak(param: Tensor, state: dict, hyper: dict[str, Any], memo: dict[str, Any]) -> None:
        hyper.update(fixed)

    return tweaked(step, tweak)


def sign_flipped(step: StepFunction, decoupled: bool = False) -> StepFunction:
    """``step`` with its update reversed: θ ← θ + (what torch subtracts). Decoupled weight
    decay, a separate θ·(1 − γλ), keeps its direction."""
    defaults = hyperparameters_of(step)

    @functools.wraps(step)
    def wrong(param: Tensor, grad: Tensor, state: dict, **hyper: Any) -> None:
        hyper = _completed(defaults, hyper)
        wd = hyper.get("weight_decay", 0.0)
        if wd and (decoupled or hyper.get("decoupled_weight_decay")):
            param.mul_(1 - float(hyper["lr"]) * wd)
            hyper = {**hyper, "weight_decay": 0.0}
        before = param.clone()
        step(param, grad, state, **hyper)
        param.copy_(2 * before - param)

    return wrong


def decay_after_update(step: StepFunction, decoupled: bool) -> StepFunction:
    """``step`` without weight decay, then the decay applied to the updated θ."""
    defaults = hyperparameters_of(step)

    @functools.wraps(step)
    def wrong(param: Tensor, grad: Tensor, state: dict, **hyper: Any) -> None:
        hyper = _completed(defaults, hyper)
        wd = hyper.get("weight_decay", 0.0)
        step(param, grad, state, **{**hyper, "weight_decay": 0.0})
        lr = float(hyper["lr"])
        if decoupled or hyper.get("decoupled_weight_decay"):
            param.mul_(1 - lr * wd)
        else:
            param.sub_(lr * wd * param)

    return wrong


def keep_first_lr(param: Tensor, state: dict, hyper: dict[str, Any],
                  memo: dict[str, Any]) -> None:
    """The lr of the first call, kept and used on every later one."""
    hyper["lr"] = memo.setdefault("first_lr", hyper["lr"])


def negate_after_l2(param: Tensor, state: dict, hyper: dict[str, Any],
                    memo: dict[str, Any]) -> None:
    """−(g + λθ) where torch has −g + λθ: torch's step with −λ."""
    if hyper.get("maximize") and not hyper.get("decoupled_weight_decay"):
        hyper["weight_decay"] = -hyper.get("weight_decay", 0.0)


def lr_in_buffer(param: Tensor, state: dict, hyper: dict[str, Any],
                 memo: dict[str, Any]) -> None:
    """A momentum buffer that carries the lr, with no dampening: b ← μ·b + γ·g, θ ← θ − b.

    It is torch's buffer times γ, so it equals torch's step rescaled by γ_old / γ_new whenever
    the lr changes: that rescaling is done here, on torch's buffer.
    """
    lr = float(hyper["lr"])
    if "dampening" in hyper:
        hyper["dampening"] = 0.0
    buf = state.get("momentum_buffer")
    if buf is not None and memo.get("lr", lr) != lr:
        buf.mul_(memo["lr"] / lr)
    memo["lr"] = lr


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


def _forget_state(param: Tensor, state: dict, hyper: dict[str, Any],
                  memo: dict[str, Any]) -> None:
    state.clear()


def common_mistakes(step: StepFunction, defaults: dict[str, Any], *,
                    decoupled: bool = False) -> list[Mistake]:
    """The mistakes any optimizer can make, given the hyperparameters it takes.

    ``decoupled``: its ``weight_decay`` is decoupled (AdamW), not L2.
    """
    out = [Mistake("sign_flipped", "sign flipped (gradient ascent)",
                   "The step goes *against* the gradient: θ ← θ − γ·(…).",
                   sign_flipped(step, decoupled))]
    if "maximize" in defaults:
        out.append(Mistake("maximize_ignored", "`maximize` ignored",
                           "With maximize=True, torch negates the gradient first, before weight "
                           "decay and everything else.", with_hyper(step, maximize=False)))
    if "weight_decay" in defaults:
        out.append(Mistake("decay_after_update", "weight decay applied after the update",
                           "torch applies weight decay before the rest of the step (L2: added "
                           "to the gradient; decoupled: θ·(1 − γλ) first).",
                           decay_after_update(step, decoupled)))
    out.append(Mistake("lr_cached", "lr read once, on the first step",
                       "Use the `lr` passed on every call: a learning-rate scheduler changes it "
                       "between steps, so keep nothing computed from it in `state`.",
                       tweaked(step, keep_first_lr)))
    if set(defaults) - {"lr"}:  # every optimizer but plain GD keeps state, in some settings
        out.append(Mistake("state_not_kept", "state not kept between calls",
                           "Every step behaves like the first: write into the `state` dict you "
                           "are given (`state['m'] = ...`), do not rebind the name "
                           "(`state = {...}` makes a new dict the next call never sees).",
                           tweaked(step, _forget_state)))
    if "weight_decay" in defaults and "maximize" in defaults and not decoupled:
        out.append(Mistake("maximize_after_decay", "`maximize` applied after L2 weight decay",
                           "torch negates the gradient first and then adds λ·θ: the decay still "
                           "pulls θ towards 0 when maximizing.", tweaked(step, negate_after_l2)))
    return out
