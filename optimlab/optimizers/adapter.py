"""Turn a step function into a real ``torch.optim.Optimizer``.

The step function has the contract every optimlab exercise uses::

    def step_fn(param, grad, state, *, lr=..., **hyperparameters) -> None

It updates ``param`` in place, keeps its memory in ``state`` (a dict, empty on the first call),
and reads its hyperparameters as keyword arguments. :class:`StepFunctionOptimizer` supplies the
rest: param groups, ``zero_grad``, closures, ``state_dict``/``load_state_dict`` and LR schedulers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

StepFunction = Callable[..., Any]


def hyperparameters_of(step_fn: StepFunction) -> dict[str, Any]:
    """The keyword hyperparameters a step function takes, with their defaults.

    A hyperparameter with no default maps to ``inspect.Parameter.empty``.
    """
    params = list(inspect.signature(step_fn).parameters.values())
    positional = [
        p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(positional) < 3 and not any(p.kind is p.VAR_POSITIONAL for p in params):
        raise TypeError(
            f"{getattr(step_fn, '__name__', step_fn)!r} must take (param, grad, state, ...) "
            f"but its signature is {inspect.signature(step_fn)}"
        )
    return {
        p.name: p.default
        for p in params[3:]
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


class StepFunctionOptimizer(Optimizer):
    """A ``torch.optim.Optimizer`` whose update is a per-tensor step function.

    Example::

        opt = StepFunctionOptimizer(model.parameters(), adam_step, lr=1e-2)
        for x, y in data:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()

    Hyperparameters default to the step function's own defaults; keyword arguments here
    override them, and param groups may override them again, as in any torch optimizer.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        step_fn: StepFunction,
        **hyperparameters: Any,
    ) -> None:
        accepted = hyperparameters_of(step_fn)
        takes_kwargs = any(
            p.kind is p.VAR_KEYWORD for p in inspect.signature(step_fn).parameters.values()
        )
        unknown = sorted(set(hyperparameters) - set(accepted))
        if unknown and not takes_kwargs:
            raise TypeError(
                f"{step_fn.__name__} does not take the hyperparameter(s) {unknown}; "
                f"it takes {sorted(accepted)}"
            )
        defaults = {k: v for k, v in accepted.items() if v is not inspect.Parameter.empty}
        defaults.update(hyperparameters)
        missing = sorted(set(accepted) - set(defaults))
        if missing:
            raise TypeError(f"{step_fn.__name__} needs a value for {missing}")
        self.step_fn = step_fn
        self._names = tuple(defaults) if takes_kwargs else tuple(accepted)
        super().__init__(params, defaults)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update(step_fn=self.step_fn, _names=self._names)
        return state

    def __repr__(self) -> str:
        return f"StepFunctionOptimizer({self.step_fn.__name__}, {len(self.param_groups)} group(s))"

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Run the step function once on every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            hyper = {k: group[k] for k in self._names if k in group}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse and not getattr(self.step_fn, "sparse_grads", False):
                    raise RuntimeError(f"{self.step_fn.__name__} does not support sparse gradients")
                before = written_marks(p)
                out = self.step_fn(p, p.grad, self.state[p], **hyper)
                if returned_instead_of_updating(out, p, written_marks(p) != before):
                    raise TypeError(
                        f"{self.step_fn.__name__} returned a {type(out).__name__}: a step "
                        "function must update `param` in place (param.add_(...), param.copy_(...)) "
                        "and return None"
                    )
        return loss


def make_optimizer(
    step_fn: StepFunction,
    params: Iterable[Tensor] | Iterable[dict[str, Any]],
    **hyperparameters: Any,
) -> StepFunctionOptimizer:
    """Shorthand for ``StepFunctionOptimizer(params, step_fn, **hyperparameters)``."""
    return StepFunctionOptimizer(params, step_fn, **hyperparameters)


def written_marks(param: torch.Tensor) -> tuple[int, int]:
    """What changes when ``param`` is written in place or given new data (``param.data = x``)."""
    return param._version, param.data_ptr()


def returned_instead_of_updating(out: Any, param: torch.Tensor, written: bool) -> bool:
    """True for a step function that returned a new tensor and left ``param`` as it was: the
    functional habit (``return param - lr * grad``). Any other return value is ignored: ``param``
    itself, an alias of it (``param.data.sub_(...)`` returns one), or anything returned beside
    an in-place update."""
    if not isinstance(out, torch.Tensor) or written or out is param:
        return False
    return not (out.shape == param.shape and out.device == param.device
                and out.untyped_storage().data_ptr() == param.untyped_storage().data_ptr())
