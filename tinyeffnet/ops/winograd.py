"""3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3): the same result with 2.25x
fewer multiplications (a speed path; the readable version is im2col + GEMM in ``conv2d.py``).

The idea in one dimension, F(2, 3): two outputs of a 3-tap filter g from four inputs d,

    y0 = d0 g0 + d1 g1 + d2 g2,   y1 = d1 g0 + d2 g1 + d3 g2          (6 multiplications)

can be computed with 4 multiplications, y = A^T [(G g) * (B^T d)] (elementwise product in the middle):

    B^T = [[1, 0,-1, 0],      G = [[ 1,   0,   0 ],      A^T = [[1, 1, 1, 0],
           [0, 1, 1, 0],           [1/2, 1/2, 1/2],              [0, 1,-1,-1]]
           [0,-1, 1, 0],           [1/2,-1/2, 1/2],
           [0, 1, 0,-1]]           [ 0,   0,   1 ]]

Nested for two dimensions, a 2x2 output tile of a 3x3 filter comes from a 4x4 input tile d:

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (16 multiplications instead of 36)

For a convolution with channels, the elementwise product is summed over input channels, so at each of
the 16 positions xi = (r, s) of the 4x4 transformed tile it becomes a matrix product over channels:

    V[xi, t, ci]  = (B^T d_t,ci B)[r, s]          input transform,  (16, T, Cin), T = number of tiles
    U[xi, ci, co] = (G g_ci,co G^T)[r, s]         weight transform, (16, Cin, Cout)
    M[xi]         = V[xi] @ U[xi]                 16 GEMMs          (16, T, Cout)
    Y_t,co        = A^T M[:, t, co] A             output transform, a 2x2 output tile

Tiles: output tile t = (n, ti, tj) covers output rows 2ti, 2ti+1 and columns 2tj, 2tj+1. With padding
1 it reads input rows 2ti-1 .. 2ti+2, that is rows 2ti .. 2ti+3 of the zero-padded input ``xpad``;
neighbouring input tiles overlap by two rows (and two columns). An odd H or W gets one more zero row
or column of padding, and the extra output row or column is dropped.

Backward is the same algorithm run backwards (every step above is linear, so its gradient is its
transpose):

    dM[xi]  = (A dY_t A^T)[xi]                    (16, T, Cout)  adjoint of the output transform
    dV[xi]  = dM[xi] @ U[xi]^T                    (16, T, Cin)
    dU[xi]  = V[xi]^T @ dM[xi]                    (16, Cin, Cout) summed over all tiles by the GEMM
    dg      = G^T dU G                            (3, 3, Cin, Cout)
    dd_t    = B dV_t B^T, added into dxpad at the tile's 4x4 window (overlapping windows add up)

Cost: the GEMMs do 16 T Cin Cout = 4 P Cin Cout multiply-adds (P = 4T output pixels) instead of
9 P Cin Cout, in each of the three passes. The transforms are additions only (B and A hold 0 and +-1)
and read or write 4x the activation, where im2col writes 9x. Numerically it is a different summation
order with a few extra additions: float32 results differ from im2col by a few ulps of the largest
terms (``tests/ops/test_winograd.py`` bounds it and also checks float64 gradients by finite differences).

Layout: channels last throughout; the transform kernels loop over channels innermost (vectorised)
and split tile rows over the cores. The scatter of dd into dxpad is race-free: tile rows ti and ti+2
touch disjoint input rows, so even tile rows run in parallel first, then odd ones.

The op: ``conv2d_winograd_forward(x, w, stride, padding)`` and ``conv2d_winograd_backward(dy, cache)``
have the signatures of ``conv2d_forward`` / ``conv2d_backward``; they are the sibling op a layer picks
when it is built (``nn.Conv2d(..., fast=True)``, for the geometries ``applies`` accepts), and their
cache, a ``WinogradCache``, records that Winograd ran.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import blas
from ..machine import numba_vector_registers as vector_registers
from ._checks import ConvCache, check_conv_inputs, check_upstream_gradient
from .conv2d import check_algorithm, conv2d_backward, conv2d_forward

# The F(2x2, 3x3) matrices (written out again inside the kernels as additions).
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def applies(w_shape, stride: int, padding) -> bool:
    """Winograd F(2x2, 3x3) covers the 3x3, stride-1, padding-1 convolution (a "same" 3x3 conv).

    padding: the resolved (top, bottom, left, right), or the option a layer is built with (an int, or
    "same": at stride 1 a "same" 3x3 conv pads 1 on every side whatever the input size)."""
    if padding == "same":
        padding = 1 if stride == 1 else -1
    if isinstance(padding, int):
        padding = (padding,) * 4
    return tuple(w_shape[:2]) == (3, 3) and stride == 1 and tuple(padding) == (1, 1, 1, 1)


# A fast layer is built with Winograd from this many input channels up, by the vector registers Numba
# compiles for (machine.numba_vector_registers: 32 with AVX-512, 16 with AVX2). Each of Winograd's 16
# GEMMs sums over Cin only, im2col's one GEMM over 9 Cin, and Winograd's transforms move 4x the
# activation. Forward + backward on a 2-core Xeon (family 6), batch 8, Winograd against im2col, ms:
#   AVX-512, MKL GEMM:       32->128 at 56x56 23.6 against 20.5; 48->192 at 56x56 67 against 53, at 32x32
#                            13.9 against 15.6; 64->256 at 28x28 17.6 against 20.6; 96->384 at 28x28 30 against 41
#   AVX-512, OpenBLAS GEMM:  48->192 at 32x32 21.1 against 18.3, at 56x56 77 against 64; 64->256 at 28x28
#                            23.3 against 23.0; 96->384 at 28x28 37.8 against 47.6; 160->160 33 against 41
#   AVX2 forced, MKL:        32->128 at 56x56 29.7 against 35.1; 48->192 at 32x32 16.0 against 21.8
#   AVX2 forced, OpenBLAS:   48->192 at 32x32 22.1 against 24.5; 64->256 at 28x28 25.8 against 32.0
# With AVX-512 thin Winograd layers win little at 24-32 px and lose much on large maps (56 px: the
# transforms leave the cache), so from 96 channels only; with AVX2 it wins at every width.
WINOGRAD_MIN_CHANNELS = {32: 96, 16: 0}


def chosen_for(w_shape, stride: int, padding) -> bool:
    """Whether a fast layer (``nn.Conv2d(fast=True)``) is built with Winograd (then by map size, per
    call: ``conv2d_winograd_or_im2col_forward``): a conv ``applies`` covers with at least
    WINOGRAD_MIN_CHANNELS input channels for this machine's vector registers."""
    return applies(w_shape, stride, padding) and w_shape[2] >= WINOGRAD_MIN_CHANNELS[vector_registers()]


