"""Weights in and out: torchvision and timm state_dicts (both directions), .npz, .safetensors and
.pth files, training checkpoints, and the equivalent torchvision model (to continue in PyTorch).

Our arrays are channels-last; PyTorch's are channels-first. Every parameter has one of four layouts,
and converting is a transpose (no arithmetic, so a round trip is exact):

    layout      ours                         PyTorch                      ours -> PyTorch
    conv        (KH, KW, Cin, Cout)          (Cout, Cin, KH, KW)          w.transpose(3, 2, 0, 1)
    depthwise   (KH, KW, C)                  (C, 1, KH, KW)               w.transpose(2, 0, 1)[:, None]
    se_conv     Linear w (Cin, Cout)         1x1 conv (Cout, Cin, 1, 1)   w.T[:, :, None, None]
    linear      (Cin, Cout)                  (Cout, Cin)                  w.T
    vector      BN gamma/beta/running stats, biases, num_batches_tracked: unchanged

Key names. Our model's tree (stem, stages.i.j.<unit>, head, classifier) maps onto the names below,
for EfficientNetV2 (torchvision efficientnet_v2_*, timm efficientnetv2_*) and EfficientNet V1 alike
(torchvision and timm efficientnet_b*: the same scheme, all MBConv; the first stage has no expand conv,
which timm calls a DepthwiseSeparableConv: conv_dw, bn1, se, conv_pw, bn2):

    torchvision  features.0 (stem) | features.{i+1}.{j}.block.{k} | features.{last} (head) | classifier.1
                 Fused e=1: block.0 = conv;  Fused e>1: block.0 = expand, block.1 = project;
                 MBConv: block.0 expand, block.1 depthwise, block.2 SE (fc1, fc2), block.3 project
                 (without an expand conv every index shifts down by one); each conv unit: .0 conv, .1 BN
    timm         conv_stem, bn1 | blocks.{i}.{j}.{conv, bn1 | conv_exp, bn1, conv_pwl, bn2 |
                 conv_pw, bn1, conv_dw, bn2, se.conv_reduce, se.conv_expand, conv_pwl, bn3} |
                 conv_head, bn2 | classifier     (docs/DESIGN.md 10.4; timm's stage i = torchvision's i+1)

The two lists have the same length and the same order (docs/DESIGN.md 10.4), which is also our state_dict's
order. Loading never unpickles code: ``.pth`` files go through ``torch.load(weights_only=True)`` and
``.npz`` through ``np.load(allow_pickle=False)``.

Files. Every writer is atomic (a temporary file, fsynced, renamed: a crash leaves the old file or the
new one, never half of one) and every reader names the file in one line when it is missing, empty,
truncated, bit-flipped or of another model (``files.BadFileError``, a ValueError):

    save_npz / load_npz                  our names and layouts, NumPy's .npz (CRC-checked zip)
    save_safetensors / load_safetensors  ours, torchvision's or timm's names (recorded in the metadata)
    save_pth                             a torch.save'd state_dict of tensors, torchvision or timm names
    read_weights / load_weights          any of these, or a training checkpoint (its EMA weights)
    torchvision_model                    the same network as a torchvision EfficientNet, weights copied
    export                               what ``tinyeffnet export`` does
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from .files import BadFileError, read_npz, save_npz_atomic, write_atomic
from .nn import ConvBNAct, DepthwiseConv2d, FusedMBConv, MBConv, Module, SqueezeExcite
from .nn.module import describe_key_problems
from .nn_walk import branch_units

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


# timm's (conv, bn) names of each unit, by block kind and our attribute (docs/DESIGN.md 10.4). Which
# units a block has and their order come from the block itself (nn_walk.branch_units); only the
# names are timm's. torchvision numbers the units instead: block.{k}, k = the unit's position.
_TIMM_NAMES = {
    "fused": {"conv": ("conv", "bn1"), "expand": ("conv_exp", "bn1"), "project": ("conv_pwl", "bn2")},
    "mbconv": {"expand": ("conv_pw", "bn1"), "depthwise": ("conv_dw", "bn2"), "se": ("se", None),
               "project": ("conv_pwl", "bn3")},
    # an MBConv without an expand conv is timm's DepthwiseSeparableConv
    "separable": {"depthwise": ("conv_dw", "bn1"), "se": ("se", None), "project": ("conv_pw", "bn2")},
}


def _timm_kind(block) -> str:
    if isinstance(block, FusedMBConv):
        return "fused"
    return "mbconv" if block.expand is not None else "separable"


def _block_rows(block, ours_block: str, theirs_block: str, tv: bool) -> list:
    """Rows of one block; theirs_block is "features.i.j.block" (torchvision) or "blocks.i.j" (timm)."""
    units = branch_units(block, "interop")
    timm_names = _TIMM_NAMES[_timm_kind(block)]
    rows = []
    dot = "." if ours_block else ""
    for k, (attr, unit) in enumerate(units):
        ours = f"{ours_block}{dot}{attr}"
        timm_conv, timm_bn = timm_names[attr]
        if isinstance(unit, SqueezeExcite):
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

    model:   an EfficientNetV2 (V1 or V2), or a single MBConv / FusedMBConv block (then the keys are
             those of torchvision's own ``MBConv`` / ``FusedMBConv`` module: "block.0.0.weight", ...;
             or of timm's block module: "conv_pw.weight", ...)
    flavour: "torchvision" (efficientnet_v2_*, efficientnet_b*) or "timm" (efficientnetv2_*,
             tf_efficientnetv2_*, efficientnet_b*, tf_efficientnet_b*).
    """
    if flavour not in ("torchvision", "timm"):
        raise ValueError(f'flavour must be "torchvision" or "timm", got {flavour!r}')
    tv = flavour == "torchvision"
    if isinstance(model, (MBConv, FusedMBConv)):
        return _block_rows(model, "", "block" if tv else "", tv)
    for name in ("stem", "stages", "head", "classifier"):
        if not hasattr(model, name):
            raise TypeError(f"key_map needs an EfficientNetV2 model (with .{name}) or a block, "
                            f"got {type(model).__name__}")
    rows = _unit_entries("stem", "features.0.0" if tv else "conv_stem", "features.0.1" if tv else "bn1",
                         model.stem)
    for i, stage in enumerate(model.stages):
        for j, block in enumerate(stage):
            theirs = f"features.{i + 1}.{j}.block" if tv else f"blocks.{i}.{j}"
            rows += _block_rows(block, f"stages.{i}.{j}", theirs, tv)
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


