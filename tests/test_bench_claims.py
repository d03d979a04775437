"""bench claims: the ablation tables change one claim each, the costs are analysis's, and the measuring
functions return well-formed results on tiny runs (the plumbing, not the speed)."""
import json
from dataclasses import replace

import pytest

from tinyeffnet import analysis
from tinyeffnet.bench import claims
from tinyeffnet.models import V1_BASE, V2_TINY, Stage

B, F, E, K, N, A = (claims.TABLES[name] for name in ("baseline", "fused", "expand4", "kernel3", "no-last", "all-four"))


# ------------------------------------------------------------------------------------ the tables
def test_baseline_is_v1_style_at_the_size_of_tiny():
    assert all(s.block == "mbconv" and s.se == 0.25 for s in B)
    assert B[0].expand == 1 and all(s.expand == 6 for s in B[1:])           # V1: MBConv1, then MBConv6
    assert [s.kernel for s in B[:5]] == [s.kernel for s in V1_BASE[:5]]      # 5x5 where B0 has them
    assert [s.stride for s in B[:5]] == [s.stride for s in V1_BASE[:5]]
    assert B[-1].stride == 1 and V1_BASE[-1].stride == 1                     # V1's last stride-1 stage
    assert [s.out_ch for s in B[:5]] == [s.out_ch for s in V2_TINY]          # tiny's widths
    assert B[0].in_ch == V2_TINY[0].in_ch
    claims.build("baseline")                                                 # the rows chain


@pytest.mark.parametrize("name", ["fused", "expand4", "kernel3", "no-last"])
def test_each_ablation_table_changes_exactly_its_one_claim(name):
    assert claims.changed_fields(claims.TABLES[name]) == claims.CLAIM_FIELDS[name]


def test_fused_replaces_the_first_three_stages_only():
    assert [s.block for s in F] == ["fused"] * 3 + ["mbconv"] * 3
    for mine, base in zip(F[:3], B[:3]):
        assert replace(mine, block="mbconv", se=base.se) == base             # same kernel, expand, channels
    assert F[3:] == B[3:]


def test_expand4_changes_every_six_to_four_and_keeps_stage_1_at_one():
    assert [s.expand for s in E] == [1] + [4] * 5
    assert all(replace(mine, expand=base.expand) == base for mine, base in zip(E, B))


def test_kernel3_trades_each_5x5_for_two_3x3_layers_without_losing_receptive_field():
    for mine, base in zip(K, B):
        if base.kernel == 5:
            assert (mine.kernel, mine.repeats) == (3, 2 * base.repeats)
        else:
            assert mine == base
    assert all(s.kernel == 3 for s in K)
    assert claims.receptive_field(K) >= claims.receptive_field(B)


def test_no_last_drops_the_stride_1_last_stage():
    assert N == B[:-1] and B[-1].stride == 1 and len(N) == 5


def test_all_four_is_the_composition_of_the_four_and_equals_v2_tiny():
    composed = []
    for i, s in enumerate(B[:-1]):                                           # (d)
        if s.kernel == 5:                                                    # (c)
            s = replace(s, kernel=3, repeats=2 * s.repeats)
        if s.expand == 6:                                                    # (b)
            s = replace(s, expand=4)
        if i < 3:                                                            # (a)
            s = replace(s, block="fused", se=0.0)
        composed.append(s)
    assert tuple(composed) == A == V2_TINY
    assert claims.changed_fields(A) == set().union(*claims.CLAIM_FIELDS.values())


def test_receptive_field_by_hand():
    assert claims.receptive_field([Stage("mbconv", 1, 3, 1, 1, 8, 8)]) == 3 + 2 * 2
    # stem 3 (jump 2); k5 s2: +4*2 (jump 4); its stride-1 repeat: +4*4
    assert claims.receptive_field([Stage("fused", 2, 5, 2, 4, 8, 8)]) == 3 + 8 + 16


# ----------------------------------------------------------------------------------------- costs
@pytest.mark.parametrize("name", list(claims.TABLES))
def test_params_and_macs_equal_analysis(name):
    costs = claims.static_costs(name, image_size=32, batch=4)
    model = claims.build(name)
    total = analysis.totals(model, 32)
    assert costs["params"] == total.params == model.num_parameters()
    assert costs["macs"] == total.macs
    assert costs["activation_bytes"] == 4 * total.activations


@pytest.mark.parametrize("name", ["baseline", "all-four"])
def test_the_traffic_walk_sees_every_layer_once(name):
    """The per-layer walk behind bytes moved: its MACs add up to analysis's, its weights to the params."""
    model = claims.build(name)
    rows = []
    shape = (24, 24, 3)
    for part in [model.stem, *model.stages, model.head, model.pool, model.dropout, model.classifier]:
        shape = claims._layers(part, shape, rows)
    assert shape == (claims.NUM_CLASSES,)
    assert sum(r[4] for r in rows) == analysis.totals(model, 24).macs
    assert sum(r[3] for r in rows) == model.num_parameters()
    t1, t8 = claims.traffic(model, 24, 1), claims.traffic(model, 24, 8)
    weights = 4 * model.num_parameters()
    assert t8["forward_bytes"] - weights == pytest.approx(8 * (t1["forward_bytes"] - weights))
    assert t8["train_bytes"] == 3 * t8["forward_bytes"] + 7 * weights
    assert sum(k["bytes_share"] for k in t8["by_kind"].values()) == pytest.approx(1.0)


