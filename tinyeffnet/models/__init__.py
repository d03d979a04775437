"""tinyeffnet.models: every EfficientNetV2 and EfficientNet (V1) variant by its timm name, and
custom networks.

    >>> import tinyeffnet.models as models
    >>> model = models.create_model("efficientnetv2_s")          # torchvision's efficientnet_v2_s
    >>> model = models.create_model("efficientnet_b0")           # torchvision's efficientnet_b0 (V1)
    >>> model = models.efficientnetv2_tiny(num_classes=10)       # the small CPU training default
    >>> models.list_models()

Names (timm's): efficientnetv2_b0, _b1, _b2, _b3, _s, _m, _l, _xl, and the same with a ``tf_``
prefix, which only changes the default padding to TensorFlow's "same" (needed to run weights ported
from the official TensorFlow checkpoints, timm's ``tf_efficientnetv2_*``). BatchNorm eps is 1e-3
for every name (the official value; timm's non-tf names use PyTorch's 1e-5: pass bn_eps=1e-5 to
match them). torchvision's spellings (``efficientnet_v2_s``) are accepted as aliases.

EfficientNet V1: efficientnet_b0 .. _b7 (timm's and torchvision's name), the same networks as
torchvision's ``efficientnet_b*``: stage table ``V1_BASE`` scaled by the official (width, depth), V1's
channel rounding, and torchvision's BatchNorm settings (B0-B4 eps 1e-5, momentum 0.1; B5-B7 eps 1e-3,
momentum 0.01: the BN their weights were trained with). ``tf_efficientnet_b*`` pads "same" and has
BatchNorm eps 1e-3, momentum 0.1 for every size, like timm's ``tf_efficientnet_b*`` (for weights
ported from TensorFlow; TF's own momentum, 0.01, is ``bn_momentum=0.01``).

Compound scaling (a base table grown by one coefficient phi, V1's rules or V2's restrictions) is
``models.scaling``: ``compound_scale``, ``official_family``, ``describe_family``.

``efficientnetv2_tiny`` is not an official variant: five stages (3 Fused-MBConv, 2 MBConv with SE),
stem 16, head 320, 0.31 M parameters with 10 classes (0.63 M with 1000), for 32-64 px images, so
that a CPU trains it in minutes.
With 32 px input its last feature map is 2x2 (total stride 16), with 64 px it is 4x4. It is the
default model of ``tinyeffnet train``.

For a custom stage table see ``EfficientNetV2`` (a 32x32 example is in its docstring).
"""
from __future__ import annotations

import numpy as np

from ..ops._checks import check_momentum
from .config import (ROUNDING_RULES, V1_BASE, V2_BASE, V2_L, V2_M, V2_S, V2_TINY, V2_XL, VARIANTS, Stage, Variant,
                     round_filters, round_repeats, scale_stages)
from .efficientnetv2 import EfficientNet, EfficientNetV2, check_network_options
from . import scaling

__all__ = [
    "EfficientNet", "EfficientNetV2", "Stage", "Variant", "VARIANTS", "create_model", "list_models",
    "round_filters", "round_repeats", "scale_stages", "ROUNDING_RULES",
    "V2_BASE", "V2_S", "V2_M", "V2_L", "V2_XL", "V2_TINY", "V1_BASE", "scaling",
]

_TF_NAMES = ("b0", "b1", "b2", "b3", "s", "m", "l", "xl")
_TF_V1_BN = (1e-3, 0.1)    # (eps, momentum) of timm's tf_efficientnet_b*: TF's eps, PyTorch's momentum


def list_models() -> list:
    """Every name create_model accepts (aliases excluded)."""
    names = list(VARIANTS)
    names += [f"tf_efficientnetv2_{size}" for size in _TF_NAMES]
    names += [f"tf_{name}" for name in VARIANTS if VARIANTS[name].rounding == "v1"]
    return names


def _canonical(name: str) -> tuple:
    """(variant key, is_tf) for a model name; torchvision's efficientnet_v2_x spelling accepted."""
    if not isinstance(name, str):
        raise TypeError(f"create_model: name must be a model name (str), got {type(name).__name__}")
    key = name.lower().replace("efficientnet_v2_", "efficientnetv2_")
    is_tf = key.startswith("tf_")
    if is_tf:
        key = key[3:]
    if key not in VARIANTS or (is_tf and key == "efficientnetv2_tiny"):
        raise ValueError(f"create_model: unknown model {name!r}; known: {', '.join(list_models())}")
    return key, is_tf


def _bn_defaults(variant: Variant, is_tf: bool) -> tuple:
    """(eps, momentum) a name gets by default: its variant's, TensorFlow's for a tf_ V1 name."""
    if is_tf and variant.rounding == "v1":
        return _TF_V1_BN
    return variant.bn_eps, variant.bn_momentum


