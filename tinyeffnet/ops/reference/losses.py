"""Softmax cross-entropy with label smoothing, in plain NumPy (tier 1).

Dimensions: N batch, K classes. logits z: (N, K); labels: (N,) class indices, or (N, K) probability
targets (soft labels, e.g. from mixup).

Target distribution q, as PyTorch's cross_entropy(label_smoothing=ls):

    hard labels y:  q_nk = (1 - ls) [k == y_n] + ls / K
    soft targets p: q_nk = (1 - ls) p_nk + ls / K

Stable log-softmax (subtracting the row maximum changes nothing mathematically, but exp never overflows):

    log p_nk = z_nk - max_n - log sum_j exp(z_nj - max_n)

Loss, the mean over the batch, and its gradient:

    L = -1/N sum_n sum_k q_nk log p_nk
    dL/dz_nk = (p_nk sum_j q_nj - q_nk) / N      = (softmax - q) / N when each row of q sums to 1

The forward returns the gradient too: the loss is the last op, and its upstream gradient is 1.
"""
from __future__ import annotations

import numpy as np

from .._checks import validate_loss_inputs  # noqa: F401 (the contract)


def target_distribution(labels, num_classes, label_smoothing, dtype) -> np.ndarray:
    """q (N, K): the smoothed one-hot rows for class indices, or the smoothed probability rows."""
    if labels.ndim == 2:
        return (1 - label_smoothing) * labels + label_smoothing / num_classes
    q = np.full((labels.shape[0], num_classes), label_smoothing / num_classes, dtype=dtype)   # (N, K)
    q[np.arange(labels.shape[0]), labels] += 1 - label_smoothing
    return q


def softmax_cross_entropy(logits, labels, label_smoothing=0.0):
    """Mean cross-entropy between softmax(logits) and the (smoothed) targets, and its gradient.

    logits: (N, K) float32/float64; labels: (N,) integers in [0, K) or (N, K) probabilities
    label_smoothing: in [0, 1)
    Returns (loss, dlogits): loss is a numpy scalar of the logits' dtype (0-d; float(loss) gives a
    Python float), dlogits has the shape and dtype of logits.
    """
    logits, labels, label_smoothing = validate_loss_inputs(logits, labels, label_smoothing)
    n, k = logits.shape
    q = target_distribution(labels, k, label_smoothing, logits.dtype)                 # (N, K)
    shifted = logits - logits.max(axis=1, keepdims=True)                               # (N, K) <= 0
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))               # (N, K)
    loss = -(q * log_p).sum() / n
    dlogits = (np.exp(log_p) * q.sum(axis=1, keepdims=True) - q) / n                   # (N, K)
    return logits.dtype.type(loss), dlogits
