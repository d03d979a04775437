"""tinyeffnet.models: every EfficientNetV2 variant by its timm name, and custom networks.

    >>> import tinyeffnet.models as models
    >>> model = models.create_model("efficientnetv2_s")          # torchvision's efficientnet_v2_s
    >>> model = models.efficientnetv2_tiny(num_classes=10)       # the small CPU training default
    >>> models.list_models()

Names (timm's): efficientnetv2_b0, _b1, _b2, _b3, _s, _m, _l, _xl, and the same with a ``tf_``
prefix, which only changes the default padding to TensorFlow's "same" (needed to run weights ported
from the official TensorFlow checkpoints, timm's ``tf_efficientnetv2_*``). BatchNorm eps is 1e-3
for every name (the official value; timm's non-tf names use PyTorch's 1e-5: pass bn_eps=1e-5 to
match them). torchvision's spellings (``efficientnet_v2_s``) are accepted as aliases.

``efficientnetv2_tiny`` is not an official variant: five stages (3 Fused-MBConv, 2 MBConv with SE),
stem 16, head 320, 0.31 M parameters with 10 classes (0.63 M with 1000), for 32-64 px images, so
that a CPU trains it in minutes.
With 32 px input its last feature map is 2x2 (total stride 16), with 64 px it is 4x4. It is the
default model of ``tinyeffnet train``.

For a custom stage table see ``EfficientNetV2`` (a 32x32 example is in its docstring).
"""
from __future__ import annotations

import numpy as np

from .config import (V2_BASE, V2_L, V2_M, V2_S, V2_TINY, V2_XL, VARIANTS, Stage, Variant, round_filters,
                     round_repeats, scale_stages)
from .efficientnetv2 import EfficientNetV2, check_network_options

__all__ = [
    "EfficientNetV2", "Stage", "Variant", "VARIANTS", "create_model", "list_models",
    "round_filters", "round_repeats", "scale_stages",
    "V2_BASE", "V2_S", "V2_M", "V2_L", "V2_XL", "V2_TINY",
]

_TF_NAMES = ("b0", "b1", "b2", "b3", "s", "m", "l", "xl")


def list_models() -> list:
    """Every name create_model accepts (aliases excluded)."""
    names = list(VARIANTS)
    names += [f"tf_efficientnetv2_{size}" for size in _TF_NAMES]
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


def create_model(name: str, num_classes: int = 1000, drop_rate: float | None = None,
                 drop_path_rate: float = 0.2, padding=None, bn_eps: float = 1e-3, dtype=np.float32,
                 seed: int = 0, in_channels: int = 3, fast: bool = True) -> EfficientNetV2:
    """Build a named variant with freshly initialised weights (torchvision's init, seeded).

    name:           see ``list_models()``; ``tf_`` names default to padding "same"
    num_classes:    classifier outputs
    drop_rate:      dropout before the classifier; None = the variant's official value (S 0.2,
                    M 0.3, L 0.4, ...)
    drop_path_rate: stochastic depth, block i of B drops with probability drop_path_rate * i / B
    padding:        None (symmetric, like torchvision) or "same" (TensorFlow)
    bn_eps:         BatchNorm epsilon; dtype: float32 (default) or float64; seed: init and dropout seed
    fast:           True (default, what you train with): the speed paths, chosen as each layer is
                    built (Winograd for 3x3 stride-1 convs, BN+SiLU fused); False: the readable
                    ops everywhere, for stepping through. Same numbers, same state_dict keys.
    """
    key, is_tf = _canonical(name)
    check_network_options("create_model", num_classes, 0.0 if drop_rate is None else drop_rate, drop_path_rate,
                          bn_eps, in_channels, dtype, seed)
    variant = VARIANTS[key]
    if padding is None and is_tf:
        padding = "same"
    model = EfficientNetV2(
        variant.stages, num_classes, width=variant.width, depth=variant.depth, head_channels=variant.head,
        drop_rate=variant.dropout if drop_rate is None else drop_rate, drop_path_rate=drop_path_rate,
        padding=padding, bn_eps=bn_eps, in_channels=in_channels, dtype=dtype, seed=seed, fast=fast)
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

__all__ += [name for name in list_models()]
