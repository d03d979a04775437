"""Dropout and drop path (stochastic depth) in plain NumPy (tier 1).

Dimensions: N batch, then any shape, e.g. (N, H, W, C) or (N, C). p is the drop probability.

Dropout (before the classifier): one coin per ELEMENT,

    keep ~ Bernoulli(1 - p)           (x's shape)
    y = x * keep / (1 - p)            dx = dy * keep / (1 - p)

Drop path (stochastic depth, on the residual branch of MBConv blocks): one coin per SAMPLE, so a
whole block's branch is skipped for that sample (torchvision StochasticDepth(p, "row"), TF drop_connect):

    keep_n ~ Bernoulli(1 - p)         (N, 1, 1, 1) for 4-D x, (N, 1) for 2-D
    y = x * keep / (1 - p)            dx = dy * keep / (1 - p)

Dividing by 1 - p keeps the expected value: E[y] = x, so nothing changes at eval time, where both are
the identity. The coins come from ``rng``, a numpy Generator the caller owns, so runs are repeatable:
keep = (u >= p) with u uniform in [0, 1) drawn in x's dtype, which has probability 1 - p.
"""
from __future__ import annotations

import numpy as np

from .._checks import check_drop_cache, check_drop_gradient, validate_drop_inputs  # noqa: F401 (the contract)


def drop_scale(p: float, dtype) -> np.generic:
    """1 / (1 - p) in x's dtype: every kept entry is multiplied by exactly this number."""
    return np.dtype(dtype).type(1 / (1 - p))


def draw_keep(x: np.ndarray, p: float, rng, per_sample: bool) -> tuple:
    """The coins, for every tier: (keep, scale). keep = (u >= p), u = rng.random(shape, dtype=x.dtype),
    shape x's (dropout, one coin per element) or (N, 1, ..., 1) (drop path, one coin per sample);
    scale = 1 / (1 - p) in x's dtype. The same rng gives the same mask in all three tiers."""
    shape = (x.shape[0],) + (1,) * (x.ndim - 1) if per_sample else x.shape   # (N, 1, 1, 1) or x's
    return rng.random(shape, dtype=x.dtype) >= p, drop_scale(p, x.dtype)


def _masked_forward(x, p, rng, training, per_sample: bool):
    x, p = validate_drop_inputs(x, p, rng, training, op="drop_path_forward" if per_sample else "dropout_forward")
    if not training or p == 0:
        return x, (None, None, x.shape, x.dtype)
    keep, scale = draw_keep(x, p, rng, per_sample)
    return x * keep * scale, (keep, scale, x.shape, x.dtype)


def dropout_forward(x, p, rng, training=True):
    """y = x * keep / (1 - p), keep ~ Bernoulli(1 - p) per element. Identity if p == 0 or not training.

    x: any shape; p: drop probability in [0, 1); rng: numpy Generator (needed when training, p > 0).
    Cache: (keep, scale, shape, dtype). keep is a boolean mask of x's shape (1 byte per entry, not a
    float array), scale = 1 / (1 - p); keep is None for the identity.
    """
    return _masked_forward(x, p, rng, training, per_sample=False)


def drop_path_forward(x, p, rng, training=True):
    """y = x * keep_n / (1 - p), one keep_n ~ Bernoulli(1 - p) per sample n. Identity if p == 0 or not training.

    x: (N, ...), e.g. (N, H, W, C); the mask has shape (N, 1, ..., 1) and broadcasts over the rest.
    Cache: (keep, scale, shape, dtype) as in dropout_forward, keep of shape (N, 1, ..., 1).
    """
    return _masked_forward(x, p, rng, training, per_sample=True)


def _masked_backward(dy, cache, per_sample: bool):
    keep, scale, shape, dtype = check_drop_cache(cache, per_sample)
    dy = check_drop_gradient(dy, shape, dtype, op="drop_path_backward" if per_sample else "dropout_backward")
    if keep is None:
        return (dy,)
    return (dy * keep * scale,)


def dropout_backward(dy, cache):
    """dx = dy * keep / (1 - p): the same mask as the forward. Returns (dx,)."""
    return _masked_backward(dy, cache, per_sample=False)


def drop_path_backward(dy, cache):
    """dx = dy * keep_n / (1 - p) per sample. Returns (dx,)."""
    return _masked_backward(dy, cache, per_sample=True)
