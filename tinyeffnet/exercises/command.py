"""``tinyeffnet exercise``: set, check and grade the exercises from the command line.

    tinyeffnet exercise list                                   the exercises, one line each
    tinyeffnet exercise start NAME [--to DIR] [--force]        write DIR/NAME.py and DIR/NAME.ipynb
    tinyeffnet exercise check NAME FILE [--seed S] [--json]    one row per test, hints on failures
    tinyeffnet exercise grade NAME FOLDER [--seed S] [--csv OUT]   one row per student (FOLDER/*.py)

Exit codes, as the rest of the command line (tinyeffnet/cli.py): 0 everything checked passed; 1 a
check ran and something failed (or was refused); 2 bad input (an unknown exercise: argparse's usage
line; a missing file or folder, a file that would be overwritten: one line "error: ..." on stderr).

``add_parser(subparsers)`` adds the ``exercise`` command to a parser's subparsers (the main
command line wires it in with one line); ``main(argv)`` runs it as a program of its own.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import _error, non_negative_int, positive_float   # the command line's own argument types
from .catalog import NAMES

FORMATTER = argparse.ArgumentDefaultsHelpFormatter


def _cmd_list(args) -> int:
    from . import describe

    width = max(len(name) for name in NAMES)
    for name in NAMES:
        print(f"{name:<{width}}  {describe(name)}")
    return 0


def _cmd_start(args) -> int:
    from .skeleton import start

    try:
        done = start(args.name, args.to, overwrite=args.force)
    except (FileExistsError, NotADirectoryError, OSError, ValueError) as err:
        return _error(err)
    print(f"wrote {done['skeleton']} (fill in the functions) and {done['notebook']} (the student notebook)")
    print(f"check it: tinyeffnet exercise check {args.name} {done['skeleton']}")
    return 0


def _cmd_check(args) -> int:
    from .checking import check

    if not Path(args.file).is_file():
        return _error(FileNotFoundError(f"FILE must be an existing .py file, got {args.file!r}"))
    report = check(args.name, args.file, args.seed, time_limit_s=args.time_limit)
    print(report.to_json() if args.json else report)
    return 0 if report.ok else 1


def _cmd_grade(args) -> int:
    from .grading import grade

    try:
        grades = grade(args.folder, args.name, args.seed, time_limit_s=args.time_limit)
        if args.csv:
            grades.write_csv(args.csv)
    except (FileNotFoundError, NotADirectoryError, OSError, ValueError) as err:
        return _error(err)
    print(grades)
    if args.csv:
        print(f"wrote {args.csv}")
    return 0 if grades.ok else 1


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``exercise`` (and its list / start / check / grade) to ``subparsers``; return its parser."""
    p = subparsers.add_parser("exercise", help="course exercises: list, start, check one file, grade a class",
                              formatter_class=FORMATTER, description=__doc__.split("\n")[0])
    p.add_argument("--time-limit", type=positive_float, default=60.0, help="seconds allowed per test row")
    sub = p.add_subparsers(dest="exercise_command", required=True, metavar="{list,start,check,grade}")

    q = sub.add_parser("list", help="the exercises, in course order", formatter_class=FORMATTER)

    q = sub.add_parser("start", help="write the skeleton NAME.py and the student notebook NAME.ipynb",
                       formatter_class=FORMATTER)
    q.add_argument("name", metavar="NAME", choices=NAMES, help=f"the exercise: {', '.join(NAMES)}")
    q.add_argument("--to", default="notebooks/exercises", help="the folder to write into")
    q.add_argument("--force", action="store_true", help="overwrite existing files (a student's work!)")

    q = sub.add_parser("check", help="check one submission: one row per test, a hint on each failure",
                       formatter_class=FORMATTER)
    q.add_argument("name", metavar="NAME", choices=NAMES, help=f"the exercise: {', '.join(NAMES)}")
    q.add_argument("file", metavar="FILE", help="the student's .py file")
    q.add_argument("--seed", type=non_negative_int, default=0, help="draws the grid's shapes and values; another seed, "
                                                         "another grid with the same traps")
    q.add_argument("--json", action="store_true", help="print the report as JSON")

    q = sub.add_parser("grade", help="check every FOLDER/*.py (one per student): one row per student",
                       formatter_class=FORMATTER)
    q.add_argument("name", metavar="NAME", choices=NAMES, help=f"the exercise: {', '.join(NAMES)}")
    q.add_argument("folder", metavar="FOLDER", help="a folder of submissions, one .py file per student")
    q.add_argument("--seed", type=non_negative_int, default=0, help="the grid's seed (the same for every student)")
    q.add_argument("--csv", default=None, metavar="OUT", help="also write the table as CSV to OUT")

    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """The handler of ``tinyeffnet exercise ...``: dispatch to the subcommand."""
    return {"list": _cmd_list, "start": _cmd_start, "check": _cmd_check, "grade": _cmd_grade}[
        args.exercise_command](args)


def main(argv=None) -> int:
    """``tinyeffnet exercise ...`` as a program of its own: argv without the leading "exercise"."""
    from ..process import configure_process

    configure_process()
    parser = argparse.ArgumentParser(prog="tinyeffnet", formatter_class=FORMATTER)
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["exercise", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
