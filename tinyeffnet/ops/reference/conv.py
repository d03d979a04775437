"""Dense and depthwise 2-D convolution in plain NumPy: tier 1, short and obviously right.

Dimension legend
    N   batch                      H, W    input height, width
    Cin input channels             Ho, Wo  output height, width
    Cout output channels           C       channels of a depthwise conv (in = out)
    KH, KW kernel height, width    S       stride
    top, bottom, left, right       zero padding on each side (see ``_checks.resolve_padding``)

Layout is channels-last: x (N, H, W, Cin), dense w (KH, KW, Cin, Cout), depthwise w (KH, KW, C).
``xpad`` is x with zeros added around H and W: (N, top + H + bottom, left + W + right, Cin).

Dense convolution (a cross-correlation, as in every deep-learning library):

    y[n,i,j,co]    = sum_{a,b,ci} xpad[n, i*S+a, j*S+b, ci] * w[a,b,ci,co]

and its gradients, given the upstream gradient dy = dL/dy:

    dw[a,b,ci,co]  = sum_{n,i,j} xpad[n, i*S+a, j*S+b, ci] * dy[n,i,j,co]
    dxpad[n, i*S+a, j*S+b, ci] += sum_co dy[n,i,j,co] * w[a,b,ci,co]      (for every i, j, a, b)
    dx             = dxpad cropped back to the input's H x W

Depthwise convolution: each channel c is convolved with its own KH x KW filter, channels never mix:

    y[n,i,j,c]     = sum_{a,b} xpad[n, i*S+a, j*S+b, c] * w[a,b,c]
    dw[a,b,c]      = sum_{n,i,j} xpad[n, i*S+a, j*S+b, c] * dy[n,i,j,c]
    dxpad[n, i*S+a, j*S+b, c] += dy[n,i,j,c] * w[a,b,c]

How the code reads the sums: fix one kernel tap (a, b). The input pixels that tap touches for all
outputs (i, j) are the strided slice ``xpad[:, a : a+S*(Ho-1)+1 : S, b : b+S*(Wo-1)+1 : S, :]``,
shape (N, Ho, Wo, Cin). So every formula above is a loop over the KH*KW taps, each one slice and one
tensordot (dense: contract Cin or Cout) or one broadcast multiply (depthwise).

The input checks and the cache type (``ConvCache``) come from ``tinyeffnet.ops._checks``, the contract
shared with the Numba tier (``tinyeffnet.ops.conv2d``, ``tinyeffnet.ops.depthwise``) and the CUDA tier,
so every tier rejects the same input with the same message and the CPU tiers' caches are
interchangeable.
"""
from __future__ import annotations

import numpy as np

# the contract (input checks and the cache type) lives in _checks.py, shared with the Numba and CUDA tiers
from .._checks import ConvCache, check_conv_geometry, check_conv_inputs, check_upstream_gradient  # noqa: F401


def _pad(x: np.ndarray, pads: tuple) -> np.ndarray:
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))  # (N, Hp, Wp, C)


def _tap_window(a: int, b: int, stride: int, ho: int, wo: int) -> tuple:
    """Index of the strided slice of xpad that kernel tap (a, b) reads for all outputs (i, j)."""
    rows = slice(a, a + stride * (ho - 1) + 1, stride)  # i*S + a for i = 0..Ho-1
    cols = slice(b, b + stride * (wo - 1) + 1, stride)  # j*S + b for j = 0..Wo-1
    return (slice(None), rows, cols, slice(None))


def _crop(dxpad: np.ndarray, x_shape: tuple, pads: tuple) -> np.ndarray:
    top, _, left, _ = pads
    _, h, width, _ = x_shape
    return np.ascontiguousarray(dxpad[:, top : top + h, left : left + width, :])  # (N, H, W, C)


def conv2d_forward(x, w, stride=1, padding=0):
    """Dense 2-D convolution, channels-last, no bias.

        y[n,i,j,co] = sum_{a,b,ci} xpad[n, i*S+a, j*S+b, ci] * w[a,b,ci,co]

    x: (N, H, W, Cin); w: (KH, KW, Cin, Cout); stride: int >= 1;
    padding: int (PyTorch, symmetric) or "same" (TensorFlow: output ceil(H/S), smaller half first).
    Returns y (N, Ho, Wo, Cout) and the cache.
    Cache: ConvCache(x, w, stride, pads): x for dw, w for dx, stride and pads to redo the geometry.
    """
    x, w, stride, pads = check_conv_inputs(x, w, stride, padding, depthwise=False)
    cache = ConvCache(x, w, stride, pads)
    kh, kw, _, _ = w.shape
    xpad = _pad(x, pads)  # (N, Hp, Wp, Cin)
    y = np.zeros(cache.output_shape, dtype=x.dtype)  # (N, Ho, Wo, Cout)
    _, ho, wo, _ = y.shape
    for a in range(kh):
        for b in range(kw):
            patch = xpad[_tap_window(a, b, stride, ho, wo)]  # (N, Ho, Wo, Cin)
            y += np.tensordot(patch, w[a, b], axes=([3], [0]))  # (N, Ho, Wo, Cin) . (Cin, Cout)
    return y, cache


