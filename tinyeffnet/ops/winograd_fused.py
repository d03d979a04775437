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

The op pair ``conv2d_winograd_fused_forward/backward`` has conv2d_forward's signature; its cache
records the algorithm "winograd_fused". ``nn.Conv2d(..., algorithm="winograd_fused")`` builds a layer
with it. Status, measured on a 2-core AVX-512 Xeon (float32, forward + backward): timed alone, on
the same arrays every call, it beats the three passes on thin channels (Cin = Cout = 24 at 64x64,
batch 8, EfficientNetV2-S's stage 1: 15.8 ms against 35.3 ms; 16 -> 16 at 24x24, batch 64: 10.8
against 11.0 ms) and loses on wider ones (24 -> 96 at 12x12: 12.9 against 7.2 ms). Inside a whole
training step, on fresh activations, it measured slower (S at 128 px: 614 against 583 ms a step; the
tiny model at 48 px: 84 against 78 ms), so no layer picks it by itself: a kernel to study and improve.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .winograd import (G, WinogradCache, _a, _at, _b, _bt, _padded_input, _sandwich, _tiles, _window_column,
                       check_winograd_gradient, check_winograd_inputs, cropped, padded_gradient,
                       transform_weights)

class FusedWinogradCache(WinogradCache):
    """conv2d_winograd_fused_forward's cache: x and w (as Winograd's), algorithm "winograd_fused"."""

    __slots__ = ()
    algorithm = "winograd_fused"


# ------------------------------------------------------------------------- one tile's pieces
# Each 4x4 transform runs as two passes over the channels (columns, then rows), each a loop that reads
# and writes at most eight channel vectors: LLVM vectorises such a loop over the channels, but gives
# up on one loop that touches all sixteen (too many possible overlaps to check at run time).
@njit(inline="always")
def _tile_input_transform(xpad, n, i0, j0, t, v):
    """v[4r+s, c] = (B^T d B)[r, s], d = xpad[n, i0:i0+4, j0:j0+4, c]: v (16, Cin); t (16, Cin) scratch."""
    for j in range(4):                                     # t[4a+j] = (B^T d)[a, j]: column j of the window
        for c in range(xpad.shape[3]):
            e0, e1, e2, e3 = _bt(_window_column(xpad, n, i0, j0 + j, c))
            t[j, c] = e0
            t[4 + j, c] = e1
            t[8 + j, c] = e2
            t[12 + j, c] = e3
    for r in range(4):                                     # v[4r+s] = ((B^T d) B)[r, s]: row r
        for c in range(xpad.shape[3]):
            e0, e1, e2, e3 = _bt((t[4 * r, c], t[4 * r + 1, c], t[4 * r + 2, c], t[4 * r + 3, c]))
            v[4 * r, c] = e0
            v[4 * r + 1, c] = e1
            v[4 * r + 2, c] = e2
            v[4 * r + 3, c] = e3


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
def _tile_output_transform(m, n, i0, j0, k, ypad):
    """ypad[n, i0+i, j0+j, co] = (A^T M A)[i, j], M[r, s] = m[4r+s, co]; k (8, Cout) scratch."""
    for s in range(4):                                     # k[4i+s] = (A^T M)[i, s]: column s
        for co in range(m.shape[1]):
            e0, e1 = _at((m[s, co], m[4 + s, co], m[8 + s, co], m[12 + s, co]))
            k[s, co] = e0
            k[4 + s, co] = e1
    for i in range(2):                                     # row i of (A^T M) A: two outputs
        for co in range(m.shape[1]):
            y0, y1 = _at((k[4 * i, co], k[4 * i + 1, co], k[4 * i + 2, co], k[4 * i + 3, co]))
            ypad[n, i0 + i, j0, co] = y0
            ypad[n, i0 + i, j0 + 1, co] = y1


