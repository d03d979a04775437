"""Dense 2-D convolution on the GPU (tier 3), in two versions. Same math as ``tinyeffnet.ops.conv2d``.

Dimension legend
    N   batch                      H, W    input height, width
    Cin input channels             Ho, Wo  output height, width
    Cout output channels           KH, KW  kernel height, width
    S   stride                     top, left   zero padding before the first row / column
    P = N*Ho*Wo output pixels      K = KH*KW*Cin  length of one receptive field

    y[n,i,j,co]   = sum_{a,b,ci} xpad[n, i*S+a, j*S+b, ci] * w[a,b,ci,co]
    dw[a,b,ci,co] = sum_{n,i,j} xpad[n, i*S+a, j*S+b, ci] * dy[n,i,j,co]
    dx[n,h,v,ci]  = sum over (i, a) with i*S+a-top = h and (j, b) with j*S+b-left = v of
                    sum_co dy[n,i,j,co] * w[a,b,ci,co]

Version 1, direct (``conv2d_forward_direct`` / ``conv2d_backward_direct``): the formulas as they
stand, one thread per entry of the array being computed. The forward thread for y[n,i,j,co] loops
over the taps and input channels; the dx thread for x[n,h,v,ci] *gathers* every (i, j, a, b) that
read it (scattering ``+=`` from each output would need atomics); the dw thread for w[a,b,ci,co] loops
over all N*Ho*Wo output pixels. Padding is never materialised: taps outside the input are skipped.

Version 2, im2col + tiled GEMM (``conv2d_forward`` / ``conv2d_backward``, used by the layers):
one thread per entry of col (P, K), col[p, (a*KW + b)*Cin + ci] = xpad[n, i*S+a, j*S+b, ci], then

    y2d  = col @ w2d      (P, K) @ (K, Cout)         dw2d = col^T @ dy2d  (K, P) @ (P, Cout), split-K
    dcol = dy2d @ w2d^T   (P, Cout) @ (Cout, K)      dx = col2im(dcol): one thread per dx entry, a gather

with the shared-memory tiled GEMM of ``gemm.py``. A 1x1 kernel with stride 1 and no padding (the
expand / project convs of EfficientNet) needs no im2col: x viewed as (P, Cin) is col already. The
cache keeps x, not col (col is KH*KW times larger); backward rebuilds col, as the CPU tier does.
"""
from __future__ import annotations


from ..ops._checks import ConvCache, check_conv_geometry
from ._runtime import as_device_float_array, check_gradient, cuda, empty, kernel, launch
from .gemm import matmul

SIG_4 = "{t}[:, :, :, ::1]"


# What a conv backward needs (x for dw, w for dx, stride, pads): the CPU tiers' cache type, holding
# device arrays here. One contract for every tier (ops/_checks.py).
DeviceConvCache = ConvCache


def check_device_conv_inputs(x, w, stride, padding, depthwise: bool):
    """The device twin of ``ops._checks.check_conv_inputs``: same rules, same messages."""
    op = "depthwise_conv2d_forward" if depthwise else "conv2d_forward"
    x = as_device_float_array("x", x, ndim=4, op=op)
    w = as_device_float_array("w", w, ndim=3 if depthwise else 4, dtype=x.dtype, op=op)
    stride, pads = check_conv_geometry(x.shape, w.shape, stride, padding, depthwise)
    return DeviceConvCache(x, w, stride, pads)