class WinogradCache(ConvCache):
    """The cache of conv2d_winograd_forward: the same fields as conv2d's (x, w, stride, pads: x for V and
    dw, w for U and dx), with ``algorithm`` "winograd" so that only conv2d_winograd_backward takes it."""

    __slots__ = ()
    algorithm = "winograd"


def _tiles(h: int, w: int) -> tuple:
    return (h + 1) // 2, (w + 1) // 2                                    # (tiles down, tiles across)


def _padded_input(x: np.ndarray, th: int, tw: int) -> np.ndarray:
    """x (N, H, W, C) inside a zero border: one row/column on top/left, enough at the bottom/right to
    complete the last tile. Returns (N, 2 th + 2, 2 tw + 2, C)."""
    n, h, w, c = x.shape
    xpad = np.zeros((n, 2 * th + 2, 2 * tw + 2, c), dtype=x.dtype)
    xpad[:, 1:h + 1, 1:w + 1, :] = x
    return xpad


# ---------------------------------------------------------------- the 1-D transforms, as additions
@njit(inline="always")
def _bt(d):
    """B^T d for a 4-vector d (a tuple)."""
    d0, d1, d2, d3 = d
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@njit(inline="always")
def _b(e):
    """B e for a 4-vector e (the transpose of _bt)."""
    e0, e1, e2, e3 = e
    return e0, e1 - e2 + e3, e1 + e2 - e0, -e3


