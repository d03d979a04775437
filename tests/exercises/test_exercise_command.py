"""`tinyeffnet exercise ...`: exit codes (0 all passed, 1 a check failed, 2 bad input with one line
"error: ..."), --json, --seed, and grading a class's folder to CSV in one command."""
import argparse
import csv
import io
import json
import shutil

import pytest

from tinyeffnet.exercises import command
from tinyeffnet.exercises.catalog import NAMES

from exercise_mutants import solution_path, write_mutant


def _parser():
    parser = argparse.ArgumentParser(prog="tinyeffnet")
    command.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_add_parser_on_a_fresh_parser_runs_the_handler(capsys):
    args = _parser().parse_args(["exercise", "list"])
    assert args.func is command.run and args.func(args) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in NAMES)


def test_every_flag_has_help_and_shows_its_default():
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    parsers = [sub.choices["exercise"]]
    parsers += list(next(a for a in parsers[0]._actions if isinstance(a, argparse._SubParsersAction)).choices.values())
    for parser in parsers:
        assert parser.formatter_class is argparse.ArgumentDefaultsHelpFormatter
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, action.dest
            if action.option_strings and action.default is not argparse.SUPPRESS:
                assert f"(default: {action.default})" in text, action.dest


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as stop:
        command.main(["--help"])
    assert stop.value.code == 0 and "(default:" in capsys.readouterr().out


def test_check_exit_codes(tmp_path, capsys):
    assert command.main(["check", "batchnorm", str(solution_path("batchnorm"))]) == 0
    assert "all passed" in capsys.readouterr().out
    assert command.main(["check", "batchnorm", str(write_mutant("batchnorm", 0, tmp_path))]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "hint:" in out


def test_check_json_and_seed(capsys):
    assert command.main(["check", "same_padding", str(solution_path("same_padding")), "--json", "--seed", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["seed"] == 3 and report["total"] == report["possible"]
    assert {"name", "passed", "score", "points", "hint", "detail"} <= set(report["rows"][0])
    assert command.main(["check", "same_padding", str(solution_path("same_padding")), "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert default["seed"] == 0 and [r["detail"] for r in default["rows"]] != [r["detail"] for r in report["rows"]]


@pytest.mark.parametrize("argv, message", [
    (["check", "batchnorm", "no/such/file.py"], "error: FILE must be an existing .py file"),
    (["grade", "batchnorm", "no/such/folder"], "error: folder must be an existing folder"),
])
def test_bad_input_is_one_error_line_and_exit_2(argv, message, capsys):
    assert command.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["check", "conv3d", "x.py"], ["check", "batchnorm", "x.py", "--seed", "-1"],
                                  ["start"], ["grade", "batchnorm"], ["nonsense"], ["--time-limit", "0", "list"]])
def test_argparse_refuses_with_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        command.main(argv)
    assert stop.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_start_writes_and_does_not_overwrite(tmp_path, capsys):
    assert command.main(["start", "winograd_f23", "--to", str(tmp_path)]) == 0
    assert (tmp_path / "winograd_f23.py").is_file() and (tmp_path / "winograd_f23.ipynb").is_file()
    (tmp_path / "winograd_f23.py").write_text("# my work")
    capsys.readouterr()
    assert command.main(["start", "winograd_f23", "--to", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ") and (tmp_path / "winograd_f23.py").read_text() == "# my work"
    assert command.main(["start", "winograd_f23", "--to", str(tmp_path), "--force"]) == 0
    assert "NotImplementedError" in (tmp_path / "winograd_f23.py").read_text()


def test_grade_a_class_to_csv(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(solution_path("batchnorm"), folder / "alice.py")
    shutil.copy(write_mutant("batchnorm", 1, tmp_path), folder / "bob.py")           # biased running_var
    (folder / "carol.py").write_text("from tinyeffnet.ops import batchnorm_forward, batchnorm_backward\n")
    out = tmp_path / "grades.csv"
    assert command.main(["grade", "batchnorm", str(folder), "--csv", str(out), "--seed", "5"]) == 1   # not all pass
    printed = capsys.readouterr().out
    assert "alice" in printed and "REFUSED" in printed and f"wrote {out}" in printed
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["student"] for r in rows] == ["alice", "bob", "carol"]
    by = {r["student"]: r for r in rows}
    assert by["alice"]["passed"] == "True" and by["alice"]["score"] == by["alice"]["possible"]
    assert by["bob"]["passed"] == "False" and 0 < int(by["bob"]["score"]) < int(by["bob"]["possible"])
    assert "running statistics" in by["bob"]["failed"]
    assert by["carol"]["passed"] == "False" and "library" in by["carol"]["refused"] and by["carol"]["score"] == "0"
    assert all(r["seed"] == "5" for r in rows)
    assert "training backward" in rows[0]                                  # one column per test


def test_grade_exit_0_when_everyone_passes(tmp_path, capsys):
    for student in ("ann", "ben"):
        shutil.copy(solution_path("same_padding"), tmp_path / f"{student}.py")
    assert command.main(["grade", "same_padding", str(tmp_path)]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert command.main(["grade", "same_padding", str(empty)]) == 2
    assert capsys.readouterr().err.startswith("error: no submissions")