# ------------------------------------------------------------------------------ argument checks
KEYS = ("tinyeffnet", "torchvision", "timm")      # whose key names and layouts a file uses
FORMATS = ("torchvision", "timm", "safetensors")  # what `export` writes

# One key that only that flavour has: how a file's flavour is recognised from its names.
_SIGNATURE_KEYS = {"stem.conv.weight": "tinyeffnet", "features.0.0.weight": "torchvision",
                   "conv_stem.weight": "timm"}


def _check_model(model) -> None:
    if not isinstance(model, Module):
        raise TypeError(f"model must be a tinyeffnet Module (e.g. tinyeffnet.create_model(...)), "
                        f"got {type(model).__name__}")


def _check_path(path, argument: str = "path") -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{argument} must be a file path (str or os.PathLike), got {type(path).__name__}")
    return os.fspath(path)


def _check_keys(keys, allowed=KEYS) -> str:
    if keys not in allowed:
        raise ValueError(f"keys must be one of {', '.join(allowed)}, got {keys!r}")
    return keys


def _model_label(model) -> str:
    """'efficientnetv2_tiny, 10 classes': how messages name a model."""
    name = getattr(model, "name", type(model).__name__)
    classes = getattr(model, "num_classes", None)
    return name if classes is None else f"{name}, {classes} classes"


