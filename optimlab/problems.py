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
