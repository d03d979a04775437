"""Batch normalisation on the GPU (tier 3). Same math, arguments and cache as ``tinyeffnet.ops.batchnorm``,
whose docstring has the equations (statistics, running-stat update, the two dx formulas).

Dimensions: N batch, H, W, C channels; M = N*H*W values per channel; x (N, H, W, C) or (N, C) is
viewed as the matrix x2 (M, C), one row per pixel; B = ROWS_PER_CHUNK rows per partial sum.
The variance is centred (pass 1 the mean, pass 2 the sum of (x - mean)^2: no E[x^2] - E[x]^2
cancellation), and backward rebuilds xhat = (x - mean) inv_std from the cache.

Kernels. The per-channel sums are two-pass reductions: thread (k, c) sums the B rows of chunk k into
partial[k, c] (neighbouring threads = neighbouring channels: coalesced), then
``elementwise.column_sums`` adds the chunks. Per-channel arithmetic (mean, inv_std, running stats) is
one thread per channel; the normalise and dx kernels are one thread per entry. Everything stays on
the device, including the running statistics.
"""
from __future__ import annotations

import math

import numpy as np

from ..ops._checks import check_eps, check_momentum
from ._runtime import as_device_float_array, check_gradient, cuda, empty, kernel, launch, scalar
from .elementwise import column_sums

ROWS_PER_CHUNK = 256
V = "{t}[::1]"
M2 = "{t}[:, ::1]"


@kernel(f"void({M2}, {V}, int64, {M2})")
def _centered_square_partials_kernel(x2, mean, rows_per_chunk, partial):
    """partial[k, c] = sum over the rows m of chunk k of (x_mc - mean_c)^2."""
    m_rows, channels = x2.shape
    zero = x2.dtype.type(0)
    for idx in range(cuda.grid(1), partial.shape[0] * channels, cuda.gridsize(1)):
        c = idx % channels
        k = idx // channels
        acc = zero
        for m in range(k * rows_per_chunk, min(m_rows, (k + 1) * rows_per_chunk)):
            d = x2[m, c] - mean[c]
            acc += d * d
        partial[k, c] = acc


@kernel(f"void({M2}, {M2}, {V}, {V}, int64, {M2}, {M2})")
def _gradient_partials_kernel(dy2, x2, mean, inv_std, rows_per_chunk, partial_dy, partial_dy_xhat):
    """partial_dy[k, c] = chunk-k sum of dy_mc; partial_dy_xhat[k, c] = chunk-k sum of dy_mc xhat_mc."""
    m_rows, channels = x2.shape
    zero = x2.dtype.type(0)
    for idx in range(cuda.grid(1), partial_dy.shape[0] * channels, cuda.gridsize(1)):
        c = idx % channels
        k = idx // channels
        sum_dy = zero
        sum_dy_xhat = zero
        for m in range(k * rows_per_chunk, min(m_rows, (k + 1) * rows_per_chunk)):
            g = dy2[m, c]
            sum_dy += g
            sum_dy_xhat += g * (x2[m, c] - mean[c]) * inv_std[c]
        partial_dy[k, c] = sum_dy
        partial_dy_xhat[k, c] = sum_dy_xhat


@kernel(f"void({V}, int64, {V})")
def _mean_kernel(sums, m_rows, mean):
    """mean_c = sums_c / M."""
    for c in range(cuda.grid(1), mean.shape[0], cuda.gridsize(1)):
        mean[c] = sums[c] / mean.dtype.type(m_rows)


@kernel(f"void({V}, {V}, int64, {{t}}, {{t}}, {V}, {V}, {V})")
def _train_stats_kernel(mean, squares, m_rows, eps, momentum, running_mean, running_var, inv_std):
    """inv_std_c = 1 / sqrt(squares_c / M + eps); running stats updated in place (unbiased variance)."""
    one = mean.dtype.type(1)
    count = mean.dtype.type(m_rows)
    for c in range(cuda.grid(1), mean.shape[0], cuda.gridsize(1)):
        inv_std[c] = one / math.sqrt(squares[c] / count + eps)
        running_mean[c] = (one - momentum) * running_mean[c] + momentum * mean[c]
        running_var[c] = (one - momentum) * running_var[c] + momentum * (squares[c] / (count - one))


