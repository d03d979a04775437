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
