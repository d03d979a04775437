"""SiLU (swish) and sigmoid in plain NumPy (tier 1). Elementwise: any shape, e.g. (N, H, W, C).

    sigmoid(x) = s = 1 / (1 + exp(-x))            ds/dx = s (1 - s)
    silu(x)    = x s                              dsilu/dx = s + x s (1 - s) = s (1 + x (1 - s))

Stable sigmoid: exp(-x) overflows for x << 0 (x = -1000), so with e = exp(-|x|), which is in (0, 1],

    s = 1 / (1 + e)   for x >= 0,        s = e / (1 + e)   for x < 0

(the second is the first multiplied by exp(x) / exp(x)). No overflow, no warning, in float32 or 64.
EfficientNetV2 uses SiLU after every convolution and sigmoid as the gate of Squeeze-and-Excitation.
"""
from __future__ import annotations

import numpy as np

from .._checks import as_float_array, check_shape


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow; keeps x's dtype."""
    e = np.exp(-np.abs(x))                                   # in (0, 1]
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def check_gradient(dy, like: np.ndarray) -> np.ndarray:
    """dy must be a float array with the shape and dtype of the forward's output."""
    dy = as_float_array("dy", dy, dtype=like.dtype)
    check_shape("dy", dy, like.shape)
    return dy


def silu_forward(x):
    """y = x * sigmoid(x), elementwise. x: any shape. Returns y (x's shape) and the cache.

    Cache: (x,). Backward recomputes s = sigmoid(x) (as PyTorch does): one array kept, not two.
    """
    x = as_float_array("x", x)
    return x * stable_sigmoid(x), (x,)


def silu_backward(dy, cache):
    """dx = dy * s * (1 + x (1 - s)) with s = sigmoid(x). Returns (dx,)."""
    (x,) = cache
    dy = check_gradient(dy, x)
    s = stable_sigmoid(x)
    return (dy * s * (1 + x * (1 - s)),)


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), elementwise, computed stably. Returns y and the cache.

    Cache: (y,). The derivative is written in the output alone: dy/dx = y (1 - y).
    """
    x = as_float_array("x", x)
    y = stable_sigmoid(x)
    return y, (y,)


def sigmoid_backward(dy, cache):
    """dx = dy * y * (1 - y). Returns (dx,)."""
    (y,) = cache
    dy = check_gradient(dy, y)
    return (dy * y * (1 - y),)