def test_fused_stages_do_more_macs_and_less_traffic_than_their_mbconv():
    """The premise of claim (a), from shapes: more multiply-adds, fewer bytes, higher intensity."""
    base, fused = claims.static_costs("baseline"), claims.static_costs("fused")
    assert fused["macs"] > base["macs"]
    assert fused["traffic"]["forward_bytes"] < base["traffic"]["forward_bytes"]
    assert fused["traffic"]["intensity_macs_per_byte"] > base["traffic"]["intensity_macs_per_byte"]


def test_plan_epochs_and_time_to_target():
    # 10 steps of 0.1 s, eval of 250 images = 250/64 batches' forward at a third of a step: 1.1302 s an epoch
    assert claims.plan_epochs(0.1, 10.0, 640, 250, 64) == 8
    assert claims.plan_epochs(5.0, 1.0, 640, 250, 64) == 1
    curve = [{"seconds": 1.0, "val_acc": 0.5}, {"seconds": 2.0, "val_acc": 0.95}, {"seconds": 3.0, "val_acc": 0.97}]
    assert claims.time_to_target(curve, 0.9) == 2.0
    assert claims.time_to_target(curve, 0.99) is None


def test_bad_options_are_refused_before_anything_runs():
    with pytest.raises(ValueError, match="unknown table"):
        claims.run_ablation(tables=("baseline", "v3"))
    with pytest.raises(ValueError, match="budget_s"):
        claims.run_ablation(budget_s=-1)
    with pytest.raises(ValueError, match="big must be"):
        claims.run_v1_vs_v2(big=("efficientnet_b4",))
    with pytest.raises(ValueError, match="frameworks"):
        claims.run_v1_vs_v2(frameworks=("jax",))


# ------------------------------------------------------------------------ tiny runs of the plumbing
def _well_formed_spread(spread, n):
    assert len(spread["values"]) == n
    assert spread["min"] <= spread["median"] <= spread["max"]
    assert spread["min"] <= spread["mean"] <= spread["max"]


@pytest.fixture(scope="module")
def tiny_ablation():
    messages = []
    result = claims.run_ablation(tables=("baseline", "all-four"), image_size=16, batch=4, rounds=2, steps=1,
                                 budget_s=0.01, seeds=(0, 1), train_samples=16, val_samples=8, progress=messages.append)
    return result, messages


def test_run_ablation_gives_costs_step_times_and_budget_runs(tiny_ablation):
    result, messages = tiny_ablation
    assert json.loads(json.dumps(result)) == result                          # JSON as it is
    assert result["machine"] and list(result["tables"]) == ["baseline", "all-four"]
    order = [m.rsplit(": ", 1)[1] for m in messages if m.startswith("step time")]
    assert order == ["baseline ...", "all-four ...", "all-four ...", "baseline ..."]  # alternating, rotating
    for entry in result["tables"].values():
        _well_formed_spread(entry["step"]["ms"], 2)
        assert entry["step"]["ms"]["min"] > 0 and entry["step"]["peak_rss_mib"] > 0
        assert entry["epochs"] == 1                                          # the budget fits no more
        assert [run["seed"] for run in entry["runs"]] == [0, 1]
        for run in entry["runs"]:
            assert len(run["curve"]) == 1 and 0 <= run["curve"][0]["val_acc"] <= 1
            assert run["curve"][0]["seconds"] > 0 and run["wall_s"] > run["curve"][0]["seconds"]
        _well_formed_spread(entry["accuracy"], 2)
    table = claims.format_ablation(result)
    assert result["machine"] in table
    assert table.count("| (a)+(b)+(c)+(d) = V2_TINY |") == 2 and table.count("| V1-like baseline") == 2


def test_run_v1_vs_v2_times_the_pair_and_reads_the_tiny_pair(tiny_ablation):
    ablation, _ = tiny_ablation
    result = claims.run_v1_vs_v2(big=("efficientnet_b0", "efficientnetv2_b0"), frameworks=("tinyeffnet",), size=32,
                                 batch=2, rounds=1, steps=1, ablation=ablation, target=0.0,
                                 progress=lambda message: None)
    assert json.loads(json.dumps(result)) == result
    assert set(result["step"]) == {"efficientnet_b0 tinyeffnet", "efficientnetv2_b0 tinyeffnet"}
    r = result["ratio"]["tinyeffnet"]
    v1, v2 = (result["step"][f"{m} tinyeffnet"] for m in result["big"])
    assert r["step"] == pytest.approx(v2["ms"]["median"] / v1["ms"]["median"])
    assert v1["peak_rss_mib"] > v1["rss_growth_mib"] > 0
    tiny = result["tiny"]["runs"]
    assert tiny["baseline"]["runs"] == ablation["tables"]["baseline"]["runs"]
    assert tiny["all-four"]["reached"] == 2                                  # target 0: the first epoch reaches it
    table = claims.format_v1_vs_v2(result)
    assert "efficientnet_b0" in table and "| tinyeffnet |" in table and "V2_TINY" in table


def test_the_torch_step_worker_runs_torchvisions_own_builder():
    """The PyTorch side of part 2, in this process (the run spawns it in its own)."""
    report = claims.step_worker({"model": "efficientnet_b0", "classes": 10, "framework": "torch"}, 32, 2, 1)
    assert report["median_s"] > 0 and report["peak_rss_mib"] >= report["rss_before_mib"] > 0