@njit(inline="always")
def _at(m):
    """A^T m for a 4-vector m: two outputs."""
    m0, m1, m2, m3 = m
    return m0 + m1 + m2, m1 - m2 - m3


@njit(inline="always")
def _a(y):
    """A y for a 2-vector y (the transpose of _at)."""
    y0, y1 = y
    return y0, y0 + y1, y0 - y1, -y1


@njit(inline="always")
def _window_column(xpad, n, i0, j, c):
    """Column j of the 4x4 input window xpad[n, i0:i0+4, :, c], as four numbers."""
    return xpad[n, i0, j, c], xpad[n, i0 + 1, j, c], xpad[n, i0 + 2, j, c], xpad[n, i0 + 3, j, c]


@njit(inline="always")
def _tile_column(a, s, t, c):
    """Column s of tile t's 4x4 transformed values, stored as a[4r+s, t, c] (r = 0..3)."""
    return a[s, t, c], a[4 + s, t, c], a[8 + s, t, c], a[12 + s, t, c]


@njit(inline="always")
def _set_tile_row(a, r, t, c, row):
    """Row r of tile t's 4x4 transformed values: a[4r+s, t, c] = row[s] for s = 0..3."""
    a[4 * r, t, c], a[4 * r + 1, t, c], a[4 * r + 2, t, c], a[4 * r + 3, t, c] = row


# ------------------------------------------------------------------------------- the kernels
@njit(parallel=True, fastmath=True, cache=True)
def _input_transform(xpad, th, tw, v):
    """v[4r+s, t, c] = (B^T d B)[r, s] with d = xpad[n, 2ti:2ti+4, 2tj:2tj+4, c] and t = (n, ti, tj).

    xpad (N, 2th+2, 2tw+2, C) -> v (16, N*th*tw, C)."""
    channels = xpad.shape[3]
    for row in prange(xpad.shape[0] * th):              # one row of tiles (n, ti) per iteration
        n, i0 = row // th, 2 * (row % th)
        for tj in range(tw):
            t, j0 = row * tw + tj, 2 * tj
            for c in range(channels):
                # B^T d, one column at a time: column k holds (B^T d)[0..3, k]
                k0 = _bt(_window_column(xpad, n, i0, j0, c))
                k1 = _bt(_window_column(xpad, n, i0, j0 + 1, c))
                k2 = _bt(_window_column(xpad, n, i0, j0 + 2, c))
                k3 = _bt(_window_column(xpad, n, i0, j0 + 3, c))
                for r in range(4):                      # row r of (B^T d) B
                    _set_tile_row(v, r, t, c, _bt((k0[r], k1[r], k2[r], k3[r])))


@njit(parallel=True, fastmath=True, cache=True)
def _output_transform(m, th, tw, ypad):
    """ypad[n, 2ti+i, 2tj+j, c] = (A^T M_t A)[i, j], M_t[r, s] = m[4r+s, t, c].

    m (16, N*th*tw, C) -> ypad (N, 2th, 2tw, C)."""
    channels = m.shape[2]
    for row in prange(ypad.shape[0] * th):
        n, i0 = row // th, 2 * (row % th)
        for tj in range(tw):
            t, j0 = row * tw + tj, 2 * tj
            for c in range(channels):
                # A^T M: two rows, each a combination of M's four rows, column by column
                k0 = _at(_tile_column(m, 0, t, c))
                k1 = _at(_tile_column(m, 1, t, c))
                k2 = _at(_tile_column(m, 2, t, c))
                k3 = _at(_tile_column(m, 3, t, c))
                for i in range(2):                      # row i of (A^T M) A
                    y0, y1 = _at((k0[i], k1[i], k2[i], k3[i]))
                    ypad[n, i0 + i, j0, c] = y0
                    ypad[n, i0 + i, j0 + 1, c] = y1


