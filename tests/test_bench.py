"""The benchmark commands run end to end (tiny settings: this checks the plumbing, not the speed)."""
import os

import numpy as np

from tinyeffnet.bench import ops as bench_ops
from tinyeffnet.bench import train_step


def test_ops_bench_times_every_case_for_both_contenders():
    rows = {}
    for contender in ("numba", "torch"):
        rows[contender] = bench_ops.run_worker(contender, repeats=1)
        assert set(rows[contender]) == {case.name for case in bench_ops.CASES}
        assert all(t > 0 for t in rows[contender].values())
    summary = {name: {c: {"median_ms": rows[c][name] * 1e3, "min_ms": 0.0, "max_ms": 1.0} for c in rows}
               for name in rows["numba"]}
    for row in summary.values():
        row["ratio"] = row["numba"]["median_ms"] / row["torch"]["median_ms"]
    table = bench_ops.format_table(summary)
    assert "BN+SiLU C192 @32 (st2)" in table and "ratio" in table


def test_profile_accounts_for_the_whole_step():
    result = train_step.profile(size=32, batch=2, steps=1)
    families = [key for key in train_step.FAMILIES]
    assert result["total"] > 0
    assert result["conv2d"] > 0 and result["batchnorm"] > 0 and result["depthwise_conv2d"] > 0
    assert np.isclose(sum(result[f] for f in families) + result["other"], result["total"])
    assert "dense conv" in train_step.format_profile(result, 32, 2)


def test_train_step_workers_report_time_start_memory_and_paths():
    for contender in ("tinyeffnet", "torch", "torch-cl"):
        report = train_step.run_worker(contender, size=32, batch=2, steps=1, model="efficientnetv2_tiny")
        assert report["median_s"] > 0 and report["start_s"] > 0 and report["peak_rss_mib"] > 0
        assert ("Numba" in report["paths"]) == (contender == "tinyeffnet")


def test_the_torch_peers_train_the_same_network():
    """Every peer builds the same network (interop.torchvision_model of ours): the same parameter count."""
    import torch  # noqa: F401  (a missing torch must fail here)

    from tinyeffnet.interop import torchvision_model

    ours = train_step._our_model("efficientnetv2_tiny")
    theirs = torchvision_model(ours)
    assert sum(p.data.size for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())


def test_avx2_workers_get_every_forcing_variable():
    from tinyeffnet.machine import AVX2_ENVIRONMENT

    for contender in train_step.CONTENDERS:
        env = train_step.contender_environment(contender, "avx2", None)
        assert {k: env[k] for k in AVX2_ENVIRONMENT} == AVX2_ENVIRONMENT
        native = train_step.contender_environment(contender, "native", None)       # native: the user's own, untouched
        assert all(native.get(k) == os.environ.get(k) for k in AVX2_ENVIRONMENT)


def test_format_table_gives_a_ratio_per_peer():
    stats = {"median_ms": 10.0, "min_ms": 9.0, "max_ms": 11.0, "rounds_ms": [10.0], "peak_rss_mib": 100.0,
             "start_s": 1.0, "paths": "p"}
    results = {"model": "m", "batch": 2, "isa": "avx2", "rounds": 1, "machine": "cpu", "cold_start_s": 3.0,
               "32": {"tinyeffnet": stats, "torch": dict(stats, median_ms=20.0),
                      "ratio": {"torch": 0.5, "best eager": 0.5}}}
    table = train_step.format_table(results)
    assert "torch 0.50" in table and "best eager 0.50" in table and "avx2 ISA" in table


def test_bad_bench_options_are_refused_with_the_argument_named():
    import pytest

    with pytest.raises(ValueError, match="peers"):
        train_step._check_run_options("efficientnetv2_s", ["tensorflow"], "native")
    with pytest.raises(ValueError, match="isa"):
        train_step._check_run_options("efficientnetv2_s", ["torch"], "sse2")
    with pytest.raises(ValueError, match="unknown model"):
        train_step._check_run_options("resnet50", ["torch"], "native")


