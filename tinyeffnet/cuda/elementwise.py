"""Elementwise and reduction kernels that the blocks, the loss and the optimisers need on the device.

Dimension legend: L = number of entries of a flattened array; N batch, H, W, C channels-last,
P = H*W pixels per image; M rows and C columns of a (M, C) matrix; B rows per chunk of a reduction.

    fill:          a_i = v
    copy:          out_i = a_i                             (a device-to-device memcpy, no kernel)
    add:           out_i = a_i + b_i                       (residual: y = x + branch(x))
    axpy:          y_i = y_i + alpha x_i                   (in place; gradient accumulation)
    sgd_step:      d = g + wd p;  buf = d (first step) | momentum buf + d
                   d = d + momentum buf (nesterov) | buf;  p = p - lr d      (exactly torch.optim.SGD)
    channel_gate:  y[n,p,c] = x[n,p,c] g[n,c]              (Squeeze-Excite: one gate per image and channel)
                   dx[n,p,c] = dy[n,p,c] g[n,c];   dg[n,c] = sum_p dy[n,p,c] x[n,p,c]
    column_sums:   s_c = sum_m a[m,c]                      (M, C) -> (C,)
    total:         s = sum_i a_i                           (L,) -> 0-d, the column sum of the (L, 1) view

Race-free reductions, two passes. A sum over many entries is split into chunks of B entries: pass 1
has one thread per chunk (and column), which sums its chunk into its own slot of a partial buffer;
pass 2 sums the partials the same way. No two threads ever write the same address, so no atomics are
needed, and each float32 running sum has at most B terms (accuracy).

Every kernel takes the flattened (L,) view of C-contiguous arrays where the op is elementwise
(``flat``), and walks it with the grid-stride loop of ``_runtime`` (one thread per entry).
"""
from __future__ import annotations

import numpy as np

from ._runtime import (as_device_float_array, check_device_shape, cuda, empty, is_numba_device_array, kernel, launch,
                       scalar)

CHUNK = 256  # entries per thread in pass 1 of a reduction (B)


def flat(a):
    """(d0, d1, ...) C-contiguous device array -> its (L,) view, no copy."""
    return a.reshape(a.size)


# ----------------------------------------------------------------------------- elementwise kernels
@kernel("void({t}[::1], {t})")
def _fill_kernel(out, value):
    """out_i = value. out: (L,)."""
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[i] = value


@kernel("void({t}[::1], {t}[::1], {t}[::1])")
def _add_kernel(a, b, out):
    """out_i = a_i + b_i. All (L,)."""
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[i] = a[i] + b[i]


@kernel("void({t}, {t}[::1], {t}[::1])")
def _axpy_kernel(alpha, x, y):
    """y_i += alpha x_i (each thread owns its i: no race). x, y: (L,)."""
    for i in range(cuda.grid(1), y.shape[0], cuda.gridsize(1)):
        y[i] += alpha * x[i]


@kernel("void({t}[::1], {t}[::1], {t}[::1], {t}, {t}, {t}, int64, int64)")
def _sgd_kernel(param, grad, buf, lr, momentum, weight_decay, nesterov, first_step):
    """One torch.optim.SGD step per entry (see the module docstring). buf is unused when momentum == 0."""
    zero = param.dtype.type(0)
    for i in range(cuda.grid(1), param.shape[0], cuda.gridsize(1)):
        d = grad[i] + weight_decay * param[i]
        if momentum != zero:
            if first_step:
                buf[i] = d
            else:
                buf[i] = momentum * buf[i] + d
            if nesterov:
                d = d + momentum * buf[i]
            else:
                d = buf[i]
        param[i] -= lr * d


