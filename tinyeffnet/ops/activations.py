"""SiLU (swish) and sigmoid: Numba CPU kernels (tier 2). Same math as ``reference/activations.py``:

    sigmoid(x) = s = 1 / (1 + exp(-x))            ds/dx = s (1 - s)
    silu(x)    = x s                              dsilu/dx = s (1 + x (1 - s))

Stable sigmoid, no overflow for any x: with e = exp(-|x|) in (0, 1],
s = 1 / (1 + e) for x >= 0 and s = e / (1 + e) for x < 0.

Elementwise, any shape: the kernels walk the flat (ravelled, C-contiguous) array, split over the cores
with prange. Constants are made in the array's dtype (``one``), so float32 stays float32.

Speed: exp is ``fastexp.exp_neg``. For float32 it is a polynomial the compiler vectorises (math.exp is
a scalar libm call here: pip's llvmlite has no SVML); float64 keeps math.exp. The kernels use
``error_model="numpy"``: Numba's default guards each division with a branch that stops vectorising.

Infinities take the limits (as in ``reference/activations.py``): sigmoid(-inf) = 0, sigmoid(inf) = 1,
silu(-inf) = 0 and SiLU's slope 0 at -inf, 1 at inf. Past |x| = SATURATION (1000) the kernels return
these limits directly: there the exact values round to them in float32 and float64 anyway, and the
product x * s alone would give -inf * 0 = NaN. The test is against a finite number on purpose:
under ``fastmath`` the compiler may assume no infinities and drop a comparison with inf itself; these
kernels are compiled with ``FAST``, fastmath without that assumption (and without "no NaN"), so NaN
and inf keep their IEEE meaning. The fused BN+SiLU (fused.py) uses the same scalar functions.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._checks import as_float_array, check_elementwise_cache, check_gradient
from .fastexp import exp_neg

SATURATION = np.float32(1000.0)  # past |x| = 1000 sigmoid is 0 or 1 and silu 0 or x, in float32 and float64
# fastmath without "nnan" and "ninf": the kernels still vectorise, and NaN and inf keep IEEE meaning
FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True, fastmath=FAST, error_model="numpy", inline="always")
def sigmoid_scalar(v, one):
    """Stable sigmoid of one number; ``one`` is 1 in the array's dtype. Exactly 0 below -SATURATION
    and 1 above (the limits at -inf and inf)."""
    a = abs(v)
    e = one - one if a >= SATURATION else exp_neg(a)  # exp(-|v|) in [0, 1]: never overflows; NaN stays NaN
    r = one / (one + e)
    return r if v >= 0 else e * r            # e / (1 + e) for v < 0


@njit(cache=True, fastmath=FAST, error_model="numpy", inline="always")
def silu_scalar(v, one):
    """v * sigmoid(v), with the limit 0 at v = -inf (and below -SATURATION)."""
    return one - one if v < -SATURATION else v * sigmoid_scalar(v, one)


@njit(cache=True, fastmath=FAST, error_model="numpy", inline="always")
def silu_slope(v, one):
    """d silu / dv = s (1 + v (1 - s)); its limits 0 below -SATURATION and 1 above SATURATION."""
    s = sigmoid_scalar(v, one)
    slope = s * (one + v * (one - s))
    return one - one if v < -SATURATION else (one if v > SATURATION else slope)


@njit(parallel=True, fastmath=FAST, cache=True, error_model="numpy")
def _silu_forward_kernel(x, y):
    """y_i = x_i * sigmoid(x_i). x, y: flat (L,)."""
    one = x.dtype.type(1)
    for i in prange(x.shape[0]):
        y[i] = silu_scalar(x[i], one)


@njit(parallel=True, fastmath=FAST, cache=True, error_model="numpy")
def _silu_backward_kernel(x, dy, dx):
    """dx_i = dy_i * s_i * (1 + x_i (1 - s_i)), s_i = sigmoid(x_i). All flat (L,)."""
    one = x.dtype.type(1)
    for i in prange(x.shape[0]):
        dx[i] = dy[i] * silu_slope(x[i], one)


@njit(parallel=True, fastmath=FAST, cache=True, error_model="numpy")
def _sigmoid_forward_kernel(x, y):
    """y_i = sigmoid(x_i). x, y: flat (L,)."""
    one = x.dtype.type(1)
    for i in prange(x.shape[0]):
        y[i] = sigmoid_scalar(x[i], one)


@njit(parallel=True, fastmath=FAST, cache=True, error_model="numpy")
def _sigmoid_backward_kernel(y, dy, dx):
    """dx_i = dy_i * y_i (1 - y_i). All flat (L,)."""
    one = y.dtype.type(1)
    for i in prange(y.shape[0]):
        dx[i] = dy[i] * y[i] * (one - y[i])


def silu_forward(x):
    """y = x * sigmoid(x), elementwise. x: any shape. Returns y (x's shape and dtype) and the cache.

    silu(-inf) = 0, the limit (see the module docstring).
    Cache: (x,). Backward recomputes s = sigmoid(x) (as PyTorch does): one array kept, not two.
    """
    x = as_float_array("x", x, op="silu_forward")
    y = np.empty_like(x)
    _silu_forward_kernel(x.reshape(-1), y.reshape(-1))
    return y, (x,)


def silu_backward(dy, cache):
    """dx = dy * s * (1 + x (1 - s)) with s = sigmoid(x); the slope is 0 at -inf, 1 at inf. Returns (dx,)."""
    x = check_elementwise_cache("silu_backward", cache, "silu_forward", "x")
    dy = check_gradient(dy, x.shape, x.dtype, op="silu_backward")
    dx = np.empty_like(x)
    _silu_backward_kernel(x.reshape(-1), dy.reshape(-1), dx.reshape(-1))
    return (dx,)


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), elementwise, computed stably. Returns y and the cache.

    Cache: (y,). The derivative is written in the output alone: dy/dx = y (1 - y).
    """
    x = as_float_array("x", x, op="sigmoid_forward")
    y = np.empty_like(x)
    _sigmoid_forward_kernel(x.reshape(-1), y.reshape(-1))
    return y, (y,)


def sigmoid_backward(dy, cache):
    """dx = dy * y * (1 - y). Returns (dx,)."""
    y = check_elementwise_cache("sigmoid_backward", cache, "sigmoid_forward", "y")
    dy = check_gradient(dy, y.shape, y.dtype, op="sigmoid_backward")
    dx = np.empty_like(y)
    _sigmoid_backward_kernel(y.reshape(-1), dy.reshape(-1), dx.reshape(-1))
    return (dx,)
