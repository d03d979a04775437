"""What a check hands back: one row per test, a score, a total, and ``ok``.

A row is one test of the grid (``Row``):

    name     what was tested ("stride 2, odd size 5x7")
    passed   True, False, or None for a row that did not run (torch not installed): such a row
             scores nothing and counts against nobody
    score    points earned: ``points`` when passed, else 0
    points   what the row is worth (0 for a row that is only information)
    hint     on failure: the classic mistake this row catches, in one sentence
    detail   what was seen: shapes, the first wrong entry, the exception

A report (``Report``) is ``ok`` when it has at least one scoring row and every scoring row passed;
``total`` / ``possible`` are the points. ``to_dict()`` / ``to_json()`` give the same as plain JSON, and
``str(report)`` is the table the command line prints.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass
class Row:
    """One test of the grid (see the module docstring)."""

    name: str
    passed: bool | None
    points: int = 1
    hint: str = ""
    detail: str = ""
    seconds: float = 0.0

    @property
    def score(self) -> int:
        """points when the row passed, 0 otherwise (a skipped row scores 0 out of 0)."""
        return self.points if self.passed else 0

    @property
    def status(self) -> str:
        """"pass", "FAIL" or "skipped": what the table prints."""
        return "skipped" if self.passed is None else ("pass" if self.passed else "FAIL")

    def to_dict(self) -> dict:
        return {**asdict(self), "score": self.score, "status": self.status}


@dataclass
class Report:
    """The rows of one check of one submission (see the module docstring)."""

    exercise: str
    submission: str
    seed: int
    rows: list = field(default_factory=list)
    refused: str = ""            # non-empty: the submission was refused (re-exports the library) or did not load

    @property
    def scoring(self) -> list:
        return [row for row in self.rows if row.passed is not None and row.points > 0]

    @property
    def total(self) -> int:
        """Points earned."""
        return sum(row.score for row in self.rows)

    @property
    def possible(self) -> int:
        """Points available: the sum over the rows that ran."""
        return sum(row.points for row in self.rows if row.passed is not None)

    @property
    def ok(self) -> bool:
        """Every scoring row passed (and there was at least one)."""
        return not self.refused and bool(self.scoring) and all(row.passed for row in self.scoring)

    @property
    def failed(self) -> list:
        return [row for row in self.rows if row.passed is False]

    def to_dict(self) -> dict:
        return {"exercise": self.exercise, "submission": self.submission, "seed": self.seed, "ok": self.ok,
                "total": self.total, "possible": self.possible, "refused": self.refused,
                "rows": [row.to_dict() for row in self.rows]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def __str__(self) -> str:
        width = max([len(row.name) for row in self.rows] + [4])
        lines = [f"exercise {self.exercise}: {self.submission} (seed {self.seed})"]
        for row in self.rows:
            lines.append(f"  {row.status:<7}  {row.name:<{width}}  {row.score}/{row.points}")
            if row.passed is False:
                if row.hint:
                    lines.append(f"           hint: {row.hint}")
                for text in row.detail.splitlines()[:6]:
                    lines.append(f"           {text}")
            elif row.passed is None and row.detail:
                lines.append(f"           {row.detail}")
        verdict = "all passed" if self.ok else f"{len(self.failed)} failed"
        if self.refused:
            verdict = f"refused: {self.refused}"
        lines.append(f"  total {self.total}/{self.possible}: {verdict}")
        return "\n".join(lines)
