"""Weights in and out: torchvision and timm state_dicts (both directions), and .npz files.

Our arrays are channels-last; PyTorch's are channels-first. Every parameter has one of four layouts,
and converting is a transpose (no arithmetic, so a round trip is exact):

    layout      ours                         PyTorch                      ours -> PyTorch
    conv        (KH, KW, Cin, Cout)          (Cout, Cin, KH, KW)          w.transpose(3, 2, 0, 1)
    depthwise   (KH, KW, C)                  (C, 1, KH, KW)               w.transpose(2, 0, 1)[:, None]
    se_conv     Linear w (Cin, Cout)         1x1 conv (Cout, Cin, 1, 1)   w.T[:, :, None, None]
    linear      (Cin, Cout)                  (Cout, Cin)                  w.T
    vector      BN gamma/beta/running stats, biases, num_batches_tracked: unchanged

Key names. Our model's tree (stem, stages.i.j.<unit>, head, classifier) maps onto:

    torchvision  features.0 (stem) | features.{i+1}.{j}.block.{k} | features.{last} (head) | classifier.1
                 Fused e=1: block.0 = conv;  Fused e>1: block.0 = expand, block.1 = project;
                 MBConv: block.0 expand, block.1 depthwise, block.2 SE (fc1, fc2), block.3 project
                 (without an expand conv every index shifts down by one); each conv unit: .0 conv, .1 BN
    timm         conv_stem, bn1 | blocks.{i}.{j}.{conv, bn1 | conv_exp, bn1, conv_pwl, bn2 |
                 conv_pw, bn1, conv_dw, bn2, se.conv_reduce, se.conv_expand, conv_pwl, bn3} |
                 conv_head, bn2 | classifier     (spec section 3.4; timm's stage i = torchvision's i+1)

The two lists have the same length and the same order (spec 3.4), which is also our state_dict's
order. Loading never unpickles code: ``.pth`` files go through ``torch.load(weights_only=True)`` and
``.npz`` through ``np.load(allow_pickle=False)``.
"""
from __future__ import annotations

import os
import pickle
from collections import OrderedDict

import numpy as np

from .nn import ConvBNAct, DepthwiseConv2d, FusedMBConv, MBConv, Module
from .nn.module import describe_key_problems

_TO_TORCH = {
    "conv": lambda w: w.transpose(3, 2, 0, 1),
    "depthwise": lambda w: w.transpose(2, 0, 1)[:, None],
    "se_conv": lambda w: w.T[:, :, None, None],
    "linear": lambda w: w.T,
    "vector": lambda w: w,
}
_FROM_TORCH = {
    "conv": lambda t: t.transpose(2, 3, 1, 0),
    "depthwise": lambda t: t[:, 0].transpose(1, 2, 0),
    "se_conv": lambda t: t[:, :, 0, 0].T,
    "linear": lambda t: t.T,
    "vector": lambda t: t,
}


def _torch_shape(shape: tuple, layout: str) -> tuple:
    return _TO_TORCH[layout](np.empty(shape, dtype=np.uint8)).shape


# ------------------------------------------------------------------------------ key maps
def _unit_entries(ours: str, theirs_conv: str, theirs_bn: str, unit: ConvBNAct) -> list:
    """(our key, their key, layout) for a conv-BN unit."""
    layout = "depthwise" if isinstance(unit.conv, DepthwiseConv2d) else "conv"
    rows = [(f"{ours}.conv.weight", f"{theirs_conv}.weight", layout)]
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        rows.append((f"{ours}.bn.{name}", f"{theirs_bn}.{name}", "vector"))
    return rows


def _se_entries(ours: str, reduce_key: str, expand_key: str) -> list:
    return [(f"{ours}.reduce.weight", f"{reduce_key}.weight", "se_conv"),
            (f"{ours}.reduce.bias", f"{reduce_key}.bias", "vector"),
            (f"{ours}.expand.weight", f"{expand_key}.weight", "se_conv"),
            (f"{ours}.expand.bias", f"{expand_key}.bias", "vector")]