def test_progressive_bench_runs_table_13_over_seeds(tmp_path):
    """Seconds long: 64 images, 2 epochs, 2 stages of 16 -> 24 px, 2 seeds per variant."""
    import json
    import math

    from tinyeffnet.bench import progressive

    tiny = dict(train_samples=64, val_samples=32, epochs=2, seeds=2, batch_size=32, stages=2, min_size=16,
                max_size=24, eval_size=24, warmup_epochs=0.5)
    returned = progressive.run(out=str(tmp_path), progress=False, log=lambda *a: None, **tiny)
    results = json.loads((tmp_path / "progressive.json").read_text(), parse_constant=lambda c: 1 / 0)
    assert results == json.loads(json.dumps(returned))
    assert results["seeds"] == [0, 1] and results["target"] == 0.9
    assert (results["eval_size"], results["above_size"]) == (24, 29)                  # round(1.2 * 24)
    assert list(results["variants"]) == ["adaptive", "vanilla", "fixed"]
    sizes, regularization = {}, {}
    for name, variant in results["variants"].items():
        runs, summary = variant["runs"], variant["summary"]
        assert [r["seed"] for r in runs] == [0, 1] and summary["runs"] == 2
        for one in runs:
            rows = one["rows"]
            assert [r["epoch"] for r in rows] == [1, 2]
            for key in ("final_val_acc", "above_val_acc"):
                assert 0 <= one[key] <= 1 and math.isfinite(one[key])
            assert one["final_val_acc"] == rows[-1]["val_acc"] and one["total_s"] == rows[-1]["seconds"] > 0
            reached = [r["seconds"] for r in rows if r["val_acc"] >= results["target"]]
            assert one["time_to_target_s"] == (reached[0] if reached else None)
            sizes.setdefault(name, [r["image_size"] for r in rows])
            regularization.setdefault(name, [(r["dropout"], r["randaug"], r["mixup"]) for r in rows])
        for key in ("final_val_acc", "above_val_acc", "total_s"):
            values = [r[key] for r in runs]
            spread = summary[key]
            assert spread["min"] == min(values) and spread["max"] == max(values)
            assert math.isclose(spread["mean"], sum(values) / 2) and spread["min"] <= spread["mean"] <= spread["max"]
        assert summary["reached"] == sum(r["time_to_target_s"] is not None for r in runs)
        assert (summary["time_to_target_s"] is None) == (summary["reached"] == 0)
    assert sizes == {"adaptive": [16, 24], "vanilla": [16, 24], "fixed": [24, 24]}
    last = regularization["adaptive"][-1]
    assert regularization["adaptive"][0] != last                                     # adaptive: it grows
    assert regularization["vanilla"] == [last, last] and regularization["fixed"] == [last, last]
    table = progressive.format_table(results)
    assert sum(line.startswith("| ") for line in table.splitlines()) == 4        # the header and 3 variants
    assert "val acc @ 29 px" in table and "reached 90%" in table
    for label in progressive.LABELS.values():
        assert label in table
    assert (tmp_path / "progressive.png").stat().st_size > 0


def test_progressive_bench_refuses_bad_options(tmp_path):
    import pytest

    from tinyeffnet.bench import progressive

    with pytest.raises(ValueError, match="seeds must be an int >= 1"):
        progressive.run(out=str(tmp_path), seeds=0)
    with pytest.raises(ValueError, match=r"target must be a validation accuracy in \(0, 1\], got 1.5"):
        progressive.run(out=str(tmp_path), target=1.5)
    with pytest.raises(ValueError, match="variant must be adaptive, vanilla or fixed"):
        progressive.variant_config(progressive.TrainConfig(), "random", 0, tmp_path)
    assert not any(tmp_path.iterdir())                                                # nothing was written


def test_progressive_summary_of_seeds_that_did_not_all_reach_the_target():
    from tinyeffnet.bench import progressive

    runs = [{"time_to_target_s": 10.0, "final_val_acc": 0.9, "above_val_acc": 0.8, "total_s": 20.0},
            {"time_to_target_s": None, "final_val_acc": 0.7, "above_val_acc": 0.6, "total_s": 22.0},
            {"time_to_target_s": 14.0, "final_val_acc": 0.95, "above_val_acc": 0.9, "total_s": 24.0}]
    s = progressive.summarize(runs)
    assert s["time_to_target_s"] == {"mean": 12.0, "min": 10.0, "max": 14.0} and (s["reached"], s["runs"]) == (2, 3)
    assert s["total_s"] == {"mean": 22.0, "min": 20.0, "max": 24.0}
    none = progressive.summarize([dict(r, time_to_target_s=None) for r in runs])
    assert none["time_to_target_s"] is None and none["reached"] == 0
    rows = [{"val_acc": 0.5, "seconds": 1.0}, {"val_acc": 0.9, "seconds": 2.0}, {"val_acc": 0.95, "seconds": 3.0}]
    assert progressive._time_to(rows, 0.9) == 2.0 and progressive._time_to(rows, 0.99) is None
