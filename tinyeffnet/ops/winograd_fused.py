"""Winograd F(2x2, 3x3) in one pass per tile: the same arithmetic as ``winograd.py``, for thin channels.

``winograd.py`` runs the algorithm as three passes over whole tensors: the input transform writes
V (16, T, Cin), 16 GEMMs write M (16, T, Cout), the output transform reads M back. With 24 to 64
channels those GEMMs are too thin for a BLAS to run at speed (K = Cin = 24 is a few vector
registers), and V and M, 4x the activation each, go through main memory twice. Here every output
tile is finished while its numbers are in registers and L1:

    for each 2x2 output tile t (n, ti, tj):                          one thread per row of tiles
        v[xi, ci]  = (B^T d_ci B)[xi]        16 x Cin      from the 4x4 input window (vectorised over ci)
        m[xi, co]  = sum_ci v[xi, ci] U[xi, ci, co]        16 x Cout, a tiny GEMM in L1 (vectorised over co)
        y_t[:, :, co] = A^T m[:, co] A                     the 2x2 output tile, written once

and backward, tile by tile, in the same way (see ``winograd.py`` for why each line is the transpose):

        dm[xi, co] = (A dY_t A^T)[xi]                      16 x Cout
        dU[xi, ci, co] += v[xi, ci] dm[xi, co]             accumulated per thread, summed at the end
        dv[xi, ci] = sum_co dm[xi, co] U[xi, ci, co]       16 x Cin
        dxpad window += B dv B^T                           tile rows two apart never overlap

Memory: x is read and y written once; nothing of size T is stored. The float results are those of
``winograd.py`` up to summation order (the per-tile GEMM adds over ci in order).

Races: a thread owns whole rows of tiles. Forward writes disjoint outputs. Backward's dx windows of
tile rows ti and ti+1 overlap (two input rows), so it runs twice, over even then odd tile rows; each
thread adds its dU into its own (16, Cin, Cout) slice of ``du_parts``, summed after both passes.

The op pair ``conv2d_winograd_fused_forward/backward`` has conv2d_forward's signature; ``nn.Conv2d``
picks it when it is built for a 3x3 stride-1 conv with thin channels (``suits``); its cache records
the algorithm "winograd_fused".
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from ._checks import check_conv_inputs, check_upstream_gradient
from .conv2d import check_algorithm
from .winograd import (G, WinogradCache, _a, _at, _b, _bt, _padded_input, _sandwich, _tiles, _window_column,
                       applies, transform_weights)

# Channel counts up to which the one-pass kernel beats transforms + BLAS (measured: see ``suits``).
MAX_FUSED_CHANNELS = 64


def suits(w_shape, stride: int, padding) -> bool:
    """A 3x3 stride-1 "same" conv (``winograd.applies``) whose Cin and Cout are both at most
    MAX_FUSED_CHANNELS: there the per-tile GEMM fits in L1 and beats 16 thin BLAS calls."""
    return applies(w_shape, stride, padding) and max(w_shape[2], w_shape[3]) <= MAX_FUSED_CHANNELS


class FusedWinogradCache(WinogradCache):
    """conv2d_winograd_fused_forward's cache: x and w (as Winograd's), algorithm "winograd_fused"."""

    __slots__ = ()
    algorithm = "winograd_fused"


# ------------------------------------------------------------------------- one tile's pieces
@njit(inline="always")
def _tile_input_transform(xpad, n, i0, j0, v):
    """v[4r+s, c] = (B^T d B)[r, s], d = xpad[n, i0:i0+4, j0:j0+4, c]: v (16, Cin)."""
    for c in range(xpad.shape[3]):
        k0 = _bt(_window_column(xpad, n, i0, j0, c))
        k1 = _bt(_window_column(xpad, n, i0, j0 + 1, c))
        k2 = _bt(_window_column(xpad, n, i0, j0 + 2, c))
        k3 = _bt(_window_column(xpad, n, i0, j0 + 3, c))
        for r in range(4):
            e0, e1, e2, e3 = _bt((k0[r], k1[r], k2[r], k3[r]))
            v[4 * r, c], v[4 * r + 1, c], v[4 * r + 2, c], v[4 * r + 3, c] = e0, e1, e2, e3


@njit(inline="always")
def _tile_product(v, u, m):
    """m[xi, co] = sum_ci v[xi, ci] u[xi, ci, co]: 16 small matrix products, vectorised over co."""
    for xi in range(16):
        for co in range(m.shape[1]):
            m[xi, co] = 0.0
        for ci in range(v.shape[1]):
            a = v[xi, ci]
            for co in range(m.shape[1]):
                m[xi, co] += a * u[xi, ci, co]


@njit(inline="always")
def _tile_output_transform(m, n, i0, j0, ypad):
    """ypad[n, i0+i, j0+j, co] = (A^T M A)[i, j], M[r, s] = m[4r+s, co]."""
    for co in range(m.shape[1]):
        k0 = _at((m[0, co], m[4, co], m[8, co], m[12, co]))
        k1 = _at((m[1, co], m[5, co], m[9, co], m[13, co]))
        k2 = _at((m[2, co], m[6, co], m[10, co], m[14, co]))
        k3 = _at((m[3, co], m[7, co], m[11, co], m[15, co]))
        for i in range(2):
            y0, y1 = _at((k0[i], k1[i], k2[i], k3[i]))
            ypad[n, i0 + i, j0, co] = y0
            ypad[n, i0 + i, j0 + 1, co] = y1


@njit(inline="always")
def _tile_output_adjoint(dypad, n, i0, j0, dm):
    """dm[4r+s, co] = (A dY A^T)[r, s], dY = dypad[n, i0:i0+2, j0:j0+2, co]."""
    for co in range(dm.shape[1]):
        k0 = _a((dypad[n, i0, j0, co], dypad[n, i0 + 1, j0, co]))
        k1 = _a((dypad[n, i0, j0 + 1, co], dypad[n, i0 + 1, j0 + 1, co]))
        for r in range(4):
            e0, e1, e2, e3 = _a((k0[r], k1[r]))
            dm[4 * r, co], dm[4 * r + 1, co], dm[4 * r + 2, co], dm[4 * r + 3, co] = e0, e1, e2, e3


@njit(inline="always")
def _tile_weight_gradient(v, dm, du):
    """du[xi, ci, co] += v[xi, ci] dm[xi, co]: this tile's share of dU = V^T dM."""
    for xi in range(16):
        for ci in range(v.shape[1]):
            a = v[xi, ci]
            for co in range(dm.shape[1]):
                du[xi, ci, co] += a * dm[xi, co]


