"""A correct batch normalisation with PyTorch's running statistics. Test fixture."""
import numpy as np


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-3):
    axes = tuple(range(x.ndim - 1))
    m = x.size // x.shape[-1]
    if training:
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * m / (m - 1)
    else:
        mean, var = running_mean.copy(), running_var.copy()
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * inv_std
    return gamma * xhat + beta, (xhat, inv_std, gamma, training)


def batchnorm_backward(dy, cache):
    xhat, inv_std, gamma, training = cache
    axes = tuple(range(dy.ndim - 1))
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * xhat).sum(axis=axes)
    if not training:
        return gamma * inv_std * dy, dgamma, dbeta
    m = dy.size // dy.shape[-1]
    dx = gamma * inv_std * (dy - dbeta / m - xhat * dgamma / m)
    return dx, dgamma, dbeta