@njit(inline="always")
def _tile_output_adjoint(dypad, n, i0, j0, k, dm):
    """dm[4r+s, co] = (A dY A^T)[r, s], dY = dypad[n, i0:i0+2, j0:j0+2, co]; k (8, Cout) scratch."""
    for j in range(2):                                     # k[2r+j] = (A dY)[r, j]: column j of dY
        for co in range(dm.shape[1]):
            e0, e1, e2, e3 = _a((dypad[n, i0, j0 + j, co], dypad[n, i0 + 1, j0 + j, co]))
            k[j, co] = e0
            k[2 + j, co] = e1
            k[4 + j, co] = e2
            k[6 + j, co] = e3
    for r in range(4):                                     # row r of (A dY) A^T
        for co in range(dm.shape[1]):
            e0, e1, e2, e3 = _a((k[2 * r, co], k[2 * r + 1, co]))
            dm[4 * r, co] = e0
            dm[4 * r + 1, co] = e1
            dm[4 * r + 2, co] = e2
            dm[4 * r + 3, co] = e3


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
def _tile_input_adjoint(dv, n, i0, j0, t, dxpad):
    """dxpad[n, i0:i0+4, j0:j0+4, c] += B dV B^T, dV[r, s] = dv[4r+s, c]; t (16, Cin) scratch."""
    for s in range(4):                                     # t[4a+s] = (B dV)[a, s]: column s
        for c in range(dv.shape[1]):
            e0, e1, e2, e3 = _b((dv[s, c], dv[4 + s, c], dv[8 + s, c], dv[12 + s, c]))
            t[s, c] = e0
            t[4 + s, c] = e1
            t[8 + s, c] = e2
            t[12 + s, c] = e3
    for r in range(4):                                     # row r of (B dV) B^T, added into the window
        for c in range(dv.shape[1]):
            o0, o1, o2, o3 = _b((t[4 * r, c], t[4 * r + 1, c], t[4 * r + 2, c], t[4 * r + 3, c]))
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
        v, t = np.empty((16, cin), dtype=xpad.dtype), np.empty((16, cin), dtype=xpad.dtype)
        m, k = np.empty((16, cout), dtype=xpad.dtype), np.empty((8, cout), dtype=xpad.dtype)
        for tj in range(tw):
            _tile_input_transform(xpad, n, i0, 2 * tj, t, v)
            _tile_product(v, u, m)
            _tile_output_transform(m, n, i0, 2 * tj, k, ypad)


@njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
def _backward_kernel(xpad, dypad, u_t, th, tw, parity, dxpad, du_parts):
    """The tile rows ti = parity, parity + 2, ... of every image: dx windows added into dxpad, dU into
    du_parts[k] (one (16, Cin, Cout) slice per chunk k of tile rows; chunks run in parallel)."""
    cin, cout = u_t.shape[2], u_t.shape[1]
    rows_per_image = (th - parity + 1) // 2
    total = xpad.shape[0] * rows_per_image
    chunks = du_parts.shape[0]
    for k in prange(chunks):
        v, dv, t = np.empty((16, cin), xpad.dtype), np.empty((16, cin), xpad.dtype), np.empty((16, cin), xpad.dtype)
        dm, scratch = np.empty((16, cout), dtype=xpad.dtype), np.empty((8, cout), dtype=xpad.dtype)
        du = du_parts[k]
        for row in range(k * total // chunks, (k + 1) * total // chunks):
            n = row // rows_per_image
            i0 = 2 * (parity + 2 * (row % rows_per_image))
            for tj in range(tw):
                j0 = 2 * tj
                _tile_input_transform(xpad, n, i0, j0, t, v)
                _tile_output_adjoint(dypad, n, i0, j0, scratch, dm)
                _tile_weight_gradient(v, dm, du)
                _tile_input_gradient(dm, u_t, dv)
                _tile_input_adjoint(dv, n, i0, j0, t, dxpad)


# ------------------------------------------------------------------------------- the op
def fused_winograd_forward(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """y = conv2d(x, w, stride=1, padding=1), x (N, H, W, Cin), w (3, 3, Cin, Cout): y (N, H, W, Cout).
    Inputs are assumed checked (``conv2d_winograd_fused_forward`` checks them)."""
    n, h, width, _ = x.shape
    th, tw = _tiles(h, width)
    ypad = np.empty((n, 2 * th, 2 * tw, w.shape[3]), dtype=x.dtype)
    _forward_kernel(_padded_input(x, th, tw), np.ascontiguousarray(transform_weights(w)), th, tw, ypad)
    return cropped(ypad, h, width)                                       # odd H or W: drop the extra row/column


def fused_winograd_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple:
    """Gradients of fused_winograd_forward: (dx (N, H, W, Cin), dw (3, 3, Cin, Cout))."""
    n, h, width, cin = x.shape
    cout = w.shape[3]
    th, tw = _tiles(h, width)
    dypad = padded_gradient(dy, th, tw)                                  # (N, 2th, 2tw, Cout)
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
    (x, w; algorithm "winograd_fused"). Any channel count works."""
    x, w, stride, pads = check_winograd_inputs(x, w, stride, padding, "conv2d_winograd_fused_forward")
    return fused_winograd_forward(x, w), FusedWinogradCache(x, w, stride, pads)


def conv2d_winograd_fused_backward(dy, cache: FusedWinogradCache):
    """Gradients of conv2d_winograd_fused_forward: (dx (N, H, W, Cin), dw (3, 3, Cin, Cout))."""
    dy = check_winograd_gradient(dy, cache, "winograd_fused")
    return fused_winograd_backward(dy, cache.x, cache.w)