def _short_list(items: list, limit: int) -> str:
    more = f", ... and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _one_line_problems(missing, unexpected, mismatched, limit: int = 4) -> str:
    """Like describe_key_problems, on one line and with at most ``limit`` names per kind."""
    parts = []
    if missing:
        parts.append(f"missing keys ({len(missing)}): {_short_list(missing, limit)}")
    if unexpected:
        parts.append(f"unexpected keys ({len(unexpected)}): {_short_list(unexpected, limit)}")
    if mismatched:
        parts.append(f"shape mismatches ({len(mismatched)}): {_short_list(mismatched, limit)}")
    return " | ".join(parts)


def _shapes(model: Module) -> "OrderedDict[str, tuple]":
    """Our key -> shape for every parameter and buffer (without copying them, unlike state_dict)."""
    shapes = OrderedDict((name, tuple(p.data.shape)) for name, p in model.named_parameters())
    shapes.update((name, tuple(b.shape)) for name, b in model.named_buffers())
    return shapes


# ------------------------------------------------------------------------------ import
def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; torch itself is never imported for this
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _check_file(path, what: str) -> int:
    """FileNotFoundError / BadFileError for a missing or empty file; returns its size in bytes."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path} does not exist")
    size = os.path.getsize(path)
    if size == 0:
        raise BadFileError(f"{what} {path} is empty (0 bytes): it was never written completely")
    return size


def _read_pth(path, what: str = "weights file") -> dict:
    """torch.load with weights_only=True: tensors and plain containers only, never code."""
    path = os.fspath(path)
    size = _check_file(path, what)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] != b"PK" and magic[:1] != b"\x80":   # torch.save writes a zip (or, before 1.6, a pickle)
        raise BadFileError(f"{what} {path} is not a PyTorch .pth file (neither a zip archive nor a pickle; "
                           f"{size} bytes)")
    import torch  # needed only to read .pth files

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"refused to load {path!r}: it holds more than tensors (a pickle "
                         f"that would build arbitrary objects or run code); only plain state_dicts are "
                         f"loaded (torch.load(weights_only=True))\n{error}") from error
    except (RuntimeError, EOFError, OSError) as error:
        reason = str(error).split("\n")[0] or type(error).__name__
        raise BadFileError(f"{what} {path} is damaged or not a PyTorch file ({size} bytes): {reason}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path!r} does not hold a state_dict (got {type(state).__name__})")
    return state


def _convert_from(model: Module, state, flavour: str) -> tuple:
    """Their names and layouts -> ours: (converted, missing, unexpected, mismatched), the last three
    as their key names. Nothing is copied into the model here."""
    ours_shapes = _shapes(model)
    rows = key_map(model, flavour)
    expected = {theirs for _, theirs, _ in rows}
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
    return converted, missing, unexpected, mismatched


def _import(model: Module, state, flavour: str) -> None:
    _check_model(model)
    if isinstance(state, (str, os.PathLike)):
        state = _read_pth(state)
    if not hasattr(state, "keys"):
        raise TypeError(f"state_dict must be a mapping of name -> array (numpy array or torch tensor) or "
                        f"a path to a .pth file, got {type(state).__name__}")
    converted, missing, unexpected, mismatched = _convert_from(model, state, flavour)
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


def _load_arrays(model: Module, arrays: dict, keys: str, source: str, trained_as=None) -> None:
    """Strictly load ``arrays`` (``keys``: whose names and layouts they use) into ``model``.

    Every problem is found before anything is copied, and reported in ONE line that names the
    source file: a file of another model or another number of classes says so, instead of half-loading.
    """
    if keys == "tinyeffnet":
        shapes = _shapes(model)
        missing = [key for key in shapes if key not in arrays]
        unexpected = [key for key in arrays if key not in shapes]
        mismatched = [f"{key}: expected {shapes[key]}, got {tuple(np.shape(arrays[key]))}"
                      for key in shapes if key in arrays and tuple(np.shape(arrays[key])) != shapes[key]]
        converted = arrays
    else:
        converted, missing, unexpected, mismatched = _convert_from(model, arrays, keys)
    if missing or unexpected or mismatched:
        hint = f" (the file was trained as {trained_as})" if trained_as else ""
        raise ValueError(f"{source} does not fit this model ({_model_label(model)}){hint}: "
                         f"{_one_line_problems(missing, unexpected, mismatched)}")
    model.load_state_dict(converted)


# ------------------------------------------------------------------------------ npz
def save_npz(model: Module, path) -> None:
    """Write our state_dict (our key names, channels-last layouts) to an .npz file, atomically.

    .npz is NumPy's format: a zip archive with one .npy array per key, each with a CRC-32 checksum,
    so load_npz notices damage. Written exactly at ``path`` (no ".npz" is appended).
    """
    _check_model(model)
    save_npz_atomic(_check_path(path), model.state_dict())


def _is_checkpoint(arrays: dict) -> bool:
    """A training checkpoint (train/runner.py) holds its config and model.*, optim.*, ema.* arrays."""
    return "config" in arrays and any(key.startswith("model.") for key in arrays)


def load_npz(model: Module, path) -> Module:
    """Read a file written by save_npz into ``model`` (strict, like load_state_dict).

    An .npz of torchvision or timm names (``np.savez(path, **torchvision_state_dict(m))``) loads
    too: the flavour is recognised from the key names. A damaged, empty or foreign file raises
    BadFileError (a ValueError) naming the file; pickled objects are refused, never unpickled.
    """
    _check_model(model)
    path = _check_path(path)
    arrays = read_npz(path, "weights file")
    source = f"weights file {path}"
    if _is_checkpoint(arrays):
        raise ValueError(f"{source} is a training checkpoint (model, optimizer and EMA state), not a "
                         f"save_npz file: use interop.load_weights(model, path) (EMA weights) or "
                         f"`tinyeffnet export`")
    _load_arrays(model, arrays, _detect_keys(arrays, source), source)
    return model


# ------------------------------------------------------------------------------ safetensors
def _sha256(arrays: dict) -> str:
    """A fingerprint of the contents: SHA-256 over (name, dtype, shape, bytes) of every tensor, by name."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{value.dtype.str}:{value.shape};".encode())
        digest.update(value.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def _arrays_for(model: Module, keys: str) -> "OrderedDict[str, np.ndarray]":
    """The model's weights under ``keys``' names and layouts."""
    if keys == "tinyeffnet":
        return model.state_dict()
    return _export(model, keys, grads=False)


def save_safetensors(model: Module, path, keys: str = "torchvision") -> None:
    """Write the weights to a .safetensors file, atomically.

    safetensors (Hugging Face) is a plain format: an 8-byte header length, a JSON header (each
    tensor's name, dtype, shape and byte range, plus text metadata), then the raw bytes; no pickle.

    keys: "torchvision" (default: torchvision's names and channels-first layouts, so
          ``tv_model.load_state_dict(safetensors.torch.load_file(path))`` works), "timm", or
          "tinyeffnet" (our state_dict names and channels-last layouts).
    The metadata records ``keys`` and a SHA-256 of the tensors: safetensors itself has no checksum,
    and load_safetensors uses this one to notice damaged bytes.
    """
    from safetensors.numpy import save

    from . import __version__

    _check_model(model)
    path = _check_path(path)
    arrays = _arrays_for(model, _check_keys(keys))
    metadata = {"keys": keys, "sha256": _sha256(arrays), "written_by": f"tinyeffnet {__version__}"}
    data = save(dict(arrays), metadata=metadata)
    write_atomic(path, lambda f: f.write(data))


def _read_safetensors(path: str, what: str = "weights file") -> tuple:
    """(arrays, metadata) of a .safetensors file; BadFileError naming the file if it is damaged."""
    from safetensors import SafetensorError, safe_open

    size = _check_file(path, what)
    arrays = OrderedDict()
    try:
        with safe_open(path, framework="np") as f:
            metadata = dict(f.metadata() or {})
            for name in f.keys():
                try:
                    arrays[name] = f.get_tensor(name)
                except TypeError as error:   # e.g. bfloat16, which NumPy has no dtype for
                    raise BadFileError(f"{what} {path}: tensor {name} has a dtype NumPy cannot read "
                                       f"({error}); save it as float32") from None
    except SafetensorError as error:
        raise BadFileError(f"{what} {path} is damaged or not a .safetensors file ({size} bytes): "
                           f"{error}") from None
    if "sha256" in metadata and _sha256(arrays) != metadata["sha256"]:
        raise BadFileError(f"{what} {path} is damaged: its tensors no longer match the SHA-256 checksum "
                           f"recorded when it was written ({size} bytes)")
    return arrays, metadata


def _strip_module_prefix(arrays: dict) -> dict:
    """A model wrapped in torch's DistributedDataParallel saves every key as "module.<key>"."""
    if arrays and all(key.startswith("module.") for key in arrays):
        return OrderedDict((key[len("module."):], value) for key, value in arrays.items())
    return arrays


def _detect_keys(arrays: dict, source: str) -> str:
    """Whose names a file uses ("tinyeffnet", "torchvision", "timm"), from a key only that one has."""
    for key, keys in _SIGNATURE_KEYS.items():
        if key in arrays:
            return keys
    raise ValueError(f"{source} holds no EfficientNetV2 weights under tinyeffnet, torchvision or timm "
                     f"names (none of {', '.join(_SIGNATURE_KEYS)}); its keys: "
                     f"{_short_list(list(arrays), 4) or 'none'}")


def load_safetensors(model: Module, path) -> Module:
    """Read a .safetensors file into ``model`` (strict, like load_state_dict).

    The file's key flavour (tinyeffnet, torchvision or timm) comes from its metadata (save_safetensors
    records it) or, for a file written by PyTorch (``safetensors.torch.save_file(tv.state_dict(), path)``),
    from its key names. A damaged file raises BadFileError naming the file.
    """
    _check_model(model)
    path = _check_path(path)
    arrays, metadata = _read_safetensors(path)
    arrays = _strip_module_prefix(arrays)
    source = f"weights file {path}"
    keys = metadata.get("keys") if metadata.get("keys") in KEYS else _detect_keys(arrays, source)
    _load_arrays(model, arrays, keys, source)
    return model


# ------------------------------------------------------------------------------ any weights file
class Weights(NamedTuple):
    """What read_weights found in a file."""

    arrays: dict        # name -> numpy array
    keys: str           # "tinyeffnet", "torchvision" or "timm": whose names and layouts
    source: str         # how messages name it: "the EMA weights of training checkpoint runs/x.npz"
    trained_as: str | None  # the model name a training checkpoint records, else None


def _checkpoint_weights(arrays: dict, path: str, ema: bool) -> Weights:
    """Our-named weights out of a training checkpoint (train/runner.py's Trainer.state_arrays).

    With ema=True and an EMA in the checkpoint: the EMA's averaged parameters and the buffers it
    evaluated with (``ema.shadow.*``, ``ema.buffer.*``), i.e. exactly the model that validation
    measured; otherwise the raw training weights (``model.*``), e.g. to continue training.
    """
    def unprefixed(prefix):
        return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}

    state = OrderedDict(sorted(unprefixed("model.").items()))
    shadow, buffers = unprefixed("ema.shadow."), unprefixed("ema.buffer.")
    use_ema = ema and bool(shadow)
    if use_ema:
        state = OrderedDict((key, shadow.get(key, buffers.get(key, value))) for key, value in state.items())
    try:
        trained_as = json.loads(str(arrays["config"])).get("model")
    except (ValueError, AttributeError):
        trained_as = None
    kind = "EMA" if use_ema else "raw (non-EMA)"
    return Weights(state, "tinyeffnet", f"the {kind} weights of training checkpoint {path}", trained_as)


