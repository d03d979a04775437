"""The command line's own contract: --version, help text for every flag with its default shown, the
argparse value types, and that good input still runs. (Bad input, every subcommand and flag, is in
tests/test_bad_input.py.)"""
import argparse

import pytest

import tinyeffnet
from tinyeffnet import cli


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


SUBCOMMANDS = sorted(_subparsers(cli.build_parser()))


def test_every_subcommand_is_listed():
    assert {"gradcheck", "bench", "train", "summary"} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("name", ["(top)"] + SUBCOMMANDS)
def test_every_flag_has_help_and_shows_its_default(name):
    top = cli.build_parser()
    parser = top if name == "(top)" else _subparsers(top)[name]
    assert parser.formatter_class is argparse.ArgumentDefaultsHelpFormatter, name
    text = parser.format_help()
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        flag = action.option_strings[-1] if action.option_strings else action.dest
        assert action.help, f"{name} {flag}: no help text"
        if action.option_strings and action.default is not argparse.SUPPRESS and action.required is False:
            assert f"(default: {action.default})" in " ".join(text.split()), f"{name} {flag}: default not shown"


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_help_exits_0(name, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([name, "--help"])
    assert stop.value.code == 0
    assert "(default:" in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"tinyeffnet {tinyeffnet.__version__}"


@pytest.mark.parametrize("kind, text, expected", [
    (cli.positive_int, "3", 3), (cli.positive_int, "1", 1),
    (cli.non_negative_int, "0", 0), (cli.positive_float, "1e-3", 1e-3), (cli.non_negative_float, "0", 0.0),
])
def test_value_types_accept(kind, text, expected):
    assert kind(text) == expected


@pytest.mark.parametrize("kind, text", [
    (cli.positive_int, "0"), (cli.positive_int, "-3"), (cli.positive_int, "2.5"), (cli.positive_int, "ten"),
    (cli.non_negative_int, "-1"), (cli.positive_float, "0"), (cli.positive_float, "-1"),
    (cli.positive_float, "nan"), (cli.positive_float, "inf"), (cli.non_negative_float, "-0.1"),
    (cli.non_negative_float, "x"),
])
def test_value_types_refuse_with_the_expectation(kind, text):
    with pytest.raises(argparse.ArgumentTypeError, match="must be an? "):
        kind(text)


def test_good_input_still_runs(capsys):
    assert cli.main(["summary", "efficientnetv2_tiny", "--image-size", "32"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("efficientnetv2_tiny at 32x32") and "total" in out


def test_gradcheck_passes_samples_on(monkeypatch):
    seen = {}
    monkeypatch.setattr("tinyeffnet.selfcheck.run", lambda samples: seen.setdefault("samples", samples) or True)
    assert cli.main(["gradcheck", "--samples", "3"]) == 0
    assert seen == {"samples": 3}


def test_train_says_where_it_wrote(tmp_path, capsys, monkeypatch):
    # out left unset: the folder is chosen (runs/shapes) and the last line names it, not "None"
    from tinyeffnet import cli

    monkeypatch.chdir(tmp_path)
    code = cli.main(["train", "--epochs", "1", "--stages", "1", "--train-samples", "32", "--val-samples", "8",
                     "--min-size", "16", "--max-size", "16", "--eval-size", "16", "--no-progress-bar"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "wrote runs/shapes/metrics.jsonl" in last, last
    assert (tmp_path / "runs" / "shapes" / "metrics.jsonl").is_file()


def _train_config_of(argv, monkeypatch):
    """The TrainConfig that `tinyeffnet train ARGV` builds (the Trainer replaced: nothing runs)."""
    seen = {}

    class NoTraining:
        def __init__(self, cfg, progress=True):
            seen["cfg"] = cfg

        def run(self, resume=False):
            return []

    monkeypatch.setattr("tinyeffnet.train.Trainer", NoTraining)
    assert cli.main(["train", *argv]) == 0
    return seen["cfg"]


def test_train_without_flags_is_the_main_job(monkeypatch):
    from tinyeffnet.train import TrainConfig

    cfg = _train_config_of([], monkeypatch)
    assert cfg == TrainConfig()
    assert (cfg.schedule, cfg.lr_schedule, cfg.min_size, cfg.max_size, cfg.eval_size) == ("custom", "cosine", 32, 48, 48)


def test_train_schedule_flags_and_explicit_sizes_override_the_preset(monkeypatch):
    cfg = _train_config_of(["--schedule", "paper", "--min-size", "32", "--max-size", "48", "--eval-size", "58",
                            "--lr-schedule", "exponential"], monkeypatch)
    assert (cfg.schedule, cfg.lr_schedule) == ("paper", "exponential")
    assert (cfg.min_size, cfg.max_size, cfg.eval_size) == (32, 48, 58)
    assert (cfg.dropout, cfg.randaug, cfg.mixup) == ((0.1, 0.3), (5.0, 15.0), (0.0, 0.0))     # Table 6, S row
    cfg = _train_config_of(["--schedule", "released", "--model", "efficientnetv2_m"], monkeypatch)
    assert (cfg.min_size, cfg.max_size, cfg.eval_size, cfg.dropout) == (128, 384, 480, (0.3, 0.3))


def test_train_refuses_an_unknown_schedule(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "--schedule", "table6"])
    assert stop.value.code == 2
    assert "--schedule" in capsys.readouterr().err


def test_train_names_the_schedule_behind_a_bad_size(capsys):
    assert cli.main(["train", "--schedule", "paper", "--max-size", "48"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: max_size must be an int >= min_size (128), got 48") and "paper schedule" in err


def _fake_bench(monkeypatch, module: str) -> dict:
    """Replace tinyeffnet.bench.<module>'s run (it records its options in the dict returned) and
    format_table (it prints "TABLE")."""
    seen = {}

    def fake_run(**options):
        seen.update(options)
        return {"fake": True}

    monkeypatch.setattr(f"tinyeffnet.bench.{module}.run", fake_run)
    monkeypatch.setattr(f"tinyeffnet.bench.{module}.format_table", lambda results: "TABLE")
    return seen


def test_bench_progressive_passes_its_options_on(monkeypatch, capsys, tmp_path):
    seen = _fake_bench(monkeypatch, "progressive")
    out = str(tmp_path / "b")
    assert cli.main(["bench", "progressive", "--seeds", "2", "--dataset", "clutter", "--target", "0.5", "--epochs",
                     "3", "--train-samples", "64", "--val-samples", "32", "--out", out, "--schedule", "released"]) == 0
    assert seen == dict(out=out, dataset="clutter", epochs=3, seeds=2, target=0.5, train_samples=64, val_samples=32,
                        schedule="released")
    assert capsys.readouterr().out.startswith("TABLE")
    assert cli.main(["bench", "progressive"]) == 0                   # the defaults: the main job, 3 seeds
    assert (seen["dataset"], seen["seeds"], seen["schedule"]) == ("shapes", 3, "custom")


def test_bench_train_vs_torch_passes_its_options_on(monkeypatch, capsys):
    seen = _fake_bench(monkeypatch, "train_vs_torch")
    assert cli.main(["bench", "train-vs-torch", "--rounds", "2", "--peers", "torch-cl", "--isa", "avx2",
                     "--target", "0.8", "--epochs", "3", "--train-samples", "64", "--val-samples", "32"]) == 0
    del seen["progress"]
    assert seen == dict(rounds=2, target=0.8, epochs=3, peers=("torch-cl",), isa="avx2", train_samples=64,
                        val_samples=32)
    assert capsys.readouterr().out.startswith("TABLE")


def test_bench_train_vs_torch_refuses_a_peer_it_has_no_job_for(capsys):
    assert cli.main(["bench", "train-vs-torch", "--peers", "torch-compile"]) == 2
    assert "peers must be one or more of torch, torch-cl" in capsys.readouterr().err
