"""``check(name, submission, seed)``: run one exercise's grid on one submission, one row per test.

    1. load      the file in a fresh module (loading.py); a syntax error or an exception at
                 import is one failed row, never a crash
    2. own work  refuse a submission that is, imports, or calls the library's implementation
    3. interface every function the exercise asks for exists and takes the skeleton's parameters
    4. the grid  each test in its own time limit, with a generator drawn from (seed, test name):
                 a Mismatch is a failed row with its hint, NotImplementedError says "not written
                 yet", any other exception is a failed row naming it; a Skip scores nothing

seed None is the published grid (seed 0); a teacher grades with another seed so the shapes and
values are ones the students have not seen.
"""
from __future__ import annotations

import inspect
import numbers
import time
import types
from pathlib import Path

from .catalog import get
from .harness import Mismatch, Skip, rng_for
from .loading import (CallGuard, Refused, SubmissionError, check_own, in_package, load_submission, scan_imports,
                      time_limit)
from .report import Report, Row

DEFAULT_SEED = 0
DEFAULT_TIME_LIMIT = 60.0        # seconds per test row


def check(name: str, submission, seed: int | None = None, *, time_limit_s: float | None = DEFAULT_TIME_LIMIT) -> Report:
    """Grade ``submission`` (a path to a .py file, or an imported module) on exercise ``name``.

    Returns a Report (report.py): one Row per test, ``total`` / ``possible`` points, ``ok``.
    Raises ValueError only for a bad ``name`` or ``seed``; everything wrong with the submission is a row.
    """
    exercise = get(name)
    seed = DEFAULT_SEED if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an int >= 0 or None, got {seed!r}")
    seed = int(seed)
    label = submission.__name__ if isinstance(submission, types.ModuleType) else str(submission)
    report = Report(exercise.name, label, seed)
    try:
        module = _load(exercise, submission, time_limit_s)
        check_own(module, exercise.function_names)
    except SubmissionError as err:
        report.rows.append(Row("load", False, hint="the file must import without an error", detail=str(err)))
        return report
    except Refused as err:
        return _refuse(report, str(err))
    report.rows.append(_interface_row(exercise, module))
    _prepare(exercise)
    guard = CallGuard(exercise.forbidden or in_package)
    module = guard.namespace(module, exercise.function_names)
    for test in exercise.tests:
        guard.calls.clear()                      # each row's first calls are watched
        start = time.perf_counter()
        try:
            with time_limit(time_limit_s):
                detail = test.run(module, rng_for(seed, test.name)) or ""
            row = Row(test.name, True, test.points, detail=detail)
        except Skip as err:
            row = Row(test.name, None, 0, detail=str(err))
        except Refused as err:
            return _refuse(report, str(err))
        except Mismatch as err:
            row = Row(test.name, False, test.points, test.hint, str(err))
        except NotImplementedError as err:
            row = Row(test.name, False, test.points, "write the function: it still raises NotImplementedError",
                      f"NotImplementedError: {err}" if str(err) else "NotImplementedError")
        except KeyboardInterrupt:
            raise
        except BaseException as err:             # a student's bug, SystemExit included, is a failed row
            row = Row(test.name, False, test.points, test.hint, f"raised {type(err).__name__}: {err}")
        row.seconds = round(time.perf_counter() - start, 3)
        report.rows.append(row)
    return report


def _prepare(exercise) -> None:
    """What must not run under a test's time limit: importing torch (an import cut short by the alarm
    leaves a half-initialised module behind) and compiling the library's kernels (exercise.warmup)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    if exercise.warmup is not None:
        exercise.warmup()


def _refuse(report: Report, message: str) -> Report:
    report.refused = message
    report.rows = [Row("own work", False, hint="the submission must be your own code, not the library's",
                       detail=message)]
    return report


def _load(exercise, submission, seconds):
    if isinstance(submission, types.ModuleType):
        path = getattr(submission, "__file__", None)
        if path and Path(path).is_file():                    # the same import scan as for a file
            scan_imports(Path(path).read_text(encoding="utf-8"), path, exercise.allowed, exercise.block_arg)
        return submission
    if not isinstance(submission, (str, Path)):
        raise SubmissionError(f"submission must be a path or a module, got {type(submission).__name__}")
    return load_submission(submission, allowed=exercise.allowed, block_arg=exercise.block_arg, seconds=seconds)


def _interface_row(exercise, module) -> Row:
    """Every function exists, is callable, and takes the skeleton's parameters (names and order)."""
    problems = []
    for function in exercise.functions:
        fn = getattr(module, function.name, None)
        if not callable(fn):
            problems.append(f"missing {function.name}({function.params})")
            continue
        expected = [p.split("=")[0].strip() for p in function.params.split(",") if p.strip()]
        try:
            got = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            continue
        if got[:len(expected)] != expected:
            problems.append(f"{function.name}({', '.join(got)}): expected ({function.params})")
    return Row("functions and signatures", not problems, 1,
               "keep the skeleton's function names and parameters (the check calls them by position and name)",
               "; ".join(problems) or ", ".join(exercise.function_names))