def read_weights(path, ema: bool = True) -> Weights:
    """Every array of a weights file, and whose key names it uses, without needing a model.

    path: a training checkpoint (``runs/shapes/checkpoint.npz``), an .npz from save_npz, a
          .safetensors file (ours or PyTorch's), or a PyTorch ``.pth``/``.pt`` state_dict.
    ema:  checkpoints only: True (default) takes the EMA weights when the run kept an EMA (what
          validation measured, the weights to deploy); False the raw training weights.
    Raises FileNotFoundError, BadFileError (damaged, empty or foreign file, naming it), or ValueError
    (no EfficientNetV2 weights inside).
    """
    path = _check_path(path, "weights")
    suffix = os.path.splitext(path)[1].lower()
    source = f"weights file {path}"
    if suffix == ".safetensors":
        arrays, metadata = _read_safetensors(path)
        arrays = _strip_module_prefix(arrays)
        keys = metadata.get("keys") if metadata.get("keys") in KEYS else _detect_keys(arrays, source)
        return Weights(arrays, keys, source, None)
    if suffix in (".pth", ".pt"):
        arrays = _strip_module_prefix(OrderedDict((k, _to_numpy(v)) for k, v in _read_pth(path).items()))
        return Weights(arrays, _detect_keys(arrays, source), source, None)
    arrays = read_npz(path, "weights file")
    if _is_checkpoint(arrays):
        return _checkpoint_weights(arrays, path, ema)
    return Weights(arrays, _detect_keys(arrays, source), source, None)


