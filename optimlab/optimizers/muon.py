"""Muon, as ``torch.optim.Muon`` computes it (its one path: there is no foreach or fused)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._common import Scalar, as_scalar, zeros_like
from .cases import group, lr_tensor, schedule, two_lrs
from .mistakes import Mistake, edit, tweaked, with_hyper
from .registry import OptimizerSpec

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
"""torch's (a, b, c): the quintic p(σ) = aσ + bσ³ + cσ⁵ with the steepest slope at 0 that
still maps (0, 1] into about [0.7, 1.2] after five iterations."""

SHAPES = ((3, 4), (4, 3), (5, 5), (4, 3), (2, 6), (6, 2), (4, 3))
"""Muon's test tensors: matrices only (torch refuses others), wide, tall and square, one stored
transposed, one with rows of zero gradient; index for index like the usual shapes."""


def newton_schulz(grad: Tensor, ns_coefficients: tuple[float, float, float], ns_steps: int,
                  eps: float) -> Tensor:
    """An approximately orthogonal matrix with ``grad``'s singular vectors, in bfloat16.

    X ← G/‖G‖_F in bfloat16, transposed first when G is tall (so X·Xᵀ is the smaller Gram
    matrix); then ns_steps times X ← a·X + (b·A + c·A²)·X with A = X·Xᵀ, which pushes every
    singular value of X towards 1 while keeping the singular vectors.
    """
    a, b, c = ns_coefficients
    x = grad.bfloat16()
    tall = grad.size(0) > grad.size(1)
    if tall:
        x = x.T
    x.div_(x.norm().clamp(min=eps))
    for _ in range(ns_steps):
        gram = x @ x.T
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.addmm(x, poly, x, beta=a)
    return x.T if tall else x


def adjusted_lr(lr: Scalar, adjust_lr_fn: str | None, shape: torch.Size) -> Scalar:
    """γ scaled for the matrix's shape A × B: √max(1, A/B) ("original", Keller Jordan's), or
    0.2·√max(A, B) ("match_rms_adamw", Moonshot's: the update's RMS then matches AdamW's)."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    else:
        ratio = 1.0
    return lr * ratio


def accumulate(buf: Tensor, grad: Tensor, momentum: float) -> Tensor:
    """B ← B + (1 − μ)·(g − B) in place: an EMA of the gradients."""
    return buf.lerp_(grad, 1 - momentum)


def muon_step(
    param: Tensor,
    grad: Tensor,
    state: dict,
    *,
    lr: Scalar = 1e-3,
    weight_decay: float = 0.1,
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    eps: float = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
) -> None:
    r"""One step of ``torch.optim.Muon`` for one matrix, in place.

    .. code-block:: text

        B ← B + (1 − μ)·(g − B)             momentum_buffer: an EMA (torch's code; its
                                            docstring's box writes μB + g)
        U ← g + μ·(B − g)                   nesterov: U = (1 − μ)·g + μ·B
            B                               otherwise
        O ← NS(U)                           newton_schulz, in bfloat16: ≈ the orthogonal
                                            factor of U's polar decomposition
        θ ← θ·(1 − γ·λ)                     decoupled weight decay, with the unadjusted γ
        θ ← θ − γ'·O                        γ' = adjusted_lr(γ, adjust_lr_fn, shape)

    Only for 2-D parameters: like torch, it raises ``ValueError`` for any other. The update O
    is bfloat16, so two correct implementations that order the Newton–Schulz products
    differently agree to about 1 % of the step, not to the bit. State: ``momentum_buffer``.
    """
    if param.ndim != 2 or grad.ndim != 2:
        raise ValueError(f"Muon only supports 2D parameters; got one of size {tuple(param.shape)}")
    lr = as_scalar(lr)
    if not state:
        state["momentum_buffer"] = zeros_like(grad)
    buf = state["momentum_buffer"]
    accumulate(buf, grad, momentum)
    update = grad.lerp(buf, momentum) if nesterov else buf
    update = newton_schulz(update, ns_coefficients, ns_steps, eps)
    step_lr = adjusted_lr(lr, adjust_lr_fn, param.shape)
    param.mul_(1 - lr * weight_decay)
    param.add_(update, alpha=-step_lr)


# ------------------------------------------------------------------ mistakes
def _plain_momentum(buf: Tensor, grad: Tensor, momentum: float) -> Tensor:
    return buf.mul_(momentum).add_(grad)


def _decay_with_adjusted_lr(param: Tensor, state: dict, hyper: dict, memo: dict) -> None:
    """θ·(1 − γ'λ): weight decay scaled like the update."""
    ratio = adjusted_lr(1.0, hyper.get("adjust_lr_fn"), param.shape)
    hyper["weight_decay"] = hyper.get("weight_decay", 0.1) * ratio


SPECS = [
    OptimizerSpec(
        "muon", "Muon", "13_muon", muon_step, torch.optim.Muon,
        visible=(
            group("basic", ("defaults", {"lr": 0.02}),
                  ("lr, momentum", {"lr": 0.05, "momentum": 0.9}),
                  two_lrs(2e-2, 1e-2), schedule(2e-2)),
            group("nesterov", ("without nesterov", {"lr": 0.02, "nesterov": False})),
            group("weight_decay", ("weight_decay", {"lr": 0.02, "weight_decay": 0.5})),
            group("newton_schulz",
                  ("ns_steps", {"lr": 0.02, "ns_steps": 2}),
                  ("ns_coefficients", {"lr": 0.02, "ns_coefficients": (2.0, -1.5, 0.5)})),
            group("adjust_lr_fn",
                  ("match_rms_adamw", {"lr": 0.02, "adjust_lr_fn": "match_rms_adamw"}),
                  ("original", {"lr": 0.02, "adjust_lr_fn": "original"})),
        ),
        extras=(
            ("all flags", {"lr": 0.03, "weight_decay": 0.2, "momentum": 0.8, "nesterov": False,
                           "ns_steps": 3, "eps": 1e-5, "adjust_lr_fn": "match_rms_adamw"}),
            ("extreme", {"lr": 0.5, "weight_decay": 1.0, "momentum": 0.0, "ns_steps": 1}),
            ("tensor lr", {"lr": lr_tensor(0.02)}),
        ),
        mistakes=(
            Mistake("nesterov_ignored", "`nesterov` ignored",
                    "With nesterov=True (the default) torch orthogonalizes g + μ·(B − g), not B.",
                    with_hyper(muon_step, nesterov=False)),
            Mistake("no_lr_adjustment", "the lr not adjusted for the matrix's shape",
                    "torch steps by γ·√max(1, rows/cols) (\"original\") or "
                    "0.2·γ·√max(rows, cols) (\"match_rms_adamw\").",
                    edit(muon_step, adjusted_lr=lambda lr, fn, shape: lr)),
            Mistake("adjustment_inverted", "the lr adjustment √(cols/rows) instead of √(rows/cols)",
                    "\"original\" scales γ by √max(1, rows/cols): tall matrices step further.",
                    edit(muon_step, adjusted_lr=lambda lr, fn, shape:
                         adjusted_lr(lr, fn, shape[::-1]))),
            Mistake("decay_with_adjusted_lr", "weight decay with the adjusted lr",
                    "torch decays θ by (1 − γλ) with the lr as given; only the update uses γ'.",
                    tweaked(muon_step, _decay_with_adjusted_lr)),
            Mistake("momentum_not_ema", "the momentum buffer as B ← μ·B + g",
                    "torch's code keeps an EMA: B ← μ·B + (1 − μ)·g (its docstring writes "
                    "μB + g; the code is what runs).",
                    edit(muon_step, accumulate=_plain_momentum)),
            Mistake("ns_steps_ignored", "`ns_steps` ignored", "Run ns_steps iterations (5 by "
                    "default).", with_hyper(muon_step, ns_steps=5)),
            Mistake("ns_coefficients_ignored", "`ns_coefficients` ignored",
                    "Each iteration is X ← a·X + (b·A + c·A²)·X with (a, b, c) = ns_coefficients.",
                    with_hyper(muon_step, ns_coefficients=NS_COEFFICIENTS)),
        ),
        decoupled=True,
        # decay before or after the update differs by γλ·γ'·O per step, below the bfloat16
        # rounding of O itself unless γ is far above any usable lr: not a nameable mistake
        not_mistakes=("decay_after_update",),
        has_foreach=False,
        shapes=SHAPES,
        # The update is bfloat16 (see muon_step's box): correct learners who order the
        # Newton–Schulz products differently, or iterate in float32, drift up to ~0.035 from
        # torch over a case's 20 steps; the closest catalogued mistake is ~0.12 away
        # (tests/test_check.py runs both kinds).
        float64_tolerance=(1e-2, 5e-2),
        float32_tolerance=(1e-2, 5e-2),
        capstone=True,
    ),
]
