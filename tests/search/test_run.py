"""The search loop: a killed search resumes to the uninterrupted result; trials.jsonl, best.json,
pareto.png; the --arch round trip (search -> best.json -> train -> summary); bad input."""
import json

import numpy as np
import pytest

from tinyeffnet.cli import main
from tinyeffnet.search.arch import read_arch
from tinyeffnet.search.run import (BEST, PARETO, SETTINGS, TRIALS, SearchConfig, SearchStopped, pareto_front,
                                   read_trials, search)
from tinyeffnet.search.timing import StepTiming, measure_step_time

# A search small enough for a test: 64 images at 16 px, one epoch per trial, four trials of
# evolution with a population of 2 (so trials 3 and 4 are mutations of recorded winners).
TINY = dict(trials=4, epochs_per_trial=1, image_size=16, train_samples=64, val_samples=32, batch_size=32,
            strategy="evolution", population=2, sample_size=2, timing_rounds=1, dataset="clutter", seed=3)


def fake_timer(arch, reference):
    """Deterministic S: the candidate's blocks-times-kernel-area over the reference's."""
    def cost(a):
        return sum(s.repeats * s.kernel ** 2 * s.expand for s in a.stages)
    return StepTiming(cost(arch) * 1e-4, cost(reference) * 1e-4, cost(arch) / cost(reference), 0.0, 1)


def quiet(*args, **kwargs):
    pass


KEYS = ("trial", "seed", "candidate", "stages", "params", "param_ratio", "step_time_s", "step_ratio",
        "accuracy", "val_loss", "reward")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    result = search(out=str(out), progress=False, log=quiet, timer=fake_timer, **TINY)
    return out, result


def test_a_search_writes_trials_best_and_pareto(uninterrupted):
    out, result = uninterrupted
    trials = read_trials(out / TRIALS)
    assert [t["trial"] for t in trials] == [1, 2, 3, 4]
    for t in trials:
        assert set(KEYS) <= set(t)
        assert 0 <= t["accuracy"] <= 1 and t["params"] > 0
        assert t["reward"] == pytest.approx(t["accuracy"] * t["step_ratio"] ** -0.07 * t["param_ratio"] ** -0.05)
    assert trials[0]["step_ratio"] == 1.0 and trials[0]["param_ratio"] == 1.0        # trial 1: the backbone
    best = max(trials, key=lambda t: t["reward"])
    assert result["best"] == best
    arch = read_arch(out / BEST)
    assert [s.__dict__ for s in arch.stages] == best["stages"] and arch.head_channels == best["head_channels"]
    assert (out / PARETO).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / SETTINGS).read_text())["strategy"] == "evolution"


def test_a_killed_search_resumes_to_the_same_result(uninterrupted, tmp_path):
    whole, result = uninterrupted
    with pytest.raises(SearchStopped):
        search(out=str(tmp_path), progress=False, log=quiet, timer=fake_timer, stop_after=2, **TINY)
    assert len(read_trials(tmp_path / TRIALS)) == 2
    with open(tmp_path / TRIALS, "ab") as f:                     # a kill during the third line's write
        f.write(b'{"trial": 3, "candidate": [["fu')
    (tmp_path / "trials" / "0003").mkdir(parents=True)            # and its half-done trial folder
    resumed = search(out=str(tmp_path), progress=False, log=quiet, timer=fake_timer, resume=True, **TINY)
    a, b = read_trials(whole / TRIALS), read_trials(tmp_path / TRIALS)
    assert len(b) == 4
    assert [{k: t[k] for k in KEYS} for t in a] == [{k: t[k] for k in KEYS} for t in b]
    assert resumed["best"]["trial"] == result["best"]["trial"]
    assert read_arch(whole / BEST) == read_arch(tmp_path / BEST)


def test_resume_refuses_other_settings_and_needs_a_search(uninterrupted, tmp_path):
    whole, _ = uninterrupted
    with pytest.raises(ValueError, match="different settings: epochs_per_trial=1 .now 2."):
        search(out=str(whole), progress=False, log=quiet, timer=fake_timer, resume=True,
               **{**TINY, "epochs_per_trial": 2})
    with pytest.raises(FileNotFoundError, match="no search to resume"):
        search(out=str(tmp_path / "none"), progress=False, log=quiet, timer=fake_timer, resume=True, **TINY)


