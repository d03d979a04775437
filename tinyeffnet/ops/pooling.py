"""Global average pooling: Numba CPU kernels (tier 2). Same math as ``reference/pooling.py``.

Dimensions: N batch, H height, W width, C channels; P = H*W pixels per image.

    y_nc = 1/P sum_p x_npc                 (N, H, W, C) -> (N, C)
    dx_npc = dy_nc / P                     (N, C) -> (N, H, W, C)

Each image's pixels are rows of a (P, C) matrix, contiguous over C: prange over images, inner loop
over C (vectorised). Images are independent, so no two iterations write the same output.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._checks import check_pool_cache, check_pool_gradient, validate_pool_input


@njit(parallel=True, fastmath=True, cache=True)
def _avg_pool_kernel(x3, y):
    """y_nc = mean_p x3_npc. x3: (N, P, C), y: (N, C)."""
    n_images, pixels, channels = x3.shape
    inv_pixels = x3.dtype.type(1) / x3.dtype.type(pixels)
    zero = x3.dtype.type(0)
    for n in prange(n_images):                                   # row y[n] belongs to iteration n
        for c in range(channels):
            y[n, c] = zero
        for p in range(pixels):
            for c in range(channels):
                y[n, c] += x3[n, p, c]
        for c in range(channels):
            y[n, c] *= inv_pixels


@njit(parallel=True, fastmath=True, cache=True)
def _spread_kernel(dy, dx3):
    """dx3_npc = dy_nc / P. dy: (N, C), dx3: (N, P, C)."""
    n_images, pixels, channels = dx3.shape
    inv_pixels = dx3.dtype.type(1) / dx3.dtype.type(pixels)
    for n in prange(n_images):
        for p in range(pixels):
            for c in range(channels):
                dx3[n, p, c] = dy[n, c] * inv_pixels


def global_avg_pool_forward(x):
    """y = mean of x over H and W. x: (N, H, W, C) -> y: (N, C), x's dtype.

    Cache: (shape, dtype) of x. The mean is linear, so backward needs no values, only where to spread
    dy and how much to divide by.
    """
    x = validate_pool_input(x)
    n, h, w, c = x.shape
    y = np.empty((n, c), dtype=x.dtype)
    _avg_pool_kernel(x.reshape(n, h * w, c), y)
    return y, (x.shape, x.dtype)


def global_avg_pool_backward(dy, cache):
    """dx_nhwc = dy_nc / (H W). dy: (N, C). Returns (dx,) with dx: (N, H, W, C)."""
    shape, dtype = check_pool_cache(cache)
    dy = check_pool_gradient(dy, shape, dtype)
    n, h, w, c = shape
    dx = np.empty(shape, dtype=dtype)
    _spread_kernel(dy, dx.reshape(n, h * w, c))
    return (dx,)
