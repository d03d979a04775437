"""The small ops between the layers, in plain NumPy (tier 1): the residual add, Squeeze-Excite's
channel gate, and the fills, copies and in-place updates that gradient accumulation needs.

Dimension legend: N batch, H, W, C channels-last; gate (N, C), one gate per image and channel;
"any shape" means the op is elementwise.

    add:                    out = a + b                      any shape, a and b alike (no broadcasting)
    channel_gate_forward:   y[n,h,w,c] = x[n,h,w,c] gate[n,c]          x (N, H, W, C), gate (N, C)
    channel_gate_backward:  dx[n,h,w,c] = dy[n,h,w,c] gate[n,c]        (N, H, W, C)
                            dgate[n,c] = sum_{h,w} dy[n,h,w,c] x[n,h,w,c]   (N, C)
    fill:                   a[...] = value                   in place
    axpy:                   y = y + alpha x                  in place (a Parameter's grad += g)
    copy:                   a new array equal to a
    zeros:                  a new array of zeros

The residual add y = x + branch(x) has the backward dx = dy + branch.backward(dy): the same add,
so there is no add_backward. The gate is a product of two factors, so its backward needs both:
the cache is (x, gate).
"""
from __future__ import annotations

import numpy as np

from .._checks import (as_float_array, check_channel_gate_cache, check_dtype, check_gradient, check_like,
                       check_number, check_writable, validate_channel_gate_inputs)


def add(a, b):
    """out = a + b: same shape and dtype (a new array). The residual sum, forward and backward."""
    a = as_float_array("a", a, op="add")
    b = check_like("b", b, a, op="add")
    return a + b


def channel_gate_forward(x, gate):
    """Squeeze-Excite's product y = x * gate[:, None, None, :]. x: (N, H, W, C); gate: (N, C).

    Returns y (N, H, W, C) and the cache (x, gate): dx = dy gate needs the gate, dgate = sum dy x needs x.
    """
    x, gate = validate_channel_gate_inputs(x, gate)
    return x * gate[:, None, None, :], (x, gate)


def channel_gate_backward(dy, cache):
    """dx = dy * gate[:, None, None, :] (N, H, W, C);  dgate = sum over h, w of dy * x (N, C).

    Returns (dx, dgate): the product rule, one factor held fixed at a time.
    """
    x, gate = check_channel_gate_cache(cache)
    dy = check_gradient(dy, x.shape, x.dtype, op="channel_gate_backward", ndim=4)
    dx = dy * gate[:, None, None, :]
    dgate = (dy * x).sum(axis=(1, 2))
    return dx, dgate


def fill(a, value) -> None:
    """a[...] = value, in place. a: a writeable float array, any shape."""
    a = check_writable("a", a, op="fill")
    a[...] = check_number("value", value, op="fill")


def axpy(alpha, x, y) -> None:
    """y = y + alpha x, in place. x, y: float arrays of one shape and dtype (no cast, no broadcast)."""
    alpha = check_number("alpha", alpha, op="axpy")
    y = check_writable("y", y, op="axpy")
    x = check_like("x", x, y, op="axpy")
    y += y.dtype.type(alpha) * x


def copy(a):
    """A new C-contiguous array equal to a (same shape and dtype)."""
    return np.array(as_float_array("a", a, op="copy"), copy=True)


def zeros(shape, dtype=np.float32):
    """A new array of zeros of ``shape`` and ``dtype`` (float32 or float64)."""
    return np.zeros(shape, dtype=check_dtype("dtype", dtype, op="zeros"))
