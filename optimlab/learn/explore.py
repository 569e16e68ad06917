"""Figures that answer back: sliders that rerun an optimizer on a 2D surface and redraw it.

:func:`explorer` runs a step function (the learner's, a reference, or a ``torch.optim`` class)
on a surface from :mod:`optimlab.learn.problems` and draws its path over the contours, beside
its loss on a log scale; moving a slider reruns and redraws (a few hundred steps in float64
and one Agg render, well under half a second).

The widget tree has a fixed contract that the browser tests rely on:

- the root (a ``VBox``) has the CSS class ``optimlab-explorer``;
- the figure is an ``ipywidgets.Image(format="png")`` with class ``optimlab-explorer-figure``,
  redrawn by replacing its ``value``;
- every slider has class ``optimlab-explorer-slider``; the line under the figure (what the
  settings predict, or what went wrong) is an ``HTML`` with class ``optimlab-explorer-message``.

A step function that raises, or makes the point NaN or infinite, is reported in that line and
on the figure; the sliders stay usable. Without a frontend (nbval, nbgrader's autograde) the
explorer is built and drawn once and does nothing else; its text form (what nbval compares,
under ipywidgets' 110-character cut) is deterministic and short.
"""

from __future__ import annotations

import cmath
import io
import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from ..optimizers.adapter import make_optimizer
from . import plots
from .problems import Surface

ROOT_CLASS = "optimlab-explorer"
FIGURE_CLASS = "optimlab-explorer-figure"
SLIDER_CLASS = "optimlab-explorer-slider"
MESSAGE_CLASS = "optimlab-explorer-message"

Caption = Callable[[dict[str, Any]], str]
_STYLE = {"description_width": "9em"}
_LAYOUT = {"width": "480px"}
_FAR = 1e6  # points farther out than this are not drawn (a diverging path)
SYMBOLS = {"lr": "γ", "momentum": "μ", "dampening": "τ", "weight_decay": "λ", "eps": "ε",
           "betas": "(β₁, β₂)", "alpha": "α"}


# ----------------------------------------------------------------------- sliders
def _slider(widget: widgets.Widget) -> widgets.Widget:
    widget.add_class(SLIDER_CLASS)
    return widget


def log_slider(value: float, low: float, high: float, description: str) -> widgets.FloatLogSlider:
    """A slider over decades, from ``low`` to ``high`` (100 positions a decade)."""
    return _slider(widgets.FloatLogSlider(
        value=value, base=10, min=math.log10(low), max=math.log10(high), step=0.01,
        description=description, readout_format=".3g", continuous_update=False,
        style=_STYLE, layout=_LAYOUT))


def linear_slider(value: float, low: float, high: float, step: float, description: str,
                  readout_format: str = ".2f") -> widgets.FloatSlider:
    """A slider from ``low`` to ``high`` in steps of ``step``."""
    return _slider(widgets.FloatSlider(
        value=value, min=low, max=high, step=step, description=description,
        readout_format=readout_format, continuous_update=False, style=_STYLE, layout=_LAYOUT))


def lr_slider(value: float, low: float = 1e-3, high: float = 1.0) -> widgets.FloatLogSlider:
    """γ, the learning rate, on a log scale."""
    return log_slider(value, low, high, "γ (lr)")


def momentum_slider(value: float = 0.9, high: float = 0.99) -> widgets.FloatSlider:
    """μ, the momentum, from 0 to ``high`` in steps of 0.01."""
    return linear_slider(value, 0.0, high, 0.01, "μ (momentum)")


def beta1_slider(value: float = 0.9) -> widgets.FloatSlider:
    """β₁, the decay of Adam's average of g, from 0 to 0.99."""
    return linear_slider(value, 0.0, 0.99, 0.01, "β₁ (betas[0])")