def _num_classes(weights: Weights) -> int:
    """Classifier outputs, read from the classifier weight's shape (ours is (Cin, K), PyTorch's (K, Cin))."""
    key = {"tinyeffnet": "classifier.weight", "torchvision": "classifier.1.weight",
           "timm": "classifier.weight"}[weights.keys]
    value = weights.arrays.get(key)
    if value is None or np.ndim(value) != 2:
        raise ValueError(f"{weights.source} has no 2-D classifier weight {key}: cannot tell the number "
                         f"of classes")
    return int(np.shape(value)[1] if weights.keys == "tinyeffnet" else np.shape(value)[0])


def _check_trained_as(name: str, weights: Weights) -> None:
    """A checkpoint records its model name: refuse another name (same shapes can differ in padding)."""
    from .models import _canonical

    if weights.trained_as and _canonical(name) != _canonical(weights.trained_as):
        raise ValueError(f"{weights.source} was trained as {weights.trained_as}, not {name}: "
                         f"use the model name {weights.trained_as}")


def _model_for(model, weights: Weights) -> Module:
    """``model`` (a Module, or a name to build with the file's number of classes) with ``weights``
    loaded, strictly."""
    if isinstance(model, str):
        from .models import create_model

        _check_trained_as(model, weights)
        model = create_model(model, num_classes=_num_classes(weights))
    _check_model(model)
    if hasattr(model, "name"):
        _check_trained_as(model.name, weights)
    _load_arrays(model, weights.arrays, weights.keys, weights.source, weights.trained_as)
    return model


