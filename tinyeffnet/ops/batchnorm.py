"""Batch normalisation: Numba CPU kernels (tier 2). Same math as ``reference/batchnorm.py``.

Dimensions: N batch, H height, W width, C channels; M = N*H*W values per channel.
x is (N, H, W, C) or (N, C); both are viewed as a matrix x2 of shape (M, C), one row per pixel.

Training:
    mean_c   = 1/M sum_m x_mc
    var_c    = 1/M sum_m (x_mc - mean_c)^2             (centred: no cancellation of E[x^2] - E[x]^2)
    y_mc     = gamma_c (x_mc - mean_c) inv_std_c + beta_c,    inv_std_c = 1 / sqrt(var_c + eps)
    running_mean <- (1 - momentum) running_mean + momentum mean
    running_var  <- (1 - momentum) running_var  + momentum var M / (M - 1)      (as PyTorch, in place)
Eval: mean, var = running statistics.

Backward (xhat = (x - mean) inv_std):
    dbeta_c  = sum_m dy_mc,   dgamma_c = sum_m dy_mc xhat_mc
    training: dx_mc = gamma_c inv_std_c (dy_mc - dbeta_c / M - xhat_mc dgamma_c / M)
    eval:     dx_mc = gamma_c inv_std_c dy_mc

How the kernels split the work. Channels-last rows are contiguous over C, so every kernel walks
rows in order with the innermost loop over C (vectorised). The per-channel sums split the M rows
into chunks of at most ROWS_PER_CHUNK rows (``rows_per_chunk``): prange over chunks, each chunk writes
only its own row of a (chunks, C) partial buffer (no race), and a short serial loop adds the partials.
Chunking also keeps float32 sums accurate: each running sum has at most ROWS_PER_CHUNK terms.

Mean and variance in one trip through memory (``_mean_and_m2``): each chunk computes its own mean,
then its own sum of squared deviations M2_k around it; the second pass re-reads rows that are still
in the cache. The chunks then combine exactly (Chan, Golub and LeVeque's parallel variance):

    mean = sum_k n_k mean_k / M,       M2 = sum_k [ M2_k + n_k (mean_k - mean)^2 ],    var = M2 / M

The readable version, a whole-array mean followed by the centred squares, reads x from memory twice
(``reference/batchnorm.py``); the tests compare the two.
The (C,)-sized arithmetic between kernels (mean, inv_std, ...) is plain NumPy in x's dtype.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._checks import check_batchnorm_cache, check_gradient, validate_batchnorm_inputs
from .reference.batchnorm import update_running_stats

ROWS_PER_CHUNK = 256
MIN_CHUNKS = 16             # small activations (stage 6: M = 128 rows) still give every core work


def rows_per_chunk(m_rows: int) -> int:
    """Rows per chunk of a per-channel sum: ROWS_PER_CHUNK, or fewer so that there are MIN_CHUNKS."""
    return max(1, min(ROWS_PER_CHUNK, -(-m_rows // MIN_CHUNKS)))


@njit(parallel=True, fastmath=True, cache=True)
def _mean_and_m2(x2, rows_per_chunk):
    """Per channel mean_c and M2_c = sum_m (x2_mc - mean_c)^2 in one trip through memory (see above).

    x2: (M, C). Returns mean (C,), M2 (C,)."""
    m_rows, channels = x2.shape
    chunks = (m_rows + rows_per_chunk - 1) // rows_per_chunk
    chunk_mean = np.zeros((chunks, channels), dtype=x2.dtype)          # (chunks, C)
    chunk_m2 = np.zeros((chunks, channels), dtype=x2.dtype)            # (chunks, C)
    for k in prange(chunks):
        first, last = k * rows_per_chunk, min(m_rows, (k + 1) * rows_per_chunk)
        for m in range(first, last):
            for c in range(channels):
                chunk_mean[k, c] += x2[m, c]
        inv_count = x2.dtype.type(1) / (last - first)
        for c in range(channels):
            chunk_mean[k, c] *= inv_count
        for m in range(first, last):                                    # the same rows: still in cache
            for c in range(channels):
                d = x2[m, c] - chunk_mean[k, c]
                chunk_m2[k, c] += d * d
    mean = np.zeros(channels, dtype=x2.dtype)                           # (C,)
    for k in range(chunks):
        count = min(m_rows, (k + 1) * rows_per_chunk) - k * rows_per_chunk
        for c in range(channels):
            mean[c] += count * chunk_mean[k, c]
    for c in range(channels):
        mean[c] /= m_rows
    m2 = np.zeros(channels, dtype=x2.dtype)                             # (C,)
    for k in range(chunks):
        count = min(m_rows, (k + 1) * rows_per_chunk) - k * rows_per_chunk
        for c in range(channels):
            shift = chunk_mean[k, c] - mean[c]
            m2[c] += chunk_m2[k, c] + count * shift * shift
    return mean, m2


@njit(cache=True)
def add_partials(partial):
    """The per-channel total of a (chunks, C) buffer of partial sums: (C,). Serial: chunks is small."""
    chunks, channels = partial.shape
    total = np.zeros(channels, dtype=partial.dtype)                    # (C,)
    for k in range(chunks):
        for c in range(channels):
            total[c] += partial[k, c]
    return total


@njit(parallel=True, fastmath=True, cache=True)
def _gradient_sums(dy2, x2, mean, inv_std, rows_per_chunk):
    """Per channel: sum_m dy_mc (-> dbeta) and sum_m dy_mc xhat_mc (-> dgamma). All (M, C) / (C,)."""
    m_rows, channels = x2.shape
    chunks = (m_rows + rows_per_chunk - 1) // rows_per_chunk
    partial_dy = np.zeros((chunks, channels), dtype=x2.dtype)          # (chunks, C)
    partial_dy_xhat = np.zeros((chunks, channels), dtype=x2.dtype)     # (chunks, C)
    for k in prange(chunks):
        for m in range(k * rows_per_chunk, min(m_rows, (k + 1) * rows_per_chunk)):
            for c in range(channels):
                g = dy2[m, c]
                partial_dy[k, c] += g
                partial_dy_xhat[k, c] += g * (x2[m, c] - mean[c]) * inv_std[c]
    return add_partials(partial_dy_xhat), add_partials(partial_dy)          # dgamma, dbeta


@njit(parallel=True, fastmath=True, cache=True)
def _normalize_kernel(x2, mean, scale, beta, y2):
    """y_mc = (x_mc - mean_c) * scale_c + beta_c, scale = gamma * inv_std. Rows split over cores."""
    m_rows, channels = x2.shape
    for m in prange(m_rows):
        for c in range(channels):
            y2[m, c] = (x2[m, c] - mean[c]) * scale[c] + beta[c]


@njit(parallel=True, fastmath=True, cache=True)
def _train_dx_kernel(dy2, x2, mean, inv_std, scale, mean_dy, mean_dy_xhat, dx2):
    """dx_mc = scale_c (dy_mc - mean_dy_c - xhat_mc mean_dy_xhat_c), xhat_mc = (x_mc - mean_c) inv_std_c."""
    m_rows, channels = x2.shape
    for m in prange(m_rows):
        for c in range(channels):
            xhat = (x2[m, c] - mean[c]) * inv_std[c]
            dx2[m, c] = scale[c] * (dy2[m, c] - mean_dy[c] - xhat * mean_dy_xhat[c])


@njit(parallel=True, fastmath=True, cache=True)
def _eval_dx_kernel(dy2, scale, dx2):
    """dx_mc = scale_c dy_mc: the gradient of the affine map y = x scale + shift."""
    m_rows, channels = dy2.shape
    for m in prange(m_rows):
        for c in range(channels):
            dx2[m, c] = scale[c] * dy2[m, c]


def _rows(a: np.ndarray) -> np.ndarray:
    """(N, H, W, C) or (N, C) -> (M, C) view, one row per pixel."""
    return a.reshape(-1, a.shape[-1])


def batch_statistics(x2: np.ndarray) -> tuple:
    """Per channel of x2 (M, C): mean, biased variance (to normalise) and unbiased variance (for
    the running estimate, as PyTorch). Each (C,)."""
    m_rows = x2.shape[0]
    mean, m2 = _mean_and_m2(x2, rows_per_chunk(m_rows))
    return mean, m2 / m_rows, m2 / (m_rows - 1)


def normalization_statistics(x2, running_mean, running_var, training, momentum, eps) -> tuple:
    """The (mean, inv_std) that normalise x2 (M, C), each (C,): the batch's when training (and the
    running statistics updated in place), else copies of the running ones (a later update must not
    change what backward sees). inv_std = 1 / sqrt(var + eps). Shared with the fused BN+SiLU op."""
    if training:
        mean, var, unbiased_var = batch_statistics(x2)                  # (C,) each
        update_running_stats(running_mean, running_var, mean, unbiased_var, momentum)
    else:
        mean = np.array(running_mean, copy=True)                        # (C,)
        var = np.array(running_var, copy=True)                          # (C,)
    return mean, 1 / np.sqrt(var + eps)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-3):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel (last axis).

    x:            (N, H, W, C) or (N, C), float32 or float64
    gamma, beta:  (C,)  scale and shift, x's dtype
    running_mean, running_var: (C,)  updated in place when training (unbiased variance stored)
    training:     True: batch statistics (biased variance); False: running statistics
    Returns y (x's shape and dtype) and the cache.

    Cache: (x, mean, inv_std, gamma, training). Backward rebuilds xhat = (x - mean) * inv_std on the
    fly instead of storing xhat, a second activation-sized array; gamma scales dx; the training flag
    picks the formula (batch statistics depend on x, running ones do not).
    """
    x, momentum, eps = validate_batchnorm_inputs(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    gamma = np.ascontiguousarray(gamma)
    beta = np.ascontiguousarray(beta)
    x2 = _rows(x)                                                       # (M, C)
    mean, inv_std = normalization_statistics(x2, running_mean, running_var, training, momentum, eps)
    y = np.empty_like(x)
    _normalize_kernel(x2, mean, gamma * inv_std, beta, _rows(y))
    return y, (x, mean, inv_std, gamma, bool(training))


def batchnorm_backward(dy, cache):
    """Gradients of batchnorm_forward. dy: like y. Returns (dx, dgamma, dbeta): x's shape, (C,), (C,)."""
    x, mean, inv_std, gamma, training = check_batchnorm_cache(cache)
    dy = check_gradient(dy, x.shape, x.dtype, op="batchnorm_backward")
    x2, dy2 = _rows(x), _rows(dy)                                       # (M, C)
    dgamma, dbeta = _gradient_sums(dy2, x2, mean, inv_std, rows_per_chunk(x2.shape[0]))
    scale = gamma * inv_std                                             # (C,)
    dx = np.empty_like(x)
    if training:
        m_rows = x2.shape[0]
        _train_dx_kernel(dy2, x2, mean, inv_std, scale, dbeta / m_rows, dgamma / m_rows, _rows(dx))
    else:
        _eval_dx_kernel(dy2, scale, _rows(dx))
    return dx, dgamma, dbeta
