"""Softmax cross-entropy with label smoothing as CUDA kernels (tier 3). Same math as
``tinyeffnet.ops.losses``.

Dimensions: N batch, K classes. logits z: (N, K); q: (N, K) the target distribution,
hard labels y:  q_nk = (1 - ls) [k == y_n] + ls / K;   soft targets p:  q_nk = (1 - ls) p_nk + ls / K.

Per row n (stable: subtract the row maximum before exp):

    lse_n  = max_n + log sum_k exp(z_nk - max_n)
    loss_n = sum_k q_nk (lse_n - z_nk)
    dz_nk  = (exp(z_nk - lse_n) sum_j q_nj - q_nk) / N
    L      = 1/N sum_n loss_n

Kernels: one thread per (n, k) builds q; one thread per row n computes lse_n, sum_k q_nk and
loss_n / N (a short serial loop over K); one thread per (n, k) then writes dz_nk (a batch has only N
rows, so a thread per row would leave most of the GPU idle for the N*K gradient entries); the mean
is the two-pass sum of ``elementwise.total``. (The CPU kernel, one prange iteration per row, does
all of it in one loop.) The loss stays on the device as a 0-d array, so a training
step needs no host round trip; ``float(tinyeffnet.cuda.to_host(loss))`` reads it.
"""
from __future__ import annotations

import math

import numpy as np

from ..ops._checks import check_probability
from ._runtime import as_device_float_array, cuda, empty, is_device_array, kernel, launch, scalar
from .elementwise import total


@kernel("void(int64[::1], {t}, {t}, {t}[:, ::1])")
def _hard_targets_kernel(labels, off_value, on_value, q):
    """q[n,k] = on_value if k == labels[n] else off_value. labels: (N,); q: (N, K)."""
    n_rows, classes = q.shape
    for idx in range(cuda.grid(1), n_rows * classes, cuda.gridsize(1)):
        k = idx % classes
        n = idx // classes
        q[n, k] = on_value if k == labels[n] else off_value


