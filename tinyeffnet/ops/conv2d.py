"""Dense 2-D convolution, forward and backward, as im2col + one matrix multiply (Numba tier).

Dimension legend
    N   batch                      H, W    input height, width
    Cin input channels             Ho, Wo  output height, width
    Cout output channels           KH, KW  kernel height, width
    S   stride                     top, bottom, left, right   zero padding (``_checks.resolve_padding``)
    P = N*Ho*Wo  output pixels     K = KH*KW*Cin  length of one receptive field

The math (tier 1, ``tinyeffnet.ops.reference.conv``, has the same equations as loops over taps):

    y[n,i,j,co]   = sum_{a,b,ci} xpad[n, i*S+a, j*S+b, ci] * w[a,b,ci,co]
    dw[a,b,ci,co] = sum_{n,i,j} xpad[n, i*S+a, j*S+b, ci] * dy[n,i,j,co]
    dxpad[n, i*S+a, j*S+b, ci] += sum_co dy[n,i,j,co] * w[a,b,ci,co]

im2col turns the sum into a matrix product. Row p = (n, i, j) of the matrix ``col`` (P, K) is the
receptive field of output pixel p, flattened in the order (a, b, ci), which is exactly the order of
``w.reshape(K, Cout)``:

    col[p, (a*KW + b)*Cin + ci] = xpad[n, i*S+a, j*S+b, ci]          (zero outside the input)
    y2d  = col @ w2d             (P, K) @ (K, Cout)    -> (P, Cout) = y reshaped
    dw2d = col.T @ dy2d          (K, P) @ (P, Cout)    -> (K, Cout) = dw reshaped
    dcol = dy2d @ w2d.T          (P, Cout) @ (Cout, K) -> (P, K)
    dx   = col2im(dcol): every dcol entry is added back to the input pixel it was copied from.

The matrix products run in numpy's BLAS, called from Python between the Numba kernels (BLAS inside a
Numba ``prange`` oversubscribes the cores; docs/DESIGN.md, section 9.1). The Numba kernels only
move data: ``_im2col`` (one output row per parallel iteration, zero padding by bounds checks, no padded
copy) and ``_col2im``, which is race-free because each parallel iteration owns one row of dx and
*gathers* every dcol entry that lands in it (scattering with ``+=`` from overlapping windows in
parallel would race).

Fast paths: a 1x1 kernel with no padding needs no im2col at all. With stride 1, x.reshape(P, Cin) is
already ``col`` (the expand/project convs of EfficientNet); with stride S it is the strided slice
x[:, ::S, ::S, :].

Winograd: a 3x3 stride-1 padding-1 convolution (every Fused-MBConv conv after a stage's first block)
has a speed path, ``winograd.conv2d_winograd_forward/backward`` (F(2x2, 3x3), 2.25x fewer
multiplications): a sibling op with the same signature, chosen when a layer is built
(``nn.Conv2d(..., fast=True)``), never here. This file is always im2col; ``tests/ops/test_winograd.py``
compares the two.

Memory choice: the cache does NOT keep ``col`` (it is KH*KW times the size of x: 9x for a 3x3, the
Fused-MBConv and stem convs at the highest resolutions). Backward rebuilds it; im2col is one pass of
data movement, cheap next to the two GEMMs. So the cache holds what the reference tier's ``ConvCache``
holds (an ``Im2colCache`` is a ConvCache whose ``algorithm`` field says "im2col"), and the two tiers'
caches are interchangeable.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import blas
from ._checks import ConvCache, check_conv_inputs, check_upstream_gradient


class Im2colCache(ConvCache):
    """The ConvCache of conv2d_forward (x, w, stride, pads), recording which algorithm made it.

    Each conv algorithm has its own cache type with an ``algorithm`` name (``winograd.WinogradCache``
    is the other), so a backward can tell whether the cache is its own (``check_algorithm``)."""

    __slots__ = ()
    algorithm = "im2col"


def check_algorithm(cache, algorithm: str, op: str) -> None:
    """Raise if ``cache`` was made by another conv algorithm than ``algorithm`` (names the right backward).
    A plain ConvCache (the reference tier's: the same fields, the same math) counts as "im2col"."""
    made_by = getattr(cache, "algorithm", "im2col")
    if made_by != algorithm:
        backward = "conv2d_backward" if made_by == "im2col" else f"conv2d_{made_by}_backward"
        raise ValueError(f"{op}: this cache was made by the {made_by} conv, not {algorithm}; "
                         f"its backward is {backward}")


@njit(parallel=True, cache=True, fastmath=True)
def _im2col(x, kh, kw, stride, top, left, ho, wo, col):
    """Fill col (N*Ho*Wo, KH*KW*Cin) from x (N, H, W, Cin); taps outside the input give 0."""
    n_img, h_in, w_in, cin = x.shape
    zero = x.dtype.type(0)
    for row in prange(n_img * ho):  # one output row (n, i) per iteration: its Wo rows of col
        n = row // ho
        i = row % ho
        for j in range(wo):
            p = row * wo + j  # col row of output pixel (n, i, j)
            for a in range(kh):
                h = i * stride - top + a
                for b in range(kw):
                    wi = j * stride - left + b
                    start = (a * kw + b) * cin
                    if 0 <= h < h_in and 0 <= wi < w_in:
                        for c in range(cin):
                            col[p, start + c] = x[n, h, wi, c]
                    else:
                        for c in range(cin):
                            col[p, start + c] = zero


@njit(parallel=True, cache=True, fastmath=True)
def _col2im(dcol, kh, kw, stride, top, left, ho, wo, dx):
    """dx[n,h,w,c] = sum of dcol entries copied from x[n,h,w,c] by _im2col (gather, race-free).

    Input row h is read by output row i through tap a when i*S - top + a == h. Each iteration owns
    the row dx[n, h, :, :] and is the only one writing to it.
    """
    n_img, h_in, w_in, cin = dx.shape
    zero = dx.dtype.type(0)
    for row in prange(n_img * h_in):  # one input row (n, h) per iteration
        n = row // h_in
        h = row % h_in
        for wi in range(w_in):
            for c in range(cin):
                dx[n, h, wi, c] = zero
        for a in range(kh):
            t = h + top - a  # = i*S if output row i reads this row through tap a
            if t < 0 or t % stride != 0:
                continue
            i = t // stride
            if i >= ho:
                continue
            for j in range(wo):
                p = (n * ho + i) * wo + j
                for b in range(kw):
                    wi = j * stride - left + b
                    if 0 <= wi < w_in:
                        start = (a * kw + b) * cin
                        for c in range(cin):
                            dx[n, h, wi, c] += dcol[p, start + c]


def _is_pointwise(w: np.ndarray, pads: tuple) -> bool:
    return w.shape[0] == 1 and w.shape[1] == 1 and not any(pads)


def _build_col(x: np.ndarray, w: np.ndarray, stride: int, pads: tuple, ho: int, wo: int) -> np.ndarray:
    """The im2col matrix (N*Ho*Wo, KH*KW*Cin); for a padding-free 1x1 just a view or strided copy of x."""
    n, _, _, cin = x.shape
    kh, kw = w.shape[:2]
    if _is_pointwise(w, pads):
        picked = x if stride == 1 else np.ascontiguousarray(x[:, ::stride, ::stride, :])  # (N, Ho, Wo, Cin)
        return picked.reshape(n * ho * wo, cin)  # (P, Cin)
    col = np.empty((n * ho * wo, kh * kw * cin), dtype=x.dtype)  # (P, K)
    top, _, left, _ = pads
    _im2col(x, kh, kw, stride, top, left, ho, wo, col)
    return col


def conv2d_forward(x, w, stride=1, padding=0):
    """Dense 2-D convolution, channels-last, no bias: im2col then one GEMM.

        y[n,i,j,co] = sum_{a,b,ci} xpad[n, i*S+a, j*S+b, ci] * w[a,b,ci,co]

    x: (N, H, W, Cin) float32 or float64; w: (KH, KW, Cin, Cout) of the same dtype;
    stride: int >= 1; padding: int >= 0 (PyTorch, symmetric) or "same" (TensorFlow: output
    ceil(H/S), the smaller half of the padding first; odd kernels only).
    Returns y (N, Ho, Wo, Cout), same dtype as x, and the cache.
    Cache: Im2colCache(x, w, stride, pads), algorithm "im2col": x to rebuild col for dw, w for dx,
    stride and pads for the geometry. col itself is not kept (KH*KW times the size of x); backward
    recomputes it.
    """
    x, w, stride, pads = check_conv_inputs(x, w, stride, padding, depthwise=False)
    cache = Im2colCache(x, w, stride, pads)
    n, ho, wo, cout = cache.output_shape
    col = _build_col(x, w, stride, pads, ho, wo)  # (P, K)
    y2d = np.empty((n * ho * wo, cout), dtype=x.dtype)  # (P, Cout)
    blas.matmul(col, w.reshape(-1, cout), out=y2d)  # (P, K) @ (K, Cout)
    return y2d.reshape(n, ho, wo, cout), cache


def conv2d_weight_gradient(dy, cache: Im2colCache):
    """The weight gradient alone (a layer whose input needs no gradient: the stem): one GEMM.

        dw2d = col.T @ dy2d   (K, P) @ (P, Cout)

    dy: (N, Ho, Wo, Cout). Returns dw (KH, KW, Cin, Cout). The cache is not consumed.
    """
    dy = check_upstream_gradient(dy, cache)
    check_algorithm(cache, "im2col", "conv2d_weight_gradient")
    return _weight_gradient(dy, *cache)


def _weight_gradient(dy, x, w, stride, pads):
    """dw (KH, KW, Cin, Cout) = col^T dy, inputs already checked."""
    kh, kw, cin, cout = w.shape
    _, ho, wo, _ = dy.shape
    col = _build_col(x, w, stride, pads, ho, wo)  # (P, K)
    dw2d = np.empty((kh * kw * cin, cout), dtype=x.dtype)  # (K, Cout)
    blas.matmul(col.T, dy.reshape(-1, cout), out=dw2d)  # (K, P) @ (P, Cout)
    return dw2d.reshape(kh, kw, cin, cout)


def conv2d_backward(dy, cache: Im2colCache):
    """Gradients of the dense convolution: two GEMMs and col2im.

        dw2d = col.T @ dy2d;   dcol = dy2d @ w2d.T;   dx = col2im(dcol)

    dy: (N, Ho, Wo, Cout), same dtype as the forward input.
    Returns dx (N, H, W, Cin) and dw (KH, KW, Cin, Cout), same dtype.
    """
    dy = check_upstream_gradient(dy, cache)
    check_algorithm(cache, "im2col", "conv2d_backward")
    x, w, stride, pads = cache
    dw = _weight_gradient(dy, x, w, stride, pads)  # (KH, KW, Cin, Cout)
    n, h, width, cin = x.shape
    kh, kw, _, cout = w.shape
    _, ho, wo, _ = dy.shape
    dy2d = dy.reshape(n * ho * wo, cout)  # (P, Cout)
    w2d = w.reshape(kh * kw * cin, cout)  # (K, Cout)
    dcol = np.empty((n * ho * wo, kh * kw * cin), dtype=x.dtype)  # (P, K)
    blas.matmul(dy2d, w2d.T, out=dcol)  # (P, Cout) @ (Cout, K)

    if _is_pointwise(w, pads):
        if stride == 1:
            dx = dcol.reshape(n, h, width, cin)  # (N, H, W, Cin)
        else:
            dx = np.zeros_like(x)  # (N, H, W, Cin): pixels the strided 1x1 skips get no gradient
            dx[:, ::stride, ::stride, :] = dcol.reshape(n, ho, wo, cin)
    else:
        dx = np.empty_like(x)  # (N, H, W, Cin), every entry written by _col2im
        top, _, left, _ = pads
        _col2im(dcol, kh, kw, stride, top, left, ho, wo, dx)
    return dx, dw