def test_read_trials_drops_a_torn_line_and_what_follows(tmp_path):
    path = tmp_path / TRIALS
    path.write_text('{"trial": 1}\n{"trial": 2}\n{"tri\n{"trial": 4}\n')
    assert read_trials(path) == [{"trial": 1}, {"trial": 2}]
    path.write_text('{"trial": 1}\n{"trial": 3}\n')                  # a gap: not this search's order
    assert read_trials(path) == [{"trial": 1}]
    assert read_trials(tmp_path / "missing.jsonl") == []


def test_pareto_front_keeps_the_undominated():
    trials = [{"step_ratio": s, "accuracy": a} for s, a in [(1.0, 0.5), (0.8, 0.4), (1.2, 0.45), (1.5, 0.7),
                                                            (0.8, 0.3)]]
    assert [(t["step_ratio"], t["accuracy"]) for t in pareto_front(trials)] == [(0.8, 0.4), (1.0, 0.5), (1.5, 0.7)]


def test_real_step_timing_after_compilation(tmp_path):
    from tinyeffnet.search.space import SearchSpace

    space = SearchSpace()
    big = space.arch(space.backbone_candidate()).build(4)
    small = space.arch(space.sample(np.random.default_rng(0))).build(4)
    t = measure_step_time(small, big, image_size=16, batch_size=4, rounds=3, warmup=1)
    assert t.step_time_s > 0 and t.reference_s > 0 and t.ratio > 0 and t.spread >= 0 and t.rounds == 3
    assert set(t.to_dict()) == {"step_time_s", "reference_step_time_s", "step_ratio", "step_ratio_spread",
                                "timing_rounds"}
    with pytest.raises(ValueError, match="measure_step_time: rounds must be an int >= 1, got 0"):
        measure_step_time(small, big, image_size=16, rounds=0)


def test_the_arch_round_trip_search_train_summary(uninterrupted, tmp_path, capsys):
    whole, result = uninterrupted
    best = whole / BEST
    run = tmp_path / "run"
    args = ["train", "--arch", str(best), "--dataset", "clutter", "--epochs", "1", "--train-samples", "64",
            "--val-samples", "32", "--batch-size", "32", "--min-size", "16", "--max-size", "16",
            "--eval-size", "16", "--stages", "1", "--out", str(run), "--no-progress-bar"]
    assert main(args) == 0
    assert "done: val accuracy" in capsys.readouterr().out
    from tinyeffnet.train import CHECKPOINT, load_checkpoint

    settings = json.loads(str(load_checkpoint(run / CHECKPOINT)["config"]))
    assert settings["arch"] == str(best) and settings["dataset"] == "clutter"
    assert json.loads(settings["arch_table"])["stages"] == result["best"]["stages"]
    # The checkpoint's weights are the searched network's (one key per parameter of that network).
    model = read_arch(best).build(16)
    assert len([k for k in load_checkpoint(run / CHECKPOINT) if k.startswith("model.")]) == len(model.state_dict())
    # A resume with another architecture (same flags, other file) is refused.
    other = tmp_path / "other.json"
    table = json.loads(best.read_text())
    table["stages"][0]["kernel"] = 8 - table["stages"][0]["kernel"]            # 3 <-> 5
    other.write_text(json.dumps(table))
    assert main([*args[:1], "--arch", str(other), *args[3:], "--resume"]) == 2
    assert "different settings: arch_table" in capsys.readouterr().err
    assert main([*args, "--epochs", "2", "--resume"]) == 0                   # same arch: continues
    capsys.readouterr()
    assert main(["summary", "--arch", str(best), "--image-size", "32", "--num-classes", "16"]) == 0
    table = capsys.readouterr().out
    assert f"{model.num_parameters():,}" in table


