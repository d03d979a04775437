"""BatchNorm followed by SiLU, in plain NumPy (tier 1): the readable twin of ``ops/fused.py``.

    forward:   h = gamma (x - mean) inv_std + beta,    y = h sigmoid(h)
    backward:  g = dy s (1 + h (1 - s)),  s = sigmoid(h)          (SiLU's backward)
               (dx, dgamma, dbeta) = batchnorm_backward(g)        (BatchNorm's backward)

x is (N, H, W, C) or (N, C); statistics per channel (last axis). Same arguments, statistics and
running-stat update as ``batchnorm_forward``. The cache is (x, mean, inv_std, gamma, beta, training),
as the fused CPU op's: h is recomputed from x in backward instead of being kept.
"""
from __future__ import annotations

from .._checks import check_batchnorm_cache, check_gradient
from .activations import silu_backward, silu_forward
from .batchnorm import batchnorm_backward, batchnorm_forward


def batchnorm_silu_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-3):
    """y = silu(batchnorm(x)). Returns y (x's shape and dtype) and the cache
    (x, mean, inv_std, gamma, beta, training)."""
    h, (x, mean, inv_std, gamma, training) = batchnorm_forward(x, gamma, beta, running_mean, running_var, training,
                                                               momentum, eps)
    y, _ = silu_forward(h)
    return y, (x, mean, inv_std, gamma, beta, training)


def batchnorm_silu_backward(dy, cache):
    """Gradients of batchnorm_silu_forward. Returns (dx, dgamma, dbeta): x's shape, (C,), (C,)."""
    x, mean, inv_std, gamma, beta, training = check_batchnorm_cache(cache, fused=True)
    dy = check_gradient(dy, x.shape, x.dtype, op="batchnorm_silu_backward")
    h = gamma * ((x - mean) * inv_std) + beta                # the BN output, recomputed
    (g,) = silu_backward(dy, (h,))
    return batchnorm_backward(g, (x, mean, inv_std, gamma, training))