@njit(inline="always")
def _tile_input_gradient(dm, u_t, dv):
    """dv[xi, ci] = sum_co dm[xi, co] u[xi, ci, co], with u_t[xi, co, ci] = u[xi, ci, co] (vectorised over ci)."""
    for xi in range(16):
        for ci in range(dv.shape[1]):
            dv[xi, ci] = 0.0
        for co in range(dm.shape[1]):
            b = dm[xi, co]
            for ci in range(dv.shape[1]):
                dv[xi, ci] += b * u_t[xi, co, ci]


@njit(inline="always")
def _tile_input_adjoint(dv, n, i0, j0, dxpad):
    """dxpad[n, i0:i0+4, j0:j0+4, c] += B dV B^T, dV[r, s] = dv[4r+s, c]."""
    for c in range(dv.shape[1]):
        k0 = _b((dv[0, c], dv[4, c], dv[8, c], dv[12, c]))
        k1 = _b((dv[1, c], dv[5, c], dv[9, c], dv[13, c]))
        k2 = _b((dv[2, c], dv[6, c], dv[10, c], dv[14, c]))
        k3 = _b((dv[3, c], dv[7, c], dv[11, c], dv[15, c]))
        for r in range(4):
            o0, o1, o2, o3 = _b((k0[r], k1[r], k2[r], k3[r]))
            dxpad[n, i0 + r, j0, c] += o0
            dxpad[n, i0 + r, j0 + 1, c] += o1
            dxpad[n, i0 + r, j0 + 2, c] += o2
            dxpad[n, i0 + r, j0 + 3, c] += o3


# ------------------------------------------------------------------------------- the kernels
@njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
def _forward_kernel(xpad, u, th, tw, ypad):
    """ypad (N, 2th, 2tw, Cout) from xpad (N, 2th+2, 2tw+2, Cin) and U (16, Cin, Cout), tile by tile."""
    cin, cout = u.shape[1], u.shape[2]
    for row in prange(xpad.shape[0] * th):                 # one row of tiles (n, ti) per iteration
        n, i0 = row // th, 2 * (row % th)
        v = np.empty((16, cin), dtype=xpad.dtype)
        m = np.empty((16, cout), dtype=xpad.dtype)
        for tj in range(tw):
            _tile_input_transform(xpad, n, i0, 2 * tj, v)
            _tile_product(v, u, m)
            _tile_output_transform(m, n, i0, 2 * tj, ypad)


@njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
def _backward_kernel(xpad, dypad, u_t, th, tw, parity, dxpad, du_parts):
    """The tile rows ti = parity, parity + 2, ... of every image: dx windows added into dxpad, dU into
    du_parts[k] (one (16, Cin, Cout) slice per chunk k of tile rows; chunks run in parallel)."""
    cin, cout = u_t.shape[2], u_t.shape[1]
    rows_per_image = (th - parity + 1) // 2
    total = xpad.shape[0] * rows_per_image
    chunks = du_parts.shape[0]
    for k in prange(chunks):
        v = np.empty((16, cin), dtype=xpad.dtype)
        dv = np.empty((16, cin), dtype=xpad.dtype)
        dm = np.empty((16, cout), dtype=xpad.dtype)
        du = du_parts[k]
        for row in range(k * total // chunks, (k + 1) * total // chunks):
            n = row // rows_per_image
            i0 = 2 * (parity + 2 * (row % rows_per_image))
            for tj in range(tw):
                j0 = 2 * tj
                _tile_input_transform(xpad, n, i0, j0, v)
                _tile_output_adjoint(dypad, n, i0, j0, dm)
                _tile_weight_gradient(v, dm, du)
                _tile_input_gradient(dm, u_t, dv)
                _tile_input_adjoint(dv, n, i0, j0, dxpad)


# ------------------------------------------------------------------------------- the op
def fused_winograd_forward(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """y = conv2d(x, w, stride=1, padding=1), x (N, H, W, Cin), w (3, 3, Cin, Cout): y (N, H, W, Cout).
    Inputs are assumed checked (``conv2d_winograd_fused_forward`` checks them)."""
    n, h, width, _ = x.shape
    th, tw = _tiles(h, width)
    ypad = np.empty((n, 2 * th, 2 * tw, w.shape[3]), dtype=x.dtype)
    _forward_kernel(_padded_input(x, th, tw), np.ascontiguousarray(transform_weights(w)), th, tw, ypad)
    if 2 * th == h and 2 * tw == width:
        return ypad
    return np.ascontiguousarray(ypad[:, :h, :width, :])                  # odd H or W: drop the extra row/column


def fused_winograd_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple:
    """Gradients of fused_winograd_forward: (dx (N, H, W, Cin), dw (3, 3, Cin, Cout))."""
    n, h, width, cin = x.shape
    cout = w.shape[3]
    th, tw = _tiles(h, width)
    if 2 * th == h and 2 * tw == width:
        dypad = dy
    else:
        dypad = np.zeros((n, 2 * th, 2 * tw, cout), dtype=dy.dtype)
        dypad[:, :h, :width, :] = dy                                     # the dropped outputs get no gradient
    xpad = _padded_input(x, th, tw)
    u_t = np.ascontiguousarray(transform_weights(w).transpose(0, 2, 1))  # (16, Cout, Cin)
    chunks = max(1, min(2 * numba.get_num_threads(), n * th // 2))
    du_parts = np.zeros((chunks, 16, cin, cout), dtype=x.dtype)          # one dU per chunk of tile rows
    dxpad = np.zeros_like(xpad)
    _backward_kernel(xpad, dypad, u_t, th, tw, 0, dxpad, du_parts)        # even tile rows, in parallel
    _backward_kernel(xpad, dypad, u_t, th, tw, 1, dxpad, du_parts)        # then odd ones
    du = du_parts.sum(axis=0)                                            # (16, Cin, Cout)
    dw = _sandwich(G.T.astype(w.dtype), du.reshape(4, 4, cin, cout))    # G^T dU G: (3, 3, Cin, Cout)
    return np.ascontiguousarray(dxpad[:, 1:h + 1, 1:width + 1, :]), dw


def conv2d_winograd_fused_forward(x, w, stride=1, padding=1):
    """conv2d_forward's signature and result, by one-pass Winograd F(2x2, 3x3): x (N, H, W, Cin),
    w (3, 3, Cin, Cout), stride 1, padding 1 or "same". Returns y (N, H, W, Cout) and the cache
    (x, w; algorithm "winograd_fused"). Any channel count works; ``suits`` says where it is fastest."""
    x, w, stride, pads = check_conv_inputs(x, w, stride, padding, depthwise=False)
    if not applies(w.shape, stride, pads):
        raise ValueError(f"conv2d_winograd_fused_forward: Winograd F(2x2, 3x3) covers 3x3 stride-1 convs padded "
                         f"by 1 on every side, got kernel {w.shape[0]}x{w.shape[1]}, stride {stride}, pads {pads} "
                         f"(conv2d_forward covers every conv)")
    return fused_winograd_forward(x, w), FusedWinogradCache(x, w, stride, pads)


def conv2d_winograd_fused_backward(dy, cache: FusedWinogradCache):
    """Gradients of conv2d_winograd_fused_forward: (dx (N, H, W, Cin), dw (3, 3, Cin, Cout))."""
    dy = check_upstream_gradient(dy, cache)
    check_algorithm(cache, "winograd_fused", "conv2d_winograd_fused_backward")
    return fused_winograd_backward(dy, cache.x, cache.w)
