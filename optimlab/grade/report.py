"""What grading a class gives back: a row per submission, the problems, where the CSV and the
feedback are, and the grades table printed at the end."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Row:
    """One student's result on one assignment."""

    student: str
    assignment: str
    score: float | None
    max_score: float
    needs_manual: bool = False
    problem: str | None = None


@dataclass
class Report:
    rows: list[Row]
    workdir: Path
    csv: Path
    feedback: Path
    problems: list[str] = field(default_factory=list)
    max_scores: dict[str, float] = field(default_factory=dict)
    sandbox: str = "bwrap"
    """How student code ran: ``bwrap`` (isolated) or ``none``."""

    def scores(self) -> dict[tuple[str, str], float | None]:
        return {(r.student, r.assignment): r.score for r in self.rows}

    def table(self) -> str:
        """Students down, assignments across, with totals."""
        from tabulate import tabulate

        students = sorted({r.student for r in self.rows})
        assignments = sorted({r.assignment for r in self.rows})
        by = {(r.student, r.assignment): r for r in self.rows}
        lines = []
        for s in students:
            cells, total, top = [s], 0.0, 0.0
            for a in assignments:
                r = by.get((s, a))
                if r is None:
                    top += self.max_scores.get(a, 0.0)
                    cells.append("missing")
                    continue
                top += r.max_score
                if r.score is None:
                    cells.append(f"0/{r.max_score:g} !")
                else:
                    total += r.score
                    mark = " *" if r.needs_manual else ""
                    cells.append(f"{r.score:g}/{r.max_score:g}{mark}")
            cells.append(f"{total:g}/{top:g}")
            lines.append(cells)
        out = [tabulate(lines, headers=["student", *assignments, "total"], tablefmt="simple",
                        disable_numparse=True, stralign="left")]
        if any(r.needs_manual for r in self.rows):
            out.append("* written answers still to be graded by hand (nbgrader formgrader)")
        if any(r.score is None for r in self.rows):
            out.append("! not graded: see the problems below")
        return "\n".join(out)


def read_csv(path: Path) -> list[dict[str, str]]:
    """The grades CSV (nbgrader's export) as rows of strings."""
    with path.open(newline="") as f:
        return list(csv.DictReader(f))
