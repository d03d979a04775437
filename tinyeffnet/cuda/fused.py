"""BatchNorm followed by SiLU on the GPU (tier 3): ``tinyeffnet.ops.fused``'s op, same signature and cache.

NOT fused: each function runs the existing kernels of ``batchnorm.py`` and ``activations.py`` one
after the other, so the GPU tier has the same op set as the CPU tiers (a layer built with the fused
op runs on either device). The cache is the fused CPU op's, x alone with the statistics, and
backward recomputes the BN output h (one normalise kernel) instead of keeping it:

    forward:   h = batchnorm(x);   y = silu(h)                              (h is not kept)
    backward:  h = gamma (x - mean) inv_std + beta   (recomputed)
               g = silu_backward(dy, h) = dy s (1 + h (1 - s)),  s = sigmoid(h)
               (dx, dgamma, dbeta) = batchnorm_backward(g)

Dimensions: x (N, H, W, C) or (N, C) device array; gamma, beta, running_mean, running_var (C,).
A fused kernel (one pass for y, one for g and the sums) would save two activation-sized passes.
"""
from __future__ import annotations

from ._runtime import check_gradient, empty, launch
from .activations import silu_backward, silu_forward
from .batchnorm import ROWS_PER_CHUNK, _forward, _normalize_kernel, _rows, batchnorm_backward


def batchnorm_silu_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-3):
    """y = silu(batchnorm(x)): batchnorm_forward's arguments, statistics and running-stat update.

    Returns y (x's shape and dtype) and the cache (x, mean, inv_std, gamma, beta, training).
    """
    h, (x, mean, inv_std, gamma, training) = _forward(x, gamma, beta, running_mean, running_var, training,
                                                      momentum, eps, ROWS_PER_CHUNK, op="batchnorm_silu_forward")
    y, _ = silu_forward(h)
    return y, (x, mean, inv_std, gamma, beta, training)


def batchnorm_silu_backward(dy, cache):
    """Gradients of batchnorm_silu_forward. Returns (dx, dgamma, dbeta): x's shape, (C,), (C,)."""
    x, mean, inv_std, gamma, beta, training = cache
    dy = check_gradient("dy", dy, x.shape, x.dtype)
    h = empty(x.shape, x.dtype)
    launch(_normalize_kernel, x.size, _rows(x), mean, inv_std, gamma, beta, _rows(h))  # the BN output again
    (g,) = silu_backward(dy, (h,))
    return batchnorm_backward(g, (x, mean, inv_std, gamma, training))
