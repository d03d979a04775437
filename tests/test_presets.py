"""The progressive presets (train/presets.py): schedule="custom" | "paper" | "released".

Every expected number below is written from the paper's Table 6 and from the released code
(google/automl efficientnetv2: main.py, effnetv2_configs.py), not from our own output."""
import re
from types import SimpleNamespace

import numpy as np
import pytest

from tinyeffnet.data import mixup_apply, mixup_params
from tinyeffnet.testing import compare
from tinyeffnet.train import (SCHEDULED_FIELDS, StageSettings, TrainConfig, Trainer, mix, progressive_schedule,
                              released_mixup)
from tinyeffnet.train import algorithm

# Table 6: (first size, last size, RandAugment first/last, mixup first/last, dropout first/last), eval size.
TABLE_6 = {
    "efficientnetv2_s": ((128, 300), (5, 15), (0, 0), (0.1, 0.3), 384),
    "efficientnetv2_m": ((128, 380), (5, 20), (0, 0.2), (0.1, 0.4), 480),
    "efficientnetv2_l": ((128, 380), (5, 25), (0, 0.4), (0.1, 0.5), 480),
}
# effnetv2_configs.py: (train size, eval size, dropout, RandAugment top, mixup top).
RELEASED = {
    "efficientnetv2_s": (300, 384, 0.2, 10, 0),
    "efficientnetv2_m": (384, 480, 0.3, 15, 0.2),
    "efficientnetv2_l": (384, 480, 0.4, 20, 0.5),
}


def _column(stages, name):
    return [getattr(s, name) for s in stages]


# ------------------------------------------------------------------------------------------ paper
def test_paper_s_trains_at_128_185_243_300_and_evaluates_at_384():
    cfg = TrainConfig(schedule="paper", model="efficientnetv2_s", epochs=8)
    stages = progressive_schedule(cfg)
    assert _column(stages, "image_size") == [128, 185, 243, 300]
    assert cfg.eval_size == 384
    assert _column(stages, "epochs") == [(0, 1), (2, 3), (4, 5), (6, 7)]


@pytest.mark.parametrize("model", sorted(TABLE_6))
def test_paper_interpolates_table_6_over_four_stages(model):
    (s0, se), (r0, re_), (m0, me), (d0, de), eval_size = TABLE_6[model]
    cfg = TrainConfig(schedule="paper", model=model, epochs=4)
    stages = progressive_schedule(cfg)
    assert len(stages) == 4 and cfg.stages == 4 and cfg.eval_size == eval_size
    for i, stage in enumerate(stages):
        t = i / 3                                                         # i / (M - 1)
        assert stage.image_size == round(s0 + (se - s0) * t)
        assert stage.randaug == pytest.approx(r0 + (re_ - r0) * t, rel=1e-12)
        assert stage.mixup == pytest.approx(m0 + (me - m0) * t, rel=1e-12, abs=1e-15)
        assert stage.dropout == pytest.approx(d0 + (de - d0) * t, rel=1e-12)
        assert stage.mixup_rule == "permutation"
    assert (stages[0].image_size, stages[-1].image_size) == (s0, se)      # Algorithm 1 starts at S_0


def test_paper_m_and_l_sizes():
    for model in ("efficientnetv2_m", "efficientnetv2_l"):
        stages = progressive_schedule(TrainConfig(schedule="paper", model=model, epochs=4))
        assert _column(stages, "image_size") == [128, 212, 296, 380]     # 128 + 252 i / 3


# --------------------------------------------------------------------------------------- released
def test_released_s_trains_at_171_214_257_300_not_from_128():
    cfg = TrainConfig(schedule="released", model="efficientnetv2_s", epochs=4)
    stages = progressive_schedule(cfg)
    assert _column(stages, "image_size") == [171, 214, 257, 300]
    assert cfg.eval_size == 384