def conv2d_backward(dy, cache: ConvCache):
    """Gradients of the dense convolution.

        dw[a,b,ci,co] = sum_{n,i,j} xpad[n, i*S+a, j*S+b, ci] * dy[n,i,j,co]
        dxpad[n, i*S+a, j*S+b, ci] += sum_co dy[n,i,j,co] * w[a,b,ci,co];   dx = crop(dxpad)

    dy: (N, Ho, Wo, Cout), same dtype as x. Returns dx (N, H, W, Cin) and dw (KH, KW, Cin, Cout).
    """
    dy = check_upstream_gradient(dy, cache)
    x, w, stride, pads = cache
    kh, kw, _, _ = w.shape
    _, ho, wo, _ = dy.shape
    xpad = _pad(x, pads)  # (N, Hp, Wp, Cin)
    dxpad = np.zeros_like(xpad)  # (N, Hp, Wp, Cin)
    dw = np.zeros_like(w)  # (KH, KW, Cin, Cout)
    for a in range(kh):
        for b in range(kw):
            window = _tap_window(a, b, stride, ho, wo)
            dw[a, b] = np.tensordot(xpad[window], dy, axes=([0, 1, 2], [0, 1, 2]))  # (Cin, Cout)
            dxpad[window] += np.tensordot(dy, w[a, b], axes=([3], [1]))  # (N, Ho, Wo, Cin)
    return _crop(dxpad, x.shape, pads), dw


def depthwise_conv2d_forward(x, w, stride=1, padding=0):
    """Depthwise 2-D convolution (one filter per channel), channels-last, no bias.

        y[n,i,j,c] = sum_{a,b} xpad[n, i*S+a, j*S+b, c] * w[a,b,c]

    x: (N, H, W, C); w: (KH, KW, C); stride, padding as in conv2d_forward.
    Returns y (N, Ho, Wo, C) and the cache.
    Cache: ConvCache(x, w, stride, pads): x for dw, w for dx, stride and pads to redo the geometry.
    """
    x, w, stride, pads = check_conv_inputs(x, w, stride, padding, depthwise=True)
    cache = ConvCache(x, w, stride, pads)
    kh, kw, _ = w.shape
    xpad = _pad(x, pads)  # (N, Hp, Wp, C)
    y = np.zeros(cache.output_shape, dtype=x.dtype)  # (N, Ho, Wo, C)
    _, ho, wo, _ = y.shape
    for a in range(kh):
        for b in range(kw):
            y += xpad[_tap_window(a, b, stride, ho, wo)] * w[a, b]  # (N, Ho, Wo, C) * (C,)
    return y, cache


def depthwise_conv2d_backward(dy, cache: ConvCache):
    """Gradients of the depthwise convolution.

        dw[a,b,c] = sum_{n,i,j} xpad[n, i*S+a, j*S+b, c] * dy[n,i,j,c]
        dxpad[n, i*S+a, j*S+b, c] += dy[n,i,j,c] * w[a,b,c];   dx = crop(dxpad)

    dy: (N, Ho, Wo, C), same dtype as x. Returns dx (N, H, W, C) and dw (KH, KW, C).
    """
    dy = check_upstream_gradient(dy, cache, depthwise=True)
    x, w, stride, pads = cache
    kh, kw, _ = w.shape
    _, ho, wo, _ = dy.shape
    xpad = _pad(x, pads)  # (N, Hp, Wp, C)
    dxpad = np.zeros_like(xpad)  # (N, Hp, Wp, C)
    dw = np.zeros_like(w)  # (KH, KW, C)
    for a in range(kh):
        for b in range(kw):
            window = _tap_window(a, b, stride, ho, wo)
            dw[a, b] = np.sum(xpad[window] * dy, axis=(0, 1, 2))  # (C,)
            dxpad[window] += dy * w[a, b]  # (N, Ho, Wo, C)
    return _crop(dxpad, x.shape, pads), dw
