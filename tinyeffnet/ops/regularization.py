"""Dropout and drop path (stochastic depth): Numba CPU kernels (tier 2). Same math and the same coins
as ``reference/regularization.py`` (the same rng gives the same mask in both tiers).

Dimensions: N batch, R = the rest of one sample's entries (H*W*C for (N, H, W, C)); p drop probability.

    dropout:    keep ~ Bernoulli(1 - p) per element (x's shape)
    drop path:  keep_n ~ Bernoulli(1 - p) per sample (mask (N, 1, 1, 1) for 4-D x, (N, 1) for 2-D)
    y = x * keep / (1 - p),   dx = dy * keep / (1 - p);   identity when p == 0 or not training.

The coins: keep = (u >= p) with u = rng.random(shape, dtype=x.dtype) uniform in [0, 1), drawn by
numpy outside the kernels (the caller's Generator decides them, so runs are repeatable). The kernels
only apply the mask: one pass over x, no float mask array in memory.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._checks import check_drop_cache, check_drop_gradient, validate_drop_inputs
from .reference.regularization import draw_keep


# fastmath without "nnan": a dropped NaN stays NaN (NaN * 0), as in the reference tier and PyTorch;
# with "nnan" the compiler may fold x * 0 to 0 and hide it
FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(parallel=True, fastmath=FAST, cache=True)
def _apply_element_mask(x, keep, scale, y):
    """y_i = x_i * (scale if keep_i else 0). x, keep, y: flat (L,)."""
    zero = x.dtype.type(0)
    for i in prange(x.shape[0]):
        y[i] = x[i] * (scale if keep[i] else zero)


@njit(parallel=True, fastmath=FAST, cache=True)
def _apply_sample_mask(x2, keep, scale, y2):
    """y_nr = x_nr * scale if keep_n else 0. x2, y2: (N, R); keep: (N,)."""
    n_samples, rest = x2.shape
    zero = x2.dtype.type(0)
    for n in prange(n_samples):
        factor = scale if keep[n] else zero
        for r in range(rest):
            y2[n, r] = x2[n, r] * factor


def _per_sample(a: np.ndarray) -> np.ndarray:
    """(N, ...) -> (N, R) view, one row per sample."""
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:])))


def _apply_mask(a: np.ndarray, keep: np.ndarray, scale, per_sample: bool) -> np.ndarray:
    """a * keep * scale, by the kernel for the mask's kind (forward on x, backward on dy)."""
    out = np.empty_like(a)
    if per_sample:
        _apply_sample_mask(_per_sample(a), keep.reshape(-1), scale, _per_sample(out))
    else:
        _apply_element_mask(a.reshape(-1), keep.reshape(-1), scale, out.reshape(-1))
    return out


def _masked_forward(x, p, rng, training, per_sample: bool):
    x, p = validate_drop_inputs(x, p, rng, training, op="drop_path_forward" if per_sample else "dropout_forward")
    if not training or p == 0:
        return x, (None, None, x.shape, x.dtype)
    keep, scale = draw_keep(x, p, rng, per_sample)                 # the reference tier's coins
    return _apply_mask(x, keep, scale, per_sample), (keep, scale, x.shape, x.dtype)


def _masked_backward(dy, cache, per_sample: bool):
    keep, scale, shape, dtype = check_drop_cache(cache, per_sample)
    dy = check_drop_gradient(dy, shape, dtype, op="drop_path_backward" if per_sample else "dropout_backward")
    if keep is None:
        return (dy,)
    return (_apply_mask(dy, keep, scale, per_sample),)


def dropout_forward(x, p, rng, training=True):
    """y = x * keep / (1 - p), keep ~ Bernoulli(1 - p) per element. Identity if p == 0 or not training.

    x: any shape; p: drop probability in [0, 1); rng: numpy Generator (needed when training, p > 0).
    Returns y (x's shape and dtype; x itself for the identity) and the cache.
    Cache: (keep, scale, shape, dtype). keep is a boolean mask of x's shape (1 byte per entry, not a
    float array), scale = 1 / (1 - p) in x's dtype; keep is None for the identity.
    """
    return _masked_forward(x, p, rng, training, per_sample=False)


def dropout_backward(dy, cache):
    """dx = dy * keep / (1 - p): the same mask as the forward. Returns (dx,)."""
    return _masked_backward(dy, cache, per_sample=False)


def drop_path_forward(x, p, rng, training=True):
    """y = x * keep_n / (1 - p), one keep_n ~ Bernoulli(1 - p) per sample n. Identity if p == 0 or not training.

    x: (N, ...), e.g. (N, H, W, C); the mask has shape (N, 1, ..., 1) and broadcasts over the rest.
    Returns y (x's shape and dtype; x itself for the identity) and the cache.
    Cache: (keep, scale, shape, dtype) as in dropout_forward, keep of shape (N, 1, ..., 1).
    """
    return _masked_forward(x, p, rng, training, per_sample=True)


def drop_path_backward(dy, cache):
    """dx = dy * keep_n / (1 - p) per sample. Returns (dx,)."""
    return _masked_backward(dy, cache, per_sample=True)
