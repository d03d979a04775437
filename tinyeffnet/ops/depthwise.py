"""Depthwise 2-D convolution, forward and backward, as direct channels-last loops (Numba tier).

Dimension legend
    N   batch                      H, W    input height, width
    C   channels (in = out)        Ho, Wo  output height, width
    KH, KW kernel height, width    S       stride
    top, bottom, left, right       zero padding (``_checks.resolve_padding``)

The math (tier 1, ``tinyeffnet.ops.reference.conv``, has the same equations as loops over taps):

    y[n,i,j,c] = sum_{a,b} xpad[n, i*S+a, j*S+b, c] * w[a,b,c]
    dw[a,b,c]  = sum_{n,i,j} xpad[n, i*S+a, j*S+b, c] * dy[n,i,j,c]
    dx[n,h,v,c] = sum over (i, a) with i*S+a-top = h, and (j, b) with j*S+b-left = v, of dy[n,i,j,c] * w[a,b,c]

A depthwise conv has no channel sum, so it is no matrix product: each output is KH*KW multiply-adds.
Memory access decides speed. In channels-last layout the C values of one pixel are adjacent, so the
innermost loop runs over C and LLVM turns it into SIMD instructions (docs/DESIGN.md,
section 9.2: 2.4x faster than NCHW loops, at parity with PyTorch).

Padding is never materialised: for output pixel (i, j) the taps that fall inside the input are the
ranges a in [max(0, top - i*S), min(KH, H + top - i*S)) and likewise for b, computed once per pixel, so
the innermost loop has no branch.

Parallel loops, all race-free (no two iterations ever write the same element):
    forward: prange over output rows (n, i); each iteration writes y[n, i, :, :] only.
    dx:      prange over input rows (n, h); each iteration gathers all dy contributions to dx[n, h].
    dw:      every output row contributes to every dw[a, b, c], so rows are split into blocks, each
             block sums into its own partial buffer (blocks, KH, KW, C), and the partials are added
             afterwards.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from ._checks import ConvCache, check_conv_inputs, check_upstream_gradient


@njit(cache=True)
def _valid_taps(start, k, size):
    """Taps t in [lo, hi) with 0 <= start + t < size: the kernel positions inside the input."""
    return max(0, -start), min(k, size - start)


@njit(parallel=True, cache=True, fastmath=True)
def _forward_kernel(x, w, stride, top, left, y):
    """y[n,i,j,c] = sum over valid taps of x[n, i*S-top+a, j*S-left+b, c] * w[a,b,c]."""
    n_img, h_in, w_in, channels = x.shape
    kh, kw, _ = w.shape
    _, ho, wo, _ = y.shape
    zero = x.dtype.type(0)
    for row in prange(n_img * ho):  # one output row (n, i) per iteration
        n = row // ho
        i = row % ho
        h0 = i * stride - top  # input row of tap a = 0
        a_lo, a_hi = _valid_taps(h0, kh, h_in)
        for j in range(wo):
            v0 = j * stride - left  # input column of tap b = 0
            b_lo, b_hi = _valid_taps(v0, kw, w_in)
            for c in range(channels):
                y[n, i, j, c] = zero
            for a in range(a_lo, a_hi):
                for b in range(b_lo, b_hi):
                    for c in range(channels):
                        y[n, i, j, c] += x[n, h0 + a, v0 + b, c] * w[a, b, c]


@njit(parallel=True, cache=True, fastmath=True)
def _dx_kernel(dy, w, stride, top, left, dx):
    """dx[n,h,v,c] = sum of dy[n,i,j,c] * w[a,b,c] over i*S-top+a = h, j*S-left+b = v (gather)."""
    n_img, h_in, w_in, channels = dx.shape
    kh, kw, _ = w.shape
    _, ho, wo, _ = dy.shape
    zero = dx.dtype.type(0)
    for row in prange(n_img * h_in):  # one input row (n, h) per iteration: it owns dx[n, h]
        n = row // h_in
        h = row % h_in
        for v in range(w_in):
            for c in range(channels):
                dx[n, h, v, c] = zero
        for a in range(kh):
            t = h + top - a  # = i*S if output row i reads input row h through tap a
            if t < 0 or t % stride != 0:
                continue
            i = t // stride
            if i >= ho:
                continue
            for j in range(wo):
                v0 = j * stride - left
                b_lo, b_hi = _valid_taps(v0, kw, w_in)
                for b in range(b_lo, b_hi):
                    for c in range(channels):
                        dx[n, h, v0 + b, c] += dy[n, i, j, c] * w[a, b, c]


@njit(parallel=True, cache=True, fastmath=True)
def _dw_partials_kernel(x, dy, kh, kw, stride, top, left, partials):
    """partials[k, a, b, c] = the dw sum over output rows of block k (rows k, k+B, k+2B, ...)."""
    n_img, h_in, w_in, channels = x.shape
    _, ho, wo, _ = dy.shape
    n_blocks = partials.shape[0]
    zero = x.dtype.type(0)
    for k in prange(n_blocks):  # each block writes only partials[k]
        for a in range(kh):
            for b in range(kw):
                for c in range(channels):
                    partials[k, a, b, c] = zero
        for row in range(k, n_img * ho, n_blocks):  # output row (n, i)
            n = row // ho
            i = row % ho
            h0 = i * stride - top
            a_lo, a_hi = _valid_taps(h0, kh, h_in)
            for j in range(wo):
                v0 = j * stride - left
                b_lo, b_hi = _valid_taps(v0, kw, w_in)
                for a in range(a_lo, a_hi):
                    for b in range(b_lo, b_hi):
                        for c in range(channels):
                            partials[k, a, b, c] += x[n, h0 + a, v0 + b, c] * dy[n, i, j, c]


def depthwise_conv2d_forward(x, w, stride=1, padding=0):
    """Depthwise 2-D convolution (one KH x KW filter per channel), channels-last, no bias.

        y[n,i,j,c] = sum_{a,b} xpad[n, i*S+a, j*S+b, c] * w[a,b,c]

    x: (N, H, W, C) float32 or float64; w: (KH, KW, C) of the same dtype; stride: int >= 1;
    padding: int >= 0 (PyTorch, symmetric) or "same" (TensorFlow: output ceil(H/S), the smaller half
    of the padding first; odd kernels only).
    Returns y (N, Ho, Wo, C), same dtype as x, and the cache.
    Cache: ConvCache(x, w, stride, pads): x for dw, w for dx, stride and pads for the geometry
    (the same cache as the reference tier's).
    """
    x, w, stride, pads = check_conv_inputs(x, w, stride, padding, depthwise=True)
    cache = ConvCache(x, w, stride, pads)
    y = np.empty(cache.output_shape, dtype=x.dtype)  # (N, Ho, Wo, C), every entry written
    top, _, left, _ = pads
    _forward_kernel(x, w, stride, top, left, y)
    return y, cache


def depthwise_conv2d_backward(dy, cache: ConvCache):
    """Gradients of the depthwise convolution.

        dw[a,b,c] = sum_{n,i,j} xpad[n, i*S+a, j*S+b, c] * dy[n,i,j,c]
        dxpad[n, i*S+a, j*S+b, c] += dy[n,i,j,c] * w[a,b,c];   dx = dxpad without its padding

    dy: (N, Ho, Wo, C), same dtype as the forward input.
    Returns dx (N, H, W, C) and dw (KH, KW, C), same dtype.
    """
    dy = check_upstream_gradient(dy, cache, depthwise=True)
    x, w, stride, pads = cache
    top, _, left, _ = pads
    kh, kw, channels = w.shape
    dx = np.empty_like(x)  # (N, H, W, C), every entry written
    _dx_kernel(dy, w, stride, top, left, dx)
    n_rows = dy.shape[0] * dy.shape[1]  # N*Ho output rows to share out
    n_blocks = max(1, min(n_rows, 4 * numba.get_num_threads()))  # a few blocks per thread: balance
    partials = np.empty((n_blocks, kh, kw, channels), dtype=x.dtype)  # (B, KH, KW, C)
    _dw_partials_kernel(x, dy, kh, kw, stride, top, left, partials)
    dw = partials.sum(axis=0)  # (KH, KW, C)
    return dx, dw
