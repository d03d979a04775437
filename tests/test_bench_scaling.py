"""tinyeffnet scale and bench scaling (tinyeffnet/bench/scaling.py): the family a command prints and
writes, V2's restrictions at any base size, and the plumbing of the benchmark on a seconds-long run.

Expected tables are worked by hand from the rules (depth 1.2**phi, width 1.1**phi, size 1.15**phi,
round_filters to multiples of 8) and the published tables, not read back from the code's output."""
import argparse
import json
import math

import pytest

from tinyeffnet import cli
from tinyeffnet.bench import claims, scaling
from tinyeffnet.models import V2_TINY
from tinyeffnet.models.scaling import compound_scale, count_parameters
from tinyeffnet.search.arch import read_arch


def _scale(*argv):
    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    scaling.add_scale_arguments(parser)
    args = parser.parse_args(list(argv))
    return args.func(args)


def _rows(text: str) -> dict:
    """describe_family's table -> {name: {column: cell}}."""
    lines = [line for line in text.splitlines() if line.startswith(("name ", "phi="))]
    head = lines[0].split()
    return {cells[0]: dict(zip(head, cells)) for cells in (line.split() for line in lines[1:])}


# ------------------------------------------------------------------------------- tinyeffnet scale
def test_scale_prints_the_family_with_v2s_restrictions(capsys):
    assert _scale("--base", "v2-tiny", "--phi", "0", "1", "2", "--num-classes", "10") == 0
    rows = _rows(capsys.readouterr().out)
    assert list(rows) == ["phi=0", "phi=1", "phi=2"]
    assert rows["phi=0"]["repeats"] == "1/2/2/2/2" and rows["phi=0"]["channels"] == "16/24/32/64/80"
    assert rows["phi=0"]["size"] == "32" and rows["phi=0"]["head"] == "320"
    # phi 1: width 1.1 keeps 16/24/32 (17.6, 26.4, 35.2 round down), 70.4 -> 72, 88; size 36.8 -> 37;
    # stages 1-3 ceil(r * 1.2), stages 4-5 ceil(2 * 1.2 * 1.233) = ceil(2.96) = 3
    assert (rows["phi=1"]["size"], rows["phi=1"]["repeats"], rows["phi=1"]["channels"], rows["phi=1"]["head"]) == \
        ("37", "2/3/3/3/3", "16/24/32/72/88", "352")
    # phi 2: 32 * 1.15**2 = 42.3, capped at 32 * 480/384 = 40; stages 4-5 ceil(2 * (1.2 * 1.233)**2) = 5
    # against ceil(2 * 1.44) = 3 elsewhere; width 1.21: 19.4, 29.0, 38.7, 77.4, 96.8 -> 16, 32, 40, 80, 96
    assert (rows["phi=2"]["size"], rows["phi=2"]["repeats"], rows["phi=2"]["channels"], rows["phi=2"]["head"]) == \
        ("40", "2/3/3/5/5", "16/32/40/80/96", "384")


def test_scale_v1_rules_have_no_cap_and_deepen_every_stage_alike(capsys):
    assert _scale("--base", "v1-tiny", "--rules", "v1", "--phi", "0", "3") == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["phi=3"]["size"] == str(round(32 * 1.15 ** 3)) == "49"
    assert rows["phi=3"]["repeats"] == "/".join(str(math.ceil(r * 1.2 ** 3)) for r in (1, 2, 1, 2, 1, 1))


def test_scale_v2_s_is_capped_at_the_papers_480(capsys):
    assert _scale("--phi", "0", "2") == 0          # the default base: v2-s at 384, rules v2
    rows = _rows(capsys.readouterr().out)
    assert rows["phi=0"]["size"] == "384" and rows["phi=2"]["size"] == "480"      # 384 * 1.15**2 = 508


