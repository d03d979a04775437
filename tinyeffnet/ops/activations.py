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
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._checks import as_float_array
from .fastexp import exp_neg
from .reference.activations import check_gradient


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def sigmoid_scalar(v, one):
    """Stable sigmoid of one number; ``one`` is 1 in the array's dtype."""
    e = exp_neg(abs(v))                      # exp(-|v|) in (0, 1]: never overflows
    r = one / (one + e)
    return r if v >= 0 else e * r            # e / (1 + e) for v < 0


@njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
def _silu_forward_kernel(x, y):
    """y_i = x_i * sigmoid(x_i). x, y: flat (L,)."""
    one = x.dtype.type(1)
    for i in prange(x.shape[0]):
        y[i] = x[i] * sigmoid_scalar(x[i], one)


@njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
def _silu_backward_kernel(x, dy, dx):
    """dx_i = dy_i * s_i * (1 + x_i (1 - s_i)), s_i = sigmoid(x_i). All flat (L,)."""
    one = x.dtype.type(1)
    for i in prange(x.shape[0]):
        s = sigmoid_scalar(x[i], one)
        dx[i] = dy[i] * s * (one + x[i] * (one - s))


@njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
def _sigmoid_forward_kernel(x, y):
    """y_i = sigmoid(x_i). x, y: flat (L,)."""
    one = x.dtype.type(1)
    for i in prange(x.shape[0]):
        y[i] = sigmoid_scalar(x[i], one)


@njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
def _sigmoid_backward_kernel(y, dy, dx):
    """dx_i = dy_i * y_i (1 - y_i). All flat (L,)."""
    one = y.dtype.type(1)
    for i in prange(y.shape[0]):
        dx[i] = dy[i] * y[i] * (one - y[i])


def silu_forward(x):
    """y = x * sigmoid(x), elementwise. x: any shape. Returns y (x's shape and dtype) and the cache.

    Cache: (x,). Backward recomputes s = sigmoid(x) (as PyTorch does): one array kept, not two.
    """
    x = as_float_array("x", x)
    y = np.empty_like(x)
    _silu_forward_kernel(x.reshape(-1), y.reshape(-1))
    return y, (x,)


def silu_backward(dy, cache):
    """dx = dy * s * (1 + x (1 - s)) with s = sigmoid(x). Returns (dx,)."""
    (x,) = cache
    dy = check_gradient(dy, x)
    dx = np.empty_like(x)
    _silu_backward_kernel(x.reshape(-1), dy.reshape(-1), dx.reshape(-1))
    return (dx,)


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), elementwise, computed stably. Returns y and the cache.

    Cache: (y,). The derivative is written in the output alone: dy/dx = y (1 - y).
    """
    x = as_float_array("x", x)
    y = np.empty_like(x)
    _sigmoid_forward_kernel(x.reshape(-1), y.reshape(-1))
    return y, (y,)


def sigmoid_backward(dy, cache):
    """dx = dy * y * (1 - y). Returns (dx,)."""
    (y,) = cache
    dy = check_gradient(dy, y)
    dx = np.empty_like(y)
    _sigmoid_backward_kernel(y.reshape(-1), dy.reshape(-1), dx.reshape(-1))
    return (dx,)
