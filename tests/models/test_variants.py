"""The variant table: parameter counts, rounding, shapes, names, stochastic depth schedule."""
import numpy as np
import pytest
import torch  # noqa: F401
import torchvision

import tinyeffnet.models as models
from tinyeffnet.models import EfficientNetV2, Stage, round_filters, round_repeats

# Published counts (timm / torchvision, num_classes=1000): docs/DESIGN.md 10.3.
PUBLISHED_PARAMS = {
    "efficientnetv2_b0": 7_139_704, "efficientnetv2_b1": 8_141_052, "efficientnetv2_b2": 10_096_086,
    "efficientnetv2_b3": 14_358_406, "efficientnetv2_s": 21_458_488, "efficientnetv2_m": 54_139_356,
    "efficientnetv2_l": 118_515_272, "efficientnetv2_xl": 208_119_808,
}


@pytest.mark.parametrize("name", list(PUBLISHED_PARAMS))
def test_parameter_counts_equal_published(name):
    assert models.create_model(name).num_parameters() == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name,builder", [("efficientnetv2_s", torchvision.models.efficientnet_v2_s),
                                          ("efficientnetv2_m", torchvision.models.efficientnet_v2_m),
                                          ("efficientnetv2_l", torchvision.models.efficientnet_v2_l)])
def test_parameter_shapes_equal_torchvision(name, builder):
    """Every tensor, in torchvision's layout and order, has torchvision's shape (not just the total)."""
    from tinyeffnet import interop

    model, tv_model = models.create_model(name), builder()
    ours, theirs = interop.torchvision_state_dict(model), tv_model.state_dict()
    assert list(ours) == list(theirs)
    assert [tuple(v.shape) for v in ours.values()] == [tuple(v.shape) for v in theirs.values()]
    assert model.num_parameters() == sum(p.numel() for p in tv_model.parameters())


def test_round_filters_official_rule():
    assert round_filters(32, 1.0) == 32
    assert round_filters(32, 1.1) == 32    # 35.2 -> nearest multiple of 8
    assert round_filters(48, 1.1) == 56    # 52.8 -> 56
    assert round_filters(40, 1.2) == 48
    assert round_filters(1280, 1.1) == 1408
    assert round_filters(1280, 1.2) == 1536
    assert round_filters(4, 1.0) == 8      # min_depth
    assert round_filters(12, 0.25) == 8    # no "+8 if it lost more than 10%" correction: 3 -> 8 by min_depth
    assert round_filters(100, 0.5) == 48   # 50 -> 48 (torchvision's rule would keep 48 too: 48 >= 45)
    assert round_filters(20, 1.0) == 24    # 24 = int(20 + 4) // 8 * 8


def test_round_repeats_ceil():
    assert [round_repeats(r, 1.1) for r in (1, 2, 2, 3, 5, 8)] == [2, 3, 3, 4, 6, 9]   # B1
    assert [round_repeats(r, 1.4) for r in (1, 2, 2, 3, 5, 8)] == [2, 3, 3, 5, 7, 12]  # B3


# Derived B shapes (docs/DESIGN.md 10.3, identical to timm tf_efficientnetv2_b*).
B_SHAPES = {
    "efficientnetv2_b0": (32, (16, 32, 48, 96, 112, 192), (1, 2, 2, 3, 5, 8), 1280),
    "efficientnetv2_b1": (32, (16, 32, 48, 96, 112, 192), (2, 3, 3, 4, 6, 9), 1280),
    "efficientnetv2_b2": (32, (16, 32, 56, 104, 120, 208), (2, 3, 3, 4, 6, 10), 1408),
    "efficientnetv2_b3": (40, (16, 40, 56, 112, 136, 232), (2, 3, 3, 5, 7, 12), 1536),
}


@pytest.mark.parametrize("name", list(B_SHAPES))
def test_b_variant_shapes(name):
    stem, outs, repeats, head = B_SHAPES[name]
    model = models.create_model(name)
    assert model.stem.conv.out_channels == stem
    assert tuple(s.out_ch for s in model.config) == outs
    assert tuple(s.repeats for s in model.config) == repeats
    assert tuple(len(stage) for stage in model.stages) == repeats
    assert model.head.conv.out_channels == head


def test_drop_path_schedule_equals_torchvision():
    ours = models.efficientnetv2_s()
    theirs = torchvision.models.efficientnet_v2_s()
    ours_rates = [block.drop_path.p if block.use_residual else None for stage in ours.stages for block in stage]
    theirs_rates = [b.stochastic_depth.p if b.use_res_connect else None
                    for stage in list(theirs.features)[1:-1] for b in stage]
    assert len(ours_rates) == len(theirs_rates) == 40
    for a, b in zip(ours_rates, theirs_rates):
        assert (a is None and b is None) or a == pytest.approx(b, abs=1e-12)


def test_names_defaults_and_aliases():
    assert set(models.list_models()) >= {"efficientnetv2_s", "tf_efficientnetv2_b0", "efficientnetv2_tiny"}
    tf = models.tf_efficientnetv2_b0()
    assert tf.stem.conv.padding == "same" and tf.stem.bn.eps == 1e-3
    plain = models.efficientnetv2_b0()
    assert plain.stem.conv.padding == 1
    assert models.create_model("efficientnetv2_m").dropout.p == 0.3
    assert models.create_model("efficientnetv2_m", drop_rate=0.0).dropout.p == 0.0
    assert models.create_model("efficientnet_v2_s").num_parameters() == PUBLISHED_PARAMS["efficientnetv2_s"]
    with pytest.raises(ValueError, match="unknown model 'efficientnetv2_q'"):
        models.create_model("efficientnetv2_q")
    with pytest.raises(ValueError, match="padding must be"):
        models.create_model("efficientnetv2_b0", padding="valid")


def test_tiny_default_model():
    model = models.efficientnetv2_tiny(num_classes=10)
    assert 100_000 <= model.num_parameters() <= 500_000
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)
    logits = model(x)
    assert logits.shape == (2, 10) and logits.dtype == np.float32
    assert model.backward(np.ones_like(logits)).shape == x.shape
    assert models.efficientnetv2_tiny(num_classes=10, dtype=np.float64)(x.astype(np.float64)).dtype == np.float64


def test_custom_model_in_a_few_lines():
    """The docstring example of EfficientNetV2."""
    model = EfficientNetV2([
        Stage("fused", 1, 3, 1, 1, 16, 16),
        Stage("fused", 2, 3, 2, 4, 16, 32),
        Stage("mbconv", 2, 3, 2, 4, 32, 64, 0.25),
    ], num_classes=10, head_channels=256)
    x = np.zeros((1, 32, 32, 3), np.float32)
    assert model(x).shape == (1, 10)
    assert sum(1 for stage in model.stages for _ in stage) == 5


def test_bad_stage_tables():
    with pytest.raises(ValueError, match="stage 1 has in_ch 24 but stage 0 has out_ch 16"):
        EfficientNetV2([("fused", 1, 3, 1, 1, 16, 16), ("fused", 1, 3, 2, 4, 24, 32)])
    with pytest.raises(ValueError, match='block must be "fused" or "mbconv"'):
        Stage("conv", 1, 3, 1, 1, 16, 16)
    with pytest.raises(ValueError, match="no squeeze-excite"):
        Stage("fused", 1, 3, 1, 1, 16, 16, 0.25)


def test_seed_reproducible():
    a = models.efficientnetv2_tiny(seed=3).state_dict()
    b = models.efficientnetv2_tiny(seed=3).state_dict()
    c = models.efficientnetv2_tiny(seed=4).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["stem.conv.weight"], c["stem.conv.weight"])