def test_scale_out_files_round_trip_into_train_and_summary(tmp_path, capsys):
    from tinyeffnet.train import TrainConfig
    from tinyeffnet.train.runner import build_model

    out = tmp_path / "family"
    assert _scale("--base", "v1-tiny", "--rules", "v1", "--phi", "0", "1", "--out", str(out)) == 0
    assert "wrote 2 arch files" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["phi=0.json", "phi=1.json"]
    arch = read_arch(out / "phi=1.json")
    expected = compound_scale(claims.BASELINE, 1, base_size=32, head=320)
    assert arch.stages == expected.stages and arch.head_channels == 352          # 320 * 1.1
    assert [s.out_ch for s in arch.stages] == [16, 24, 32, 72, 88, 144]          # 140.8 -> 144
    assert json.loads((out / "phi=1.json").read_text())["image_size"] == 37
    model = arch.build(10)
    assert model.num_parameters() == count_parameters(arch.stages, arch.head_channels, 10)
    cfg = TrainConfig(arch=str(out / "phi=1.json"), out=str(tmp_path / "run"))     # what train --arch builds
    assert build_model(cfg, 10, 0.1).num_parameters() == model.num_parameters()
    assert cli.main(["summary", "--arch", str(out / "phi=1.json"), "--image-size", "37", "--num-classes", "10"]) == 0


def test_a_written_member_is_a_base_with_its_own_image_size(tmp_path, capsys):
    out = tmp_path / "family"
    assert _scale("--base", "v2-tiny", "--phi", "2", "--out", str(out)) == 0
    assert _scale("--base", str(out / "phi=2.json"), "--phi", "0", "--num-classes", "10") == 0
    again = _rows(capsys.readouterr().out.split("wrote")[-1])["phi=0"]
    assert (again["size"], again["repeats"], again["channels"]) == ("40", "2/3/3/5/5", "16/32/40/80/96")


def test_every_scale_flag_has_help_and_shows_its_default():
    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    scaling.add_scale_arguments(parser)
    scaling.add_bench_arguments(parser)
    text = " ".join(parser.format_help().split())
    for action in parser._actions[1:]:
        assert action.help and f"(default: {action.default})" in text, action.option_strings


@pytest.mark.parametrize("argv, message", [
    (["--base", "v3-huge"], "base must be one of v1-b0, v2-tiny, v1-tiny, v2-s or a stage-table JSON file"),
    (["--rules", "v1", "--late-depth", "1.2"], "takes none of EfficientNetV2's restrictions, got late_depth"),
    (["--rules", "v1", "--max-image-size", "400", "--late-stages", "5"],
     "takes none of EfficientNetV2's restrictions, got max_image_size, late_stages"),
    (["--base", "v2-tiny", "--late-stages", "6"], "late_stages holds stage numbers 1..5"),
    (["--phi", "1", "1"], "phis must be one or more distinct numbers"),
])
def test_scale_refuses_bad_input_in_one_line(argv, message, tmp_path, capsys):
    assert _scale(*argv, "--out", str(tmp_path / "never")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()


def test_scale_refuses_a_bad_base_file_and_an_out_that_is_a_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"stages": []}')
    assert _scale("--base", str(bad)) == 2
    assert f"arch file {bad}" in capsys.readouterr().err
    taken = tmp_path / "taken"
    taken.write_text("")
    assert _scale("--base", "v2-tiny", "--out", str(taken)) == 2
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--phi", "nan"], ["--late-depth", "0.5"], ["--image-size", "0"],
                                  ["--rules", "v3"]])
def test_scale_refuses_a_bad_value_with_argparse(argv):
    with pytest.raises(SystemExit) as stop:
        _scale(*argv)
    assert stop.value.code == 2


# ------------------------------------------------------------------------- V2's restrictions
def test_the_v2_analogs_at_any_size():
    assert [scaling.max_image_size_for(s) for s in (384, 32, 224)] == [480, 40, 280]
    assert [scaling.late_stages_for(n) for n in (7, 6, 5, 2, 1)] == [(5, 6), (5, 6), (4, 5), (1, 2), (1,)]
    # Published repeats: S 2,4,4,6 | 9,15; M 3,5,5,7 | 14,18,5 (stages 1-4 | 5 on)
    assert scaling.official_late_depth() == pytest.approx((37 / 24) / (20 / 16))


@pytest.mark.parametrize("phi", [0, 1, 2, 3, 4])
def test_v2_rules_enforce_the_image_size_cap(phi):
    v2 = scaling.scale_family(scaling.BASES["v2-tiny"], [phi], "v2")[0]
    v1 = scaling.scale_family(scaling.BASES["v2-tiny"], [phi], "v1")[0]
    assert v1.image_size == round(32 * 1.15 ** phi)
    assert v2.image_size == min(round(32 * 1.15 ** phi), 40)


@pytest.mark.parametrize("phi", [2, 3])
def test_v2_rules_make_the_late_stages_deeper_than_v1_rules(phi):
    v2 = scaling.scale_family(scaling.BASES["v2-tiny"], [phi], "v2")[0]
    v1 = scaling.scale_family(scaling.BASES["v2-tiny"], [phi], "v1")[0]
    late = (1.2 * (37 / 24) / (20 / 16)) ** phi
    for number, (a, b, base) in enumerate(zip(v2.stages, v1.stages, V2_TINY), start=1):
        if number in (4, 5):
            assert a.repeats == math.ceil(base.repeats * late) > b.repeats == math.ceil(base.repeats * 1.2 ** phi)
        else:
            assert a.repeats == b.repeats


def test_late_depth_one_adds_nothing():
    plain = scaling.scale_family(scaling.BASES["v2-tiny"], [3], "v2", late_depth=1.0)[0]
    v1 = scaling.scale_family(scaling.BASES["v2-tiny"], [3], "v1")[0]
    assert [s.repeats for s in plain.stages] == [s.repeats for s in v1.stages]


# ------------------------------------------------------------------------ bench scaling's parts
def test_summarise_run_by_hand():
    # two epochs of 10 steps of 4 images at 20 images/s: 2 s of training each; the first step took 0.5 s
    rows = [{"epoch": 1, "seconds": 2.5, "val_acc": 0.3, "train_loss": 2.0, "step": 10, "images_per_second": 20.0},
            {"epoch": 2, "seconds": 5.0, "val_acc": 0.6, "train_loss": 1.0, "step": 20, "images_per_second": 20.0}]
    done = scaling.summarise_run(rows, first_step_s=0.5, batch=4, wall_s=9.0)
    assert done["step_s"] == pytest.approx((4.0 - 0.5) / 19)
    assert done["train_s"] == 4.5 and done["final_acc"] == 0.6 and done["steps"] == 20
    assert [p["seconds"] for p in done["curve"]] == [2.0, 4.5]
    one = dict(rows[0], step=1)
    assert scaling.summarise_run([one], 0.5, 4, 1.0)["step_s"] is None


def test_run_order_interleaves_the_families_and_alternates_who_goes_first():
    order = scaling.run_order(["v2", "v1"], [0, 1, 2], [0, 1])
    assert sorted(order) == sorted((f, j, s) for f in ("v2", "v1") for j in range(3) for s in (0, 1))
    firsts = [order[k][0] for k in range(0, len(order), 2)]
    assert firsts == ["v2", "v1"] * 3
    assert all(order[k][1:] == order[k + 1][1:] for k in range(0, len(order), 2))   # same (phi, seed) back to back


@pytest.mark.parametrize("options, message", [
    (dict(epochs=0), "epochs must be an int >= 1"),
    (dict(dataset="mnist"), "dataset must be one of clutter, shapes"),
    (dict(phis=[]), "phis must be one or more distinct numbers"),
    (dict(seeds=[1, 1]), "seeds must be one or more distinct ints"),
    (dict(train_samples=16), "train_samples must be an int >= 32"),
])
def test_bench_refuses_bad_options_before_training(options, message, tmp_path):
    with pytest.raises((ValueError, TypeError), match=message):
        scaling.run(out=str(tmp_path / "never"), progress=None, **options)
    assert not (tmp_path / "never").exists()


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    """The seconds-long run: 64 training and 32 validation images, 1 epoch, phi 0 and 1, one seed,
    in this process (quicker; the worker process is tested below)."""
    out = tmp_path_factory.mktemp("bench") / "scaling"
    said = []
    result = scaling.run(out=str(out), train_samples=64, val_samples=32, epochs=1, phis=(0, 1), seeds=(0,),
                         isolate=False, progress=said.append)
    return out, result, said


