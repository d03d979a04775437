"""Depthwise 2-D convolution on the GPU (tier 3). Same math as ``tinyeffnet.ops.depthwise``.

Dimension legend
    N   batch                      H, W    input height, width
    C   channels (in = out)        Ho, Wo  output height, width
    KH, KW kernel height, width    S       stride;  top, left: zero padding before row / column 0
    R = N*Ho output rows (n, i)    B = ROWS_PER_CHUNK rows per partial sum of dw

    y[n,i,j,c]  = sum_{a,b} xpad[n, i*S+a, j*S+b, c] * w[a,b,c]
    dw[a,b,c]   = sum_{n,i,j} xpad[n, i*S+a, j*S+b, c] * dy[n,i,j,c]
    dx[n,h,v,c] = sum over (i, a) with i*S+a-top = h and (j, b) with j*S+b-left = v of dy[n,i,j,c] w[a,b,c]

Forward and dx: one thread per output entry; the last index is c, so the 32 threads of a warp read 32
neighbouring channels of one pixel (coalesced, the GPU side of the channels-last choice). dx gathers
(no atomics). Taps outside the input are skipped: padding is never materialised.

dw, two versions of one kernel (``_dw_partials_kernel``: thread (k, a, b, c) sums the output rows of
chunk k into partial[k, a, b, c]):
  version 1 (``depthwise_conv2d_backward_simple``): one chunk of all R rows, so one thread per
      dw[a,b,c] loops over all N*Ho*Wo output pixels. Only KH*KW*C threads (a few thousand) with very
      long loops: most of the GPU idles.
  version 2 (``depthwise_conv2d_backward``): the R output rows are cut into chunks of B rows, and a
      second pass adds the chunks (``elementwise.column_sums``). ceil(R/B) times more threads, no race.
"""
from __future__ import annotations

from ._runtime import check_gradient, cuda, empty, kernel, launch
from .conv2d import check_device_conv_inputs
from .elementwise import column_sums

SIG_3 = "{t}[:, :, ::1]"
SIG_4 = "{t}[:, :, :, ::1]"
ROWS_PER_CHUNK = 16