@pytest.mark.parametrize("model", sorted(RELEASED))
def test_released_rules_per_stage(model):
    train_size, eval_size, dropout, randaug_top, mixup_top = RELEASED[model]
    cfg = TrainConfig(schedule="released", model=model, epochs=4)
    stages = progressive_schedule(cfg)
    assert cfg.eval_size == eval_size and len(stages) == 4
    assert _column(stages, "image_size") == [int(128 + (train_size - 128) * (i + 1) / 4) for i in range(4)]
    assert _column(stages, "dropout") == [dropout] * 4                   # not scheduled
    np.testing.assert_allclose(_column(stages, "randaug"), np.linspace(5, randaug_top, 4), rtol=1e-12)
    np.testing.assert_allclose(_column(stages, "mixup"), np.linspace(0, mixup_top, 4), rtol=1e-12, atol=1e-15)
    assert _column(stages, "mixup_rule") == ["released"] * 4


def test_released_m_and_l_sizes():
    for model in ("efficientnetv2_m", "efficientnetv2_l"):
        stages = progressive_schedule(TrainConfig(schedule="released", model=model, epochs=4))
        assert _column(stages, "image_size") == [192, 256, 320, 384]


def test_released_keeps_dropout_at_its_last_value_even_when_given_a_pair():
    stages = progressive_schedule(TrainConfig(schedule="released", dropout=(0.1, 0.3), epochs=4))
    assert _column(stages, "dropout") == [0.3] * 4


def test_released_with_one_stage_follows_linspace():
    # np.linspace(a, b, 1) == [a]: the released code's single stage trains at S_e with the first magnitudes.
    stages = progressive_schedule(TrainConfig(schedule="released", model="efficientnetv2_m", epochs=3, stages=1))
    assert len(stages) == 1
    assert (stages[0].image_size, stages[0].randaug, stages[0].mixup, stages[0].dropout) == (384, 5.0, 0.0, 0.3)


def test_fixed_size_keeps_the_presets_final_values_and_mixup_rule():
    fixed = progressive_schedule(TrainConfig(schedule="released", model="efficientnetv2_l", progressive=False))
    assert len(fixed) == 1
    assert (fixed[0].image_size, fixed[0].dropout, fixed[0].randaug, fixed[0].mixup, fixed[0].mixup_rule) == \
        (384, 0.4, 20.0, 0.5, "released")


# ---------------------------------------------------------------------------- rows and overrides
@pytest.mark.parametrize("model, row", [
    ("efficientnetv2_tiny", "efficientnetv2_s"), ("efficientnetv2_b0", "efficientnetv2_s"),
    ("efficientnetv2_xl", "efficientnetv2_s"), ("efficientnet_v2_m", "efficientnetv2_m"),
    ("EfficientNetV2_L", "efficientnetv2_l"),
])
def test_a_model_takes_its_own_row_or_the_s_row(model, row):
    for schedule in ("paper", "released"):
        ours = TrainConfig(schedule=schedule, model=model)
        theirs = TrainConfig(schedule=schedule, model=row)
        assert [getattr(ours, f) for f in SCHEDULED_FIELDS] == [getattr(theirs, f) for f in SCHEDULED_FIELDS]


def test_the_run_says_which_row_a_model_borrows(tmp_path):
    small = dict(min_size=16, max_size=24, eval_size=24, train_samples=8, val_samples=8, out=str(tmp_path))
    said = []
    Trainer(TrainConfig(schedule="paper", **small), progress=False, log=said.append)
    assert any("efficientnetv2_tiny has no row of its own" in line and "EfficientNetV2-S" in line for line in said)
    said.clear()
    Trainer(TrainConfig(**small), progress=False, log=said.append)                  # custom: nothing to say
    assert not any("no row of its own" in line for line in said)


def test_explicit_values_override_the_preset():
    cfg = TrainConfig(schedule="paper", min_size=32, max_size=48, eval_size=58)
    assert (cfg.min_size, cfg.max_size, cfg.eval_size) == (32, 48, 58)
    assert (cfg.dropout, cfg.randaug, cfg.mixup) == ((0.1, 0.3), (5.0, 15.0), (0.0, 0.0))   # still the paper's
    assert _column(progressive_schedule(cfg), "image_size") == [32, 37, 43, 48]
    cfg = TrainConfig(schedule="paper", model="efficientnetv2_m", dropout=(0.0, 0.5), mixup=(0.0, 0.0))
    assert (cfg.dropout, cfg.mixup, cfg.randaug, cfg.max_size) == ((0.0, 0.5), (0.0, 0.0), (5.0, 20.0), 380)
    released = TrainConfig(schedule="released", min_size=32, max_size=48, eval_size=58)
    assert _column(progressive_schedule(released), "image_size") == [36, 40, 44, 48]   # int(32 + 16 (i + 1) / 4)


