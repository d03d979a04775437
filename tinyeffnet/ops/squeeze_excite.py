"""Squeeze-Excite's backward at the big tensor in two passes (a speed path of ``nn.SqueezeExcite``;
the readable version is the three ops ``channel_gate_backward``, ``global_avg_pool_backward``, ``add``).

Squeeze-Excite scales each channel of x (N, H, W, C) by a gate computed from x's own channel means:

    s = mean_{h,w} x                        (N, C)     the squeeze (global average pool)
    g = sigmoid(fc2(silu(fc1(s))))          (N, C)     the excite chain, on (N, C) tensors only
    y = x g[:, None, None, :]               (N, H, W, C)

so x reaches y along two paths, and dx is their sum:

    dg[n,c]     = sum_{h,w} dy[n,h,w,c] x[n,h,w,c]          the gate's gradient (product rule)
    ds          = the excite chain's backward of dg           (N, C): small, the layers do it
    dx[n,h,w,c] = dy[n,h,w,c] g[n,c]  +  ds[n,c] / (H W)      through the product + through the pool

The readable version makes both (N, H, W, C)-sized terms as arrays and then adds them: the gate's
backward reads dy and x and writes dy g, the pool's backward writes ds / (H W) at every pixel, the
add reads both and writes dx: seven passes over activation-sized memory. Here
``gate_gradient`` reads dy and x (no write), and ``input_gradient`` reads dy and writes dx,
with both terms formed in registers: four passes in all. EfficientNetV2-S has one per MBConv
block, 30 of them.

Dimensions: N images, H, W, C channels-last; P = H W pixels per image. Accuracy: dg's sum is split
by image rows (a sum over W each), and the rows are added by NumPy, as in ``elementwise``.
``tests/nn/test_fast_paths.py`` checks the fast SqueezeExcite against the readable one.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, fastmath=True, cache=True)
def _gate_gradient_kernel(dy, x, row_sums):
    """row_sums[n, h, c] = sum_w dy[n,h,w,c] x[n,h,w,c]: one (n, h) image row per iteration."""
    images, height, width, channels = x.shape
    for row in prange(images * height):
        n, h = row // height, row % height
        for w in range(width):
            for c in range(channels):
                row_sums[n, h, c] += dy[n, h, w, c] * x[n, h, w, c]


@njit(parallel=True, fastmath=True, cache=True)
def _input_gradient_kernel(dy, gate, ds_per_pixel, dx):
    """dx[n,h,w,c] = dy[n,h,w,c] gate[n,c] + ds_per_pixel[n,c]: one image row per iteration."""
    images, height, width, channels = dy.shape
    for row in prange(images * height):
        n, h = row // height, row % height
        for w in range(width):
            for c in range(channels):
                dx[n, h, w, c] = dy[n, h, w, c] * gate[n, c] + ds_per_pixel[n, c]


def gate_gradient(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dg[n,c] = sum_{h,w} dy x. dy, x: (N, H, W, C) C-contiguous arrays of one dtype (the gate's
    cache and its checked upstream gradient). Returns dg (N, C)."""
    row_sums = np.zeros((x.shape[0], x.shape[1], x.shape[3]), dtype=x.dtype)    # (N, H, C)
    _gate_gradient_kernel(dy, x, row_sums)
    return row_sums.sum(axis=1)                                                 # (N, C)


def input_gradient(dy: np.ndarray, gate: np.ndarray, ds: np.ndarray) -> np.ndarray:
    """dx = dy gate[:, None, None, :] + ds[:, None, None, :] / (H W). dy: (N, H, W, C); gate, ds:
    (N, C), all of one dtype. Returns dx (N, H, W, C)."""
    pixels = dy.shape[1] * dy.shape[2]
    ds_per_pixel = np.ascontiguousarray(ds / dy.dtype.type(pixels))             # (N, C)
    dx = np.empty_like(dy)
    _input_gradient_kernel(dy, np.ascontiguousarray(gate), ds_per_pixel, dx)
    return dx
