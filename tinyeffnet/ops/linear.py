"""Fully connected (linear) layer (tier 2). Same math as ``reference/linear.py``:

Dimensions: N batch, Cin input features, Cout output features; w is (Cin, Cout).

    y = x w + b              (N, Cin) @ (Cin, Cout) + (Cout,) -> (N, Cout)
    dx = dy w^T              (N, Cout) @ (Cout, Cin)
    dw = x^T dy              (Cin, N) @ (N, Cout)
    db = sum_n dy_n          (Cout,)

All the work is matrix products, which a BLAS already does at close to the machine's peak, so this
tier calls ``blas.matmul(..., out=...)`` (MKL's GEMM or numpy's, ops/blas.py) and writes no Numba kernel: a
hand-written GEMM would be slower, and BLAS called inside an njit prange fights for the cores
(docs/DESIGN.md, section 9.1).
"""
from __future__ import annotations

import numpy as np

from . import blas
from ._checks import check_linear_cache, check_linear_gradient, validate_linear_inputs


def linear_forward(x, w, b=None):
    """y = x @ w + b. x: (N, Cin), w: (Cin, Cout), b: (Cout,) or None. Returns y (N, Cout), cache.

    Cache: (x, w, has_bias). dw needs x, dx needs w; has_bias says whether to return db or None.
    """
    x, w, b = validate_linear_inputs(x, w, b)
    y = np.empty((x.shape[0], w.shape[1]), dtype=x.dtype)          # (N, Cout)
    blas.matmul(x, w, out=y)
    if b is not None:
        y += b                                                      # broadcast over rows
    return y, (x, w, b is not None)


def linear_backward(dy, cache):
    """Returns (dx, dw, db): (N, Cin), (Cin, Cout), (Cout,) or None when the forward had no bias."""
    x, w, has_bias = check_linear_cache(cache)
    dy = check_linear_gradient(dy, x, w)
    dx = np.empty_like(x)                                           # (N, Cin)
    blas.matmul(dy, w.T, out=dx)
    dw = np.empty_like(w)                                           # (Cin, Cout)
    blas.matmul(x.T, dy, out=dw)
    db = dy.sum(axis=0) if has_bias else None                       # (Cout,)
    return dx, dw, db
