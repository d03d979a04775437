"""SiLU (swish) and sigmoid in plain NumPy (tier 1). Elementwise: any shape, e.g. (N, H, W, C).

    sigmoid(x) = s = 1 / (1 + exp(-x))            ds/dx = s (1 - s)
    silu(x)    = x s                              dsilu/dx = s + x s (1 - s) = s (1 + x (1 - s))

Stable sigmoid: exp(-x) overflows for x << 0 (x = -1000), so with e = exp(-|x|), which is in (0, 1],

    s = 1 / (1 + e)   for x >= 0,        s = e / (1 + e)   for x < 0

(the second is the first multiplied by exp(x) / exp(x)). No overflow, no warning, in float32 or 64.
EfficientNetV2 uses SiLU after every convolution and sigmoid as the gate of Squeeze-and-Excitation.

Infinities take the limits: sigmoid(-inf) = 0, sigmoid(inf) = 1; silu(-inf) = 0 (x e^x -> 0; the
product -inf * 0 alone would give NaN; PyTorch gives NaN), silu(inf) = inf; the slope of SiLU is 0 at
-inf and 1 at inf. Every tier (NumPy, Numba, CUDA) returns these, in float32 and float64.
"""
from __future__ import annotations

import numpy as np

from .._checks import as_float_array, check_elementwise_cache, check_gradient


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow; keeps x's dtype."""
    e = np.exp(-np.abs(x))                                   # in (0, 1]
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def silu_forward(x):
    """y = x * sigmoid(x), elementwise. x: any shape. Returns y (x's shape) and the cache.

    silu(-inf) = 0, the limit (x * sigmoid(x) alone would be -inf * 0 = NaN there).
    Cache: (x,). Backward recomputes s = sigmoid(x) (as PyTorch does): one array kept, not two.
    """
    x = as_float_array("x", x, op="silu_forward")
    with np.errstate(invalid="ignore"):                      # -inf * 0, replaced just below
        y = x * stable_sigmoid(x)
    return np.where(x == -np.inf, x.dtype.type(0), y), (x,)


def silu_backward(dy, cache):
    """dx = dy * s * (1 + x (1 - s)) with s = sigmoid(x). Returns (dx,).

    The slope takes its limits at the infinities: 0 at -inf, 1 at inf (the formula gives inf * 0).
    """
    x = check_elementwise_cache("silu_backward", cache, "silu_forward", "x")
    dy = check_gradient(dy, x.shape, x.dtype, op="silu_backward")
    s = stable_sigmoid(x)
    with np.errstate(invalid="ignore"):
        slope = s * (1 + x * (1 - s))
    slope = np.where(np.isinf(x), (x > 0).astype(x.dtype), slope)
    return (dy * slope,)


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), elementwise, computed stably. Returns y and the cache.

    Cache: (y,). The derivative is written in the output alone: dy/dx = y (1 - y).
    """
    x = as_float_array("x", x, op="sigmoid_forward")
    y = stable_sigmoid(x)
    return y, (y,)


def sigmoid_backward(dy, cache):
    """dx = dy * y * (1 - y). Returns (dx,)."""
    y = check_elementwise_cache("sigmoid_backward", cache, "sigmoid_forward", "y")
    dy = check_gradient(dy, y.shape, y.dtype, op="sigmoid_backward")
    return (dy * y * (1 - y),)
