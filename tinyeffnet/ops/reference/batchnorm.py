"""Batch normalisation in plain NumPy (tier 1): the math, short and obviously right.

Dimensions: N batch, H height, W width, C channels; M = N*H*W values per channel.
x is channels-last (N, H, W, C), or (N, C) after a linear layer; every statistic is per channel,
taken over all the other axes.

Training (statistics of this batch):

    mean_c   = 1/M sum_m x_mc
    var_c    = 1/M sum_m (x_mc - mean_c)^2              (biased: divides by M)
    xhat_mc  = (x_mc - mean_c) / sqrt(var_c + eps)
    y_mc     = gamma_c * xhat_mc + beta_c

    running_mean <- (1 - momentum) * running_mean + momentum * mean
    running_var  <- (1 - momentum) * running_var  + momentum * var * M / (M - 1)   (unbiased)

exactly as torch.nn.functional.batch_norm (updated in place).

Eval: mean and var are the running statistics, so y is an affine map of x.

Backward, with inv_std_c = 1 / sqrt(var_c + eps):

    dbeta_c  = sum_m dy_mc
    dgamma_c = sum_m dy_mc xhat_mc
    training:  dx_mc = gamma_c inv_std_c / M * (M dy_mc - dbeta_c - xhat_mc dgamma_c)
    eval:      dx_mc = gamma_c inv_std_c dy_mc

The training formula has the two extra terms because mean and var depend on every x of the channel.
"""
from __future__ import annotations

import numpy as np

from .._checks import check_batchnorm_cache, check_gradient, validate_batchnorm_inputs  # noqa: F401 (the contract)


def update_running_stats(running_mean, running_var, mean, var_unbiased, momentum) -> None:
    """In place, like PyTorch: running <- (1 - momentum) * running + momentum * batch statistic."""
    running_mean[...] = (1 - momentum) * running_mean + momentum * mean
    running_var[...] = (1 - momentum) * running_var + momentum * var_unbiased


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-3):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel (last axis).

    x:            (N, H, W, C) or (N, C)
    gamma, beta:  (C,)  scale and shift
    running_mean, running_var: (C,)  updated in place when training (unbiased variance stored)
    training:     True: batch statistics; False: running statistics
    Returns y (same shape as x) and the cache.

    Cache: (x, mean, inv_std, gamma, training). Backward rebuilds xhat = (x - mean) * inv_std from x
    instead of storing xhat, which would be a second activation-sized array; gamma scales dx; the
    training flag picks the formula (batch statistics depend on x, running ones do not).
    """
    x, momentum, eps = validate_batchnorm_inputs(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    axes = tuple(range(x.ndim - 1))                         # every axis but C
    if training:
        m = x.size // x.shape[-1]
        mean = x.mean(axis=axes)                            # (C,)
        var = ((x - mean) ** 2).mean(axis=axes)             # (C,) biased
        update_running_stats(running_mean, running_var, mean, var * m / (m - 1), momentum)
    else:
        mean = np.array(running_mean, copy=True)            # (C,) copies: a later update must not
        var = np.array(running_var, copy=True)              # (C,) change what backward uses
    inv_std = 1 / np.sqrt(var + eps)                        # (C,)
    y = gamma * ((x - mean) * inv_std) + beta               # (N, H, W, C)
    return y, (x, mean, inv_std, gamma, bool(training))


def batchnorm_backward(dy, cache):
    """Gradients of batchnorm_forward. dy: like y. Returns (dx, dgamma, dbeta): x's shape, (C,), (C,)."""
    x, mean, inv_std, gamma, training = check_batchnorm_cache(cache)
    dy = check_gradient(dy, x.shape, x.dtype, op="batchnorm_backward")
    axes = tuple(range(x.ndim - 1))
    xhat = (x - mean) * inv_std                             # (N, H, W, C)
    dbeta = dy.sum(axis=axes)                               # (C,)
    dgamma = (dy * xhat).sum(axis=axes)                     # (C,)
    if training:
        m = x.size // x.shape[-1]
        dx = gamma * inv_std / m * (m * dy - dbeta - xhat * dgamma)
    else:
        dx = gamma * inv_std * dy
    return dx, dgamma, dbeta
