"""Plots the notebooks share: surfaces with optimizer paths, loss curves, sweeps.

Every function draws on an ``ax`` (a new figure when none is given) and returns it. Fonts and
sizes are set once, readable on a laptop screen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from torch import Tensor

from .problems import Surface

STYLE = {"figure.figsize": (7.0, 4.5), "font.size": 12, "axes.titlesize": 13,
         "axes.labelsize": 12, "legend.fontsize": 10, "lines.linewidth": 2.0,
         "figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3}


LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)))
MARKERS = ("o", "s", "^", "v", "D")


def use_style() -> None:
    """Apply the course's matplotlib style (called by every plot here)."""
    plt.rcParams.update(STYLE)


def _ax(ax: Axes | None, figsize: tuple[float, float] | None = None) -> Axes:
    use_style()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def surface(f: Surface, xlim: tuple[float, float], ylim: tuple[float, float], *,
            ax: Axes | None = None, levels: int = 30, log: bool = False,
            title: str | None = None, colorbar: bool = True) -> Axes:
    """Contours of a 2D loss. ``log=True`` spaces the levels for losses spanning decades.

    Darker is higher; ``colorbar`` adds the scale, labelled with what the shading shows. All
    contour lines are solid (matplotlib would dash the negative levels of a loss like ``bumpy``).
    """
    ax = _ax(ax, (6.0, 5.0))
    xs = torch.linspace(*xlim, 200, dtype=torch.float64)
    ys = torch.linspace(*ylim, 200, dtype=torch.float64)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    z = f(torch.stack([gx, gy], dim=-1))
    if log:
        z = torch.log10(z - z.min() + 1e-3)
    filled = ax.contourf(gx, gy, z, levels=levels, cmap="Greys", alpha=0.55)
    ax.contour(gx, gy, z, levels=levels, colors="grey", linewidths=0.5, alpha=0.6,
               negative_linestyles="solid")
    if colorbar:
        bar = ax.figure.colorbar(filled, ax=ax)
        bar.set_label("log₁₀(loss − min + 0.001)" if log else "loss")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(False)
    if title:
        ax.set_title(title)
    return ax


def paths(f: Surface, runs: Mapping[str, Tensor], xlim: tuple[float, float],
          ylim: tuple[float, float], *, ax: Axes | None = None, log: bool = False,
          title: str | None = None, minimum: Sequence[float] | None = None) -> Axes:
    """Optimizer paths (``name -> (steps + 1, 2)`` tensor) over the contours of ``f``.

    Paths often overlap (same start, similar rules), so each gets its own line style and marker,
    and each is drawn thinner than the one before: a later path lies visibly on an earlier one.
    A large marker with a black edge shows where each path ends.
    """
    ax = surface(f, xlim, ylim, ax=ax, log=log, title=title)
    for i, (name, path) in enumerate(runs.items()):
        p = path.detach().cpu()
        (line,) = ax.plot(p[:, 0], p[:, 1], linestyle=LINESTYLES[i % len(LINESTYLES)],
                          marker=MARKERS[i % len(MARKERS)], markersize=max(5.0 - 0.8 * i, 2.0),
                          linewidth=max(3.2 - 0.5 * i, 1.0), alpha=0.85, label=name)
        ax.plot(p[-1, 0], p[-1, 1], marker=MARKERS[i % len(MARKERS)], markersize=9,
                color=line.get_color(), markeredgecolor="k")  # where the path ends
    first = next(iter(runs.values()))[0]
    ax.plot(first[0], first[1], "ks", markersize=7, label="start")
    if minimum is not None:
        ax.plot(*minimum, "k*", markersize=13, label="minimum")
    ax.legend(loc="best")
    return ax


def losses(curves: Mapping[str, Sequence[float]], *, ax: Axes | None = None, log: bool = True,
           title: str | None = None, xlabel: str = "step", styles: Mapping[str, str] | None = None,
           first: int = 0) -> Axes:
    """Loss curves, one per name, on a log scale by default; the first point is at x = ``first``
    (1 for losses recorded after each epoch)."""
    ax = _ax(ax)
    for name, curve in curves.items():
        ax.plot(range(first, first + len(curve)), curve, (styles or {}).get(name, "-"), label=name)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def curve_1d(xs: Tensor, ys: Tensor, *, ax: Axes | None = None, title: str | None = None,
             xlabel: str = "w", ylabel: str = "loss") -> Axes:
    """A 1D loss landscape."""
    ax = _ax(ax)
    ax.plot(xs, ys)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax
