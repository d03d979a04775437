"""Compound scaling (models/scaling.py) against the published EfficientNet family and torchvision.

Exact: the published (width, depth) give torchvision's efficientnet_b* stage tables block for block,
and their parameter counts; phi = 0 is the base network; the powers are the powers.
Approximate, with the tolerance stated: the published coefficients are compound scaling's alpha**phi,
beta**phi, gamma**phi only to within 20% (the paper gives no phi per variant, nor how the values
were picked).
"""
import inspect
import math
import re

import pytest
import torch  # noqa: F401  (torchvision needs it; missing torch must fail, not skip)
import torchvision
from torchvision.models.efficientnet import _efficientnet_conf

import tinyeffnet.models as models
from tinyeffnet.models import V1_BASE, V2_S, scaling

# The official EfficientNet table (efficientnet_params): width, depth, resolution.
PUBLISHED = {"efficientnet_b0": (1.0, 1.0, 224), "efficientnet_b1": (1.0, 1.1, 240),
             "efficientnet_b2": (1.1, 1.2, 260), "efficientnet_b3": (1.2, 1.4, 300),
             "efficientnet_b4": (1.4, 1.8, 380), "efficientnet_b5": (1.6, 2.2, 456),
             "efficientnet_b6": (1.8, 2.6, 528), "efficientnet_b7": (2.0, 3.1, 600)}


def _torchvision_multipliers(name) -> tuple:
    """(width_mult, depth_mult) as written in torchvision's builder source."""
    source = inspect.getsource(getattr(torchvision.models, name))
    found = re.search(r"width_mult=([0-9.]+), depth_mult=([0-9.]+)", source)
    return float(found.group(1)), float(found.group(2))


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_coefficients_are_torchvisions(name):
    width, depth, size = PUBLISHED[name]
    variant = models.VARIANTS[name]
    assert (variant.width, variant.depth, variant.eval_size) == (width, depth, size)
    assert _torchvision_multipliers(name) == (width, depth)
    weights = getattr(torchvision.models, f"EfficientNet_B{name[-1]}_Weights").IMAGENET1K_V1
    crop = weights.transforms().crop_size[0]
    assert crop == (288 if name == "efficientnet_b2" else size)   # torchvision evaluates its B2 at 288


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_coefficients_give_torchvisions_stage_table(name):
    """Exact: every stage's expand, kernel, stride, channels and repeats; stem, head, parameters."""
    width, depth, size = PUBLISHED[name]
    ours = scaling.scale_network(V1_BASE, width, depth, size, name=name)
    setting, _ = _efficientnet_conf(name, width_mult=width, depth_mult=depth)
    assert [(s.expand, s.kernel, s.stride, s.in_ch, s.out_ch, s.repeats) for s in ours.stages] == \
        [(c.expand_ratio, c.kernel, c.stride, c.input_channels, c.out_channels, c.num_layers) for c in setting]
    assert ours.stem == setting[0].input_channels
    assert ours.head == 4 * setting[-1].out_channels          # torchvision's head: 4 x the last stage
    weights = getattr(torchvision.models, f"EfficientNet_B{name[-1]}_Weights").IMAGENET1K_V1
    assert ours.num_parameters() == weights.meta["num_params"]


def test_official_family_and_count_parameters():
    family = scaling.official_family()
    assert [n.name for n in family] == list(PUBLISHED)
    assert all(n.phi is None and n.rounding == "v1" for n in family)
    b0 = models.create_model("efficientnet_b0", num_classes=10)
    assert family[0].num_parameters(num_classes=10) == b0.num_parameters()
    v2 = scaling.official_family("efficientnetv2_s")[0]       # Fused-MBConv rows are counted too
    assert v2.num_parameters() == 21_458_488 and v2.rounding == "v2"
    with pytest.raises(ValueError, match="no variant name starts with 'resnet'"):
        scaling.official_family("resnet")


def test_compound_coefficients_are_the_powers():
    for phi in (0, 1, 2.5, 7, -1):
        assert scaling.compound_coefficients(phi) == (1.2 ** phi, 1.1 ** phi, 1.15 ** phi)
    # the paper's constraint alpha * beta^2 * gamma^2 ~= 2 (FLOPs double per unit of phi): 1.92
    assert scaling.ALPHA * scaling.BETA ** 2 * scaling.GAMMA ** 2 == pytest.approx(2, rel=0.05)


def test_phi_zero_is_the_base_network():
    base = scaling.compound_scale(V1_BASE, 0)
    b0 = scaling.official_family()[0]
    assert (base.stages, base.image_size, base.stem, base.head) == (b0.stages, 224, 32, 1280)
    assert scaling.compound_scale(V2_S, 0, rules="v2", base_size=384, late_depth=1.3).stages == V2_S


def test_published_coefficients_are_compound_scaling_within_20_percent():
    """Approximate, tolerance 20%: B1-B7's published coefficients are values near
    alpha**i, beta**i, 224 * gamma**i (B3's depth 1.4 is 0.81 of 1.2**3 = 1.728, the farthest), and
    the phi each one implies grows with i (strictly for depth and size; B0 and B1 share width 1.0).
    Not exact, so no tighter claim is tested."""
    implied = {"depth": [], "width": [], "size": []}
    for i, name in enumerate(PUBLISHED):
        width, depth, size = PUBLISHED[name]
        d, w, r = scaling.compound_coefficients(i)
        for published, compound in ((depth, d), (width, w), (size, 224 * r)):
            assert abs(published / compound - 1) <= 0.20, (name, published, compound)
        implied["depth"].append(scaling.implied_phi(depth, scaling.ALPHA))
        implied["width"].append(scaling.implied_phi(width, scaling.BETA))
        implied["size"].append(scaling.implied_phi(size / 224, scaling.GAMMA))
    for kind in ("depth", "size"):
        assert all(a < b for a, b in zip(implied[kind], implied[kind][1:])), kind
    assert implied["width"] == sorted(implied["width"])
    assert scaling.implied_phi(2.0, scaling.BETA) == pytest.approx(7.27, abs=0.01)   # B7's width


