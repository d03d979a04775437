"""``grade(folder, name)``: check every submission of a class in one call, one row per student.

The folder holds one file per student (``alice.py``, ``bob.py``, ...; the student is the file name
without ``.py``). Each file is checked on its own (``check``, in its own fresh module), so one broken
or refused file is that student's row and never stops the others. The table (``Grades``) prints as
text, and ``to_csv()`` / ``write_csv(path)`` give one CSV row per student:

    student, file, exercise, seed, score, possible, percent, passed, refused, failed, <one column per test>

``passed`` is the report's ``ok`` (every scoring row passed); ``failed`` names the failed rows;
each test column holds the points earned on that row (empty when it did not run).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from ..files import write_atomic
from .catalog import get
from .checking import DEFAULT_TIME_LIMIT, check


@dataclass
class Grades:
    """The reports of one exercise over a class (see the module docstring)."""

    exercise: str
    seed: int
    reports: dict = field(default_factory=dict)      # student -> Report

    @property
    def ok(self) -> bool:
        """Every student passed."""
        return bool(self.reports) and all(report.ok for report in self.reports.values())

    def test_names(self) -> list:
        return [test.name for test in get(self.exercise).tests]

    def rows(self) -> list:
        """One dict per student, the CSV's columns."""
        out = []
        for student, report in self.reports.items():
            scores = {row.name: row.score for row in report.rows if row.passed is not None}
            possible = report.possible
            row = {"student": student, "file": report.submission, "exercise": self.exercise, "seed": self.seed,
                   "score": report.total, "possible": possible,
                   "percent": round(100 * report.total / possible, 1) if possible else 0.0,
                   "passed": report.ok, "refused": report.refused,
                   "failed": "; ".join(r.name for r in report.failed)}
            for name in ["functions and signatures"] + self.test_names():
                row[name] = scores.get(name, "")
            out.append(row)
        return out

    def to_csv(self) -> str:
        rows = self.rows()
        buffer = io.StringIO()
        columns = list(rows[0]) if rows else ["student", "file", "exercise", "seed", "score", "possible", "percent",
                                               "passed", "refused", "failed"]
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()

    def write_csv(self, path) -> None:
        text = self.to_csv()
        write_atomic(path, lambda f: f.write(text.encode("utf-8")))

    def __str__(self) -> str:
        rows = self.rows()
        width = max([len(r["student"]) for r in rows] + [7])
        lines = [f"exercise {self.exercise}, seed {self.seed}: {len(rows)} submission(s)"]
        for r in rows:
            verdict = "pass" if r["passed"] else ("REFUSED" if r["refused"] else "FAIL")
            lines.append(f"  {r['student']:<{width}}  {r['score']:>3}/{r['possible']:<3} {r['percent']:5.1f}%  "
                         f"{verdict}" + (f"  ({r['failed']})" if r["failed"] and not r["refused"] else ""))
        return "\n".join(lines)


def grade(folder, name: str, seed: int | None = None, *, time_limit_s: float | None = DEFAULT_TIME_LIMIT) -> Grades:
    """Check every ``*.py`` file of ``folder`` on exercise ``name``; return the Grades table."""
    exercise = get(name)
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"folder must be an existing folder of submissions, got {str(folder)!r}")
    files = sorted(p for p in folder.glob("*.py") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no submissions (*.py files) in {folder}")
    grades = Grades(exercise.name, 0 if seed is None else seed)
    for path in files:
        grades.reports[path.stem] = check(exercise.name, path, seed, time_limit_s=time_limit_s)
    return grades
