"""Global average pooling as CUDA kernels (tier 3). Same math as ``tinyeffnet.ops.pooling``.

Dimensions: N batch, H height, W width, C channels; P = H*W pixels per image.

    y[n,c]    = 1/P sum_p x[n,p,c]            (N, H, W, C) -> (N, C)
    dx[n,p,c] = dy[n,c] / P                   (N, C) -> (N, H, W, C)

Forward: one thread per output (n, c) sums its P pixels (it owns y[n, c]: no race; neighbouring
threads read neighbouring channels of the same pixel: coalesced). Backward: one thread per dx entry.
"""
from __future__ import annotations

from ._runtime import as_device_float_array, check_gradient, cuda, empty, kernel, launch


@kernel("void({t}[:, :, ::1], {t}[:, ::1])")
def _avg_pool_kernel(x3, y):
    """y[n,c] = mean_p x3[n,p,c]. x3: (N, P, C); y: (N, C)."""
    n_img, pixels, channels = x3.shape
    zero = x3.dtype.type(0)
    inv_pixels = x3.dtype.type(1) / x3.dtype.type(pixels)
    for idx in range(cuda.grid(1), n_img * channels, cuda.gridsize(1)):
        c = idx % channels
        n = idx // channels
        acc = zero
        for p in range(pixels):
            acc += x3[n, p, c]
        y[n, c] = acc * inv_pixels


@kernel("void({t}[:, ::1], {t}[:, :, ::1])")
def _spread_kernel(dy, dx3):
    """dx3[n,p,c] = dy[n,c] / P. dy: (N, C); dx3: (N, P, C)."""
    n_img, pixels, channels = dx3.shape
    inv_pixels = dx3.dtype.type(1) / dx3.dtype.type(pixels)
    for idx in range(cuda.grid(1), n_img * pixels * channels, cuda.gridsize(1)):
        c = idx % channels
        n = idx // (channels * pixels)
        dx3[n, (idx // channels) % pixels, c] = dy[n, c] * inv_pixels


def global_avg_pool_forward(x):
    """y = mean of x over H and W. x: (N, H, W, C) device array -> y: (N, C), x's dtype.

    Cache: (shape, dtype) of x: the mean is linear, backward needs only where to spread dy and by how much.
    """
    x = as_device_float_array("x", x, ndim=4)
    n, h, w, c = x.shape
    if h * w == 0:
        raise ValueError(f"x must have H, W >= 1 to be averaged, got shape {x.shape}")
    y = empty((n, c), x.dtype)
    launch(_avg_pool_kernel, n * c, x.reshape(n, h * w, c), y)
    return y, (tuple(x.shape), x.dtype)


def global_avg_pool_backward(dy, cache):
    """dx[n,h,w,c] = dy[n,c] / (H W). dy: (N, C). Returns (dx,) with dx: (N, H, W, C)."""
    shape, dtype = cache
    n, h, w, c = shape
    dy = check_gradient("dy", dy, (n, c), dtype)
    dx = empty(shape, dtype)
    launch(_spread_kernel, n * h * w * c, dy, dx.reshape(n, h * w, c))
    return (dx,)