def create_model(name: str, num_classes: int = 1000, drop_rate: float | None = None,
                 drop_path_rate: float = 0.2, padding=None, bn_eps: float | None = None, dtype=np.float32,
                 seed: int = 0, in_channels: int = 3, fast: bool = True,
                 bn_momentum: float | None = None) -> EfficientNetV2:
    """Build a named variant with freshly initialised weights (torchvision's init, seeded).

    name:           see ``list_models()``; ``tf_`` names default to padding "same"
    num_classes:    classifier outputs
    drop_rate:      dropout before the classifier; None = the variant's official value (S 0.2,
                    M 0.3, L 0.4, ...)
    drop_path_rate: stochastic depth, block i of B drops with probability drop_path_rate * i / B
    padding:        None (symmetric, like torchvision) or "same" (TensorFlow)
    bn_eps:         BatchNorm epsilon; None = the variant's (1e-3 for every V2 name; V1 B0-B4 1e-5,
                    B5-B7 and tf_ names 1e-3)
    bn_momentum:    BatchNorm momentum (PyTorch's sense); None = the variant's (0.1; efficientnet_b5,
                    _b6, _b7 0.01, as torchvision's)
    dtype:          float32 (default) or float64; seed: init and dropout seed
    fast:           True (default, what you train with): the speed paths, chosen as each layer is
                    built (Winograd for 3x3 stride-1 convs, BN+SiLU fused); False: the readable
                    ops everywhere, for stepping through. Same numbers, same state_dict keys.
    """
    key, is_tf = _canonical(name)
    variant = VARIANTS[key]
    default_eps, default_momentum = _bn_defaults(variant, is_tf)
    bn_eps = default_eps if bn_eps is None else bn_eps
    bn_momentum = default_momentum if bn_momentum is None else bn_momentum
    check_network_options("create_model", num_classes, 0.0 if drop_rate is None else drop_rate, drop_path_rate,
                          bn_eps, in_channels, dtype, seed)
    check_momentum(bn_momentum, op="create_model")
    if padding is None and is_tf:
        padding = "same"
    model = EfficientNetV2(
        variant.stages, num_classes, width=variant.width, depth=variant.depth, head_channels=variant.head,
        drop_rate=variant.dropout if drop_rate is None else drop_rate, drop_path_rate=drop_path_rate,
        padding=padding, bn_eps=bn_eps, in_channels=in_channels, dtype=dtype, seed=seed, fast=fast,
        rounding=variant.rounding, bn_momentum=bn_momentum)
    model.name = name
    model.variant = variant
    return model


def _named(name: str):
    def build(**kwargs) -> EfficientNetV2:
        return create_model(name, **kwargs)
    build.__name__ = name
    build.__doc__ = f"create_model({name!r}, **kwargs): see create_model for the arguments."
    return build


efficientnetv2_b0 = _named("efficientnetv2_b0")
efficientnetv2_b1 = _named("efficientnetv2_b1")
efficientnetv2_b2 = _named("efficientnetv2_b2")
efficientnetv2_b3 = _named("efficientnetv2_b3")
efficientnetv2_s = _named("efficientnetv2_s")
efficientnetv2_m = _named("efficientnetv2_m")
efficientnetv2_l = _named("efficientnetv2_l")
efficientnetv2_xl = _named("efficientnetv2_xl")
efficientnetv2_tiny = _named("efficientnetv2_tiny")
tf_efficientnetv2_b0 = _named("tf_efficientnetv2_b0")
tf_efficientnetv2_b1 = _named("tf_efficientnetv2_b1")
tf_efficientnetv2_b2 = _named("tf_efficientnetv2_b2")
tf_efficientnetv2_b3 = _named("tf_efficientnetv2_b3")
tf_efficientnetv2_s = _named("tf_efficientnetv2_s")
tf_efficientnetv2_m = _named("tf_efficientnetv2_m")
tf_efficientnetv2_l = _named("tf_efficientnetv2_l")
tf_efficientnetv2_xl = _named("tf_efficientnetv2_xl")
efficientnet_b0 = _named("efficientnet_b0")
efficientnet_b1 = _named("efficientnet_b1")
efficientnet_b2 = _named("efficientnet_b2")
efficientnet_b3 = _named("efficientnet_b3")
efficientnet_b4 = _named("efficientnet_b4")
efficientnet_b5 = _named("efficientnet_b5")
efficientnet_b6 = _named("efficientnet_b6")
efficientnet_b7 = _named("efficientnet_b7")
tf_efficientnet_b0 = _named("tf_efficientnet_b0")
tf_efficientnet_b1 = _named("tf_efficientnet_b1")
tf_efficientnet_b2 = _named("tf_efficientnet_b2")
tf_efficientnet_b3 = _named("tf_efficientnet_b3")
tf_efficientnet_b4 = _named("tf_efficientnet_b4")
tf_efficientnet_b5 = _named("tf_efficientnet_b5")
tf_efficientnet_b6 = _named("tf_efficientnet_b6")
tf_efficientnet_b7 = _named("tf_efficientnet_b7")

__all__ += [name for name in list_models()]
