"""The small ops between the layers on the CPU (tier 2): the residual add, Squeeze-Excite's channel
gate, and the fills, copies and in-place updates of gradient accumulation. The math and the shapes
are in ``reference/elementwise.py``.

Each of these ops makes one pass over memory, and NumPy makes it on one core. On a big activation
three of them are faster as Numba loops over both cores (prange over rows), measured on the 2-core
Xeon (AVX-512), float32, ms:

    op                              (8, 64, 64, 48)   (8, 16, 16, 512)   (64, 24, 24, 16)
    add                             0.72 -> 0.39      0.54 -> 0.28       0.29 -> 0.18
    channel_gate_forward            0.68 -> 0.27      0.49 -> 0.20       0.36 -> 0.10
    channel_gate_backward           1.36 -> 0.51      0.80 -> 0.38       0.57 -> 0.30
    (NumPy: dy gate, then einsum)

(In EfficientNetV2-S's training step at 128 px, profiled, the three took 42 ms of 660.) The gate's backward
also becomes ONE pass: dx = dy gate and dgate = sum dy x from the same loads, where NumPy needs a
product and an ``einsum``. The gate's kernels win at every size measured (8,192 elements up); the
add's break even near 8,192 and lose below, so an add of fewer than ``PARALLEL_MIN_SIZE`` elements
stays ``a + b`` (starting a parallel region costs microseconds, a pass over a small array less). The
rest (fill, copy, zeros) is the reference function, imported, not copied; ``axpy`` with alpha = 1
(every gradient accumulation) is ``y += x``, no multiply and no temporary.

Accuracy: dgate's sum is split by rows (one partial per image row, a sum over W), then the rows are
added by NumPy: shorter float32 sums than one running sum over H W. ``tests/test_tiers.py`` checks
every op against the reference tier, on both sides of the size threshold.

The inputs are checked by the same validators of ``ops/_checks.py`` as in the reference tier.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._checks import (as_float_array, check_channel_gate_cache, check_gradient, check_like, check_number,
                      check_writable, validate_channel_gate_inputs)
from .reference.elementwise import copy, fill, zeros

__all__ = ["add", "channel_gate_forward", "channel_gate_backward", "fill", "axpy", "copy", "zeros"]

PARALLEL_MIN_SIZE = 1 << 14        # elements: a smaller add is NumPy's a + b (see the docstring)


# ------------------------------------------------------------------------------------------ kernels
@njit(parallel=True, fastmath=True, cache=True)
def _add_kernel(a, b, out):
    """out = a + b on flat (n,) arrays, split over the cores."""
    for i in prange(a.size):
        out[i] = a[i] + b[i]


@njit(parallel=True, fastmath=True, cache=True)
def _gate_forward_kernel(x, gate, y):
    """y[n,h,w,c] = x[n,h,w,c] gate[n,c]; one (n, h) image row per iteration."""
    images, height, width, channels = x.shape
    for row in prange(images * height):
        n, h = row // height, row % height
        for w in range(width):
            for c in range(channels):
                y[n, h, w, c] = x[n, h, w, c] * gate[n, c]


@njit(parallel=True, fastmath=True, cache=True)
def _gate_backward_kernel(dy, x, gate, dx, row_sums):
    """dx = dy gate[n, c] and row_sums[n, h, c] = sum_w dy x, from one pass over dy and x."""
    images, height, width, channels = x.shape
    for row in prange(images * height):
        n, h = row // height, row % height
        for w in range(width):
            for c in range(channels):
                g = dy[n, h, w, c]
                dx[n, h, w, c] = g * gate[n, c]
                row_sums[n, h, c] += g * x[n, h, w, c]


# ---------------------------------------------------------------------------------------------- ops
def add(a, b):
    """out = a + b: same shape and dtype (a new array). The residual sum, forward and backward."""
    a = as_float_array("a", a, op="add")
    b = check_like("b", b, a, op="add")
    if a.size < PARALLEL_MIN_SIZE:
        return a + b
    out = np.empty_like(a)
    _add_kernel(a.reshape(-1), b.reshape(-1), out.reshape(-1))
    return out


def channel_gate_forward(x, gate):
    """Squeeze-Excite's product y = x * gate[:, None, None, :]. x: (N, H, W, C); gate: (N, C).

    Returns y (N, H, W, C) and the cache (x, gate)."""
    x, gate = validate_channel_gate_inputs(x, gate)
    y = np.empty_like(x)
    _gate_forward_kernel(x, gate, y)
    return y, (x, gate)


def channel_gate_backward(dy, cache):
    """dx = dy * gate[:, None, None, :] (N, H, W, C);  dgate[n,c] = sum_{h,w} dy x (N, C). Returns (dx, dgate)."""
    x, gate = check_channel_gate_cache(cache)
    dy = check_gradient(dy, x.shape, x.dtype, op="channel_gate_backward", ndim=4)
    dx = np.empty_like(x)
    row_sums = np.zeros((x.shape[0], x.shape[1], x.shape[3]), dtype=x.dtype)     # (N, H, C)
    _gate_backward_kernel(dy, x, gate, dx, row_sums)
    return dx, row_sums.sum(axis=1)                                              # (N, C)


def axpy(alpha, x, y) -> None:
    """y += alpha x, in place. x, y: float arrays of one shape and dtype (no cast, no broadcast)."""
    alpha = check_number("alpha", alpha, op="axpy")
    y = check_writable("y", y, op="axpy")
    x = check_like("x", x, y, op="axpy")
    if alpha == 1:
        y += x                                       # gradient accumulation: no multiply, no temporary
    else:
        y += y.dtype.type(alpha) * x