@kernel("void({t}[:, ::1], {t}, {t}, {t}[:, ::1])")
def _soft_targets_kernel(p, keep, spread, q):
    """q[n,k] = keep p[n,k] + spread, keep = 1 - ls, spread = ls / K. p, q: (N, K)."""
    n_rows, classes = q.shape
    for idx in range(cuda.grid(1), n_rows * classes, cuda.gridsize(1)):
        q[idx // classes, idx % classes] = keep * p[idx // classes, idx % classes] + spread


@kernel("void({t}[:, ::1], {t}[:, ::1], {t}[::1], {t}[::1], {t}[::1])")
def _row_loss_kernel(z, q, row_loss, lse, q_sum):
    """Per row n (one thread each): lse_n, q_sum_n = sum_k q_nk and row_loss_n = loss_n / N.
    z, q: (N, K); row_loss, lse, q_sum: (N,)."""
    n_rows, classes = z.shape
    zero = z.dtype.type(0)
    inv_n = z.dtype.type(1) / z.dtype.type(n_rows)
    for n in range(cuda.grid(1), n_rows, cuda.gridsize(1)):
        row_max = z[n, 0]
        for k in range(1, classes):
            row_max = max(row_max, z[n, k])
        exp_sum = zero
        for k in range(classes):
            exp_sum += math.exp(z[n, k] - row_max)
        row_lse = row_max + math.log(exp_sum)
        weight = zero
        loss = zero
        for k in range(classes):
            weight += q[n, k]
            loss += q[n, k] * (row_lse - z[n, k])
        lse[n] = row_lse
        q_sum[n] = weight
        row_loss[n] = loss * inv_n


@kernel("void({t}[:, ::1], {t}[:, ::1], {t}[::1], {t}[::1], {t}[:, ::1])")
def _dlogits_kernel(z, q, lse, q_sum, dz):
    """dz[n,k] = (exp(z_nk - lse_n) q_sum_n - q_nk) / N, one thread per entry. z, q, dz: (N, K)."""
    n_rows, classes = z.shape
    inv_n = z.dtype.type(1) / z.dtype.type(n_rows)
    for idx in range(cuda.grid(1), n_rows * classes, cuda.gridsize(1)):
        k = idx % classes
        n = idx // classes
        dz[n, k] = (math.exp(z[n, k] - lse[n]) * q_sum[n] - q[n, k]) * inv_n


def _target_distribution(labels, n, k, label_smoothing, dtype):
    """Check ``labels`` (host or device) and build q (N, K) on the device."""
    q = empty((n, k), dtype)
    off = scalar(label_smoothing / k, dtype)  # ls / K
    keep = scalar(1 - label_smoothing, dtype)  # 1 - ls
    on_device = is_device_array(labels) and not isinstance(labels, np.ndarray)
    if not on_device and not isinstance(labels, np.ndarray):
        raise TypeError("labels must be a numpy.ndarray or a CUDA device array of class indices, "
                        f"got {type(labels).__name__}")
    label_dtype = np.dtype(labels.dtype)
    if len(labels.shape) == 2 and label_dtype in (np.float32, np.float64):
        if label_dtype != np.dtype(dtype):
            raise TypeError(f"mixed dtypes: labels has dtype {label_dtype} but the input has dtype {np.dtype(dtype)}")
        if tuple(labels.shape) != (n, k):
            raise ValueError(f"probability targets must have the shape of logits {(n, k)}, got {tuple(labels.shape)}")
        probs = as_device_float_array("labels", labels if on_device else cuda.to_device(np.ascontiguousarray(labels)))
        launch(_soft_targets_kernel, n * k, probs, keep, off, q)
        return q
    if label_dtype == np.bool_ or not np.issubdtype(label_dtype, np.integer):
        raise TypeError(
            f"labels must have an integer dtype (class indices), or be a float (N, K) matrix of "
            f"probabilities, got dtype {label_dtype} and shape {tuple(labels.shape)}"
        )
    if len(labels.shape) != 1:
        raise ValueError(f"labels must be 1-D (N,), got {len(labels.shape)}-D array of shape {tuple(labels.shape)}")
    if labels.shape[0] != n:
        raise ValueError(f"labels has length {labels.shape[0]} but logits has {n} rows")
    host = labels.copy_to_host() if on_device else labels  # N integers: the range check reads them
    low, high = int(host.min()), int(host.max())
    if low < 0 or high >= k:
        raise ValueError(f"labels must be in [0, {k}), got {low if low < 0 else high}")
    labels64 = cuda.to_device(np.ascontiguousarray(host, dtype=np.int64))  # (N,)
    launch(_hard_targets_kernel, n * k, labels64, off, off + keep, q)
    return q


def softmax_cross_entropy(logits, labels, label_smoothing=0.0):
    """Mean cross-entropy between softmax(logits) and the (smoothed) targets, and its gradient.

    logits: (N, K) device array; labels: (N,) integers in [0, K) or (N, K) probabilities of the logits'
    dtype, on the host (numpy) or the device; label_smoothing: in [0, 1).
    Returns (loss, dlogits): loss a 0-d device array of the logits' dtype, dlogits (N, K) on the device.
    No cache: the loss ends the network.
    """
    logits = as_device_float_array("logits", logits, ndim=2)
    n, k = logits.shape
    if n == 0 or k == 0:
        raise ValueError(f"logits must have at least one row and one class, got shape {logits.shape}")
    label_smoothing = check_probability("label_smoothing", label_smoothing)
    q = _target_distribution(labels, n, k, label_smoothing, logits.dtype)  # (N, K)
    row_loss, lse, q_sum = (empty((n,), logits.dtype) for _ in range(3))  # (N,) each: loss_n / N, lse_n, q_sum_n
    launch(_row_loss_kernel, n, logits, q, row_loss, lse, q_sum)
    dlogits = empty((n, k), logits.dtype)  # (N, K)
    launch(_dlogits_kernel, n * k, logits, q, lse, q_sum, dlogits)
    return total(row_loss), dlogits
