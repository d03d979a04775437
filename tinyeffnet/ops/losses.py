"""Softmax cross-entropy with label smoothing: Numba CPU kernel (tier 2). Same math as
``reference/losses.py``.

Dimensions: N batch, K classes. logits z: (N, K); q: (N, K) target distribution, built from the labels:
hard labels y:  q_nk = (1 - ls) [k == y_n] + ls / K;   soft targets p:  q_nk = (1 - ls) p_nk + ls / K.

Per row n (stable: subtract the row maximum before exp):

    lse_n     = max_n + log sum_k exp(z_nk - max_n)         log-sum-exp
    loss_n    = sum_k q_nk (lse_n - z_nk)                    = -sum_k q_nk log softmax_nk
    dz_nk     = (exp(z_nk - lse_n) sum_j q_nj - q_nk) / N    = (softmax - q) / N for rows of q summing to 1

    L = 1/N sum_n loss_n

Rows are independent: prange over rows, each writes its own loss_n and dz row (no race).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._checks import validate_loss_inputs
from .reference.losses import target_distribution


@njit(parallel=True, fastmath=True, cache=True)
def _cross_entropy_kernel(z, q, row_loss, dz):
    """z, q, dz: (N, K); row_loss: (N,). Fills row_loss_n and dz_n (already divided by N)."""
    n_rows, classes = z.shape
    zero = z.dtype.type(0)
    inv_n = z.dtype.type(1) / z.dtype.type(n_rows)
    for n in prange(n_rows):
        row_max = z[n, 0]
        for k in range(1, classes):
            row_max = max(row_max, z[n, k])
        total = zero
        for k in range(classes):
            total += math.exp(z[n, k] - row_max)
        lse = row_max + math.log(total)
        q_sum = zero
        loss = zero
        for k in range(classes):
            q_sum += q[n, k]
            loss += q[n, k] * (lse - z[n, k])
        row_loss[n] = loss
        for k in range(classes):
            dz[n, k] = (math.exp(z[n, k] - lse) * q_sum - q[n, k]) * inv_n


def softmax_cross_entropy(logits, labels, label_smoothing=0.0):
    """Mean cross-entropy between softmax(logits) and the (smoothed) targets, and its gradient.

    logits: (N, K) float32/float64; labels: (N,) integers in [0, K) or (N, K) probabilities of the
    logits' dtype; label_smoothing: in [0, 1).
    Returns (loss, dlogits): loss is a numpy scalar of the logits' dtype (0-d; float(loss) gives a
    Python float), dlogits has the shape and dtype of logits. No cache: the loss ends the network.
    """
    logits, labels, label_smoothing = validate_loss_inputs(logits, labels, label_smoothing)
    n, k = logits.shape
    q = np.ascontiguousarray(target_distribution(labels, k, label_smoothing, logits.dtype))   # (N, K)
    row_loss = np.empty(n, dtype=logits.dtype)                      # (N,)
    dlogits = np.empty_like(logits)                                 # (N, K)
    _cross_entropy_kernel(logits, q, row_loss, dlogits)
    return logits.dtype.type(row_loss.sum() / n), dlogits