def test_v2_restrictions():
    """EfficientNetV2, section 4: image size capped at 480; stages 5 and 6 deepened more; V2 rounding."""
    plain = scaling.compound_scale(V2_S, 2, base_size=384)                  # V1's rules
    v2 = scaling.compound_scale(V2_S, 2, base_size=384, rules="v2")
    deeper = scaling.compound_scale(V2_S, 2, base_size=384, rules="v2", late_depth=1.2)
    assert plain.image_size == round(384 * 1.15 ** 2) == 508 and v2.image_size == deeper.image_size == 480
    assert [s.repeats for s in v2.stages] == [s.repeats for s in plain.stages]   # late_depth 1: no extra
    for number, (a, b, base) in enumerate(zip(v2.stages, deeper.stages, V2_S), start=1):
        if number in (5, 6):
            assert b.repeats == math.ceil(base.repeats * (1.2 * 1.2) ** 2) > a.repeats
        else:
            assert b.repeats == a.repeats
    assert v2.rounding == "v2" and plain.rounding == "v1"
    small = -math.log(1.25) / math.log(1.1)                     # beta ** phi = 0.8: 24 * 0.8 = 19.2 channels
    assert scaling.compound_scale(V1_BASE, small).stages[1].out_ch == 24             # V1: +8 (lost > 10%)
    assert scaling.compound_scale(V1_BASE, small, rules="v2").stages[1].out_ch == 16
    assert scaling.compound_scale(V2_S, 1, rules="v2", max_image_size=400, base_size=384).image_size == 400


def test_build_gives_the_scaled_network():
    scaled = scaling.compound_scale(V1_BASE, -1.5)
    model = scaled.build(num_classes=10)
    assert model.num_parameters() == scaled.num_parameters(num_classes=10)
    assert model.config == scaled.stages and model.head.conv.out_channels == scaled.head


def test_describe_family_prints_a_table():
    text = scaling.describe_family(scaling.official_family())
    lines = text.splitlines()
    assert lines[0].split() == ["name", "phi", "width", "depth", "size", "stem", "repeats", "head", "params",
                                "~FLOPs"]
    assert len(lines) == 2 + 8
    assert "efficientnet_b7" in lines[-1] and "66.35M" in lines[-1] and "4/7/7/10/10/13/4" in lines[-1]
    compound = scaling.describe_family(scaling.compound_family(V1_BASE, range(3)))
    assert [line.split()[0] for line in compound.splitlines()[2:]] == ["phi=0", "phi=1", "phi=2"]


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="phi must be a number"):
        scaling.compound_scale(V1_BASE, "2")
    with pytest.raises(ValueError, match="rules must be one of 'v1', 'v2'"):
        scaling.compound_scale(V1_BASE, 1, rules="v3")
    with pytest.raises(ValueError, match="late_stages holds stage numbers 1..6"):
        scaling.compound_scale(V2_S, 1, rules="v2", late_stages=(7,))
    with pytest.raises(ValueError, match="late_depth is one of EfficientNetV2's restrictions"):
        scaling.compound_scale(V1_BASE, 1, late_depth=1.2)
    with pytest.raises(ValueError, match="late_depth must be a finite number >= 1"):
        scaling.compound_scale(V2_S, 1, rules="v2", late_depth=0.5)
    with pytest.raises(ValueError, match="base_stages must hold at least one Stage"):
        scaling.compound_scale([], 1)
    with pytest.raises(ValueError, match="width must be a finite number > 0"):
        scaling.scale_network(V1_BASE, width=0)
    with pytest.raises(TypeError, match="networks must be a non-empty list of ScaledNetwork"):
        scaling.describe_family([])


def test_describe_family_can_list_each_stages_channels():
    family = scaling.compound_family(models.V2_TINY, [0, 2], rules="v2", base_size=32, head=320)
    lines = scaling.describe_family(family, num_classes=10, channels=True).splitlines()
    head = lines[0].split()
    assert head[head.index("repeats") + 1] == "channels"
    assert dict(zip(head, lines[2].split()))["channels"] == "16/24/32/64/80"     # V2_TINY's own table
    # width 1.21 (V2 rounding, no +8): 19.4, 29.0, 38.7, 77.4, 96.8 -> 16, 32, 40, 80, 96
    assert dict(zip(head, lines[3].split()))["channels"] == "16/32/40/80/96"
    assert scaling.describe_family(family) == scaling.describe_family(family, channels=False)   # unchanged default
    with pytest.raises(TypeError, match="channels must be True or False"):
        scaling.describe_family(family, channels="yes")


def test_v2_restrictions_on_a_five_stage_table():
    """The options carry over to a table without a 6th stage: a cap, and any late stages chosen."""
    v2 = scaling.compound_scale(models.V2_TINY, 2, rules="v2", base_size=32, head=320, max_image_size=40,
                                late_stages=(4, 5), late_depth=1.25)
    v1 = scaling.compound_scale(models.V2_TINY, 2, base_size=32, head=320)
    assert (v1.image_size, v2.image_size) == (round(32 * 1.15 ** 2), 40) == (42, 40)
    assert [s.repeats for s in v2.stages] == [2, 3, 3, 5, 5]     # ceil(2 * 1.44 * 1.5625) = ceil(4.5) = 5
    assert [s.repeats for s in v1.stages] == [2, 3, 3, 3, 3]     # ceil(1.44), ceil(2 * 1.44) = 3