@njit(parallel=True, fastmath=True, cache=True)
def _output_transform_adjoint(dypad, th, tw, dm):
    """dm[4r+s, t, c] = (A dY_t A^T)[r, s], dY_t = dypad[n, 2ti:2ti+2, 2tj:2tj+2, c].

    dypad (N, 2th, 2tw, C) -> dm (16, N*th*tw, C)."""
    channels = dypad.shape[3]
    for row in prange(dypad.shape[0] * th):
        n, i0 = row // th, 2 * (row % th)
        for tj in range(tw):
            t, j0 = row * tw + tj, 2 * tj
            for c in range(channels):
                k0 = _a((dypad[n, i0, j0, c], dypad[n, i0 + 1, j0, c]))            # A dY, column 0
                k1 = _a((dypad[n, i0, j0 + 1, c], dypad[n, i0 + 1, j0 + 1, c]))    # A dY, column 1
                for r in range(4):                      # row r of (A dY) A^T
                    _set_tile_row(dm, r, t, c, _a((k0[r], k1[r])))


@njit(parallel=True, fastmath=True, cache=True)
def _input_transform_adjoint(dv, th, tw, first_tile_row, dxpad):
    """dxpad[n, 2ti:2ti+4, 2tj:2tj+4, c] += B dV_t B^T for tile rows ti = first_tile_row, +2, +4, ...

    Tile rows two apart cover disjoint input rows, so these iterations never write the same entry;
    call once with first_tile_row=0 and once with 1. dv (16, N*th*tw, C) -> dxpad (N, 2th+2, 2tw+2, C)."""
    channels = dv.shape[2]
    rows_per_image = (th - first_tile_row + 1) // 2
    for row in prange(dxpad.shape[0] * rows_per_image):
        n = row // rows_per_image
        ti = first_tile_row + 2 * (row % rows_per_image)
        i0 = 2 * ti
        for tj in range(tw):
            t, j0 = (n * th + ti) * tw + tj, 2 * tj
            for c in range(channels):
                # B dV: four rows, each a combination of dV's rows, column by column
                k0 = _b(_tile_column(dv, 0, t, c))
                k1 = _b(_tile_column(dv, 1, t, c))
                k2 = _b(_tile_column(dv, 2, t, c))
                k3 = _b(_tile_column(dv, 3, t, c))
                for u in range(4):                      # row u of (B dV) B^T, added into the window
                    o0, o1, o2, o3 = _b((k0[u], k1[u], k2[u], k3[u]))
                    dxpad[n, i0 + u, j0, c] += o0
                    dxpad[n, i0 + u, j0 + 1, c] += o1
                    dxpad[n, i0 + u, j0 + 2, c] += o2
                    dxpad[n, i0 + u, j0 + 3, c] += o3


# ------------------------------------------------------------------------------- the op
def _sandwich(left: np.ndarray, t: np.ndarray) -> np.ndarray:
    """out[r, s, ...] = sum_{a,b} left[r, a] t[a, b, ...] left[s, b], i.e. left t left^T for every
    trailing index. t (k, k, ...) -> (L, L, ...), with left (L, k). Two plain matrix products."""
    k, rest = t.shape[0], t.shape[2:]
    size = left.shape[0]
    rows = (left @ t.reshape(k, -1)).reshape(size, k, -1)                # sum over a: (L, k, rest)
    return np.matmul(left, rows).reshape(size, size, *rest)               # sum over b: (L, L, rest)


def transform_weights(w: np.ndarray) -> np.ndarray:
    """U[4r+s, ci, co] = (G g G^T)[r, s] for g = w[:, :, ci, co]. w (3, 3, Cin, Cout) -> (16, Cin, Cout)."""
    return _sandwich(G.astype(w.dtype), w).reshape(16, w.shape[2], w.shape[3])