@kernel("void({t}[:, :, ::1], {t}[:, ::1], {t}[:, :, ::1])")
def _gate_forward_kernel(x3, gate, y3):
    """y[n,p,c] = x[n,p,c] g[n,c]. x3, y3: (N, P, C); gate: (N, C)."""
    n_img, pixels, channels = x3.shape
    for idx in range(cuda.grid(1), n_img * pixels * channels, cuda.gridsize(1)):
        c = idx % channels
        p = (idx // channels) % pixels
        n = idx // (channels * pixels)
        y3[n, p, c] = x3[n, p, c] * gate[n, c]


@kernel("void({t}[:, :, ::1], {t}[:, :, ::1], {t}[:, ::1])")
def _gate_dgate_kernel(dy3, x3, dgate):
    """dg[n,c] = sum_p dy[n,p,c] x[n,p,c]: one thread per (n, c) owns its sum (no race)."""
    n_img, pixels, channels = x3.shape
    zero = x3.dtype.type(0)
    for idx in range(cuda.grid(1), n_img * channels, cuda.gridsize(1)):
        c = idx % channels
        n = idx // channels
        acc = zero
        for p in range(pixels):
            acc += dy3[n, p, c] * x3[n, p, c]
        dgate[n, c] = acc


# ------------------------------------------------------------------------------ reduction kernels
@kernel("void({t}[:, ::1], int64, {t}[:, ::1])")
def _column_partials_kernel(a, rows_per_chunk, partial):
    """partial[k, c] = sum of a[m, c] over the rows m of chunk k. a: (M, C); partial: (chunks, C)."""
    m_rows, channels = a.shape
    chunks = partial.shape[0]
    zero = a.dtype.type(0)
    for idx in range(cuda.grid(1), chunks * channels, cuda.gridsize(1)):
        c = idx % channels
        k = idx // channels
        acc = zero
        for m in range(k * rows_per_chunk, min(m_rows, (k + 1) * rows_per_chunk)):
            acc += a[m, c]
        partial[k, c] = acc



# ---------------------------------------------------------------------------------- public helpers
def zeros(shape, dtype=np.float32):
    """A device array of zeros (filled on the device, no host copy)."""
    out = empty(shape, dtype)
    fill(out, 0)
    return out


def fill(a, value) -> None:
    """a[...] = value, in place on the device."""
    a = as_device_float_array("a", a)
    launch(_fill_kernel, a.size, flat(a), scalar(value, a.dtype))


def copy(a):
    """A new C-contiguous device array equal to ``a`` (same shape and dtype), copied on the device.

    The first gradient a Parameter receives is copied (as the CPU path's np.array(g, copy=True)), so
    that a later in-place accumulation never writes into an array an op still holds.
    """
    a = as_device_float_array("a", a)
    out = empty(a.shape, a.dtype)
    out.copy_to_device(a)  # device -> device
    return out


def add(a, b):
    """out = a + b (same shape and dtype; no broadcasting). The residual sum of MBConv blocks."""
    a = as_device_float_array("a", a)
    b = as_device_float_array("b", b, dtype=a.dtype)
    check_device_shape("b", b, a.shape)
    out = empty(a.shape, a.dtype)
    launch(_add_kernel, a.size, flat(a), flat(b), flat(out))
    return out


def axpy(alpha, x, y) -> None:
    """y += alpha * x, in place (y must be C-contiguous: it is written)."""
    x = as_device_float_array("x", x)
    _check_writable_target("y", y, x)
    launch(_axpy_kernel, x.size, scalar(alpha, x.dtype), flat(x), flat(y))


def sgd_step(param, grad, lr, momentum=0.0, weight_decay=0.0, nesterov=False, momentum_buffer=None):
    """One torch.optim.SGD update of ``param`` in place; returns the momentum buffer (None if momentum == 0).

        d = g + wd p;  buf = d (first step, momentum_buffer None) | momentum buf + d
        d = d + momentum buf (nesterov) | buf;  p = p - lr d
    param, grad: device arrays of one shape and dtype. momentum_buffer: the array this function
    returned last step (None on the first step: it is then created).
    """
    grad = as_device_float_array("grad", grad)
    _check_writable_target("param", param, grad)
    first_step = momentum_buffer is None
    if momentum and first_step:
        momentum_buffer = empty(param.shape, param.dtype)
    if momentum_buffer is not None:
        _check_writable_target("momentum_buffer", momentum_buffer, grad)
    buf = flat(momentum_buffer) if momentum else flat(param)  # never touched when momentum == 0
    dtype = param.dtype
    launch(_sgd_kernel, param.size, flat(param), flat(grad), buf, scalar(lr, dtype), scalar(momentum, dtype),
           scalar(weight_decay, dtype), int(bool(nesterov)), int(first_step))
    return momentum_buffer if momentum else None


def channel_gate_forward(x, gate):
    """Squeeze-Excite's product y[n,h,w,c] = x[n,h,w,c] g[n,c]. x: (N, H, W, C); gate: (N, C).

    Returns y (N, H, W, C) and the cache.
    Cache: (x, gate): the product's two factors, dx = dy g and dg = sum_{h,w} dy x need both.
    """
    x = as_device_float_array("x", x, ndim=4)
    gate = as_device_float_array("gate", gate, ndim=2, dtype=x.dtype)
    n, h, w, c = x.shape
    check_device_shape("gate", gate, (n, c))
    y = empty(x.shape, x.dtype)
    launch(_gate_forward_kernel, x.size, _pixels(x), gate, _pixels(y))
    return y, (x, gate)


def channel_gate_backward(dy, cache):
    """dx[n,h,w,c] = dy g[n,c];  dg[n,c] = sum_{h,w} dy x. Returns (dx, dgate)."""
    x, gate = cache
    dy = as_device_float_array("dy", dy, dtype=x.dtype)
    check_device_shape("dy", dy, x.shape)
    n, _, _, c = x.shape
    dx = empty(x.shape, x.dtype)
    launch(_gate_forward_kernel, x.size, _pixels(dy), gate, _pixels(dx))  # same product, dy for x
    dgate = empty((n, c), x.dtype)
    launch(_gate_dgate_kernel, n * c, _pixels(dy), _pixels(x), dgate)
    return dx, dgate


def column_sums(a2, rows_per_chunk: int = CHUNK):
    """s_c = sum_m a2[m, c] in two race-free passes. a2: (M, C) C-contiguous device array -> (C,)."""
    m_rows, channels = a2.shape
    while True:  # at least one pass, so the result never aliases a2
        chunks = -(-m_rows // rows_per_chunk)
        partial = empty((chunks, channels), a2.dtype)  # (chunks, C)
        launch(_column_partials_kernel, chunks * channels, a2, rows_per_chunk, partial)
        a2, m_rows = partial, chunks
        if m_rows <= 1:
            return a2.reshape(channels)


def total(a, chunk: int = CHUNK):
    """s = sum of all entries, as a 0-d device array (stays on the device; float(to_host(s)) reads it).

    The column sum of a's (L, 1) view: the same two race-free passes as ``column_sums``."""
    a = as_device_float_array("a", a)
    if a.size == 0:
        return zeros((1,), a.dtype).reshape(())
    return column_sums(flat(a).reshape(a.size, 1), chunk).reshape(())


def _pixels(a):
    """(N, H, W, C) -> (N, H*W, C) view: the kernels index pixels p = h*W + w."""
    n, h, w, c = a.shape
    return a.reshape(n, h * w, c)


def _check_writable_target(name, target, like):
    """An array updated in place: a C-contiguous device array of ``like``'s shape and dtype."""
    if not is_device_target(target):
        raise TypeError(f"{name} must be a CUDA device array (updated in place), got {type(target).__name__}")
    if np.dtype(target.dtype) != np.dtype(like.dtype):
        raise TypeError(f"mixed dtypes: {name} has dtype {target.dtype} but the input has dtype {like.dtype}")
    check_device_shape(name, target, like.shape)
    if not target.is_c_contiguous():
        raise ValueError(f"{name} must be C-contiguous: it is updated in place")


def is_device_target(a) -> bool:
    return is_numba_device_array(a)
