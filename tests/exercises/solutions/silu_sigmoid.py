"""Correct, stable sigmoid and SiLU. Test fixture."""
import numpy as np


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_forward(x):
    y = _sigmoid(x)
    return y, (y,)


def sigmoid_backward(dy, cache):
    (y,) = cache
    return (dy * y * (1 - y),)


def silu_forward(x):
    return x * _sigmoid(x), (x,)


def silu_backward(dy, cache):
    (x,) = cache
    s = _sigmoid(x)
    return (dy * s * (1 + x * (1 - s)),)
