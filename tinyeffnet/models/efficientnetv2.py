"""The EfficientNet network (V2, and V1): stem, stages of (Fused-)MBConv blocks, head, classifier.

One builder makes both generations: a network is its stage table (config.py). EfficientNetV2's
tables start with Fused-MBConv stages; EfficientNet V1's (B0-B7) are MBConv throughout, with 5x5
kernels in three stages, and round their scaled widths with V1's rule (``rounding="v1"``). Apart
from the BatchNorm eps and momentum their reference weights were trained with (options here),
nothing else differs. ``EfficientNet`` is another name for the same class.

Dimension legend
    N batch   H, W image height, width   C0 stem channels   Ch head channels (1280 for S/M/L)
    classes   number of outputs

    x       (N, H, W, 3)
    stem    SiLU(BN(conv3x3 stride 2))           (N, H/2, W/2, C0)
    stages  Fused-MBConv stages (V2), then MBConv stages (config.py), each halving H, W at stride 2
    head    SiLU(BN(conv1x1))                    (N, h, w, Ch)
    pool    mean over h, w                       (N, Ch)
    dropout (training only)                      (N, Ch)
    logits  linear                               (N, classes)

Backward runs the same list in reverse, each module's backward taking the gradient of its output
and returning the gradient of its input:

    d_features = classifier.backward(dlogits) -> dropout -> pool -> head -> stages (last block
    first) -> stem -> dx (N, H, W, 3)

Stochastic depth: block i of the B blocks of the whole network (i counted from 0 across stages)
gets drop-path probability drop_path_rate * i / B (torchvision's rule; the first block never drops).
"""
from __future__ import annotations

import numpy as np

from ..ops._checks import (check_bool, check_dtype, check_eps, check_int, check_momentum, check_number,
                           check_probability)
from ..nn import (BatchNorm2d, ConvBNAct, Dropout, FusedMBConv, GlobalAvgPool, Linear, MBConv, Module, ModuleList,
                  Sequential)
from .config import ROUNDING_RULES, Stage, round_filters, scale_stages


def check_network_options(where: str, num_classes, drop_rate, drop_path_rate, bn_eps, in_channels, dtype,
                          seed) -> None:
    """The options every network takes, checked before any layer is built (``where`` names the caller):
    num_classes and in_channels ints >= 1, drop_rate and drop_path_rate in [0, 1), bn_eps > 0,
    dtype float32 or float64, seed an int >= 0."""
    check_int("num_classes", num_classes, op=where)
    check_probability("drop_rate", drop_rate, op=where)
    check_probability("drop_path_rate", drop_path_rate, op=where)
    check_eps(bn_eps, op=where)
    check_int("in_channels", in_channels, op=where)
    check_dtype("dtype", dtype, op=where)
    check_int("seed", seed, 0, op=where)


def _resolve_padding(padding):
    if padding is None or padding == "symmetric":
        return None  # each conv pads (K - 1) // 2 on every side, like torchvision
    if padding == "same":
        return "same"
    raise ValueError(f'padding must be None (symmetric, torchvision), "symmetric" or "same" (TensorFlow), '
                     f'got {padding!r}')


def _check_rounding(rounding) -> str:
    if rounding not in ROUNDING_RULES:
        raise ValueError(f"EfficientNetV2: rounding must be one of {', '.join(map(repr, ROUNDING_RULES))} "
                         f"(EfficientNetV2's or V1's channel rounding), got {rounding!r}")
    return rounding


def _as_stages(stages) -> tuple:
    rows = tuple(stage if isinstance(stage, Stage) else Stage(*stage) for stage in stages)
    if not rows:
        raise ValueError("an EfficientNetV2 needs at least one stage")
    for index in range(1, len(rows)):
        if rows[index].in_ch != rows[index - 1].out_ch:
            raise ValueError(f"stage {index} has in_ch {rows[index].in_ch} but stage {index - 1} "
                             f"has out_ch {rows[index - 1].out_ch}; they must be equal")
    return rows


