"""Fully connected (linear) layer on the GPU (tier 3). Same math as ``tinyeffnet.ops.linear``:

Dimensions: N batch, Cin input features, Cout output features; w is (Cin, Cout).

    y  = x w + b             (N, Cin) @ (Cin, Cout) + (Cout,) -> (N, Cout)
    dx = dy w^T              (N, Cout) @ (Cout, Cin)
    dw = x^T dy              (Cin, N) @ (N, Cout)
    db = sum_n dy_n          (Cout,)

The products are the tiled GEMM of ``gemm.py`` (w^T and x^T are transposed views, no copies); the
bias is one thread per output entry; db is the two-pass column sum of ``elementwise``.
"""
from __future__ import annotations

from ._runtime import as_device_float_array, check_device_shape, check_gradient, cuda, kernel, launch
from .elementwise import column_sums
from .gemm import matmul


@kernel("void({t}[:, ::1], {t}[::1])")
def _add_bias_kernel(y, b):
    """y[n, co] += b[co]: each thread owns one entry of y. y: (N, Cout); b: (Cout,)."""
    n_rows, cout = y.shape
    for idx in range(cuda.grid(1), n_rows * cout, cuda.gridsize(1)):
        y[idx // cout, idx % cout] += b[idx % cout]


def linear_forward(x, w, b=None):
    """y = x @ w + b. x: (N, Cin), w: (Cin, Cout), b: (Cout,) or None (device arrays). Returns y, cache.

    Cache: (x, w, has_bias). dw needs x, dx needs w; has_bias says whether to return db or None.
    """
    x = as_device_float_array("x", x, ndim=2)
    w = as_device_float_array("w", w, ndim=2, dtype=x.dtype)
    if w.shape[0] != x.shape[1]:
        raise ValueError(
            f"shape mismatch: x of shape {tuple(x.shape)} has {x.shape[1]} features but w of shape "
            f"{tuple(w.shape)} expects {w.shape[0]} (axis 0)"
        )
    y = matmul(x, w)  # (N, Cout)
    if b is not None:
        b = as_device_float_array("b", b, ndim=1, dtype=x.dtype)
        check_device_shape("b", b, (w.shape[1],))
        launch(_add_bias_kernel, y.size, y, b)
    return y, (x, w, b is not None)


def linear_backward(dy, cache):
    """Returns (dx, dw, db): (N, Cin), (Cin, Cout), (Cout,) or None when the forward had no bias."""
    x, w, has_bias = cache
    dy = check_gradient("dy", dy, (x.shape[0], w.shape[1]), x.dtype)
    dx = matmul(dy, w.T)  # (N, Cout) @ (Cout, Cin)
    dw = matmul(x.T, dy)  # (Cin, N) @ (N, Cout)
    db = column_sums(dy) if has_bias else None  # (Cout,)
    return dx, dw, db