def load_weights(model, path, ema: bool = True) -> Module:
    """Load any weights file (see read_weights) into a model, or build the model from its name.

    model: a Module, or a model name (``"efficientnetv2_tiny"``): then the model is created with as
           many classes as the file's classifier has.
    Strict: a file of another model raises one ValueError naming the file and the first missing,
    unexpected and mismatched keys; nothing is loaded then.

        model = interop.load_weights("efficientnetv2_tiny", "runs/shapes/checkpoint.npz")
    """
    if not isinstance(model, str):
        _check_model(model)
    return _model_for(model, read_weights(path, ema))


# ------------------------------------------------------------------------------ PyTorch
def _import_torch(purpose: str):
    try:
        import torch
    except ImportError:
        raise ImportError(f"{purpose} needs PyTorch, which is not installed: pip install torch "
                          f"(safetensors files need only the safetensors package)") from None
    return torch


def _uses_same_padding(model: Module) -> bool:
    """True for TensorFlow "same" padding (tf_ models), which torchvision's EfficientNet lacks."""
    return any(getattr(module, "padding", None) == "same" for module in model.modules())


def _check_torchvision_can_run(model: Module) -> None:
    if _uses_same_padding(model):
        raise ValueError(f"model ({_model_label(model)}) uses TensorFlow \"same\" padding, which "
                         f"torchvision's EfficientNet does not have (its outputs would differ): use "
                         f"timm keys (timm's tf_efficientnetv2_* pads the same way)")


