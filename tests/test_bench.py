"""The benchmark commands run end to end (tiny settings: this checks the plumbing, not the speed)."""
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


def test_train_step_workers_report_time_start_and_memory():
    for contender in ("tinyeffnet", "torch"):
        report = train_step.run_worker(contender, size=32, batch=2, steps=1)
        assert report["median_s"] > 0 and report["start_s"] > 0 and report["peak_rss_mib"] > 0
