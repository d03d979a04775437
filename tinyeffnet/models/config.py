"""The EfficientNet variant tables (V2 and V1, official configs) and the channel/depth rounding rules.

Sources: google/automl ``efficientnetv2/effnetv2_configs.py`` (block strings and
``efficientnetv2_params``) and ``effnetv2_model.py`` (rounding); torchvision's ``_efficientnet_conf``
encodes the same S/M/L stages. See docs/DESIGN.md, sections 10.1-10.3. EfficientNet (V1, Tan & Le,
ICML 2019): google/automl ``efficientnet/efficientnet_builder.py`` (the B0 block strings and
``efficientnet_params``) and ``efficientnet_model.py`` (``round_filters``), the same numbers as
torchvision's ``_efficientnet_conf("efficientnet_b*")``.

A stage row (one line of a block string ``r2_k3_s1_e1_i24_o24_c1``):

    Stage(block, repeats, kernel, stride, expand, in_ch, out_ch, se)
        block   "fused" (Fused-MBConv, c1) or "mbconv" (MBConv, c0)
        repeats r: blocks in the stage; the first has the stride and in_ch, the rest stride 1, out_ch in
        kernel  k   stride s   expand e   se: squeeze-excite ratio (0 = none)

Scaling a base table (the B1-B3 variants scale the base B0 table):

    round_filters(c, width)  = max(8, int(c*width + 4) // 8 * 8)     (nearest multiple of 8)
    round_repeats(r, depth)  = ceil(r * depth)

applied to every stage's in/out channels and repeats, to the stem (= stage 1 in_ch) and to the head
(1280 features). The expanded width in a block, in_ch * expand, is NOT rounded (official rule).

EfficientNet V1 rounds channels with one more step (``rounding="v1"``; torchvision's
``_make_divisible``, the official V1 ``round_filters``): if the nearest multiple of 8 lost more than
10% of c * width, add 8. Repeats round the same way in both. V1 is all MBConv (no Fused-MBConv), with
5x5 depthwise kernels in three stages and expand ratio 1 in the first; its head is 1280 * width.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Stage:
    """One stage of blocks: see the module docstring for the fields."""

    block: str
    repeats: int
    kernel: int
    stride: int
    expand: float
    in_ch: int
    out_ch: int
    se: float = 0.0

    def __post_init__(self):
        if self.block not in ("fused", "mbconv"):
            raise ValueError(f'Stage.block must be "fused" or "mbconv", got {self.block!r}')
        for name in ("repeats", "kernel", "stride", "in_ch", "out_ch"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Stage.{name} must be an int >= 1, got {value!r}")
        if self.expand < 1:
            raise ValueError(f"Stage.expand must be >= 1, got {self.expand!r}")
        if self.block == "fused" and self.se:
            raise ValueError("Stage: Fused-MBConv stages have no squeeze-excite (se must be 0)")


def _stages(*rows) -> tuple:
    return tuple(Stage(*row) for row in rows)


# ---------------------------------------------------------------------------------------------
# The official stage tables (effnetv2_configs.py, verbatim numbers).
#            block     r   k  s  e   in   out   se
V2_BASE = _stages(  # B0-B3 (scaled by width/depth below)
            ("fused",  1,  3, 1, 1,  32,  16),
            ("fused",  2,  3, 2, 4,  16,  32),
            ("fused",  2,  3, 2, 4,  32,  48),
            ("mbconv", 3,  3, 2, 4,  48,  96, 0.25),
            ("mbconv", 5,  3, 1, 6,  96, 112, 0.25),
            ("mbconv", 8,  3, 2, 6, 112, 192, 0.25))
V2_S = _stages(
            ("fused",  2,  3, 1, 1,  24,  24),
            ("fused",  4,  3, 2, 4,  24,  48),
            ("fused",  4,  3, 2, 4,  48,  64),
            ("mbconv", 6,  3, 2, 4,  64, 128, 0.25),
            ("mbconv", 9,  3, 1, 6, 128, 160, 0.25),
            ("mbconv", 15, 3, 2, 6, 160, 256, 0.25))
V2_M = _stages(
            ("fused",  3,  3, 1, 1,  24,  24),
            ("fused",  5,  3, 2, 4,  24,  48),
            ("fused",  5,  3, 2, 4,  48,  80),
            ("mbconv", 7,  3, 2, 4,  80, 160, 0.25),
            ("mbconv", 14, 3, 1, 6, 160, 176, 0.25),
            ("mbconv", 18, 3, 2, 6, 176, 304, 0.25),
            ("mbconv", 5,  3, 1, 6, 304, 512, 0.25))
V2_L = _stages(
            ("fused",  4,  3, 1, 1,  32,  32),
            ("fused",  7,  3, 2, 4,  32,  64),
            ("fused",  7,  3, 2, 4,  64,  96),
            ("mbconv", 10, 3, 2, 4,  96, 192, 0.25),
            ("mbconv", 19, 3, 1, 6, 192, 224, 0.25),
            ("mbconv", 25, 3, 2, 6, 224, 384, 0.25),
            ("mbconv", 7,  3, 1, 6, 384, 640, 0.25))
V2_XL = _stages(
            ("fused",  4,  3, 1, 1,  32,  32),
            ("fused",  8,  3, 2, 4,  32,  64),
            ("fused",  8,  3, 2, 4,  64,  96),
            ("mbconv", 16, 3, 2, 4,  96, 192, 0.25),
            ("mbconv", 24, 3, 1, 6, 192, 256, 0.25),
            ("mbconv", 32, 3, 2, 6, 256, 512, 0.25),
            ("mbconv", 8,  3, 1, 6, 512, 640, 0.25))
# EfficientNet V1 B0 (efficientnet_builder.py, verbatim numbers): every stage MBConv with SE 0.25.
#            block     r   k  s  e   in   out   se
V1_BASE = _stages(  # B0-B7 (scaled by width/depth below, with rounding "v1")
            ("mbconv", 1,  3, 1, 1,  32,  16, 0.25),
            ("mbconv", 2,  3, 2, 6,  16,  24, 0.25),
            ("mbconv", 2,  5, 2, 6,  24,  40, 0.25),
            ("mbconv", 3,  3, 2, 6,  40,  80, 0.25),
            ("mbconv", 3,  5, 1, 6,  80, 112, 0.25),
            ("mbconv", 4,  5, 2, 6, 112, 192, 0.25),
            ("mbconv", 1,  3, 1, 6, 192, 320, 0.25))
# Not official: a small network for 32-64 px images (CPU training in minutes), see models/__init__.
V2_TINY = _stages(
            ("fused",  1,  3, 1, 1,  16,  16),
            ("fused",  2,  3, 2, 4,  16,  24),
            ("fused",  2,  3, 2, 4,  24,  32),
            ("mbconv", 2,  3, 2, 4,  32,  64, 0.25),
            ("mbconv", 2,  3, 1, 4,  64,  80, 0.25))


ROUNDING_RULES = ("v2", "v1")   # round_filters' two rules (see the module docstring)


@dataclass(frozen=True)
class Variant:
    """A named model: a stage table, its scaling, and the training/eval facts of the official config."""

    stages: tuple
    width: float = 1.0        # width multiplier (channels)
    depth: float = 1.0        # depth multiplier (repeats)
    head: int = 1280          # head conv features before rounding
    train_size: int = 0       # image size used for training (official, last progressive stage)
    eval_size: int = 0        # image size used for evaluation
    dropout: float = 0.2      # dropout before the classifier
    rounding: str = "v2"      # channel rounding rule: "v2" (EfficientNetV2) or "v1" (+8 if it lost > 10%)
    bn_eps: float = 1e-3      # BatchNorm epsilon of the reference weights
    bn_momentum: float = 0.1  # BatchNorm momentum, PyTorch's sense (running = (1 - m) running + m batch)

    def __post_init__(self):
        if self.rounding not in ROUNDING_RULES:
            raise ValueError(f"Variant.rounding must be one of {', '.join(ROUNDING_RULES)}, got {self.rounding!r}")


# ---------------------------------------------------------------------------------------------
# efficientnetv2_params (verbatim): width, depth, train size, eval size, dropout.
#                                    stages    width depth  head  train eval dropout
VARIANTS = {
    "efficientnetv2_b0":   Variant(V2_BASE, 1.0, 1.0, 1280, 192, 224, 0.2),
    "efficientnetv2_b1":   Variant(V2_BASE, 1.0, 1.1, 1280, 192, 240, 0.2),
    "efficientnetv2_b2":   Variant(V2_BASE, 1.1, 1.2, 1280, 208, 260, 0.3),
    "efficientnetv2_b3":   Variant(V2_BASE, 1.2, 1.4, 1280, 240, 300, 0.3),
    "efficientnetv2_s":    Variant(V2_S,    1.0, 1.0, 1280, 300, 384, 0.2),
    "efficientnetv2_m":    Variant(V2_M,    1.0, 1.0, 1280, 384, 480, 0.3),
    "efficientnetv2_l":    Variant(V2_L,    1.0, 1.0, 1280, 384, 480, 0.4),
    "efficientnetv2_xl":   Variant(V2_XL,   1.0, 1.0, 1280, 384, 512, 0.4),
    "efficientnetv2_tiny": Variant(V2_TINY, 1.0, 1.0,  320,  32,  32, 0.1),
}

# efficientnet_params (verbatim): width, depth, resolution, dropout; the image size is used for both
# training and evaluation in V1. BatchNorm as torchvision's efficientnet_b*: B0-B4 (weights ported from
# timm, trained in PyTorch) eps 1e-5, momentum 0.1; B5-B7 (ported from TensorFlow) eps 1e-3, momentum
# 0.01 (TF's decay 0.99). torchvision evaluates its B2 weights at 288 px, not the paper's 260.
#                                    stages    width depth  head  train eval dropout rounding eps  momentum
VARIANTS.update({
    "efficientnet_b0":     Variant(V1_BASE, 1.0, 1.0, 1280, 224, 224, 0.2, "v1", 1e-5, 0.1),
    "efficientnet_b1":     Variant(V1_BASE, 1.0, 1.1, 1280, 240, 240, 0.2, "v1", 1e-5, 0.1),
    "efficientnet_b2":     Variant(V1_BASE, 1.1, 1.2, 1280, 260, 260, 0.3, "v1", 1e-5, 0.1),
    "efficientnet_b3":     Variant(V1_BASE, 1.2, 1.4, 1280, 300, 300, 0.3, "v1", 1e-5, 0.1),
    "efficientnet_b4":     Variant(V1_BASE, 1.4, 1.8, 1280, 380, 380, 0.4, "v1", 1e-5, 0.1),
    "efficientnet_b5":     Variant(V1_BASE, 1.6, 2.2, 1280, 456, 456, 0.4, "v1", 1e-3, 0.01),
    "efficientnet_b6":     Variant(V1_BASE, 1.8, 2.6, 1280, 528, 528, 0.5, "v1", 1e-3, 0.01),
    "efficientnet_b7":     Variant(V1_BASE, 2.0, 3.1, 1280, 600, 600, 0.5, "v1", 1e-3, 0.01),
})


def round_filters(filters: float, width: float = 1.0, divisor: int = 8, min_depth: int = 8,
                  rounding: str = "v2") -> int:
    """Scale a channel count by ``width`` and round it to the nearest multiple of ``divisor``.

        new = max(min_depth, int(filters * width + divisor / 2) // divisor * divisor)
        rounding "v1" only:  if new < 0.9 * filters * width: new += divisor

    rounding "v2" (default) is the official EfficientNetV2 rule: unlike torchvision's
    ``_make_divisible`` there is no "+divisor if the result lost more than 10%" correction; "v1" is
    EfficientNet V1's rule (and ``_make_divisible``'s), which has it. A width of 1.0 leaves
    multiples of 8 unchanged under both.
    """
    if rounding not in ROUNDING_RULES:
        raise ValueError(f"round_filters: rounding must be one of {', '.join(ROUNDING_RULES)}, got {rounding!r}")
    if not width:
        return int(filters)
    scaled = filters * width
    new = max(min_depth, int(scaled + divisor / 2) // divisor * divisor)
    if rounding == "v1" and new < 0.9 * scaled:
        new += divisor
    return int(new)


def round_repeats(repeats: int, depth: float = 1.0) -> int:
    """ceil(repeats * depth): a deeper variant gets at least as many blocks in every stage."""
    return int(math.ceil(depth * repeats))


def scale_stages(stages, width: float = 1.0, depth: float = 1.0, rounding: str = "v2") -> tuple:
    """Apply round_filters (with ``rounding``) to every stage's in/out channels and round_repeats to
    its repeats."""
    return tuple(replace(stage,
                         in_ch=round_filters(stage.in_ch, width, rounding=rounding),
                         out_ch=round_filters(stage.out_ch, width, rounding=rounding),
                         repeats=round_repeats(stage.repeats, depth)) for stage in stages)