def save_pth(model: Module, path, keys: str = "torchvision") -> None:
    """Write a PyTorch state_dict (torch tensors under torchvision or timm names) with torch.save,
    atomically. Load it with ``tv_model.load_state_dict(torch.load(path, weights_only=True))``.

    Beware: torch.load checks no checksum of the tensor bytes, so a bit flip inside a .pth file
    loads silently; .npz (CRC-32) and our .safetensors (SHA-256 in the metadata) notice it.
    """
    _check_model(model)
    path = _check_path(path)
    _check_keys(keys, ("torchvision", "timm"))
    torch = _import_torch("save_pth")
    if keys == "torchvision":
        _check_torchvision_can_run(model)
    state = OrderedDict((key, torch.from_numpy(value)) for key, value in _arrays_for(model, keys).items())
    write_atomic(path, lambda f: torch.save(state, f))


def _drop_path_rate(model: Module) -> float:
    """The model's drop_path_rate, recovered from a block: block i of B drops with rate * i / B."""
    blocks = [block for stage in model.stages for block in stage]
    for index, block in enumerate(blocks):
        if index > 0 and getattr(block, "drop_path", None) is not None:
            return round(block.drop_path.p * len(blocks) / index, 12)
    return 0.0


def torchvision_model(model: Module, copy_weights: bool = True):
    """The same network as a torchvision ``EfficientNet`` (a torch.nn.Module), our weights copied in.

    Works for every variant with symmetric padding, also those torchvision has no builder for
    (efficientnetv2_tiny, B0-B3, XL, custom stage tables), and for EfficientNet V1 (efficientnet_b*):
    the stage table becomes torchvision's ``inverted_residual_setting``, with the same head width,
    BatchNorm eps and momentum, dropout, stochastic depth, number of classes, dtype and train/eval
    mode. Use it to continue training in PyTorch::

        tv = interop.torchvision_model(model)      # then torch.optim.AdamW(tv.parameters(), ...)

    Raises ValueError when torchvision's EfficientNet cannot express the model ("same" padding,
    input channels other than 3, an SE ratio other than 0.25, widths it would round differently).
    """
    import functools

    _check_model(model)
    for name in ("config", "stem", "stages", "head", "classifier", "dropout"):
        if not hasattr(model, name):
            raise TypeError(f"model must be an EfficientNetV2 (with .{name}), got {type(model).__name__}")
    torch = _import_torch("torchvision_model")
    from torchvision.models.efficientnet import EfficientNet, FusedMBConvConfig, MBConvConfig

    from .nn import BatchNorm2d

    _check_torchvision_can_run(model)
    if model.stem.conv.in_channels != 3:
        raise ValueError(f"torchvision's EfficientNet takes 3 input channels, this model takes "
                         f"{model.stem.conv.in_channels}")
    eps = {module.eps for module in model.modules() if isinstance(module, BatchNorm2d)}
    if len(eps) != 1:
        raise ValueError(f"torchvision's EfficientNet has one BatchNorm eps, this model has {sorted(eps)}")
    momentum = {module.momentum for module in model.modules() if isinstance(module, BatchNorm2d)}
    if len(momentum) != 1:
        raise ValueError(f"torchvision's EfficientNet has one BatchNorm momentum, this model has {sorted(momentum)}")
    setting = [(FusedMBConvConfig if stage.block == "fused" else MBConvConfig)(
        stage.expand, stage.kernel, stage.stride, stage.in_ch, stage.out_ch, stage.repeats)
        for stage in model.config]
    theirs = EfficientNet(setting, dropout=model.dropout.p, stochastic_depth_prob=_drop_path_rate(model),
                          num_classes=model.classifier.out_features, last_channel=model.head.conv.out_channels,
                          norm_layer=functools.partial(torch.nn.BatchNorm2d, eps=eps.pop(), momentum=momentum.pop()))
    ours = _export(model, "torchvision", grads=False)
    shapes = {key: tuple(value.shape) for key, value in theirs.state_dict().items()}
    missing = [key for key in shapes if key not in ours]
    unexpected = [key for key in ours if key not in shapes]
    mismatched = [f"{key}: torchvision {shapes[key]}, ours {ours[key].shape}"
                  for key in shapes if key in ours and shapes[key] != ours[key].shape]
    if missing or unexpected or mismatched:
        raise ValueError(f"torchvision's EfficientNet cannot express this model ({_model_label(model)}): "
                         f"{_one_line_problems(missing, unexpected, mismatched)} (torchvision gives every "
                         f"MBConv an SE of width Cin // 4 and rounds widths to multiples of 8)")
    if model.dtype == np.float64:
        theirs = theirs.double()
    if copy_weights:
        theirs.load_state_dict(OrderedDict((key, torch.from_numpy(value)) for key, value in ours.items()))
    return theirs.train(model.training)


