"""Exercises a teacher can set and grade in one call: the ideas of the walkthrough, written by the
student from the math, checked on a grid built to catch the classic mistakes.

    names() / list()                  the exercises, in course order
    start(name, to=DIR)               DIR/NAME.py (the skeleton: functions raising NotImplementedError,
                                      docstrings with the task, equations, shapes, hints) and
                                      DIR/NAME.ipynb (the student notebook; DIR: notebooks/exercises)
    check(name, path, seed=None)      a Report: one row per test (name, passed, score, hint), a total,
                                      ``.ok``, ``.to_json()``
    grade(folder, name, seed=None)    a class's folder of files, one per student -> Grades (.to_csv())

On the command line: ``tinyeffnet exercise list | start NAME [--to DIR] | check NAME FILE [--seed S]
[--json] | grade NAME FOLDER [--csv OUT]`` (command.py).

What a check proves, for every exercise (harness.py): the answer against the library's reference
tier in float64 at every entry; for a backward, finite differences of the student's own forward at
EVERY entry of every gradient (not a sample); parity with PyTorch when it is installed (a row that
is skipped, and scores nothing, when it is not). ``seed`` draws new shapes and values inside the
same traps, so a teacher can grade on a grid the class has not seen. A submission that re-exports
the library's implementation is refused (loading.py). docs/teaching.md is the teacher's page.

Op exercises use the names, signatures and channels-last layouts of ``tinyeffnet.ops``; block
exercises are ``forward(block, x)`` / ``backward(block, dy)`` over the library's child modules.
"""
from __future__ import annotations

from .catalog import NAMES, get
from .checking import check
from .grading import Grades, grade
from .report import Report, Row
from .skeleton import start

__all__ = ["names", "list", "describe", "start", "check", "grade", "Report", "Row", "Grades"]


def names() -> tuple:
    """The exercises' names, in course order."""
    return NAMES


def list() -> tuple:  # noqa: A001 (tinyeffnet.exercises.list(), as the course materials spell it)
    """The exercises' names, in course order (the same as ``names()``)."""
    return NAMES


def describe(name: str) -> str:
    """One line: the exercise's title and the functions the student writes."""
    exercise = get(name)
    return f"{exercise.title}: " + ", ".join(f"{f.name}({f.params})" for f in exercise.functions)