# ------------------------------------------------------------------------------ version 1: direct
@kernel(f"void({SIG_4}, {SIG_4}, int64, int64, int64, {SIG_4})")
def _direct_forward_kernel(x, w, stride, top, left, y):
    """y[n,i,j,co] = sum over taps inside the input of x[n, i*S-top+a, j*S-left+b, ci] w[a,b,ci,co]."""
    _, h_in, w_in, cin = x.shape
    kh, kw, _, cout = w.shape
    n_img, ho, wo, _ = y.shape
    zero = x.dtype.type(0)
    for idx in range(cuda.grid(1), n_img * ho * wo * cout, cuda.gridsize(1)):
        co = idx % cout
        j = (idx // cout) % wo
        i = (idx // (cout * wo)) % ho
        n = idx // (cout * wo * ho)
        acc = zero
        for a in range(kh):
            h = i * stride - top + a
            if 0 <= h < h_in:
                for b in range(kw):
                    v = j * stride - left + b
                    if 0 <= v < w_in:
                        for ci in range(cin):
                            acc += x[n, h, v, ci] * w[a, b, ci, co]
        y[n, i, j, co] = acc


@kernel(f"void({SIG_4}, {SIG_4}, int64, int64, int64, {SIG_4})")
def _direct_dx_kernel(dy, w, stride, top, left, dx):
    """dx[n,h,v,ci] = sum of dy[n,i,j,co] w[a,b,ci,co] over i*S-top+a = h, j*S-left+b = v (a gather)."""
    n_img, h_in, w_in, cin = dx.shape
    kh, kw, _, cout = w.shape
    _, ho, wo, _ = dy.shape
    zero = dx.dtype.type(0)
    for idx in range(cuda.grid(1), n_img * h_in * w_in * cin, cuda.gridsize(1)):
        ci = idx % cin
        v = (idx // cin) % w_in
        h = (idx // (cin * w_in)) % h_in
        n = idx // (cin * w_in * h_in)
        acc = zero
        for a in range(kh):
            t = h + top - a  # = i*S if output row i reads input row h through tap a
            if t >= 0 and t % stride == 0 and t // stride < ho:
                i = t // stride
                for b in range(kw):
                    u = v + left - b
                    if u >= 0 and u % stride == 0 and u // stride < wo:
                        j = u // stride
                        for co in range(cout):
                            acc += dy[n, i, j, co] * w[a, b, ci, co]
        dx[n, h, v, ci] = acc


@kernel(f"void({SIG_4}, {SIG_4}, int64, int64, int64, {SIG_4})")
def _direct_dw_kernel(x, dy, stride, top, left, dw):
    """dw[a,b,ci,co] = sum over output pixels (n,i,j) of x[n, i*S-top+a, j*S-left+b, ci] dy[n,i,j,co]."""
    _, h_in, w_in, _ = x.shape
    n_img, ho, wo, _ = dy.shape
    kh, kw, cin, cout = dw.shape
    zero = x.dtype.type(0)
    for idx in range(cuda.grid(1), kh * kw * cin * cout, cuda.gridsize(1)):
        co = idx % cout
        ci = (idx // cout) % cin
        b = (idx // (cout * cin)) % kw
        a = idx // (cout * cin * kw)
        acc = zero
        for n in range(n_img):
            for i in range(ho):
                h = i * stride - top + a
                if 0 <= h < h_in:
                    for j in range(wo):
                        v = j * stride - left + b
                        if 0 <= v < w_in:
                            acc += x[n, h, v, ci] * dy[n, i, j, co]
        dw[a, b, ci, co] = acc


def conv2d_forward_direct(x, w, stride=1, padding=0):
    """Version 1 of ``conv2d_forward`` (one thread per output entry). Same arguments, result, cache."""
    cache = check_device_conv_inputs(x, w, stride, padding, depthwise=False)
    y = empty(cache.output_shape, cache.x.dtype)
    top, _, left, _ = cache.pads
    launch(_direct_forward_kernel, y.size, cache.x, cache.w, cache.stride, top, left, y)
    return y, cache


def conv2d_backward_direct(dy, cache):
    """Version 1 of ``conv2d_backward``: returns (dx, dw) from the direct gather kernels."""
    x, w, stride, pads = cache
    dy = check_gradient("dy", dy, cache.output_shape, x.dtype)
    top, _, left, _ = pads
    dx = empty(x.shape, x.dtype)
    launch(_direct_dx_kernel, dx.size, dy, w, stride, top, left, dx)
    dw = empty(w.shape, w.dtype)
    launch(_direct_dw_kernel, dw.size, x, dy, stride, top, left, dw)
    return dx, dw


# ---------------------------------------------------------------------- version 2: im2col + GEMM
@kernel(f"void({SIG_4}, int64, int64, int64, int64, int64, int64, int64, {{t}}[:, ::1])")
def _im2col_kernel(x, kh, kw, stride, top, left, ho, wo, col):
    """col[p, (a*KW + b)*Cin + ci] = x[n, i*S-top+a, j*S-left+b, ci] (0 outside), p = (n*Ho + i)*Wo + j."""
    _, h_in, w_in, cin = x.shape
    rows, k_len = col.shape
    zero = x.dtype.type(0)
    for idx in range(cuda.grid(1), rows * k_len, cuda.gridsize(1)):
        k = idx % k_len
        p = idx // k_len
        ci = k % cin
        b = (k // cin) % kw
        a = k // (cin * kw)
        j = p % wo
        i = (p // wo) % ho
        n = p // (wo * ho)
        h = i * stride - top + a
        v = j * stride - left + b
        if 0 <= h < h_in and 0 <= v < w_in:
            col[p, k] = x[n, h, v, ci]
        else:
            col[p, k] = zero


@kernel(f"void({{t}}[:, ::1], int64, int64, int64, int64, int64, int64, int64, {SIG_4})")
def _col2im_kernel(dcol, kh, kw, stride, top, left, ho, wo, dx):
    """dx[n,h,v,ci] = sum of the dcol entries that im2col copied from x[n,h,v,ci] (a gather: no race)."""
    n_img, h_in, w_in, cin = dx.shape
    zero = dx.dtype.type(0)
    for idx in range(cuda.grid(1), n_img * h_in * w_in * cin, cuda.gridsize(1)):
        ci = idx % cin
        v = (idx // cin) % w_in
        h = (idx // (cin * w_in)) % h_in
        n = idx // (cin * w_in * h_in)
        acc = zero
        for a in range(kh):
            t = h + top - a
            if t >= 0 and t % stride == 0 and t // stride < ho:
                i = t // stride
                for b in range(kw):
                    u = v + left - b
                    if u >= 0 and u % stride == 0 and u // stride < wo:
                        j = u // stride
                        acc += dcol[(n * ho + i) * wo + j, (a * kw + b) * cin + ci]
        dx[n, h, v, ci] = acc


def _is_plain_pointwise(cache) -> bool:
    """A 1x1 kernel, stride 1, no padding: x viewed as (P, Cin) is already the im2col matrix."""
    kh, kw = cache.w.shape[:2]
    return kh == 1 and kw == 1 and cache.stride == 1 and not any(cache.pads)


def _build_col(cache, ho: int, wo: int):
    x, w, stride, pads = cache
    n, _, _, cin = x.shape
    kh, kw = w.shape[:2]
    if _is_plain_pointwise(cache):
        return x.reshape(n * ho * wo, cin)  # (P, Cin), a view
    col = empty((n * ho * wo, kh * kw * cin), x.dtype)  # (P, K)
    top, _, left, _ = pads
    launch(_im2col_kernel, col.size, x, kh, kw, stride, top, left, ho, wo, col)
    return col


def conv2d_forward(x, w, stride=1, padding=0):
    """Dense 2-D convolution, channels-last, no bias, on the GPU: im2col then the tiled GEMM.

        y[n,i,j,co] = sum_{a,b,ci} xpad[n, i*S+a, j*S+b, ci] * w[a,b,ci,co]

    x: (N, H, W, Cin) float32/float64 device array; w: (KH, KW, Cin, Cout) of the same dtype;
    stride: int >= 1; padding: int >= 0 (PyTorch, symmetric) or "same" (TensorFlow).
    Returns y (N, Ho, Wo, Cout) and the cache.
    Cache: DeviceConvCache(x, w, stride, pads): x to rebuild col for dw, w for dx, the geometry.
    """
    cache = check_device_conv_inputs(x, w, stride, padding, depthwise=False)
    n, ho, wo, cout = cache.output_shape
    col = _build_col(cache, ho, wo)  # (P, K)
    y2d = matmul(col, cache.w.reshape(col.shape[1], cout))  # (P, K) @ (K, Cout)
    return y2d.reshape(n, ho, wo, cout), cache


def conv2d_backward(dy, cache):
    """Gradients of the dense convolution: dw2d = col^T dy2d (split-K), dcol = dy2d w2d^T, dx = col2im(dcol).

    dy: (N, Ho, Wo, Cout) device array. Returns dx (N, H, W, Cin) and dw (KH, KW, Cin, Cout).
    """
    x, w, stride, pads = cache
    dy = check_gradient("dy", dy, cache.output_shape, x.dtype)
    n, h, width, cin = x.shape
    kh, kw, _, cout = w.shape
    _, ho, wo, _ = dy.shape
    dy2d = dy.reshape(n * ho * wo, cout)  # (P, Cout)
    w2d = w.reshape(kh * kw * cin, cout)  # (K, Cout)
    col = _build_col(cache, ho, wo)  # (P, K)
    dw = matmul(col.T, dy2d).reshape(kh, kw, cin, cout)  # (K, P) @ (P, Cout)
    dcol = matmul(dy2d, w2d.T)  # (P, Cout) @ (Cout, K)
    if _is_plain_pointwise(cache):
        return dcol.reshape(n, h, width, cin), dw
    dx = empty(x.shape, x.dtype)
    top, _, left, _ = pads
    launch(_col2im_kernel, dx.size, dcol, kh, kw, stride, top, left, ho, wo, dx)
    return dx, dw