# ------------------------------------------------------------------------------ export
def export(model: str, weights, format: str, out, keys: str | None = None, ema: bool = True) -> dict:
    """What ``tinyeffnet export`` does: read ``weights``, build ``model`` (a name) with as many classes
    as the weights have, load them (strict), and write ``out``. Nothing is written unless all succeed.

    format: "torchvision" or "timm": a PyTorch .pth state_dict of torch tensors (save_pth), for
            ``torch.load(out, weights_only=True)``; "safetensors": a .safetensors file
            (save_safetensors) under ``keys`` (default "torchvision"; keys is for safetensors only).
    ema:    checkpoints: export the EMA weights (default; what validation measured) or the raw ones.
    Returns a summary: out, format, keys, model, num_classes, source, and bn_eps (the BatchNorm eps
    the weights need on the other side: 1e-3 for V2 and tf_ names, 1e-5 for efficientnet_b0-b4).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if keys is not None and format != "safetensors":
        raise ValueError(f"keys is for format safetensors only (format {format} fixes its own key names), "
                         f"got keys {keys!r}")
    keys = _check_keys("torchvision" if keys is None else keys) if format == "safetensors" else format
    weights, out = _check_path(weights, "weights"), _check_path(out, "out")
    if format != "safetensors":
        _import_torch(f"format {format} (a PyTorch .pth file)")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"out {out}: its folder {folder} does not exist")
    if os.path.isdir(out):
        raise ValueError(f"out must be a file path, got the folder {out}")
    if os.path.exists(out) and os.path.exists(weights) and os.path.samefile(out, weights):
        raise ValueError(f"out must differ from weights (it would overwrite the input), got {out}")
    if not isinstance(model, str):
        raise TypeError(f"model must be a model name (str, see tinyeffnet.list_models()), "
                        f"got {type(model).__name__}")
    from .models import _canonical

    _canonical(model)                                   # an unknown name fails before any reading
    found = read_weights(weights, ema)
    net = _model_for(model, found)
    if format == "safetensors":
        if keys == "torchvision":
            _check_torchvision_can_run(net)
        save_safetensors(net, out, keys)
    else:
        save_pth(net, out, keys)
    return {"out": out, "format": format, "keys": keys, "model": model, "num_classes": net.num_classes,
            "source": found.source, "bn_eps": net.stem.bn.eps}
