"""Dropout and drop path (stochastic depth) as CUDA kernels (tier 3). Same math and the same coins
as ``tinyeffnet.ops.regularization``.

Dimensions: N batch, R = the rest of one sample's entries (H*W*C for (N, H, W, C)); p drop probability.

    dropout:    keep ~ Bernoulli(1 - p) per element;  drop path: keep_n ~ Bernoulli(1 - p) per sample
    y = x * keep / (1 - p),   dx = dy * keep / (1 - p);   identity when p == 0 or not training.

The coins: keep = (u >= p), u = rng.random(shape, dtype=x.dtype) drawn on the HOST by the caller's
numpy Generator, exactly as the CPU tier draws them, so the same rng gives the same mask on both
devices (and the CPU-vs-CUDA tests compare exactly). The mask is small where EfficientNet uses it:
(N, C_head) for dropout before the classifier, (N,) for drop path; it is copied to the device as
uint8 (1 byte per coin). The kernels apply it, one thread per entry.
"""
from __future__ import annotations

import numpy as np

from ..ops._checks import check_probability
from ..ops.reference.regularization import draw_keep
from ._runtime import as_device_float_array, check_gradient, cuda, empty, kernel, launch
from .elementwise import flat


@kernel("void({t}[::1], uint8[::1], {t}, {t}[::1])")
def _apply_element_mask(x, keep, scale, y):
    """y_i = x_i * scale if keep_i else 0. x, keep, y: (L,)."""
    zero = x.dtype.type(0)
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        y[i] = x[i] * scale if keep[i] else zero


@kernel("void({t}[:, ::1], uint8[::1], {t}, {t}[:, ::1])")
def _apply_sample_mask(x2, keep, scale, y2):
    """y[n,r] = x[n,r] * scale if keep_n else 0. x2, y2: (N, R); keep: (N,)."""
    n_samples, rest = x2.shape
    zero = x2.dtype.type(0)
    for idx in range(cuda.grid(1), n_samples * rest, cuda.gridsize(1)):
        n = idx // rest
        y2[n, idx % rest] = x2[n, idx % rest] * scale if keep[n] else zero


def _validate(x, p, rng, training):
    x = as_device_float_array("x", x)
    if x.ndim < 1:
        raise ValueError(f"x must have a batch axis (at least 1-D), got shape {x.shape}")
    p = check_probability("p", p)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be True or False, got {training!r}")
    if training and p > 0 and not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)) when training with p > 0, "
            f"got {type(rng).__name__}"
        )
    return x, p


def _per_sample(a):
    """(N, ...) -> (N, R) view, one row per sample."""
    return a.reshape(a.shape[0], a.size // max(1, a.shape[0]))


def _masked_forward(x, p, rng, training, per_sample: bool):
    x, p = _validate(x, p, rng, training)
    if not training or p == 0:
        return x, (None, None, tuple(x.shape), x.dtype)
    keep_host, scale = draw_keep(x, p, rng, per_sample)  # on the host: the CPU tiers' coins
    keep = cuda.to_device(keep_host.reshape(-1).astype(np.uint8))  # (L,) or (N,)
    return _apply_mask(x, keep, scale, per_sample), (keep, scale, tuple(x.shape), x.dtype)


def _masked_backward(dy, cache, per_sample: bool):
    keep, scale, shape, dtype = cache
    dy = check_gradient("dy", dy, shape, dtype)
    if keep is None:
        return (dy,)
    return (_apply_mask(dy, keep, scale, per_sample),)


def _apply_mask(a, keep, scale, per_sample: bool):
    """a * keep * scale on the device, by the kernel for the mask's kind (forward on x, backward on dy)."""
    out = empty(a.shape, a.dtype)
    if per_sample:
        launch(_apply_sample_mask, a.size, _per_sample(a), keep, scale, _per_sample(out))
    else:
        launch(_apply_element_mask, a.size, flat(a), keep, scale, flat(out))
    return out


def dropout_forward(x, p, rng, training=True):
    """y = x * keep / (1 - p), keep ~ Bernoulli(1 - p) per element. Identity if p == 0 or not training.

    x: device array, any shape; rng: numpy Generator (coins drawn on the host, as on the CPU).
    Returns y (x itself for the identity) and the cache.
    Cache: (keep, scale, shape, dtype): keep a uint8 device mask of x's size (None for the identity),
    scale = 1 / (1 - p) in x's dtype.
    """
    return _masked_forward(x, p, rng, training, per_sample=False)


def dropout_backward(dy, cache):
    """dx = dy * keep / (1 - p) with the forward's mask. Returns (dx,)."""
    return _masked_backward(dy, cache, per_sample=False)


def drop_path_forward(x, p, rng, training=True):
    """y = x * keep_n / (1 - p), one keep_n ~ Bernoulli(1 - p) per sample. Identity if p == 0 or not training.

    x: (N, ...) device array. Returns y and the cache.
    Cache: (keep, scale, shape, dtype) as in dropout_forward, keep a uint8 device array (N,).
    """
    return _masked_forward(x, p, rng, training, per_sample=True)


def drop_path_backward(dy, cache):
    """dx = dy * keep_n / (1 - p) per sample. Returns (dx,)."""
    return _masked_backward(dy, cache, per_sample=True)
