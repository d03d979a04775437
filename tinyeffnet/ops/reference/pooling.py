"""Global average pooling in plain NumPy (tier 1).

Dimensions: N batch, H height, W width, C channels.

    y_nc = 1/(H W) sum_{h, w} x_nhwc                 (N, H, W, C) -> (N, C)
    dx_nhwc = dy_nc / (H W)                           every pixel gets an equal share

EfficientNetV2 pools once before the classifier, and inside every Squeeze-and-Excitation block.
"""
from __future__ import annotations

import numpy as np

from .._checks import check_pool_cache, check_pool_gradient, validate_pool_input  # noqa: F401 (the contract)


def global_avg_pool_forward(x):
    """y = mean of x over H and W. x: (N, H, W, C) -> y: (N, C).

    Cache: (shape, dtype) of x. The mean is linear, so backward needs no values, only where to spread
    dy and how much to divide by.
    """
    x = validate_pool_input(x)
    return x.mean(axis=(1, 2)), (x.shape, x.dtype)


def global_avg_pool_backward(dy, cache):
    """dx_nhwc = dy_nc / (H W). dy: (N, C). Returns (dx,) with dx: (N, H, W, C)."""
    shape, dtype = check_pool_cache(cache)
    dy = check_pool_gradient(dy, shape, dtype)
    n, h, w, c = shape
    dx = np.broadcast_to((dy / (h * w))[:, None, None, :], shape)   # (N, H, W, C)
    return (np.array(dx, copy=True),)
