"""SiLU (swish) and sigmoid as CUDA kernels (tier 3). Same math as ``tinyeffnet.ops.activations``:

    sigmoid(x) = s = 1 / (1 + exp(-x))            ds/dx = s (1 - s)
    silu(x)    = x s                              dsilu/dx = s (1 + x (1 - s))

Stable for every x: with e = exp(-|x|) in (0, 1], s = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0.

Dimensions: any shape, walked as its flat (L,) view; one thread per entry (grid-stride loop, see
``_runtime``). The three lines of the stable sigmoid are written out in each kernel (a
``cuda.jit(device=True)`` helper would need a GPU driver at compile time, which the PTX check in CI
does not have). ``one = x.dtype.type(1)`` keeps float32 kernels in float32 (a bare ``1.0`` is a
float64 literal and would show up as ``.f64`` instructions in the PTX).
"""
from __future__ import annotations

import math

from ._runtime import as_device_float_array, check_gradient, cuda, empty, kernel, launch
from .elementwise import flat

# Past |x| = 1000 the kernels return the limits, as the CPU tiers do (ops/activations.py): silu(-inf) = 0,
# slopes 0 and 1. Made in x's dtype inside each kernel (``x.dtype.type(1000)``), like ``one``.


@kernel("void({t}[::1], {t}[::1])")
def _silu_forward_kernel(x, y):
    """y_i = x_i sigmoid(x_i), and 0 below -1000 (the limit at -inf, not -inf * 0). x, y: (L,)."""
    one = x.dtype.type(1)
    limit = x.dtype.type(1000)
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        e = math.exp(-abs(x[i]))  # in (0, 1]: never overflows
        r = one / (one + e)
        y[i] = one - one if x[i] < -limit else x[i] * (r if x[i] >= 0 else e * r)


@kernel("void({t}[::1], {t}[::1], {t}[::1])")
def _silu_backward_kernel(x, dy, dx):
    """dx_i = dy_i s_i (1 + x_i (1 - s_i)), s_i = sigmoid(x_i); the slope is 0 below -1000 and
    1 above 1000 (the limits at -inf and inf, where the formula gives inf * 0). All (L,)."""
    one = x.dtype.type(1)
    limit = x.dtype.type(1000)
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        e = math.exp(-abs(x[i]))
        r = one / (one + e)
        s = r if x[i] >= 0 else e * r
        slope = s * (one + x[i] * (one - s))
        if x[i] < -limit:
            slope = one - one
        elif x[i] > limit:
            slope = one
        dx[i] = dy[i] * slope


@kernel("void({t}[::1], {t}[::1])")
def _sigmoid_forward_kernel(x, y):
    """y_i = sigmoid(x_i). x, y: (L,)."""
    one = x.dtype.type(1)
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        e = math.exp(-abs(x[i]))
        r = one / (one + e)
        y[i] = r if x[i] >= 0 else e * r


@kernel("void({t}[::1], {t}[::1], {t}[::1])")
def _sigmoid_backward_kernel(y, dy, dx):
    """dx_i = dy_i y_i (1 - y_i). All (L,)."""
    one = y.dtype.type(1)
    for i in range(cuda.grid(1), y.shape[0], cuda.gridsize(1)):
        dx[i] = dy[i] * y[i] * (one - y[i])


def _elementwise(kernel_, *arrays):
    """out = kernel_(*arrays) entry by entry: a new array of the first one's shape and dtype; every
    array is passed as its flat (L,) view, out last (the kernels' argument order)."""
    out = empty(arrays[0].shape, arrays[0].dtype)
    launch(kernel_, out.size, *[flat(a) for a in arrays], flat(out))
    return out


def silu_forward(x):
    """y = x * sigmoid(x), elementwise. x: device array, any shape. Returns y (x's shape, dtype), cache.

    Cache: (x,). Backward recomputes s = sigmoid(x): one array kept, not two.
    """
    x = as_device_float_array("x", x)
    return _elementwise(_silu_forward_kernel, x), (x,)


def silu_backward(dy, cache):
    """dx = dy * s * (1 + x (1 - s)), s = sigmoid(x). Returns (dx,)."""
    (x,) = cache
    dy = check_gradient("dy", dy, x.shape, x.dtype)
    return (_elementwise(_silu_backward_kernel, x, dy),)


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), elementwise, stable. Returns y and the cache.

    Cache: (y,). The derivative is written in the output alone: dy/dx = y (1 - y).
    """
    x = as_device_float_array("x", x)
    y = _elementwise(_sigmoid_forward_kernel, x)
    return y, (y,)


def sigmoid_backward(dy, cache):
    """dx = dy * y * (1 - y). Returns (dx,)."""
    (y,) = cache
    dy = check_gradient("dy", dy, y.shape, y.dtype)
    return (_elementwise(_sigmoid_backward_kernel, y, dy),)