@kernel(f"void({SIG_4}, {SIG_3}, int64, int64, int64, {SIG_4})")
def _forward_kernel(x, w, stride, top, left, y):
    """y[n,i,j,c] = sum over taps inside the input of x[n, i*S-top+a, j*S-left+b, c] w[a,b,c]."""
    _, h_in, w_in, channels = x.shape
    kh, kw, _ = w.shape
    n_img, ho, wo, _ = y.shape
    zero = x.dtype.type(0)
    for idx in range(cuda.grid(1), n_img * ho * wo * channels, cuda.gridsize(1)):
        c = idx % channels
        j = (idx // channels) % wo
        i = (idx // (channels * wo)) % ho
        n = idx // (channels * wo * ho)
        acc = zero
        for a in range(kh):
            h = i * stride - top + a
            if 0 <= h < h_in:
                for b in range(kw):
                    v = j * stride - left + b
                    if 0 <= v < w_in:
                        acc += x[n, h, v, c] * w[a, b, c]
        y[n, i, j, c] = acc


@kernel(f"void({SIG_4}, {SIG_3}, int64, int64, int64, {SIG_4})")
def _dx_kernel(dy, w, stride, top, left, dx):
    """dx[n,h,v,c] = sum of dy[n,i,j,c] w[a,b,c] over i*S-top+a = h, j*S-left+b = v (a gather)."""
    n_img, h_in, w_in, channels = dx.shape
    kh, kw, _ = w.shape
    _, ho, wo, _ = dy.shape
    zero = dx.dtype.type(0)
    for idx in range(cuda.grid(1), n_img * h_in * w_in * channels, cuda.gridsize(1)):
        c = idx % channels
        v = (idx // channels) % w_in
        h = (idx // (channels * w_in)) % h_in
        n = idx // (channels * w_in * h_in)
        acc = zero
        for a in range(kh):
            t = h + top - a  # = i*S if output row i reads input row h through tap a
            if t >= 0 and t % stride == 0 and t // stride < ho:
                i = t // stride
                for b in range(kw):
                    u = v + left - b
                    if u >= 0 and u % stride == 0 and u // stride < wo:
                        acc += dy[n, i, u // stride, c] * w[a, b, c]
        dx[n, h, v, c] = acc


@kernel(f"void({SIG_4}, {SIG_4}, int64, int64, int64, int64, int64, int64, {{t}}[:, ::1])")
def _dw_partials_kernel(x, dy, kh, kw, stride, top, left, rows_per_chunk, partial):
    """partial[k, (a*KW + b)*C + c] = the dw[a,b,c] sum over output rows of chunk k (one chunk: dw)."""
    _, h_in, w_in, channels = x.shape
    n_img, ho, wo, _ = dy.shape
    chunks, taps_channels = partial.shape
    zero = x.dtype.type(0)
    for idx in range(cuda.grid(1), chunks * taps_channels, cuda.gridsize(1)):
        c = idx % channels
        b = (idx // channels) % kw
        a = (idx // (channels * kw)) % kh
        k = idx // taps_channels
        acc = zero
        for row in range(k * rows_per_chunk, min(n_img * ho, (k + 1) * rows_per_chunk)):
            n = row // ho
            i = row % ho
            h = i * stride - top + a
            if 0 <= h < h_in:
                for j in range(wo):
                    v = j * stride - left + b
                    if 0 <= v < w_in:
                        acc += x[n, h, v, c] * dy[n, i, j, c]
        partial[k, idx % taps_channels] = acc


def depthwise_conv2d_forward(x, w, stride=1, padding=0):
    """Depthwise 2-D convolution (one KH x KW filter per channel), channels-last, no bias, on the GPU.

        y[n,i,j,c] = sum_{a,b} xpad[n, i*S+a, j*S+b, c] * w[a,b,c]

    x: (N, H, W, C) device array; w: (KH, KW, C) of the same dtype; stride: int >= 1;
    padding: int >= 0 (PyTorch, symmetric) or "same" (TensorFlow). Returns y (N, Ho, Wo, C), cache.
    Cache: DeviceConvCache(x, w, stride, pads): x for dw, w for dx, the geometry.
    """
    cache = check_device_conv_inputs(x, w, stride, padding, depthwise=True)
    y = empty(cache.output_shape, cache.x.dtype)
    top, _, left, _ = cache.pads
    launch(_forward_kernel, y.size, cache.x, cache.w, cache.stride, top, left, y)
    return y, cache


def _dx(dy, cache):
    x, w, stride, pads = cache
    dx = empty(x.shape, x.dtype)
    launch(_dx_kernel, dx.size, dy, w, stride, pads[0], pads[2], dx)
    return dx


def depthwise_conv2d_backward_simple(dy, cache):
    """Version 1 of the backward: dw with one thread per dw entry (version 2 with a single chunk of
    all R rows, so partial (1, KH*KW*C) is dw and there is nothing to add). Returns (dx, dw)."""
    x, w, stride, pads = cache
    dy = check_gradient("dy", dy, cache.output_shape, x.dtype)
    kh, kw, channels = w.shape
    rows = dy.shape[0] * dy.shape[1]  # R = N*Ho: one chunk
    dw = empty((1, kh * kw * channels), x.dtype)
    launch(_dw_partials_kernel, dw.size, x, dy, kh, kw, stride, pads[0], pads[2], max(rows, 1), dw)
    return _dx(dy, cache), dw.reshape(kh, kw, channels)


def depthwise_conv2d_backward(dy, cache, rows_per_chunk: int = ROWS_PER_CHUNK):
    """Gradients of the depthwise convolution; dw by chunked partial sums (version 2).

        dw[a,b,c] = sum_{n,i,j} xpad[n, i*S+a, j*S+b, c] dy[n,i,j,c];  dx: the gather above

    dy: (N, Ho, Wo, C) device array. Returns dx (N, H, W, C) and dw (KH, KW, C).
    """
    x, w, stride, pads = cache
    dy = check_gradient("dy", dy, cache.output_shape, x.dtype)
    kh, kw, channels = w.shape
    rows = dy.shape[0] * dy.shape[1]  # R = N*Ho
    chunks = -(-rows // rows_per_chunk)
    partial = empty((chunks, kh * kw * channels), x.dtype)  # (chunks, KH*KW*C)
    launch(_dw_partials_kernel, partial.size, x, dy, kh, kw, stride, pads[0], pads[2], rows_per_chunk, partial)
    dw = column_sums(partial).reshape(kh, kw, channels)
    return _dx(dy, cache), dw
