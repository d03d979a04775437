"""Fully connected (linear) layer in plain NumPy (tier 1).

Dimensions: N batch, Cin input features, Cout output features. w is (Cin, Cout), so that the
forward is a single matrix product without a transpose (PyTorch stores the transpose, (Cout, Cin)).

    y = x w + b              (N, Cin) @ (Cin, Cout) + (Cout,) -> (N, Cout)
    dx = dy w^T              (N, Cout) @ (Cout, Cin)
    dw = x^T dy              (Cin, N) @ (N, Cout)
    db = sum_n dy_n          (Cout,)

EfficientNetV2 ends with one linear classifier after global average pooling.
"""
from __future__ import annotations

from .._checks import check_linear_cache, check_linear_gradient, validate_linear_inputs  # noqa: F401 (the contract)


def linear_forward(x, w, b=None):
    """y = x @ w + b. x: (N, Cin), w: (Cin, Cout), b: (Cout,) or None. Returns y (N, Cout), cache.

    Cache: (x, w, has_bias). dw needs x, dx needs w; has_bias says whether to return db or None.
    """
    x, w, b = validate_linear_inputs(x, w, b)
    y = x @ w                                               # (N, Cout)
    if b is not None:
        y = y + b
    return y, (x, w, b is not None)


def linear_backward(dy, cache):
    """Returns (dx, dw, db): (N, Cin), (Cin, Cout), (Cout,) or None when the forward had no bias."""
    x, w, has_bias = check_linear_cache(cache)
    dy = check_linear_gradient(dy, x, w)
    dx = dy @ w.T                                           # (N, Cin)
    dw = x.T @ dy                                           # (Cin, Cout)
    db = dy.sum(axis=0) if has_bias else None               # (Cout,)
    return dx, dw, db