@kernel(f"void({V}, {V}, {{t}}, {V}, {V})")
def _eval_stats_kernel(running_mean, running_var, eps, mean, inv_std):
    """mean_c = running_mean_c (a copy: a later update must not change backward); inv_std from running_var."""
    one = mean.dtype.type(1)
    for c in range(cuda.grid(1), mean.shape[0], cuda.gridsize(1)):
        mean[c] = running_mean[c]
        inv_std[c] = one / math.sqrt(running_var[c] + eps)


@kernel(f"void({M2}, {V}, {V}, {V}, {V}, {M2})")
def _normalize_kernel(x2, mean, inv_std, gamma, beta, y2):
    """y_mc = (x_mc - mean_c) gamma_c inv_std_c + beta_c, one thread per entry."""
    m_rows, channels = x2.shape
    for idx in range(cuda.grid(1), m_rows * channels, cuda.gridsize(1)):
        c = idx % channels
        m = idx // channels
        y2[m, c] = (x2[m, c] - mean[c]) * (gamma[c] * inv_std[c]) + beta[c]


@kernel(f"void({M2}, {M2}, {V}, {V}, {V}, {V}, {V}, int64, {M2})")
def _train_dx_kernel(dy2, x2, mean, inv_std, gamma, dbeta, dgamma, m_rows, dx2):
    """dx_mc = gamma_c inv_std_c (dy_mc - dbeta_c / M - xhat_mc dgamma_c / M)."""
    channels = x2.shape[1]
    count = x2.dtype.type(m_rows)
    for idx in range(cuda.grid(1), m_rows * channels, cuda.gridsize(1)):
        c = idx % channels
        m = idx // channels
        xhat = (x2[m, c] - mean[c]) * inv_std[c]
        dx2[m, c] = gamma[c] * inv_std[c] * (dy2[m, c] - dbeta[c] / count - xhat * (dgamma[c] / count))