def test_custom_is_the_main_job_exactly():
    cfg = TrainConfig()
    assert (cfg.schedule, cfg.lr_schedule, cfg.stages) == ("custom", "cosine", 4)
    assert (cfg.min_size, cfg.max_size, cfg.eval_size) == (32, 48, 48)
    assert (cfg.dropout, cfg.randaug, cfg.mixup) == ((0.05, 0.2), (0.0, 5.0), (0.0, 0.1))
    explicit = TrainConfig(min_size=32, max_size=48, eval_size=48, dropout=(0.05, 0.2), randaug=(0.0, 5.0),
                           mixup=(0.0, 0.1))
    assert cfg == explicit and cfg.to_json() == explicit.to_json()
    # Algorithm 1 on 32 -> 48 px over 12 epochs, as before the presets existed:
    expected = [StageSettings(i, tuple(range(3 * i, 3 * i + 3)), size, 0.05 + 0.15 * i / 3, 5.0 * i / 3, 0.1 * i / 3)
                for i, size in enumerate((32, 37, 43, 48))]
    ours = progressive_schedule(cfg)
    assert [(s.index, s.epochs, s.image_size, s.mixup_rule) for s in ours] == \
        [(s.index, s.epochs, s.image_size, "permutation") for s in expected]
    for got, want in zip(ours, expected):
        assert (got.dropout, got.randaug, got.mixup) == pytest.approx((want.dropout, want.randaug, want.mixup),
                                                                      rel=1e-12, abs=1e-15)


def test_replace_keeps_resolved_values_and_none_re_resolves():
    import dataclasses

    cfg = TrainConfig()
    kept = dataclasses.replace(cfg, schedule="paper")
    assert (kept.schedule, kept.min_size, kept.max_size) == ("paper", 32, 48)
    again = dataclasses.replace(cfg, schedule="paper", **{f: None for f in SCHEDULED_FIELDS})
    assert (again.min_size, again.max_size, again.eval_size) == (128, 300, 384)


# ----------------------------------------------------------------------------------- bad values
@pytest.mark.parametrize("overrides, message", [
    (dict(schedule="table6"), "schedule must be custom, paper or released, got 'table6'"),
    (dict(schedule="cosine"), "schedule must be custom, paper or released, got 'cosine': the learning-rate "
                              "schedule is lr_schedule='cosine'"),
    (dict(schedule=None), "schedule must be custom, paper or released, got None"),
    (dict(schedule="paper", max_size=48), "max_size must be an int >= min_size (128), got 48; min_size=128 is "
                                          "the paper schedule's first size: give min_size too"),
    (dict(schedule="released", eval_size=4), "eval_size must be an int >= 8, got 4"),
    (dict(schedule="paper", dropout=(0.1, 1.0)), "dropout[1] must be a finite number in [0, 1), got 1.0"),
    (dict(lr_schedule="paper"), "lr_schedule must be cosine or exponential, got 'paper'"),
])
def test_bad_schedules_are_named(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(**overrides)


def test_custom_min_above_max_keeps_its_message():
    with pytest.raises(ValueError, match=re.escape("max_size must be an int >= min_size (64), got 32")) as caught:
        TrainConfig(min_size=64, max_size=32)
    assert "schedule" not in str(caught.value)


def test_stage_settings_refuse_an_unknown_mixup_rule():
    with pytest.raises(ValueError, match=re.escape("mixup_rule must be permutation or released, got 'cutmix'")):
        StageSettings(0, (0,), 16, 0.0, 0.0, 0.2, "cutmix")


def test_the_exercise_config_without_a_schedule_follows_algorithm_1():
    cfg = SimpleNamespace(epochs=4, stages=4, min_size=16, max_size=40, progressive=True, dropout=(0.0, 0.3),
                          randaug=(0.0, 9.0), mixup=(0.0, 0.3))
    assert _column(progressive_schedule(cfg), "image_size") == [16, 24, 32, 40]


# ------------------------------------------------------------------------------------- mixup rules
def _batch(n=6, size=5, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, size, size, 3), dtype=np.float32), rng.integers(0, classes, n), classes


