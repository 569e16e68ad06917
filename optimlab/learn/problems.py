"""Problems the notebooks optimize: 2D surfaces, a linear model, a small network. No downloads.

Every generator takes a seed, so the notebooks' numbers and pictures reproduce.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

Surface = Callable[[Tensor], Tensor]
"""A loss over 2D points: ``f(xy)`` with ``xy[..., 0]`` = x and ``xy[..., 1]`` = y."""


def ravine(xy: Tensor, condition: float = 25.0) -> Tensor:
    """An ill-conditioned quadratic ``½(x² + κ·y²)``: a long, narrow valley (κ = condition)."""
    return 0.5 * (xy[..., 0] ** 2 + condition * xy[..., 1] ** 2)


def rosenbrock(xy: Tensor) -> Tensor:
    """Rosenbrock's banana, ``(1 − x)² + 100·(y − x²)²``, with its minimum at (1, 1)."""
    x, y = xy[..., 0], xy[..., 1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def saddle(xy: Tensor) -> Tensor:
    """``x² − y²``: a minimum along x, a maximum along y, a saddle point at the origin."""
    return xy[..., 0] ** 2 - xy[..., 1] ** 2


def bumpy(xy: Tensor) -> Tensor:
    """A non-convex surface with several local minima and saddles."""
    x, y = xy[..., 0], xy[..., 1]
    return 0.1 * (x**2 + y**2) + torch.sin(2 * x) * torch.cos(2 * y)


def run_on_surface(
    f: Surface,
    make_optimizer: Callable[[list[Tensor]], torch.optim.Optimizer],
    start: tuple[float, float],
    steps: int,
    lr_schedule: Callable[[int], float] | None = None,
) -> Tensor:
    """Optimize ``f`` from ``start``; return the path, shape ``(steps + 1, 2)``.

    ``make_optimizer`` gets a one-element list with the point (a leaf tensor), like
    ``lambda p: torch.optim.Adam(p, lr=0.1)`` or ``lambda p: make_optimizer(adam_step, p)``.
    """
    point = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer([point])
    path = [point.detach().clone()]
    for t in range(steps):
        if lr_schedule is not None:
            for g in opt.param_groups:
                g["lr"] = lr_schedule(t)
        opt.zero_grad()
        f(point).backward()
        opt.step()
        path.append(point.detach().clone())
    return torch.stack(path)


@dataclass
class LinearData:
    """Samples of ``y = A x + b + noise`` and the true ``A`` and ``b``."""

    X: Tensor
    Y: Tensor
    A: Tensor
    b: Tensor


def linear_data(n: int = 256, in_features: int = 3, out_features: int = 2, noise: float = 0.1,
                seed: int = 0) -> LinearData:
    """Data for the course's running example: recover ``A`` and ``b`` from ``(x, y)`` pairs."""
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(out_features, in_features, generator=gen)
    b = torch.randn(out_features, generator=gen)
    X = torch.randn(n, in_features, generator=gen)
    Y = X @ A.T + b + noise * torch.randn(n, out_features, generator=gen)
    return LinearData(X, Y, A, b)


def spirals(n: int = 300, noise: float = 0.15, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Two interleaved spirals in 2D: ``(X, labels)``, a small classification problem."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.linspace(0.25, 2.0, n // 2) * torch.pi
    arm = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) / (2 * torch.pi)
    X = torch.cat([arm, -arm]) + noise * torch.randn(2 * (n // 2), 2, generator=gen) / 3
    y = torch.cat([torch.zeros(n // 2), torch.ones(n // 2)]).long()
    return X, y


def small_network(seed: int = 0, hidden: int = 32) -> nn.Module:
    """A 2-32-32-2 tanh network for :func:`spirals`, initialized from ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, 2))


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    X: Tensor,
    Y: Tensor,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    steps: int,
    batches: Iterable[Any] | None = None,
    scheduler: Any = None,
) -> list[float]:
    """Train full-batch for ``steps`` steps (or over ``batches``); return the loss per step."""
    losses = []
    data = batches if batches is not None else ((X, Y) for _ in range(steps))
    for xb, yb in data:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
    return losses


def accuracy(model: nn.Module, X: Tensor, y: Tensor) -> float:
    """Share of correct predictions of a classifier."""
    with torch.no_grad():
        return (model(X).argmax(1) == y).float().mean().item()


OptimizerFactory = Callable[[Iterable[Tensor]], torch.optim.Optimizer]


def fit_linear_model(make: OptimizerFactory, data: LinearData, steps: int = 200
                     ) -> tuple[nn.Linear, list[float]]:
    """Fit ``nn.Linear`` (from zeros) to ``data`` full-batch with the optimizer ``make`` builds.

    Returns the model, whose ``weight`` and ``bias`` estimate ``A`` and ``b``, and the losses.
    """
    model = nn.Linear(data.X.shape[1], data.Y.shape[1])
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    curve = fit(model, make(model.parameters()), data.X, data.Y, nn.functional.mse_loss, steps)
    return model, curve


def train_spirals(make: OptimizerFactory, steps: int = 300, seed: int = 0
                  ) -> tuple[list[float], float]:
    """Train :func:`small_network` on :func:`spirals` full-batch; return (losses, accuracy)."""
    X, y = spirals(seed=seed)
    model = small_network(seed=seed)
    curve = fit(model, make(model.parameters()), X, y, nn.functional.cross_entropy, steps)
    return curve, accuracy(model, X, y)


def compare_runs(yours: list[float], theirs: list[float],
                 accuracy: tuple[float, float] | None = None, *, label: str = "spirals",
                 early_steps: int = 10, early_rtol: float = 1e-3, rtol: float = 0.1,
                 atol: float = 1e-3, accuracy_tol: float = 0.03) -> None:
    """Print how your training run ended beside torch's, and assert that they agree.

    The claim is what a float32 run can promise on any CPU: the first ``early_steps`` losses
    agree to ``early_rtol`` (a wrong step function parts at once), and the last losses agree
    to ``rtol``·torch's + ``atol`` and the accuracies to ``accuracy_tol``. Not to the digit:
    a long run amplifies rounding differences, and torch's vectorized kernels round
    differently on each CPU (AVX2, AVX-512, ARM). Cells that print these numbers are tagged
    ``nbval-ignore-output``; this assertion is what the tests check there.
    """
    # the last step's loss: with minibatches, that of the last minibatch, not of the data set
    line = f"{label}: last step's loss yours {yours[-1]:.4f}, torch {theirs[-1]:.4f}"
    if accuracy is not None:
        line += f"; accuracy yours {accuracy[0]:.3f}, torch {accuracy[1]:.3f}"
    print(line)
    assert len(yours) == len(theirs), (
        f"{label}: your run has {len(yours)} losses, torch's {len(theirs)}")
    n = min(early_steps, len(yours), len(theirs))
    early = torch.tensor(yours[:n], dtype=torch.float64)
    early_t = torch.tensor(theirs[:n], dtype=torch.float64)
    parted = ((early - early_t).abs() > early_rtol * early_t.abs()).nonzero()
    assert len(parted) == 0, (
        f"{label}: your loss parts from torch's at step {int(parted[0]) + 1} "
        f"({yours[int(parted[0])]:.6g} against {theirs[int(parted[0])]:.6g}): "
        "your step function does not do what torch's does")
    assert abs(yours[-1] - theirs[-1]) <= rtol * abs(theirs[-1]) + atol, (
        f"{label}: your last step's loss {yours[-1]:.4g} is not within {rtol:.0%} of torch's "
        f"{theirs[-1]:.4g}")
    if accuracy is not None:
        assert abs(accuracy[0] - accuracy[1]) <= accuracy_tol, (
            f"{label}: your accuracy {accuracy[0]:.3f} is not within {accuracy_tol} of "
            f"torch's {accuracy[1]:.3f}")