def test_a_seconds_long_bench_writes_the_curve(tiny_bench):
    out, result, said = tiny_bench
    assert len(said) == 4
    saved = json.loads((out / "scaling.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [(o["family"], o["phi"]) for o in saved["order"]] == [("v2", 0), ("v1", 0), ("v1", 1), ("v2", 1)]
    assert set(saved["families"]) == {"v2", "v1"} and saved["isolated"] is False
    assert saved["families"]["v2"]["restrictions"] == {"max_image_size": 40, "late_stages": [4, 5],
                                                        "late_depth": pytest.approx(37 / 24 / (20 / 16))}
    assert saved["families"]["v1"]["restrictions"] == {}
    for name, base in (("v2", V2_TINY), ("v1", claims.BASELINE)):
        members = saved["families"][name]["members"]
        assert [m["phi"] for m in members] == [0, 1] and [m["image_size"] for m in members] == [32, 37]
        scaled = compound_scale(base, 1, base_size=32, head=320, rules=name)
        assert members[1]["params"] == count_parameters(scaled.stages, scaled.head, 16)   # clutter: 16 classes
        for m in members:
            (run,) = m["runs"]
            assert run["seed"] == 0 and len(run["curve"]) == 1 and run["steps"] == 2       # 64 images, batch 32
            assert 0 <= m["accuracy"]["min"] <= m["accuracy"]["mean"] <= m["accuracy"]["max"] <= 1
            assert run["train_s"] > 0 and run["step_s"] > 0 and m["step_ms"]["median"] == run["step_s"] * 1e3
    table = scaling.format_table(result)
    assert table.count("| V2-style") == 2 and table.count("| V1-style") == 2


def test_bench_command_prints_the_table_and_refuses_in_one_line(tiny_bench, tmp_path, capsys, monkeypatch):
    from tinyeffnet import cli

    def parse(*flags):
        return cli.build_parser().parse_args(["bench", "scaling", *flags])    # the real bench parser

    taken = tmp_path / "taken"
    taken.write_text("")
    assert scaling.bench_command(parse("--out", str(taken))) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is a file" in err
    calls = {}

    def fake_run(**options):
        calls.update(options)
        return tiny_bench[1]

    monkeypatch.setattr(scaling, "run", fake_run)
    assert scaling.bench_command(parse("--phis", "0", "2", "--seeds", "3", "--dataset", "shapes")) == 0
    assert (calls["phis"], calls["seeds"], calls["dataset"]) == ([0.0, 2.0], [0, 1, 2], "shapes")
    assert (calls["epochs"], calls["out"]) == (scaling.EPOCHS, scaling.OUT)
    assert "| V2-style" in capsys.readouterr().out
    assert scaling.bench_command(parse()) == 0                             # None: this module's defaults
    assert (calls["seeds"], calls["dataset"], calls["train_samples"], calls["val_samples"]) == (
        list(scaling.SEEDS), scaling.DATASET, scaling.TRAIN_SAMPLES, scaling.VAL_SAMPLES)


def test_the_worker_process_trains_one_member():
    from tinyeffnet.search.arch import Arch

    member = scaling.bench_families((1,))["v1"][0]
    config = dict(image_size=member.image_size, train_samples=32, val_samples=8, batch=32, dataset="shapes",
                  epochs=1, seed=0)
    done = scaling._spawn({"arch": Arch(member.stages, member.head).to_dict(), "config": config})
    assert done["steps"] == 1 and done["step_s"] is None and len(done["curve"]) == 1
    assert 0 <= done["final_acc"] <= 1 and done["wall_s"] > done["first_step_s"] > 0