def _block_units(block) -> list:
    """The block's units in forward order: (our attribute, module, timm conv name, timm bn name)."""
    if isinstance(block, FusedMBConv):
        if block.conv is not None:
            return [("conv", block.conv, "conv", "bn1")]
        return [("expand", block.expand, "conv_exp", "bn1"), ("project", block.project, "conv_pwl", "bn2")]
    if isinstance(block, MBConv):
        if block.expand is not None:
            names = [("expand", "conv_pw", "bn1"), ("depthwise", "conv_dw", "bn2"), ("se", "se", None),
                     ("project", "conv_pwl", "bn3")]
        else:  # timm's DepthwiseSeparableConv
            names = [("depthwise", "conv_dw", "bn1"), ("se", "se", None), ("project", "conv_pw", "bn2")]
        return [(attr, getattr(block, attr), conv, bn) for attr, conv, bn in names if getattr(block, attr) is not None]
    raise TypeError(f"interop knows FusedMBConv and MBConv blocks, got {type(block).__name__}")


def _block_rows(block, ours_block: str, theirs_block: str, tv: bool) -> list:
    """Rows of one block; theirs_block is "features.i.j.block" (torchvision) or "blocks.i.j" (timm)."""
    rows = []
    dot = "." if ours_block else ""
    for k, (attr, unit, timm_conv, timm_bn) in enumerate(_block_units(block)):
        ours = f"{ours_block}{dot}{attr}"
        if attr == "se":
            prefix = f"{theirs_block}.{k}" if tv else f"{theirs_block}.se"
            rows += _se_entries(ours, f"{prefix}.fc1" if tv else f"{prefix}.conv_reduce",
                                f"{prefix}.fc2" if tv else f"{prefix}.conv_expand")
        elif tv:
            rows += _unit_entries(ours, f"{theirs_block}.{k}.0", f"{theirs_block}.{k}.1", unit)
        else:
            rows += _unit_entries(ours, f"{theirs_block}.{timm_conv}", f"{theirs_block}.{timm_bn}", unit)
    if not tv and not theirs_block:  # a lone timm block: keys have no prefix
        rows = [(ours, theirs.lstrip("."), layout) for ours, theirs, layout in rows]
    return rows


def key_map(model: Module, flavour: str = "torchvision") -> list:
    """[(our key, their key, layout), ...] for every parameter and buffer, in state_dict order.

    model:   an EfficientNetV2, or a single MBConv / FusedMBConv block (then the keys are those of
             torchvision's own ``MBConv`` / ``FusedMBConv`` module: "block.0.0.weight", ...; or of
             timm's block module: "conv_pw.weight", ...)
    flavour: "torchvision" (efficientnet_v2_*) or "timm" (efficientnetv2_* / tf_efficientnetv2_*).
    """
    if flavour not in ("torchvision", "timm"):
        raise ValueError(f'flavour must be "torchvision" or "timm", got {flavour!r}')
    tv = flavour == "torchvision"
    if isinstance(model, (MBConv, FusedMBConv)):
        return _block_rows(model, "", "block" if tv else "", tv)
    for name in ("stem", "stages", "head", "classifier"):
        if not hasattr(model, name):
            raise TypeError(f"key_map needs an EfficientNetV2 model (with .{name}) or a block, got {type(model).__name__}")
    rows = _unit_entries("stem", "features.0.0" if tv else "conv_stem", "features.0.1" if tv else "bn1", model.stem)
    for i, stage in enumerate(model.stages):
        for j, block in enumerate(stage):
            rows += _block_rows(block, f"stages.{i}.{j}", f"features.{i + 1}.{j}.block" if tv else f"blocks.{i}.{j}", tv)
    last = len(model.stages) + 1
    rows += _unit_entries("head", f"features.{last}.0" if tv else "conv_head",
                          f"features.{last}.1" if tv else "bn2", model.head)
    classifier = "classifier.1" if tv else "classifier"
    rows += [("classifier.weight", f"{classifier}.weight", "linear"),
             ("classifier.bias", f"{classifier}.bias", "vector")]
    return rows


# ------------------------------------------------------------------------------ export
def _export(model: Module, flavour: str, grads: bool) -> "OrderedDict[str, np.ndarray]":
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    out = OrderedDict()
    no_grad = []
    for ours, theirs, layout in key_map(model, flavour):
        if grads:
            if ours not in params:
                continue  # buffers have no gradient (as in torch)
            value = params[ours].grad
            if value is None:
                no_grad.append(ours)
                continue
        else:
            value = params[ours].data if ours in params else buffers[ours]
        out[theirs] = np.array(_TO_TORCH[layout](np.asarray(value)), order="C", copy=True)
    if no_grad:
        raise ValueError(f"no gradient yet (run forward and backward first) for {len(no_grad)} parameters: "
                         + ", ".join(no_grad))
    return out