@pytest.mark.parametrize("content, message", [
    ("not json", "is not JSON"),
    ('{"stages": []}', "'stages' must be a non-empty list"),
    ('{"format": "other", "stages": []}', "format must be 'tinyeffnet-arch'"),
    ('{"stages": [{"block": "fused", "repeats": 1, "kernel": 3, "stride": 1, "expand": 1, "in_ch": 16}]}',
     "stage 1: missing out_ch"),
    ('{"stages": [{"block": "fused", "repeats": 1, "kernel": 3, "stride": 1, "expand": 1, "in_ch": 16,'
     ' "out_ch": 16, "se": 0.25}]}', "stage 1: Stage: Fused-MBConv stages have no squeeze-excite"),
    ('{"stages": [{"block": "fused", "repeats": 1, "kernel": 3, "stride": 1, "expand": 1, "in_ch": 16,'
     ' "out_ch": 16, "width": 2}]}', "stage 1: unknown width"),
    ('{"stages": [{"block": "fused", "repeats": 1.5, "kernel": 3, "stride": 1, "expand": 1, "in_ch": 16,'
     ' "out_ch": 16}]}', "stage 1: repeats must be an int >= 1, got 1.5"),
    ('[{"block": "fused", "repeats": 1, "kernel": 3, "stride": 1, "expand": 1, "in_ch": 16, "out_ch": 16},'
     ' {"block": "fused", "repeats": 1, "kernel": 3, "stride": 2, "expand": 4, "in_ch": 24, "out_ch": 32}]',
     "stage 2 has in_ch 24 but stage 1 has out_ch 16"),
    ('{"head_channels": 0, "stages": [{"block": "mbconv", "repeats": 1, "kernel": 3, "stride": 1, "expand": 4,'
     ' "in_ch": 16, "out_ch": 16, "se": 0.25}]}', "head_channels must be an int >= 1, got 0"),
])
def test_bad_arch_files_are_named_with_the_problem(tmp_path, capsys, content, message):
    path = tmp_path / "arch.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_arch(path)
    assert main(["summary", "--arch", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: arch file {path}") and message.replace("'", "'") in err


def test_train_and_summary_refuse_missing_arch_files_and_mixed_arguments(tmp_path, capsys):
    assert main(["train", "--arch", str(tmp_path / "none.json"), "--out", str(tmp_path / "r")]) == 2
    assert "arch must be an existing stage-table JSON file" in capsys.readouterr().err
    assert main(["summary"]) == 2
    assert "summary needs a model NAME or --arch FILE" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("overrides, message", [
    (dict(strategy="grid"), "strategy must be random or evolution, got 'grid'"),
    (dict(dataset="mnist"), "dataset must be clutter or shapes, got 'mnist'"),
    (dict(trials=0), "trials must be an int >= 1, got 0"),
    (dict(image_size=8), "image_size must be an int >= 16, got 8"),
    (dict(w=float("nan")), "w must be a finite number"),
    (dict(batch_size=128, train_samples=64), r"batch_size \(128\) must be <= train_samples \(64\)"),
])
def test_bad_search_settings_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        SearchConfig(**overrides)


def test_cli_search_refuses_bad_values_before_running(tmp_path, capsys):
    assert main(["search", "--w", "nan", "--out", str(tmp_path / "s")]) == 2
    assert "w must be a finite number" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "--strategy", "grid"])
    assert exit_info.value.code == 2
    assert not (tmp_path / "s").exists()


def test_a_finished_search_extends_with_more_trials_and_draws_a_bar_on_a_terminal(uninterrupted, tmp_path,
                                                                                   monkeypatch, capsys):
    import shutil

    import tinyeffnet.search.run as run

    whole, _ = uninterrupted
    shutil.copytree(whole, tmp_path / "s")
    monkeypatch.setattr(run, "_interactive", lambda: True)
    result = search(out=str(tmp_path / "s"), progress=True, log=quiet, timer=fake_timer, resume=True,
                    **{**TINY, "trials": 5})
    assert [t["trial"] for t in result["trials"]] == [1, 2, 3, 4, 5]
    assert read_trials(tmp_path / "s" / TRIALS)[:4] == read_trials(whole / TRIALS)
    captured = capsys.readouterr()
    assert "search: 100%" in captured.err and "5/5" in captured.err              # the bar, on stderr
    assert "trial   5/5: acc" in captured.out                                    # the trial's line, above it