@kernel(f"void({M2}, {V}, {V}, {M2})")
def _eval_dx_kernel(dy2, inv_std, gamma, dx2):
    """dx_mc = gamma_c inv_std_c dy_mc: the gradient of an affine map."""
    m_rows, channels = dy2.shape
    for idx in range(cuda.grid(1), m_rows * channels, cuda.gridsize(1)):
        c = idx % channels
        dx2[idx // channels, c] = gamma[c] * inv_std[c] * dy2[idx // channels, c]


def _rows(a):
    """(N, H, W, C) or (N, C) -> (M, C) view, one row per pixel."""
    return a.reshape(a.size // tuple(a.shape)[-1], tuple(a.shape)[-1])


def _validate(x, gamma, beta, running_mean, running_var, training, momentum, eps, op):
    x = as_device_float_array("x", x)
    if x.ndim not in (2, 4):
        raise ValueError(f"x must be 4-D (N, H, W, C) or 2-D (N, C), got {x.ndim}-D array of shape {tuple(x.shape)}")
    channels = tuple(x.shape)[-1]
    if channels == 0 or x.size == 0:
        raise ValueError(f"x must have at least one value per channel and one channel, got shape {tuple(x.shape)}")
    vectors = []
    for name, v in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)):
        v = as_device_float_array(name, v, ndim=1, dtype=x.dtype)
        if v.shape[0] != channels:
            raise ValueError(
                f"{name} must have shape ({channels},) to match the {channels} channels of x "
                f"(its last axis), got shape {tuple(v.shape)}"
            )
        vectors.append(v)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be True or False, got {training!r}")
    if training:
        if x.size // channels < 2:
            raise ValueError(
                f"training needs more than 1 value per channel to estimate a variance, got x of shape {tuple(x.shape)}"
            )
        for name, original, checked in (("running_mean", running_mean, vectors[2]),
                                        ("running_var", running_var, vectors[3])):
            if checked is not original:
                raise ValueError(f"{name} must be a C-contiguous device array: training updates it in place")
    check_momentum(momentum, op=op)  # the CPU rules and messages (ops/_checks.py)
    check_eps(eps, op=op)
    return x, vectors


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-3,
                      rows_per_chunk: int = ROWS_PER_CHUNK):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel (last axis), on the GPU.

    x: (N, H, W, C) or (N, C) device array; gamma, beta, running_mean, running_var: (C,) device arrays
    of x's dtype (the running statistics are updated in place on the device when training).
    Returns y (x's shape and dtype) and the cache.
    Cache: (x, mean, inv_std, gamma, training): backward rebuilds xhat = (x - mean) inv_std instead of
    keeping a second activation-sized array; the training flag picks the dx formula.
    """
    return _forward(x, gamma, beta, running_mean, running_var, training, momentum, eps, rows_per_chunk,
                    op="batchnorm_forward")


def _forward(x, gamma, beta, running_mean, running_var, training, momentum, eps, rows_per_chunk, op):
    """batchnorm_forward's work; ``op`` names the public op in error messages (fused.py calls this too)."""
    x, (gamma, beta, running_mean, running_var) = _validate(x, gamma, beta, running_mean, running_var,
                                                            training, momentum, eps, op)
    x2 = _rows(x)  # (M, C)
    m_rows, channels = x2.shape
    dtype = x.dtype
    mean = empty((channels,), dtype)
    inv_std = empty((channels,), dtype)
    if training:
        launch(_mean_kernel, channels, column_sums(x2, rows_per_chunk), m_rows, mean)
        chunks = -(-m_rows // rows_per_chunk)
        partial = empty((chunks, channels), dtype)  # (chunks, C)
        launch(_centered_square_partials_kernel, chunks * channels, x2, mean, rows_per_chunk, partial)
        squares = column_sums(partial, rows_per_chunk)  # (C,) sum of (x - mean)^2
        launch(_train_stats_kernel, channels, mean, squares, m_rows, scalar(eps, dtype), scalar(momentum, dtype),
               running_mean, running_var, inv_std)
    else:
        launch(_eval_stats_kernel, channels, running_mean, running_var, scalar(eps, dtype), mean, inv_std)
    y = empty(x.shape, dtype)
    launch(_normalize_kernel, x.size, x2, mean, inv_std, gamma, beta, _rows(y))
    return y, (x, mean, inv_std, gamma, bool(training))


def batchnorm_backward(dy, cache, rows_per_chunk: int = ROWS_PER_CHUNK):
    """Gradients of batchnorm_forward. dy: like y. Returns (dx, dgamma, dbeta): x's shape, (C,), (C,)."""
    x, mean, inv_std, gamma, training = cache
    dy = check_gradient("dy", dy, x.shape, x.dtype)
    x2, dy2 = _rows(x), _rows(dy)  # (M, C)
    m_rows, channels = x2.shape
    chunks = -(-m_rows // rows_per_chunk)
    partial_dy = empty((chunks, channels), x.dtype)  # (chunks, C)
    partial_dy_xhat = empty((chunks, channels), x.dtype)  # (chunks, C)
    launch(_gradient_partials_kernel, chunks * channels, dy2, x2, mean, inv_std, rows_per_chunk,
           partial_dy, partial_dy_xhat)
    dbeta = column_sums(partial_dy, rows_per_chunk)  # (C,)
    dgamma = column_sums(partial_dy_xhat, rows_per_chunk)  # (C,)
    dx = empty(x.shape, x.dtype)
    if training:
        launch(_train_dx_kernel, x.size, dy2, x2, mean, inv_std, gamma, dbeta, dgamma, m_rows, _rows(dx))
    else:
        launch(_eval_dx_kernel, x.size, dy2, inv_std, gamma, _rows(dx))
    return dx, dgamma, dbeta
