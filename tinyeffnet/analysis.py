"""What a model costs: parameters, multiply-adds and activation memory, per stage, from shapes alone.

Nothing is run: the input shape is pushed through the model's layers by the same output-size rule
the convolutions use (ops/_checks.py), and each layer adds its costs. Per image (N = 1), for a
layer with output (Ho, Wo, Cout):

    dense conv  K x K, Cin -> Cout:   MACs = Ho * Wo * Cout * Cin * K * K      params = K*K*Cin*Cout
    depthwise   K x K, C:             MACs = Ho * Wo * C * K * K               params = K*K*C
    linear      Cin -> Cout:          MACs = Cin * Cout                        params = Cin*Cout (+Cout)
    BatchNorm, SiLU, sigmoid, pooling, the SE product and residual adds: 0 MACs (the convention of
    torchvision's published "GFLOPS", which are conv + linear multiply-adds; BN params = 2C)

Activation memory: the bytes of every tensor the forward produces and keeps for the backward (each
layer's output: conv, BN, activation, SE product, residual sum), per image, in the model's dtype.
This is what training at a given batch size needs on top of the weights, roughly (some ops keep
their input rather than their output; the order of magnitude and the per-stage split are the point).

Dimension legend: H, W image size; Ho, Wo output size; C, Cin, Cout channels; K kernel size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .nn import (BatchNorm2d, BatchNormSiLU, Conv2d, ConvBNAct, DepthwiseConv2d, Dropout, FusedMBConv, GlobalAvgPool,
                 Identity, Linear, MBConv, Module, Sequential, Sigmoid, SiLU, SqueezeExcite)
from .nn_walk import branch_units
from .ops._checks import check_int, conv_output_size, is_int, resolve_padding


@dataclass
class Cost:
    """Costs of one part of a network, per image: output shape (H, W, C) or (C,), params, MACs,
    activation elements."""

    shape: tuple
    params: int = 0
    macs: int = 0
    activations: int = 0

    def add(self, other: "Cost") -> "Cost":
        return Cost(other.shape, self.params + other.params, self.macs + other.macs,
                    self.activations + other.activations)


def _conv_shape(shape: tuple, kernel: int, stride: int, padding, channels: int) -> tuple:
    height, width, _ = shape
    top, bottom, left, right = resolve_padding(padding, height, width, kernel, kernel, stride)
    return (conv_output_size(height, kernel, stride, top, bottom),
            conv_output_size(width, kernel, stride, left, right), channels)


def cost(module: Module, shape: tuple) -> Cost:
    """The Cost of ``module`` for one input of ``shape`` ((H, W, C), or (C,) after pooling)."""
    params = module.num_parameters()
    if isinstance(module, Conv2d):
        out = _conv_shape(shape, module.kernel_size, module.stride, module.padding, module.out_channels)
        macs = out[0] * out[1] * out[2] * module.in_channels * module.kernel_size ** 2
        return Cost(out, params, macs, int(np.prod(out)))
    if isinstance(module, DepthwiseConv2d):
        out = _conv_shape(shape, module.kernel_size, module.stride, module.padding, module.channels)
        return Cost(out, params, int(np.prod(out)) * module.kernel_size ** 2, int(np.prod(out)))
    if isinstance(module, BatchNormSiLU):  # counted as the readable chain BN -> SiLU: two outputs, so the
        return Cost(shape, params, 0, 2 * int(np.prod(shape)))  # numbers do not depend on the speed path
    if isinstance(module, (BatchNorm2d, SiLU, Sigmoid)):
        return Cost(shape, params, 0, int(np.prod(shape)))
    if isinstance(module, GlobalAvgPool):
        return Cost(shape[-1:], 0, 0, shape[-1])
    if isinstance(module, Linear):
        return Cost((module.out_features,), params, module.in_features * module.out_features, module.out_features)
    if isinstance(module, (Dropout, Identity)):  # also DropPath: no new tensor worth counting
        return Cost(shape)
    if isinstance(module, (ConvBNAct, Sequential)):
        return _chain([child for child in module.children()], shape)
    if isinstance(module, SqueezeExcite):  # children in forward order: pool, reduce, act, expand, gate
        gate = _chain(list(module.children()), shape)
        return Cost(shape, gate.params, gate.macs, gate.activations + int(np.prod(shape)))  # + product
    if isinstance(module, (MBConv, FusedMBConv)):
        branch = _chain([unit for _, unit in branch_units(module, "analysis")], shape)
        if module.use_residual:
            branch.activations += int(np.prod(branch.shape))  # the residual sum
        return branch
    raise TypeError(f"analysis does not know {type(module).__name__}")


def _chain(modules, shape: tuple) -> Cost:
    total = Cost(shape)
    for module in modules:
        total = total.add(cost(module, total.shape))
    return total


@dataclass
class StageRow:
    name: str
    operator: str
    cost: Cost


def _block_operator(stage) -> str:
    kind = "Fused-MBConv" if stage.block == "fused" else "MBConv"
    expand = f"{stage.expand:g}"
    se = f", SE{stage.se:g}" if stage.se else ""
    return f"{kind}{expand} k{stage.kernel}x{stage.kernel}{se} s{stage.stride} x{stage.repeats}"


def check_image_size(image_size, where: str) -> tuple:
    """image_size: an int >= 1 (a square image) or a pair (H, W) of them. Returns (H, W)."""
    pair = (image_size, image_size) if is_int(image_size) else image_size
    if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2 \
            or not all(is_int(v) for v in pair):
        raise TypeError(f"{where}: image_size must be an int >= 1 or a pair (H, W) of them, got {image_size!r}")
    if min(pair) < 1:
        raise ValueError(f"{where}: image_size must be >= 1, got {image_size!r}")
    return int(pair[0]), int(pair[1])


def stage_table(model: Module, image_size) -> list:
    """One StageRow per part of an EfficientNetV2: stem, each stage, head, classifier (per image)."""
    height, width = check_image_size(image_size, "stage_table")
    shape = (int(height), int(width), model.stem.conv.in_channels)
    rows = []
    current = cost(model.stem, shape)
    stem = model.stem.conv
    rows.append(StageRow("stem", f"Conv{stem.kernel_size}x{stem.kernel_size} s{stem.stride}", current))
    for index, (stage, spec) in enumerate(zip(model.stages, model.config)):
        current = cost(stage, current.shape)
        rows.append(StageRow(f"stage {index + 1}", _block_operator(spec), current))
    current = cost(model.head, current.shape)
    rows.append(StageRow("head", "Conv1x1", current))
    current = _chain([model.pool, model.dropout, model.classifier], current.shape)
    rows.append(StageRow("classifier", "Pool & FC", current))
    return rows


def totals(model: Module, image_size) -> Cost:
    """Whole-network Cost per image (shape = the logits' shape)."""
    total = Cost(())
    for row in stage_table(model, image_size):
        total = total.add(row.cost)
    return total


def _fmt_count(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.3f}{unit}"
    return f"{value:.0f}"


def summary(model_or_name, image_size=None, batch_size: int = 1) -> str:
    """A per-stage table (output shape, parameters, multiply-adds, activation memory) with totals.

    model_or_name: a model, or a name for ``tinyeffnet.models.create_model``
    image_size:    int or (H, W); default: the variant's evaluation size (224 if unknown)
    batch_size:    scales MACs and activation memory (parameters do not scale)
    """
    if isinstance(model_or_name, str):
        from .models import create_model

        model = create_model(model_or_name)
    elif isinstance(model_or_name, Module) and hasattr(model_or_name, "stem"):
        model = model_or_name
    else:
        raise TypeError(f"summary: model_or_name must be a model name (str) or an EfficientNetV2, "
                        f"got {type(model_or_name).__name__}")
    check_int("batch_size", batch_size, op="summary")
    if image_size is None:
        variant = getattr(model, "variant", None)
        image_size = variant.eval_size if variant is not None and variant.eval_size else 224
    check_image_size(image_size, "summary")
    itemsize = np.dtype(model.dtype).itemsize
    rows = stage_table(model, image_size)
    size_text = f"{image_size}x{image_size}" if np.isscalar(image_size) else "x".join(map(str, image_size))
    title = (f"{getattr(model, 'name', type(model).__name__)} at {size_text}, batch {batch_size}, "
             f"{np.dtype(model.dtype).name}")
    header = f"{'part':<11} {'operator':<34} {'output (H, W, C)':<18} {'params':>12} {'MACs':>10} {'act. memory':>12}"
    lines = [title, header, "-" * len(header)]
    total = Cost(())
    for row in rows:
        total = total.add(row.cost)
        shape = "(" + ", ".join(map(str, row.cost.shape)) + ")"
        lines.append(f"{row.name:<11} {row.operator:<34} {shape:<18} {row.cost.params:>12,} "
                     f"{_fmt_count(row.cost.macs * batch_size):>10} "
                     f"{_fmt_count(row.cost.activations * itemsize * batch_size) + 'B':>12}")
    lines.append("-" * len(header))
    lines.append(f"{'total':<11} {'':<34} {'':<18} {total.params:>12,} {_fmt_count(total.macs * batch_size):>10} "
                 f"{_fmt_count(total.activations * itemsize * batch_size) + 'B':>12}")
    return "\n".join(lines)