def torchvision_state_dict(model: Module, grads: bool = False) -> "OrderedDict[str, np.ndarray]":
    """Our weights under torchvision's key names and layouts, as numpy arrays.

    grads=True: the parameters' gradients instead (same keys and layouts; buffers left out), to
    compare with ``{k: p.grad for k, p in tv_model.named_parameters()}``.
    ``{k: torch.from_numpy(v) for k, v in result.items()}`` loads into torchvision with strict=True.
    """
    return _export(model, "torchvision", grads)


def timm_state_dict(model: Module, grads: bool = False) -> "OrderedDict[str, np.ndarray]":
    """Like torchvision_state_dict, with timm's key names (efficientnetv2_* / tf_efficientnetv2_*)."""
    return _export(model, "timm", grads)


# ------------------------------------------------------------------------------ import
def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; torch itself is never imported for this
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _read_pth(path) -> dict:
    """torch.load with weights_only=True: tensors and plain containers only, never code."""
    import torch  # needed only to read .pth files

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"refused to load {os.fspath(path)!r}: it holds more than tensors (a pickle "
                         f"that would build arbitrary objects or run code); only plain state_dicts are "
                         f"loaded (torch.load(weights_only=True))\n{error}") from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{os.fspath(path)!r} does not hold a state_dict (got {type(state).__name__})")
    return state


def _import(model: Module, state, flavour: str) -> None:
    if isinstance(state, (str, os.PathLike)):
        state = _read_pth(state)
    if not hasattr(state, "keys"):
        raise TypeError(f"state_dict must be a mapping of names to arrays or a path to a .pth file, "
                        f"got {type(state).__name__}")
    ours_shapes = {name: value.shape for name, value in model.state_dict().items()}
    rows = key_map(model, flavour)
    expected = {theirs: (ours, layout) for ours, theirs, layout in rows}
    missing = [theirs for _, theirs, _ in rows if theirs not in state]
    unexpected = [key for key in state.keys() if key not in expected]
    mismatched, converted = [], OrderedDict()
    for ours, theirs, layout in rows:
        if theirs not in state:
            continue
        value = _to_numpy(state[theirs])
        want = _torch_shape(ours_shapes[ours], layout)
        if value.shape != want:
            mismatched.append(f"{theirs}: expected {want}, got {value.shape}")
            continue
        converted[ours] = _FROM_TORCH[layout](value)
    problems = describe_key_problems(missing, unexpected, mismatched)
    if problems:
        raise ValueError(f"cannot load this {flavour} state_dict into the model:\n{problems}")
    model.load_state_dict(converted)


def load_torchvision(model: Module, state_dict) -> Module:
    """Load torchvision weights: a state_dict (numpy arrays or torch tensors) or a path to a .pth.

    Strict: missing keys, unexpected keys and shape mismatches raise a ValueError listing them all
    by name; the model is left unchanged then. Values are converted to the model's dtype.
    """
    _import(model, state_dict, "torchvision")
    return model


def load_timm(model: Module, state_dict) -> Module:
    """Load timm weights (efficientnetv2_* / tf_efficientnetv2_*; build the model with the matching
    padding, "same" for tf_ names, and bn_eps). Same rules as load_torchvision."""
    _import(model, state_dict, "timm")
    return model


# ------------------------------------------------------------------------------ npz
def save_npz(model: Module, path) -> None:
    """Write our state_dict (our key names, our layouts) to an uncompressed .npz file."""
    np.savez(path, **model.state_dict())


def load_npz(model: Module, path) -> Module:
    """Read a file written by save_npz (strict, like load_state_dict); pickled objects are refused."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            state = {key: archive[key] for key in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ValueError(f"refused to load {os.fspath(path)!r}: it holds pickled objects, not plain "
                             f"arrays (np.load(allow_pickle=False))") from error
        raise
    model.load_state_dict(state)
    return model
