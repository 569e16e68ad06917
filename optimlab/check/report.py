"""What the checker found, as text (tests, terminals) and as HTML (notebooks)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Literal

from ..optimizers.cases import Case
from ..optimizers.mistakes import Mistake

Outcome = Literal["ok", "mismatch", "nonfinite", "state", "exception", "timeout", "shortcut",
                  "returned", "grad_modified", "grad_kept", "shape", "dtype", "device",
                  "signature", "skipped"]
"""How a case ended: ``ok``, or what went wrong first."""


@dataclass
class CaseResult:
    """The outcome of one case."""

    case: Case
    passed: bool
    kind: Outcome = "ok"
    message: str = ""
    step: int | None = None
    tensor: int | None = None
    shape: tuple[int, ...] | None = None
    index: tuple[int, ...] | None = None
    expected: float | None = None
    got: float | None = None
    max_abs_err: float = 0.0
    seed: int | None = None
    traceback: str | None = None
    mistakes: list[Mistake] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.case.group} / {self.case.name}"

    def details(self) -> list[str]:
        out = [self.message] if self.message else []
        if self.step is not None and self.kind in ("mismatch", "nonfinite"):
            where = f"step {self.step}, tensor {self.tensor} (shape {self.shape})"
            if self.index is not None:
                where += f", element {list(self.index)}"
            out.append(f"first wrong at {where}: expected {self.expected!r}, got {self.got!r}")
            out.append(f"largest |error| over the run: {self.max_abs_err:.3g}")
        if self.traceback:
            out.append("your code raised:\n" + _indent(self.traceback, "    "))
        for m in self.mistakes:
            out.append(f"This looks like: {m.name}.")
            out.append(f"Hint: {m.hint}")
        if self.seed not in (None, 0):
            out.append(f"(gradient sequence seed {self.seed})")
        return out


def _indent(text: str, pad: str) -> str:
    return "\n".join(pad + line for line in text.splitlines())


@dataclass
class CheckResult:
    """Everything one call of :func:`optimlab.check` found."""

    optimizer: str
    function: str
    device: str
    cases: list[CaseResult]
    elapsed: float = 0.0
    skipped: dict[str, list[str]] = field(default_factory=dict)
    """Groups a bare check left out, with the hyperparameters the function does not take."""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def groups(self) -> dict[str, bool]:
        """Group name → whether all its cases passed, in the order they ran."""
        out: dict[str, bool] = {}
        for c in self.cases:
            out[c.case.group] = out.get(c.case.group, True) and c.passed
        return out

    @property
    def failures(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.passed]

    @property
    def mistakes(self) -> list[Mistake]:
        """The catalogued mistakes the failures look like, most frequent first."""
        seen: dict[str, tuple[int, Mistake]] = {}
        for c in self.failures:
            for m in c.mistakes:
                n, _ = seen.get(m.key, (0, m))
                seen[m.key] = (n + 1, m)
        return [m for _, m in sorted(seen.values(), key=lambda x: -x[0])]

    def summary(self) -> str:
        n_ok = sum(c.passed for c in self.cases)
        groups = ", ".join(f"{g} {'✓' if ok else '✗'}" for g, ok in self.groups.items())
        verdict = "matches torch.optim" if self.passed else "does not match torch.optim yet"
        return (f"{self.function} {verdict}: {n_ok}/{len(self.cases)} cases pass "
                f"({groups}) [{self.optimizer}, {self.device}]")

    def skipped_note(self) -> str:
        """Which groups were left out and why ("" when none were)."""
        if not self.skipped:
            return ""
        parts = [f"{g} (no {', '.join(f'`{k}`' for k in ks)})" for g, ks in self.skipped.items()]
        return ("skipped, because your function does not take their hyperparameters: "
                + "; ".join(parts))

    def __str__(self) -> str:
        lines = [self.summary(), *([self.skipped_note()] if self.skipped else [])]
        for c in self.failures:
            lines.append("")
            lines.append(f"✗ {c.title}  [{c.case.describe()}]")
            lines.extend(_indent(d, "  ") for d in c.details())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<CheckResult {self.summary()}>"

    def short(self) -> str:
        """The exception's message when the HTML report is displayed above it: the summary, the
        first failing case and what it looks like, in a few lines (``str()`` has everything)."""
        lines = [self.summary()]
        first = self.failures[0] if self.failures else None
        if first is not None:
            details = first.details()
            what = details[0].splitlines()[0] if details else first.kind
            lines.append(f"✗ {first.title}: {what}")
            named = next((c for c in self.failures if c.mistakes), None)
            if named is not None:
                m = named.mistakes[0]
                lines.append(f"This looks like: {m.name}.")
                lines.append(f"Hint: {m.hint}")
        lines.append("The report above says why, case by case.")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        # Inline styles only: nbgrader's feedback page and JupyterLab style bare tables
        # differently (right-aligned cells, no padding, zebra rows), and a notebook's HTML
        # output cannot bring a stylesheet.
        color = "#1a7f37" if self.passed else "#b42318"
        head = (f'<div style="font-family:sans-serif;line-height:1.4;border-left:4px solid '
                f'{color};padding:4px 10px;margin:4px 0;text-align:left">'
                f'<div style="color:{color};font-weight:bold">'
                f'{"✓" if self.passed else "✗"} {html.escape(self.summary())}</div>')
        note = (f'<div style="font-size:90%;margin-top:2px">{html.escape(self.skipped_note())}'
                "</div>" if self.skipped else "")
        rows = "".join(_html_row(c) for c in self.cases)
        header = "".join(f'<th style="{_CELL};{_HEAD}{extra}">{name}</th>' for name, extra in (
            ("", ""), ("group", ""), ("case", ""), ("settings", ""),
            ("what went wrong", ";min-width:24em")))
        table = (f'<table style="border-collapse:collapse;border:none;margin:6px 0 2px;'
                 f'font-size:90%;table-layout:auto;width:auto">'
                 f"<thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>")
        return head + note + table + "</div>"


_CELL = ("padding:3px 10px 3px 0;text-align:left;vertical-align:top;border:none;"
         "border-bottom:1px solid #d0d7de;background:transparent;line-height:1.4")
_HEAD = "font-weight:bold;white-space:nowrap"
_PRE = ("margin:0;padding:0;border:none;background:transparent;font-size:95%;"
        "white-space:pre-wrap;word-break:normal;overflow-wrap:break-word;font-family:monospace")


def _html_row(c: CaseResult) -> str:
    """One case as a table row: mark, group, case, its settings (each kept on one line) and,
    for a failure, what went wrong, with a named mistake and its hint set apart."""
    color = "#1a7f37" if c.passed else "#b42318"
    settings = ", ".join(f'<span style="white-space:nowrap">{html.escape(part)}</span>'
                         for part in c.case.describe().split(", "))
    detail = ""
    if not c.passed:
        blocks = []
        for d in c.details():
            if d.startswith(("This looks like: ", "Hint: ")):
                label, _, rest = d.partition(": ")
                blocks.append(f'<div style="margin-top:3px"><b>{html.escape(label)}:</b> '
                              f"{html.escape(rest)}</div>")
            else:
                blocks.append(f'<pre style="{_PRE}">{html.escape(d)}</pre>')
        detail = "".join(blocks)
    return (f'<tr><td style="{_CELL};color:{color};font-weight:bold">'
            f'{"✓" if c.passed else "✗"}</td>'
            f'<td style="{_CELL};white-space:nowrap">{html.escape(c.case.group)}</td>'
            f'<td style="{_CELL};white-space:nowrap">{html.escape(c.case.name)}</td>'
            f'<td style="{_CELL};min-width:12em;max-width:26em">{settings}</td>'
            f'<td style="{_CELL};min-width:24em">{detail}</td></tr>')
