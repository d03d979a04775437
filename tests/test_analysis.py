"""analysis: multiply-adds equal torchvision's published figures; params equal the model's; summary."""
import numpy as np
import pytest
import torch  # noqa: F401

import tinyeffnet.models as models
from tinyeffnet import analysis

# torchvision weights metadata "_ops" (GFLOPS = conv + linear multiply-adds), docs/DESIGN.md 10.3, to the
# stated digits: S at 384, M at 480, L at 480; and S at 300 (verified in the spec, 5.308).
PUBLISHED_GMACS = [("efficientnetv2_s", 384, 8.366), ("efficientnetv2_s", 300, 5.308),
                   ("efficientnetv2_m", 480, 24.582), ("efficientnetv2_l", 480, 56.08)]


@pytest.mark.parametrize("name,size,gmacs", PUBLISHED_GMACS)
def test_macs_equal_torchvision_published(name, size, gmacs):
    model = models.create_model(name)
    total = analysis.totals(model, size)
    digits = len(str(gmacs).split(".")[1])
    assert round(total.macs / 1e9, digits) == gmacs
    assert total.params == model.num_parameters()
    assert total.shape == (1000,)


def test_stage_shapes_of_s_at_384():
    """Spec 2.3: stem/st1 24x192^2, st2 48x96^2, st3 64x48^2, st4 128x24^2, st5 160x24^2, st6 256x12^2."""
    rows = analysis.stage_table(models.efficientnetv2_s(), 384)
    shapes = [row.cost.shape for row in rows]
    assert shapes[:7] == [(192, 192, 24), (192, 192, 24), (96, 96, 48), (48, 48, 64), (24, 24, 128),
                          (24, 24, 160), (12, 12, 256)]
    assert shapes[7] == (12, 12, 1280)


def test_same_padding_and_odd_sizes_give_the_conv_output_sizes():
    model = models.create_model("tf_efficientnetv2_b0")
    rows = analysis.stage_table(model, (65, 49))
    assert rows[0].cost.shape == (33, 25, 32)  # ceil(65 / 2), ceil(49 / 2)
    x = np.zeros((1, 33, 27, 3), np.float32)
    tiny = models.efficientnetv2_tiny(num_classes=10)
    h = tiny.stem(x)
    for stage, row in zip(tiny.stages, analysis.stage_table(tiny, (33, 27))[1:]):
        h = stage(h)
        assert h.shape[1:] == row.cost.shape


def test_activation_memory_of_a_conv_unit():
    from tinyeffnet.nn import ConvBNAct
    unit = ConvBNAct(3, 8, 3, 2)
    cost = analysis.cost(unit, (10, 10, 3))
    assert cost.shape == (5, 5, 8)
    assert cost.macs == 5 * 5 * 8 * 3 * 9
    assert cost.activations == 3 * 5 * 5 * 8  # conv, BN and SiLU outputs
    assert cost.params == 3 * 3 * 3 * 8 + 2 * 8


def test_summary_text():
    text = analysis.summary("efficientnetv2_s")
    assert "efficientnetv2_s at 384x384" in text
    assert "21,458,488" in text and "8.366G" in text
    for part in ("stem", "stage 1", "stage 6", "head", "classifier", "total"):
        assert part in text
    assert "MBConv6 k3x3, SE0.25 s2 x15" in text
    small = analysis.summary(models.efficientnetv2_tiny(num_classes=10), image_size=32, batch_size=8)
    assert "batch 8" in small and "(2, 2, 80)" in small