class EfficientNetV2(Module):
    """EfficientNetV2 built from a stage table (see config.py); ``models.create_model`` builds the
    named variants.

    A custom network is a few lines. For 32x32 images, 10 classes::

        from tinyeffnet.models import EfficientNetV2, Stage
        model = EfficientNetV2([
            #     block     r  k  s  e  in  out  se
            Stage("fused",  1, 3, 1, 1, 16, 16),
            Stage("fused",  2, 3, 2, 4, 16, 32),
            Stage("mbconv", 2, 3, 2, 4, 32, 64, 0.25),
        ], num_classes=10, head_channels=256)
        logits = model(x)                  # x: (N, 32, 32, 3) float32 -> (N, 10)
        dx = model.backward(dlogits)       # fills p.grad for every p in model.parameters()

    stages:         Stage rows (or plain tuples in the same order); stem width = stages[0].in_ch
    width, depth:   multipliers applied with round_filters / round_repeats (to stages and head)
    rounding:       "v2" (default, EfficientNetV2's round_filters) or "v1" (EfficientNet V1's and
                    torchvision's _make_divisible: +8 when the nearest multiple of 8 lost > 10%)
    head_channels:  features of the 1x1 head conv (before width rounding)
    drop_rate:      dropout before the classifier; drop_path_rate: stochastic depth (see module doc)
    padding:        None (symmetric, torchvision) or "same" (TensorFlow, for ported TF weights)
    bn_eps:         BatchNorm epsilon (1e-3 in every official EfficientNetV2)
    bn_momentum:    BatchNorm momentum, PyTorch's sense (0.1; TensorFlow's decay 0.99 is 0.01)
    dtype, seed:    parameter dtype (float32, or float64 for gradient checks) and the init seed;
                    the same seed also seeds the dropout / drop-path generator (``set_rng``)
    fast:           True (default): the speed paths, chosen now, layer by layer (Winograd 3x3 convs,
                    BatchNormSiLU units); False: every layer the readable one (im2col, BatchNorm2d +
                    SiLU). Same weights from the same seed, same state_dict keys, same numbers.
    """

    def __init__(self, stages, num_classes: int = 1000, *, width: float = 1.0, depth: float = 1.0,
                 head_channels: int = 1280, drop_rate: float = 0.2, drop_path_rate: float = 0.2,
                 padding=None, bn_eps: float = 1e-3, in_channels: int = 3, dtype=np.float32, seed: int = 0,
                 fast: bool = True, rounding: str = "v2", bn_momentum: float = 0.1):
        super().__init__()
        check_network_options("EfficientNetV2", num_classes, drop_rate, drop_path_rate, bn_eps, in_channels, dtype,
                              seed)
        check_number("width", width, 0, low_open=True, op="EfficientNetV2")
        check_number("depth", depth, 0, low_open=True, op="EfficientNetV2")
        check_int("head_channels", head_channels, op="EfficientNetV2")
        check_bool("fast", fast, op="EfficientNetV2")
        rounding = _check_rounding(rounding)
        bn_momentum = check_momentum(bn_momentum, op="EfficientNetV2")
        stages = scale_stages(_as_stages(stages), width, depth, rounding)
        _as_stages(stages)  # the scaled table must still chain
        padding = _resolve_padding(padding)
        rng = np.random.default_rng(seed)
        unit = dict(padding=padding, bn_eps=bn_eps, rng=rng, dtype=dtype, fast=fast)
        self.config = stages
        self.num_classes = num_classes
        head = round_filters(head_channels, width, rounding=rounding)

        self.stem = ConvBNAct(in_channels, stages[0].in_ch, 3, 2, **unit)
        total_blocks = sum(stage.repeats for stage in stages)
        self.stages = ModuleList()
        block_index = 0
        for stage in stages:
            blocks = Sequential()
            for repeat in range(stage.repeats):
                in_ch = stage.in_ch if repeat == 0 else stage.out_ch
                stride = stage.stride if repeat == 0 else 1
                rate = drop_path_rate * block_index / total_blocks
                if stage.block == "fused":
                    block = FusedMBConv(in_ch, stage.out_ch, stage.kernel, stride, stage.expand, rate, **unit)
                else:
                    block = MBConv(in_ch, stage.out_ch, stage.kernel, stride, stage.expand, stage.se, rate, **unit)
                blocks.append(block)
                block_index += 1
            self.stages.append(blocks)
        self.head = ConvBNAct(stages[-1].out_ch, head, 1, **unit)
        self.pool = GlobalAvgPool()
        self.dropout = Dropout(drop_rate)
        self.classifier = Linear(head, num_classes, rng=rng, dtype=dtype)
        self._set_bn_momentum(bn_momentum)
        self.set_rng(np.random.default_rng(seed))

    def _set_bn_momentum(self, momentum: float) -> None:
        """Every BatchNorm's momentum (the units are built with BatchNorm2d's default, 0.1)."""
        for module in self.modules():
            if isinstance(module, BatchNorm2d):   # BatchNormSiLU (the fast path) included
                module.momentum = momentum

    def forward(self, x):
        h = self.stem(x)                          # (N, H/2, W/2, C0)
        for stage in self.stages:
            h = stage(h)                          # (N, h, w, stage out_ch)
        h = self.head(h)                          # (N, h, w, Ch)
        features = self.dropout(self.pool(h))     # (N, Ch)
        return self.classifier(features)          # (N, classes)

    def backward(self, dlogits, input_gradient: bool = True):
        """Backward of the whole network: fills every parameter's .grad, returns dx (N, H, W, 3).
        input_gradient=False: returns None, and the stem computes only its weight gradient (training
        needs no gradient of the image; the stem's dx was ~2% of the main job's step)."""
        d_features = self.dropout.backward(self.classifier.backward(dlogits))  # (N, Ch)
        dh = self.head.backward(self.pool.backward(d_features))                # (N, h, w, last out_ch)
        for stage in reversed(list(self.stages)):
            dh = stage.backward(dh)
        return self.stem.backward(dh, input_gradient)  # (N, H, W, 3)

    def extra_repr(self) -> str:
        blocks = sum(stage.repeats for stage in self.config)
        return f"{len(self.config)} stages, {blocks} blocks, {self.num_parameters():,} params"


EfficientNet = EfficientNetV2   # the same builder makes V1 (B0-B7) and V2 networks
