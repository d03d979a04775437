"""Matrix multiply C = A @ B on the GPU, in two versions: the readable one and a tiled one.

Dimensions: A (M, K), B (K, N), C (M, N); T = TILE, the side of a square tile; S = number of
K-splits (split-K, below). A and B may be transposed views (``a.T``): the kernels index [row, col]
and numba compiles them for any strides, so dw = x^T dy needs no transposed copy.

    C[m, n] = sum_k A[m, k] B[k, n]

Version 1, ``_matmul_simple_kernel``: one thread per C entry runs the whole dot product over k,
reading A and B straight from global memory. Every A entry is read N times and every B entry M times.

Version 2, ``tiled`` (used by conv2d and linear): the classic shared-memory tiling. A block of T x T
threads computes one T x T tile of C. It walks k in steps of T: the block copies a T x T tile of A
and one of B into shared memory (each thread copies one entry of each), ``syncthreads``, then every
thread does T multiply-adds from shared memory, ``syncthreads`` again before the tiles are
overwritten. Each global entry is now read M/T (or N/T) times instead of M (N) times: T times less
memory traffic, which is what limits version 1. Out-of-range entries are loaded as 0, so any M, N, K
work.

Split-K (for weight gradients, dw = col^T dy: K = N*Ho*Wo is huge, M*N is small): with only a few
output tiles most of the GPU would idle while each block loops over 400 000 k's. The k range is cut
into S slices; block z of the grid's third axis sums slice z into its own partial C[z] (S, M, N), and
a second, race-free pass adds the S partials (``elementwise.column_sums``). No atomics.

Shared arrays need a compile-time shape and dtype, so the tiled kernel is made once per float type by
``_make_tiled_kernel`` (TILE is a module constant, as numba requires: docs/DESIGN.md, section 9.6).
"""
from __future__ import annotations

import numpy as np
from numba import float32, float64

from ._runtime import KERNELS, KernelSpec, counted, cuda, empty, kernel, launch
from .elementwise import column_sums, fill

TILE = 16
FULL_GPU_TILES = 264  # about 2 blocks per SM on an H100 (132 SMs): fewer output tiles -> split K
MIN_K_PER_SPLIT = 1024


@kernel("void({t}[:, :], {t}[:, :], {t}[:, ::1])")
def _matmul_simple_kernel(a, b, c):
    """Version 1: c[m, n] = sum_k a[m, k] b[k, n], one thread per (m, n)."""
    m_rows, k_dim = a.shape
    n_cols = b.shape[1]
    zero = c.dtype.type(0)
    for idx in range(cuda.grid(1), m_rows * n_cols, cuda.gridsize(1)):
        m = idx // n_cols
        n = idx % n_cols
        acc = zero
        for k in range(k_dim):
            acc += a[m, k] * b[k, n]
        c[m, n] = acc


def _make_tiled_kernel(numba_float):
    """The tiled kernel for one float type (its shared tiles are declared with that type)."""

    def _matmul_tiled_kernel(a, b, partial, k_per_split):
        """partial[z, m, n] = sum over k in slice z of a[m, k] b[k, n]; 2-D blocks of TILE x TILE."""
        a_tile = cuda.shared.array((TILE, TILE), numba_float)
        b_tile = cuda.shared.array((TILE, TILE), numba_float)
        m_rows, k_dim = a.shape
        n_cols = b.shape[1]
        tx = cuda.threadIdx.x  # column inside the tile
        ty = cuda.threadIdx.y  # row inside the tile
        row = cuda.blockIdx.x * TILE + ty  # grid axis x (up to 2**31 - 1 blocks) for the long M = N*Ho*Wo
        col = cuda.blockIdx.y * TILE + tx
        k_begin = cuda.blockIdx.z * k_per_split
        k_end = min(k_dim, k_begin + k_per_split)
        zero = numba_float(0)
        acc = zero
        for k0 in range(k_begin, k_end, TILE):
            # each thread loads one entry of each tile (0 outside the matrices / the slice)
            a_tile[ty, tx] = a[row, k0 + tx] if row < m_rows and k0 + tx < k_end else zero
            b_tile[ty, tx] = b[k0 + ty, col] if k0 + ty < k_end and col < n_cols else zero
            cuda.syncthreads()  # the tiles are complete
            for kk in range(TILE):
                acc += a_tile[ty, kk] * b_tile[kk, tx]
            cuda.syncthreads()  # everyone is done reading before the next tiles overwrite them
        if row < m_rows and col < n_cols:
            partial[cuda.blockIdx.z, row, col] = acc

    name = f"_matmul_tiled_kernel_{numba_float}"
    _matmul_tiled_kernel.__name__ = _matmul_tiled_kernel.__qualname__ = name
    signature = f"void({numba_float}[:, :], {numba_float}[:, :], {numba_float}[:, :, ::1], int64)"
    KERNELS.append(KernelSpec(f"{__name__}.{name}", _matmul_tiled_kernel, signature))
    return cuda.jit(fastmath=True)(_matmul_tiled_kernel)


_TILED_KERNELS = {np.dtype(np.float32): _make_tiled_kernel(float32), np.dtype(np.float64): _make_tiled_kernel(float64)}


def _check_operands(a, b):
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: inner dimensions differ, a is {tuple(a.shape)} and b is {tuple(b.shape)}")
    if np.dtype(a.dtype) != np.dtype(b.dtype):
        raise TypeError(f"mixed dtypes: a has dtype {a.dtype} but b has dtype {b.dtype}")


def matmul_simple(a, b):
    """C = A @ B with version 1 (one thread per output). a: (M, K), b: (K, N) device arrays -> (M, N)."""
    _check_operands(a, b)
    c = empty((a.shape[0], b.shape[1]), a.dtype)
    launch(_matmul_simple_kernel, c.size, a, b, c)
    return c


def choose_splits(m_rows: int, n_cols: int, k_dim: int) -> int:
    """S for split-K: 1 when the output already has enough tiles to fill the GPU."""
    tiles = -(-m_rows // TILE) * -(-n_cols // TILE)
    if tiles >= FULL_GPU_TILES:
        return 1
    return int(max(1, min(-(-FULL_GPU_TILES // tiles), k_dim // MIN_K_PER_SPLIT)))


def matmul(a, b, splits: int | None = None):
    """C = A @ B with the tiled version (split-K when few output tiles). a: (M, K), b: (K, N) -> (M, N)."""
    _check_operands(a, b)
    m_rows, k_dim = a.shape
    n_cols = b.shape[1]
    if splits is None:
        splits = choose_splits(m_rows, n_cols, k_dim)
    splits = max(1, min(int(splits), max(1, k_dim)))
    k_per_split = -(-k_dim // splits) if k_dim else 0
    k_per_split = -(-k_per_split // TILE) * TILE if k_per_split else 0  # whole tiles per slice
    splits = -(-k_dim // k_per_split) if k_per_split else 1
    partial = empty((splits, m_rows, n_cols), a.dtype)  # (S, M, N)
    if k_dim == 0:
        fill(partial, 0)  # an empty sum
    else:
        grid = (-(-m_rows // TILE), -(-n_cols // TILE), splits)  # (row tiles, column tiles, K slices)
        tiled = _TILED_KERNELS[np.dtype(a.dtype)]
        if counted(tiled):
            tiled[grid, (TILE, TILE)](a, b, partial, k_per_split)
    if splits == 1:
        return partial.reshape(m_rows, n_cols)
    return column_sums(partial.reshape(splits, m_rows * n_cols)).reshape(m_rows, n_cols)