def beta2_slider(value: float = 0.999) -> widgets.FloatSlider:
    """β₂, the decay of Adam's average of g², from 0 to 0.999 in steps of 0.001."""
    return linear_slider(value, 0.0, 0.999, 0.001, "β₂ (betas[1])", ".3f")


def eps_slider(value: float = 1e-8, low: float = 1e-8, high: float = 100.0
               ) -> widgets.FloatLogSlider:
    """ε, added to Adam's denominator, on a log scale."""
    return log_slider(value, low, high, "ε (eps)")


# ----------------------------------------------------------------------- running
def hyperparameters(values: Mapping[str, Any]) -> dict[str, Any]:
    """Slider values as keyword arguments: ``beta1`` and ``beta2`` become ``betas``."""
    hyper = {k: v for k, v in values.items() if k not in ("beta1", "beta2")}
    if "beta1" in values or "beta2" in values:
        hyper["betas"] = (values.get("beta1", 0.9), values.get("beta2", 0.999))
    return hyper


def run_path(step: Any, f: Surface, start: tuple[float, float], steps: int,
             hyper: Mapping[str, Any]) -> Tensor:
    """The path of ``step`` on ``f`` (float64, ``(steps + 1, 2)``).

    ``step`` is a step function ``(param, grad, state, **hyper)`` or a ``torch.optim`` class.
    Stops early at the first point that is not finite (the path then ends with it).
    """
    if isinstance(step, type) and issubclass(step, torch.optim.Optimizer):
        def make(p: list[Tensor]) -> torch.optim.Optimizer:
            return step(p, **hyper)
    else:
        def make(p: list[Tensor]) -> torch.optim.Optimizer:
            return make_optimizer(step, p, **hyper)
    point = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = make([point])
    path = [point.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        f(point).backward()
        opt.step()
        path.append(point.detach().clone())
        if not torch.isfinite(path[-1]).all():
            break
    return torch.stack(path)


def _name(step: Any) -> str:
    return getattr(step, "__name__", type(step).__name__)


# ----------------------------------------------------------------------- the widget
class Explorer(widgets.VBox):
    """Sliders, a figure and a message line; see :func:`explorer`."""

    def __init__(self, step: Any, f: Surface, *, sliders: Mapping[str, widgets.Widget],
                 start: tuple[float, float], steps: int, xlim: tuple[float, float],
                 ylim: tuple[float, float], fixed: Mapping[str, Any] | None = None,
                 minimum: Sequence[float] | None = None, caption: Caption | None = None,
                 title: str = "", log: bool = False, label: str | None = None) -> None:
        self.step, self.f, self.start, self.steps = step, f, start, steps
        self.xlim, self.ylim, self.minimum, self.log_scale = xlim, ylim, minimum, log
        self.fixed = dict(fixed or {})
        self.caption, self.title = caption, title
        self.label = label or _name(step)
        self.sliders: dict[str, widgets.Widget] = dict(sliders)
        self.image = widgets.Image(format="png", layout={"width": "100%", "max_width": "980px"})
        self.image.add_class(FIGURE_CLASS)
        self.message = widgets.HTML()
        self.message.add_class(MESSAGE_CLASS)
        self.path: Tensor | None = None
        self.error: str | None = None
        super().__init__(children=[*self.sliders.values(), self.image, self.message])
        self.add_class(ROOT_CLASS)
        for slider in self.sliders.values():
            slider.observe(self._on_change, names="value")
        self.redraw()

    def hyperparameters(self) -> dict[str, Any]:
        """What the step function gets now: the fixed ones and the sliders' values."""
        return {**self.fixed, **hyperparameters({k: s.value for k, s in self.sliders.items()})}

    def _on_change(self, _change: Any) -> None:
        self.redraw()

    def redraw(self) -> None:
        """Rerun the step function with the sliders' values and replace the figure's PNG."""
        hyper = self.hyperparameters()
        self.error, self.path = None, None
        try:
            self.path = run_path(self.step, self.f, self.start, self.steps, hyper)
        except Exception as exc:  # the learner's code: report it, keep the sliders alive
            self.error = f"{self.label} raised {type(exc).__name__}: {exc}".strip().rstrip(":")
            if isinstance(exc, NotImplementedError):
                self.error += " (not written yet?)"
        notes = self._notes(hyper)
        self.image.value = self._png(hyper, notes)
        color = "#b00020" if self.error or (notes and notes[0].startswith("⚠")) else "inherit"
        self.message.value = (f'<div style="color:{color}">'
                              + "<br>".join(escape(n) for n in notes) + "</div>")

    def _notes(self, hyper: dict[str, Any]) -> list[str]:
        """The lines under the figure: what went wrong first, then the caption."""
        notes = []
        if self.error:
            notes.append(f"⚠ {self.error}. Fix it, run its cell, then this one again.")
        elif self.path is not None:
            finite = torch.isfinite(self.path).all(dim=1)
            if not finite.all():
                k = int((~finite).nonzero()[0])
                notes.append(f"⚠ after step {k} the point is {self.path[k].tolist()}: not finite "
                             "(an overflow, or a NaN from the step function).")
            elif len(self.path) > 1 and bool((self.path[1:] == self.path[0]).all()):
                notes.append(f"⚠ the point never moved: does {self.label} update param in "
                             "place (param.sub_(...))?")
            else:
                far = (self.path.abs() > _FAR).any(dim=1).nonzero()
                if len(far):
                    notes.append(f"⚠ diverging: the point is beyond {_FAR:g} from step "
                                 f"{int(far[0])} on.")
        if self.caption is not None:
            try:
                notes.append(self.caption(hyper))
            except Exception as exc:  # a caption never breaks the figure
                notes.append(f"(no caption: {type(exc).__name__}: {exc})")
        return notes

    def _png(self, hyper: dict[str, Any], notes: list[str]) -> bytes:
        plots.use_style()
        fig = Figure(figsize=(11.5, 4.4), dpi=80, layout="constrained")
        FigureCanvasAgg(fig)
        left, right = fig.subplots(1, 2, width_ratios=[1.25, 1])
        settings = ", ".join(f"{SYMBOLS.get(k, k)} = {_fmt(v)}" for k, v in hyper.items())
        path = self.path
        if path is not None:
            # drawn up to the first point that is not finite or far out (a diverging path)
            path = path[:_first_false(torch.isfinite(path).all(dim=1)
                                      & (path.abs() <= _FAR).all(dim=1))]
        if path is not None and len(path):
            plots.paths(self.f, {self.label: path}, self.xlim, self.ylim, ax=left,
                        log=self.log_scale, minimum=self.minimum,
                        title=f"{self.title} {len(self.path) - 1} steps".strip())
            loss = self.f(self.path)
            plots.losses({self.label: loss[torch.isfinite(loss)].tolist()}, ax=right,
                         title=f"loss; {settings}")
            right.title.set_fontsize(11)
        else:
            plots.surface(self.f, self.xlim, self.ylim, ax=left, log=self.log_scale,
                          title=self.title)
            left.plot(*self.start, "ks", markersize=7)
            right.set_axis_off()
            right.text(0.5, 0.5, "\n".join(_wrap(notes[0] if notes else "no path", 48)),
                       ha="center", va="center", color="#b00020", transform=right.transAxes)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    def __repr__(self) -> str:
        sliders = ", ".join(f"{k}={_fmt(s.value)}" for k, s in self.sliders.items())
        return f"Explorer({self.label} on {_name(self.f)}, {self.steps} steps; {sliders})"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return str(v)


def _first_false(mask: Tensor) -> int | None:
    bad = (~mask).nonzero()
    return int(bad[0]) if len(bad) else None


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


def explorer(step: Any, f: Surface, *, sliders: Mapping[str, widgets.Widget],
             start: tuple[float, float], steps: int = 100, xlim: tuple[float, float] = (-5, 5),
             ylim: tuple[float, float] = (-5, 5), fixed: Mapping[str, Any] | None = None,
             minimum: Sequence[float] | None = None, caption: Caption | None = None,
             title: str = "", log: bool = False, label: str | None = None) -> Explorer:
    """Run ``step`` on ``f`` from ``start`` for ``steps`` steps; rerun and redraw on every move.

    ``sliders`` maps a hyperparameter's keyword (``lr``, ``momentum``, ``eps``; ``beta1`` and
    ``beta2`` make ``betas``) to a slider (:func:`lr_slider`, :func:`momentum_slider`, ...);
    ``fixed`` holds the hyperparameters that do not move. ``caption(hyper)`` is a line of
    text shown under the figure, what theory predicts for these settings. The result is the
    widget: display it as a cell's last line. ``.sliders``, ``.image`` (PNG bytes in
    ``.image.value``), ``.message``, ``.path`` and ``.error`` are there for tests.
    """
    return Explorer(step, f, sliders=sliders, start=start, steps=steps, xlim=xlim, ylim=ylim,
                    fixed=fixed, minimum=minimum, caption=caption, title=title, log=log,
                    label=label)


# ----------------------------------------------------------------------- captions
def gd_caption(h_min: float, h_max: float) -> Caption:
    """GD on ``½(h_min·x² + h_max·y²)``: each coordinate's factor per step, ``1 − γh``."""
    def caption(hyper: dict[str, Any]) -> str:
        lr = hyper["lr"]
        verdict = "stable below 2" if lr * h_max < 2 else "not below 2: |y| does not shrink"
        return (f"γ·h_max = {lr * h_max:.3g} ({verdict}): per step y is multiplied by "
                f"1 − γh_max = {1 - lr * h_max:+.3f}, x by 1 − γh_min = {1 - lr * h_min:+.3f}")
    return caption


def heavy_ball_factor(lr: float, momentum: float, h: float) -> float:
    """The per-step factor of heavy ball along a direction of curvature ``h``: the larger
    modulus of the roots of ``z² − (1 + μ − γh) z + μ``."""
    b = 1 + momentum - lr * h
    disc = cmath.sqrt(b * b - 4 * momentum)
    return max(abs((b + disc) / 2), abs((b - disc) / 2))


def heavy_ball_caption(h_min: float, h_max: float) -> Caption:
    """Heavy ball on ``½(h_min·x² + h_max·y²)``: each direction's factor and the slower one."""
    def caption(hyper: dict[str, Any]) -> str:
        lr, mu = hyper["lr"], hyper.get("momentum", 0.0)
        fx, fy = heavy_ball_factor(lr, mu, h_min), heavy_ball_factor(lr, mu, h_max)
        verdict = "diverges" if max(fx, fy) >= 1 else f"slowest factor {max(fx, fy):.3f}"
        return (f"heavy ball's factor per step: along x (h = {h_min:g}) {fx:.3f}, across y "
                f"(h = {h_max:g}) {fy:.3f}: {verdict}")
    return caption


def adam_first_step_caption(f: Surface, start: tuple[float, float]) -> Caption:
    """Adam's first step from ``start``: ``γ·g/(|g| + ε)`` per coordinate, beside GD's
    direction."""
    point = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    f(point).backward()
    g = point.grad.detach()

    def caption(hyper: dict[str, Any]) -> str:
        lr, eps = hyper.get("lr", 1e-3), hyper.get("eps", 1e-8)
        step = (lr * g / (g.abs() + eps)).tolist()
        ratio = abs(step[1] / step[0]) if step[0] else math.inf
        return (f"first step γ·g/(|g| + ε) = ({-step[0]:+.3g}, {-step[1]:+.3g}): |Δy|/|Δx| = "
                f"{ratio:.2f} (gradient descent's: {abs(g[1] / g[0]):.2f})")
    return caption
