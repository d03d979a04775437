"""The small ops between the layers on the CPU (tier 2): the residual add, Squeeze-Excite's channel
gate, and the fills, copies and in-place updates of gradient accumulation. The math and the shapes
are in ``reference/elementwise.py``.

No Numba kernels here: each op is one NumPy expression that already runs at memory speed (one
pass, vectorised), so a compiled loop would add a dispatch and gain nothing. Where the readable
NumPy is also the fastest (add, the gate's forward, fill, copy, zeros) this tier IS the reference
function, imported, not copied. Two ops differ from the reference:

- ``channel_gate_backward`` sums dgate[n,c] = sum_{h,w} dy x with ``np.einsum``, which never builds
  the (N, H, W, C) product that ``(dy * x).sum(...)`` would allocate first;
- ``axpy`` with alpha = 1 (every gradient accumulation) is ``y += x``, no multiply and no temporary.

The inputs are checked by the same validators of ``ops/_checks.py`` as in the reference tier.
"""
from __future__ import annotations

import numpy as np

from ._checks import check_channel_gate_cache, check_gradient, check_like, check_number, check_writable
from .reference.elementwise import add, channel_gate_forward, copy, fill, zeros

__all__ = ["add", "channel_gate_forward", "channel_gate_backward", "fill", "axpy", "copy", "zeros"]


def channel_gate_backward(dy, cache):
    """dx = dy * gate[:, None, None, :] (N, H, W, C);  dgate[n,c] = sum_{h,w} dy x (N, C). Returns (dx, dgate)."""
    x, gate = check_channel_gate_cache(cache)
    dy = check_gradient(dy, x.shape, x.dtype, op="channel_gate_backward", ndim=4)
    dx = dy * gate[:, None, None, :]                 # the product with the gate held fixed
    dgate = np.einsum("nhwc,nhwc->nc", dy, x)        # the product with x held fixed, summed over h, w
    return dx, dgate


def axpy(alpha, x, y) -> None:
    """y += alpha x, in place. x, y: float arrays of one shape and dtype (no cast, no broadcast)."""
    alpha = check_number("alpha", alpha, op="axpy")
    y = check_writable("y", y, op="axpy")
    x = check_like("x", x, y, op="axpy")
    if alpha == 1:
        y += x                                       # gradient accumulation: no multiply, no temporary
    else:
        y += y.dtype.type(alpha) * x
