"""BatchNorm followed by SiLU in one op (a speed path; the readable version is the two ops in a row).

Every conv-BN-activation unit of EfficientNetV2 ends in BN then SiLU. Run separately, the pair makes
four passes over the activation in forward (BN reads x, writes h; SiLU reads h, writes y) and keeps
two activation-sized arrays for backward (x for BN, h for SiLU). Fused:

    forward:   h = gamma (x - mean) inv_std + beta;   y = h sigmoid(h)        one pass after the stats
    backward:  g = dy s (1 + h (1 - s)),  s = sigmoid(h)    (SiLU's backward, h recomputed from x)
               dbeta = sum_m g,  dgamma = sum_m g xhat                         (one pass: g and the sums)
               dx = gamma inv_std (g - dbeta / M - xhat dgamma / M)          (one pass)

and the cache holds x alone (h is recomputed: a multiply-add per entry). Pass 1 stores g (in dx's
memory) for pass 2: recomputing it there instead saves memory traffic but costs a second sigmoid,
and measured slower (6.8 ms against 3.7 ms for the backward of an (8, 32, 32, 192) activation).
Same formulas as ``batchnorm.py`` and ``activations.py``; ``tests/ops/test_fused.py`` checks the fused op against
``silu(batchnorm(x))`` and against finite differences.

Dimensions: x is (N, H, W, C) or (N, C), viewed as (M, C) rows; statistics per channel over M rows.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._checks import check_batchnorm_cache, check_gradient, validate_batchnorm_inputs
from .activations import FAST, silu_scalar, silu_slope
from .batchnorm import _rows, add_partials, normalization_statistics, rows_per_chunk


@njit(parallel=True, fastmath=FAST, cache=True, error_model="numpy")
def _bn_silu_kernel(x2, mean, scale, beta, y2):
    """y_mc = h sigmoid(h), h = (x_mc - mean_c) scale_c + beta_c. (M, C) rows over the cores.

    ``silu_scalar`` and ``silu_slope`` are the SiLU op's own (activations.py): the same limits at
    -inf and inf (silu(-inf) = 0), and ``FAST`` (fastmath that keeps NaN and inf), as the SiLU op."""
    m_rows, channels = x2.shape
    one = x2.dtype.type(1)
    for m in prange(m_rows):
        for c in range(channels):
            h = (x2[m, c] - mean[c]) * scale[c] + beta[c]
            y2[m, c] = silu_scalar(h, one)


@njit(parallel=True, fastmath=FAST, cache=True, error_model="numpy")
def _silu_grad_and_sums(dy2, x2, mean, inv_std, scale, beta, g2, rows_per_chunk):
    """g = SiLU'(h) dy written to g2, and per channel sum_m g (dbeta) and sum_m g xhat (dgamma).

    Rows split into chunks; each chunk owns one row of the partial buffers (race-free)."""
    m_rows, channels = x2.shape
    one = x2.dtype.type(1)
    chunks = (m_rows + rows_per_chunk - 1) // rows_per_chunk
    partial_g = np.zeros((chunks, channels), dtype=x2.dtype)           # (chunks, C)
    partial_g_xhat = np.zeros((chunks, channels), dtype=x2.dtype)      # (chunks, C)
    for k in prange(chunks):
        for m in range(k * rows_per_chunk, min(m_rows, (k + 1) * rows_per_chunk)):
            for c in range(channels):
                xhat = (x2[m, c] - mean[c]) * inv_std[c]
                h = (x2[m, c] - mean[c]) * scale[c] + beta[c]                 # the BN output
                g = dy2[m, c] * silu_slope(h, one)                          # dy s (1 + h (1 - s))
                g2[m, c] = g
                partial_g[k, c] += g
                partial_g_xhat[k, c] += g * xhat
    return add_partials(partial_g_xhat), add_partials(partial_g)              # dgamma, dbeta


@njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
def _dx_kernel(g2, x2, mean, inv_std, scale, mean_g, mean_g_xhat, training, dx2):
    """training: dx = scale (g - mean_g - xhat mean_g_xhat); eval: dx = scale g (in place into dx2)."""
    m_rows, channels = x2.shape
    for m in prange(m_rows):
        for c in range(channels):
            if training:
                xhat = (x2[m, c] - mean[c]) * inv_std[c]
                dx2[m, c] = scale[c] * (g2[m, c] - mean_g[c] - xhat * mean_g_xhat[c])
            else:
                dx2[m, c] = scale[c] * g2[m, c]


def batchnorm_silu_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-3):
    """y = silu(batchnorm(x)): same arguments, statistics and running-stat update as batchnorm_forward.

    Returns y (x's shape and dtype) and the cache (x, mean, inv_std, gamma, beta, training): x alone
    stands in for both activations the unfused pair would keep.
    """
    x, momentum, eps = validate_batchnorm_inputs(x, gamma, beta, running_mean, running_var, training, momentum, eps,
                                                op="batchnorm_silu_forward")
    gamma = np.ascontiguousarray(gamma)
    beta = np.ascontiguousarray(beta)
    x2 = _rows(x)                                                       # (M, C)
    mean, inv_std = normalization_statistics(x2, running_mean, running_var, training, momentum, eps)
    y = np.empty_like(x)
    _bn_silu_kernel(x2, mean, gamma * inv_std, beta, _rows(y))
    return y, (x, mean, inv_std, gamma, beta, bool(training))


def batchnorm_silu_backward(dy, cache):
    """Gradients of batchnorm_silu_forward. Returns (dx, dgamma, dbeta): x's shape, (C,), (C,)."""
    x, mean, inv_std, gamma, beta, training = check_batchnorm_cache(cache, fused=True)
    dy = check_gradient(dy, x.shape, x.dtype, op="batchnorm_silu_backward")
    x2, dy2 = _rows(x), _rows(dy)                                       # (M, C)
    scale = gamma * inv_std                                             # (C,)
    dx = np.empty_like(x)
    g2 = _rows(dx)                  # g is written into dx's memory, then overwritten row by row by dx
    m_rows = x2.shape[0]
    dgamma, dbeta = _silu_grad_and_sums(dy2, x2, mean, inv_std, scale, beta, g2, rows_per_chunk(m_rows))
    _dx_kernel(g2, x2, mean, inv_std, scale, dbeta / m_rows, dgamma / m_rows, bool(training), g2)
    return dx, dgamma, dbeta
