"""The exercises, in course order: name -> Exercise (one file per family: conv2d.py, depthwise.py,
batchnorm.py, activations.py, blocks.py, padding.py, winograd.py, progressive.py)."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def catalog() -> dict:
    """name -> Exercise, built once (importing the library's modules the checks compare with)."""
    from . import activations, batchnorm, blocks, conv2d, depthwise, padding, progressive, winograd

    ordered = (conv2d.exercises() + depthwise.exercises() + batchnorm.exercises() + activations.exercises()
               + padding.exercises() + blocks.exercises() + winograd.exercises() + progressive.exercises())
    return {exercise.name: exercise for exercise in ordered}


NAMES = ("conv2d_forward", "conv2d_backward", "depthwise_conv2d", "batchnorm", "silu_sigmoid", "same_padding",
         "squeeze_excite", "mbconv_backward", "fused_mbconv_backward", "winograd_f23", "progressive_schedule")


def get(name):
    """The Exercise called ``name``; a ValueError listing the names otherwise."""
    if not isinstance(name, str) or name not in NAMES:
        raise ValueError(f"exercise must be one of {', '.join(NAMES)}; got {name!r}")
    return catalog()[name]