def test_released_mixup_against_a_direct_computation():
    images, labels, k = _batch()
    alpha = 0.4
    mixed, targets, lam = released_mixup(images, labels, k, alpha, np.random.default_rng(7))
    draws = np.random.default_rng(7).beta(alpha, alpha, size=6)                   # one weight per image
    want_lam = np.where(draws >= 0.5, draws, 1.0 - draws)
    assert np.all(lam >= 0.5) and np.array_equal(lam, want_lam)
    x, eye = images.astype(np.float64), np.eye(k)
    want_x = np.stack([want_lam[b] * x[b] + (1 - want_lam[b]) * x[5 - b] for b in range(6)])     # partner: B-1-b
    want_t = np.stack([want_lam[b] * eye[labels[b]] + (1 - want_lam[b]) * eye[labels[5 - b]] for b in range(6)])
    assert mixed.dtype == np.float32 and targets.dtype == np.float32
    assert compare("images", mixed, want_x.astype(np.float32), atol=1e-6, rtol=1e-6).ok
    assert compare("targets", targets, want_t.astype(np.float32), atol=1e-6, rtol=1e-6).ok
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)


def test_released_mixup_pairs_mirrors_not_a_permutation():
    # An image whose label differs from every other: its mix partner shows in the target's second class.
    images, _, _ = _batch(n=5)
    labels = np.arange(5)
    _, targets, lam = released_mixup(images, labels, 5, 1.0, np.random.default_rng(3))
    for b in range(5):
        partner = 4 - b
        if partner != b and lam[b] < 1.0:
            assert np.flatnonzero(targets[b] > 0).tolist() == sorted({b, partner})
            assert targets[b, partner] == pytest.approx(1 - lam[b], rel=1e-6)


def test_mix_follows_the_stage_rule():
    images, labels, k = _batch()
    released = StageSettings(0, (0,), 5, 0.0, 0.0, 0.4, "released")
    mixed, targets, main = mix(images, labels, k, released, np.random.default_rng(1))
    want_x, want_t, _ = released_mixup(images, labels, k, 0.4, np.random.default_rng(1))
    assert np.array_equal(mixed, want_x) and np.array_equal(targets, want_t) and np.array_equal(main, labels)
    # permutation: the library's original draws (0.4.0's train_step), in the same order
    permutation = StageSettings(0, (0,), 5, 0.0, 0.0, 0.4)
    mixed, targets, main = mix(images, labels, k, permutation, np.random.default_rng(1))
    lam, perm = mixup_params(6, 0.4, np.random.default_rng(1))
    want_x, want_t = mixup_apply(images, labels, k, lam, perm)
    assert np.array_equal(mixed, want_x) and np.array_equal(targets, want_t)
    assert np.array_equal(main, labels if lam >= 0.5 else labels[perm])


@pytest.mark.parametrize("rule", ["permutation", "released"])
def test_train_step_mixes_by_the_stage_rule(rule, monkeypatch):
    images, labels, k = _batch()
    seen = {}

    def fake_update_step(model, optimizer, x, targets, label_smoothing, ema=None):
        seen["x"], seen["targets"] = x, targets
        return np.float32(1.0), np.eye(k, dtype=np.float32)[labels]

    monkeypatch.setattr(algorithm, "update_step", fake_update_step)
    stage = StageSettings(0, (0,), 5, 0.0, 3.0, 0.4, rule)
    model = SimpleNamespace(num_classes=k)
    loss, correct = algorithm.train_step(model, None, images, labels, stage, np.random.default_rng(5),
                                         label_smoothing=0.0)
    rng = np.random.default_rng(5)                                    # the same draws, step by step
    want_x, want_t, main = mix(algorithm.augment(images, stage, rng), labels, k, stage, rng)
    assert np.array_equal(seen["x"], algorithm.normalize(want_x)) and np.array_equal(seen["targets"], want_t)
    if rule == "released":
        assert np.array_equal(main, labels)                           # every image is mostly itself
    assert (loss, correct) == (1.0, int(np.sum(main == labels)))      # scored against the main labels