def winograd_conv3x3_forward(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """y = conv2d(x, w, stride=1, padding=1) for x (N, H, W, Cin), w (3, 3, Cin, Cout): y (N, H, W, Cout).

    The kernel itself: inputs are assumed checked (``conv2d_winograd_forward`` checks them)."""
    n, h, width, _ = x.shape
    cout = w.shape[3]
    th, tw = _tiles(h, width)
    v = np.empty((16, n * th * tw, x.shape[3]), dtype=x.dtype)           # (16, T, Cin)
    _input_transform(_padded_input(x, th, tw), th, tw, v)
    m = blas.matmul(v, transform_weights(w))                               # (16, T, Cout): 16 GEMMs
    ypad = np.empty((n, 2 * th, 2 * tw, cout), dtype=x.dtype)
    _output_transform(m, th, tw, ypad)
    return cropped(ypad, h, width)


def cropped(ypad: np.ndarray, h: int, width: int) -> np.ndarray:
    """ypad (N, 2th, 2tw, C) without the extra row/column an odd H or W adds: (N, H, W, C)."""
    if ypad.shape[1] == h and ypad.shape[2] == width:
        return ypad
    return np.ascontiguousarray(ypad[:, :h, :width, :])


def padded_gradient(dy: np.ndarray, th: int, tw: int) -> np.ndarray:
    """dy (N, H, W, C) inside zeros to whole tiles (N, 2th, 2tw, C): the dropped outputs get no gradient."""
    n, h, width, c = dy.shape
    if 2 * th == h and 2 * tw == width:
        return dy
    dypad = np.zeros((n, 2 * th, 2 * tw, c), dtype=dy.dtype)
    dypad[:, :h, :width, :] = dy
    return dypad


def winograd_conv3x3_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple:
    """Gradients of winograd_conv3x3_forward: (dx (N, H, W, Cin), dw (3, 3, Cin, Cout))."""
    n, h, width, cin = x.shape
    cout = w.shape[3]
    th, tw = _tiles(h, width)
    tiles = n * th * tw
    v = np.empty((16, tiles, cin), dtype=x.dtype)                        # (16, T, Cin), recomputed from x
    _input_transform(_padded_input(x, th, tw), th, tw, v)
    dypad = padded_gradient(dy, th, tw)                                  # (N, 2th, 2tw, Cout)
    dm = np.empty((16, tiles, cout), dtype=x.dtype)                      # (16, T, Cout)
    _output_transform_adjoint(dypad, th, tw, dm)

    du = blas.matmul(v.transpose(0, 2, 1), dm)                             # (16, Cin, Cout): summed over tiles
    dw = _sandwich(G.T.astype(w.dtype), du.reshape(4, 4, cin, cout))    # G^T dU G: (3, 3, Cin, Cout)

    dv = blas.matmul(dm, transform_weights(w).transpose(0, 2, 1))          # (16, T, Cin)
    dxpad = np.zeros((n, 2 * th + 2, 2 * tw + 2, cin), dtype=x.dtype)
    _input_transform_adjoint(dv, th, tw, 0, dxpad)                       # even tile rows, in parallel
    _input_transform_adjoint(dv, th, tw, 1, dxpad)                       # then odd ones
    dx = np.ascontiguousarray(dxpad[:, 1:h + 1, 1:width + 1, :])
    return dx, dw


# ------------------------------------------------------------------------------- the sibling op
def conv2d_winograd_forward(x, w, stride=1, padding=1):
    """conv2d_forward's signature and result, by Winograd F(2x2, 3x3): x (N, H, W, Cin), w (3, 3, Cin,
    Cout), stride 1, padding 1 or "same". Returns y (N, H, W, Cout) and the cache.

    Cache: WinogradCache(x, w, stride, pads), algorithm "winograd": x to recompute V, w for U.
    Another geometry (``applies`` is False) is a ValueError: conv2d_forward (im2col) covers every conv.
    """
    x, w, stride, pads = check_winograd_inputs(x, w, stride, padding, "conv2d_winograd_forward")
    return winograd_conv3x3_forward(x, w), WinogradCache(x, w, stride, pads)


def check_winograd_inputs(x, w, stride, padding, op: str):
    """conv2d's input checks, then the geometry Winograd F(2x2, 3x3) covers; returns (x, w, stride, pads)."""
    x, w, stride, pads = check_conv_inputs(x, w, stride, padding, depthwise=False)
    if not applies(w.shape, stride, pads):
        raise ValueError(f"{op}: Winograd F(2x2, 3x3) covers 3x3 stride-1 convs padded by 1 on every side, "
                         f"got kernel {w.shape[0]}x{w.shape[1]}, stride {stride}, pads {pads} "
                         f"(conv2d_forward covers every conv)")
    return x, w, stride, pads


def conv2d_winograd_backward(dy, cache: WinogradCache):
    """Gradients of conv2d_winograd_forward: (dx (N, H, W, Cin), dw (3, 3, Cin, Cout)), as conv2d_backward."""
    dy = check_winograd_gradient(dy, cache, "winograd")
    return winograd_conv3x3_backward(dy, cache.x, cache.w)


def check_winograd_gradient(dy, cache, algorithm: str):
    """The upstream gradient against its cache, and the cache made by this algorithm's forward."""
    dy = check_upstream_gradient(dy, cache)
    check_algorithm(cache, algorithm, f"conv2d_{algorithm}_backward")
    return dy


# ------------------------------------------------------------------------------- by map size
WINOGRAD_MIN_SIZE = 24     # Winograd from 24 x 24 maps up; smaller maps take im2col (measured below)


def conv2d_winograd_or_im2col_forward(x, w, stride=1, padding=1):
    """conv2d_forward's signature and result: Winograd when the map is at least WINOGRAD_MIN_SIZE on
    each side, im2col + GEMM below that. Returns y and the cache of the op that ran (its
    ``algorithm`` says which: "winograd" or "im2col"), which the backward below follows.

    Why by size: Winograd trades a 2.25x smaller matrix product for transforms that read and write
    four times the activation. On small maps the products are small and the transforms, the
    half-empty edge tiles of an odd size and the per-call costs weigh more. Forward + backward alone
    on a 2-core Xeon (family 6, AVX-512), Winograd against im2col: 64->256 channels at 16x16, batch 8:
    8.1 against 6.9 ms; 32->128 at 6x6, batch 64: 4.2 against 2.4 ms; 24->96 at 12x12: 9.2 against
    8.0; at 24x24 and above Winograd is level or ahead (16->16 at 24x24, batch 64: 8.1 against 9.7).
    Inside a training step, against Winograd on every map (alternating runs, same Xeon): the main
    job's model, batch 64, 56-58 against 61-64 ms at 48 px and 29-30 against 33-35 ms at 32 px;
    EfficientNetV2-S at 128 px, batch 8, 432-441 against 446-455 ms. (With AVX2 forced the small
    maps favour im2col too.) At 224 px every Fused-MBConv map of S is 28 px or more: Winograd.
    """
    # The choice reads shapes only; the op chosen checks its inputs (bad ones fail there, with its message).
    x_shape, w_shape = np.shape(x), np.shape(w)
    large = len(x_shape) == 4 and min(x_shape[1], x_shape[2]) >= WINOGRAD_MIN_SIZE
    if large and len(w_shape) == 4 and stride == 1 and applies(w_shape, stride, padding):
        return conv2d_winograd_forward(x, w, stride, padding)
    return conv2d_forward(x, w, stride, padding)


def conv2d_winograd_or_im2col_backward(dy, cache):
    """Gradients of conv2d_winograd_or_im2col_forward: the backward of the op that ran forward."""
    if getattr(cache, "algorithm", None) == "winograd":
        return conv2d_winograd_backward(dy, cache)
    return conv2d_backward(dy, cache)
