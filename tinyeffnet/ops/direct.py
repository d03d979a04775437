"""Direct convolution with register blocking: stride-1 convs on thin channels, no im2col (a speed path).

The readable version is im2col + GEMM (``conv2d.py``); this op gives the same result, summed in
another order, from the same equations written as sums over kernel taps (a, b) and channels:

    y[n,i,j,co]   = sum_{a,b,ci} xpad[n, i+a, j+b, ci] * w[a,b,ci,co]                    (forward)
    dx[n,h,v,ci]  = sum_{a,b,co} dypad[n, h+a, v+b, co] * wflip[a,b,co,ci]              (input gradient)
    dw[a,b,ci,co] = sum_{n,i,j} xpad[n, i+a, j+b, ci] * dy[n,i,j,co]                     (weight gradient)

The input gradient is the forward's own sum run on dy: dy zero-padded by (KH-1-top, KH-1-bottom,
KW-1-left, KW-1-right) and the kernel flipped in space with its channel axes swapped,
``wflip[a,b,co,ci] = w[KH-1-a, KW-1-b, ci, co]``. So two kernels do all three passes: ``correlate``
(forward and dx) and ``weight_gradient`` (dw).

Why it is faster on thin channels: im2col writes a matrix nine times the size of a 3x3 conv's input,
and backward writes another (dcol) and reads both back; on a map with 16-32 channels that traffic,
not the arithmetic, is most of the time, and OpenBLAS is slow on matrices 16 columns wide. Here
nothing is written but the result. Each kernel keeps a block of results in vector registers for the
whole sum (register blocking):

    correlate:        JB neighbouring output pixels of one row x CB output channels  (JB*CB sums)
                      per (a, b, ci): load CB weights (one vector), broadcast JB inputs, JB FMAs
    weight_gradient:  CIB input channels x CB output channels of dw at one tap (a, b)
                      per pixel: load CB values of dy (one vector), broadcast CIB inputs, CIB FMAs

How the blocking reaches the machine: Numba cannot keep an array in registers, but it can keep
scalars there, so each block size is a function whose JB*CB sums are separate local variables
(``acc_q_c``), and the block sizes are literals in its source. Those functions are written out in
``_direct_kernels.py`` by ``write_kernels()`` below (a test checks that the file is what this
generator writes). LLVM's SLP vectorizer then packs the CB scalars of a pixel into vector registers;
Numba switches that vectorizer off by default (numba PR 8852: it miscompiled some code in 2023), so
these kernels are compiled with it on, and only these (``_superword_vectorization``), and every one
is tested against the readable op. Measured on a 2-core Xeon (family 6, AVX-512), float32, forward
alone in GFLOP/s, direct against im2col: 16->16 channels at 24x24, batch 64: 210 against 78;
96->24 at 12x12 (dx of 24->96): 145 against 122; 24->24 at 64x64, batch 8: 167 against 101; but
48->192 at 32x32: 203 against 281 (a wide GEMM is what BLAS is best at). Without the SLP vectorizer
the same kernels ran at 25 GFLOP/s: scalar code.

Block sizes: CB = 16 output channels when they divide by 16, else 8 (other counts are padded with
zero channels); JB = 8 pixels with 32 vector registers (AVX-512), 4 with 16 (AVX2), fewer on maps
narrower than that; the last block of a row starts at Wo - JB and overlaps its neighbour rather than
run past the row. The dw sums are split into row groups small enough to stay in the core's cache,
each group writing its own partial dw (no two threads add into one array), summed at the end.

Scope: stride 1, any kernel size and padding up to kernel - 1 on each side (``applies``). The op:
``conv2d_direct_forward(x, w, stride, padding)`` and ``conv2d_direct_backward(dy, cache)`` have
the signatures of ``conv2d_forward`` / ``conv2d_backward``; their cache is a ``DirectCache``.
"""
from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

from ._checks import ConvCache, check_conv_inputs, check_upstream_gradient
from .conv2d import check_algorithm

KERNELS_FILE = Path(__file__).with_name("_direct_kernels.py")

# The block sizes written out in _direct_kernels.py: (JB, CB) for correlate, (CIB, CB) for weight_gradient.
CORRELATE_BLOCKS = ((8, 16), (8, 8), (4, 16), (4, 8), (2, 16), (2, 8), (1, 16), (1, 8))
WEIGHT_GRADIENT_BLOCKS = ((8, 16), (8, 8), (4, 16), (4, 8))
GROUP_BYTES = 256 * 1024        # input + dy bytes per row group of the weight gradient (fits in L2)


# ------------------------------------------------------------------------------ the generator
def _lines(template: str, **names) -> list:
    return [line.format(**names) for line in template.strip("\n").split("\n")]


def correlate_source(jb: int, cb: int) -> str:
    """The source of ``correlate_j{jb}_c{cb}(xp, wb, y)``: y = the stride-1 correlation of xp and wb.

    xp (N, Ho+KH-1, Wo+KW-1, Cin), already padded; wb (nb, KH, KW, Cin, CB), the weight with its
    output channels in nb blocks of CB; y (N, Ho, Wo, nb, CB). Wo >= JB."""
    sums = [(q, c) for q in range(jb) for c in range(cb)]
    body = _lines(f'''
@njit(parallel=True, cache=True, fastmath=FASTMATH)
def correlate_j{jb}_c{cb}(xp, wb, y):
    """y[n, i, j, k, c] = sum_(a, b, ci) xp[n, i+a, j+b, ci] * wb[k, a, b, ci, c], {jb} pixels x {cb} channels at a time."""
    n_img, ho, wo, nb, _ = y.shape
    _, kh, kw, cin, _ = wb.shape
    blocks_per_row = (wo + {jb - 1}) // {jb}
    zero = y.dtype.type(0)
    for task in prange(n_img * ho * nb):  # one output row (n, i) and one block k of {cb} output channels
        n = task // (ho * nb)
        i = task // nb % ho
        k = task % nb
        for block in range(blocks_per_row):
            j0 = min(block * {jb}, wo - {jb})  # the last block overlaps its neighbour''')
    body += ["            " + " = ".join(f"acc_{q}_{c}" for c in range(cb)) + " = zero" for q in range(jb)]
    body += _lines('''
            for a in range(kh):
                for b in range(kw):
                    for ci in range(cin):''')
    body += [f"                        w_{c} = wb[k, a, b, ci, {c}]" for c in range(cb)]
    for q in range(jb):
        body.append(f"                        x_{q} = xp[n, i + a, j0 + {q} + b, ci]")
        body += [f"                        acc_{q}_{c} += x_{q} * w_{c}" for c in range(cb)]
    body += [f"            y[n, i, j0 + {q}, k, {c}] = acc_{q}_{c}" for q, c in sums]
    return "\n".join(body) + "\n"


def weight_gradient_source(cib: int, cb: int) -> str:
    """The source of ``weight_gradient_i{cib}_c{cb}(xp, dy, rows_per_group, dwp)``: partial sums of dw.

    xp (N, Ho+KH-1, Wo+KW-1, ni, CIB), padded, input channels in ni blocks of CIB; dy (N, Ho, Wo, nb,
    CB); dwp (G, ni, nb, KH, KW, CIB, CB): group g sums the output rows g*rows_per_group onwards."""
    sums = [(r, c) for r in range(cib) for c in range(cb)]
    body = _lines(f'''
@njit(parallel=True, cache=True, fastmath=FASTMATH)
def weight_gradient_i{cib}_c{cb}(xp, dy, rows_per_group, dwp):
    """dwp[g, m, k, a, b, r, c] = sum over group g's pixels of xp[n, i+a, j+b, m, r] * dy[n, i, j, k, c]."""
    n_img, ho, wo, nb, _ = dy.shape
    n_groups, ni, _, kh, kw, _, _ = dwp.shape
    rows = n_img * ho
    zero = dwp.dtype.type(0)
    for task in prange(n_groups * ni * nb):  # one row group g, {cib} input channels m, {cb} output channels k
        g = task // (ni * nb)
        m = task // nb % ni
        k = task % nb
        first = g * rows_per_group
        last = min(rows, first + rows_per_group)
        for a in range(kh):
            for b in range(kw):''')
    body += ["                " + " = ".join(f"acc_{r}_{c}" for c in range(cb)) + " = zero" for r in range(cib)]
    body += _lines('''
                for row in range(first, last):
                    n = row // ho
                    i = row % ho
                    for j in range(wo):''')
    body += [f"                        d_{c} = dy[n, i, j, k, {c}]" for c in range(cb)]
    for r in range(cib):
        body.append(f"                        x_{r} = xp[n, i + a, j + b, m, {r}]")
        body += [f"                        acc_{r}_{c} += x_{r} * d_{c}" for c in range(cb)]
    body += [f"                dwp[g, m, k, a, b, {r}, {c}] = acc_{r}_{c}" for r, c in sums]
    return "\n".join(body) + "\n"


KERNELS_HEADER = '''"""Register-blocked direct convolution kernels: GENERATED by tinyeffnet/ops/direct.py, do not edit.

Regenerate with ``python -m tinyeffnet.ops.direct``; tests/ops/test_direct.py checks that this file is
what the generator writes. One function per block size; the block sizes are literals so that every
running sum is a scalar LLVM can keep in a register (ops/direct.py explains the kernels).
"""
from numba import njit, prange

# fastmath without reassociation: FMAs, but no reordering of a sum (the sums over channels must stay
# sums of scalars, which the SLP vectorizer packs across output channels, not across the sum).
FASTMATH = {"contract", "nnan", "ninf", "nsz", "arcp"}
'''


def kernels_text() -> str:
    """The whole text of _direct_kernels.py."""
    parts = [KERNELS_HEADER]
    parts += [correlate_source(jb, cb) for jb, cb in CORRELATE_BLOCKS]
    parts += [weight_gradient_source(cib, cb) for cib, cb in WEIGHT_GRADIENT_BLOCKS]
    return "\n\n".join(parts)


def write_kernels(path: Path = KERNELS_FILE) -> Path:
    path.write_text(kernels_text())
    return path


# ------------------------------------------------------------------------------ compiling them
@contextmanager
def _superword_vectorization():
    """Numba's SLP vectorizer on while a kernel of this file compiles (or loads from the cache)."""
    previous = numba.config.SLP_VECTORIZE
    numba.config.SLP_VECTORIZE = 1
    try:
        yield
    finally:
        numba.config.SLP_VECTORIZE = previous


def _run(name: str, *args) -> None:
    from . import _direct_kernels
    with _superword_vectorization():
        getattr(_direct_kernels, name)(*args)


@functools.lru_cache(maxsize=None)
def vector_registers() -> int:
    """32 when Numba compiles for AVX-512 (zmm0-31), else 16: how many sums a block may keep."""
    from llvmlite import binding
    features = os.environ.get("NUMBA_CPU_FEATURES") or binding.get_host_cpu_features().flatten()
    return 32 if "+avx512f" in features.split(",") else 16


def _channel_block(channels: int) -> int:
    return 16 if channels % 16 == 0 else 8


def _pixel_block(width: int) -> int:
    most = 8 if vector_registers() == 32 else 4
    return max(jb for jb in (8, 4, 2, 1) if jb <= min(most, width))


@njit(parallel=True, cache=True)
def _pad_into(x, top, left, xp):
    """xp[n, top+h, left+v, c] = x[n, h, v, c]; every other entry of xp (the border, extra channels) 0."""
    n_img, h_in, w_in, c_in = x.shape
    _, h_out, w_out, c_out = xp.shape
    zero = xp.dtype.type(0)
    for row in prange(n_img * h_out):  # one padded row (n, r) per iteration
        n = row // h_out
        h = row % h_out - top
        for v in range(w_out):
            u = v - left
            inside = 0 <= h < h_in and 0 <= u < w_in
            for c in range(c_out):
                xp[n, row % h_out, v, c] = x[n, h, u, c] if inside and c < c_in else zero


def _padded(x: np.ndarray, top: int, bottom: int, left: int, right: int, channels: int) -> np.ndarray:
    """x (N, H, W, C) with zero rows, columns and (up to ``channels``) channels around it."""
    n, h, width, _ = x.shape
    xp = np.empty((n, top + h + bottom, left + width + right, channels), dtype=x.dtype)
    _pad_into(x, top, left, xp)
    return xp


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


# ------------------------------------------------------------------------------ the two sums
def correlate(xp: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The stride-1 correlation y[n,i,j,co] = sum_{a,b,ci} xp[n,i+a,j+b,ci] w[a,b,ci,co], no padding
    added: xp (N, Hp, Wp, Cin), w (KH, KW, Cin, Cout) -> y (N, Hp-KH+1, Wp-KW+1, Cout)."""
    n, hp, wp, cin = xp.shape
    kh, kw, _, cout = w.shape
    ho, wo = hp - kh + 1, wp - kw + 1
    cb = _channel_block(cout)
    wide = _round_up(cout, cb)                         # output channels padded to whole blocks
    if wide != cout:
        w = np.concatenate([w, np.zeros((kh, kw, cin, wide - cout), dtype=w.dtype)], axis=3)
    nb = wide // cb
    wb = np.ascontiguousarray(w.reshape(kh, kw, cin, nb, cb).transpose(3, 0, 1, 2, 4))  # (nb, KH, KW, Cin, CB)
    y = np.empty((n, ho, wo, nb, cb), dtype=xp.dtype)
    jb = _pixel_block(wo)
    _run(f"correlate_j{jb}_c{cb}", xp, wb, y)
    y = y.reshape(n, ho, wo, wide)
    return y if wide == cout else np.ascontiguousarray(y[..., :cout])


def weight_gradient(x: np.ndarray, dy: np.ndarray, pads: tuple, kh: int, kw: int) -> np.ndarray:
    """dw[a,b,ci,co] = sum_{n,i,j} xpad[n,i+a,j+b,ci] dy[n,i,j,co], stride 1: x (N, H, W, Cin), pads
    (top, bottom, left, right), dy (N, Ho, Wo, Cout) -> dw (KH, KW, Cin, Cout)."""
    n, _, _, cin = x.shape
    _, ho, wo, cout = dy.shape
    cib = 8 if vector_registers() == 32 else 4
    cb = _channel_block(cout)
    cin_wide, cout_wide = _round_up(cin, cib), _round_up(cout, cb)   # zero channels to whole blocks
    xp = _padded(x, *pads, cin_wide)                   # (N, Ho+KH-1, Wo+KW-1, Cin_wide)
    if cout_wide != cout:
        dy = _padded(dy, 0, 0, 0, 0, cout_wide)
    hp, wp = xp.shape[1:3]
    ni, nb = cin_wide // cib, cout_wide // cb
    rows = n * ho
    row_bytes = (wp * cin_wide + wo * cout_wide) * dy.itemsize
    rows_per_group = max(1, min(GROUP_BYTES // row_bytes, rows))
    while rows_per_group > 1 and -(-rows // rows_per_group) * ni * nb < 4 * numba.get_num_threads():
        rows_per_group = -(-rows_per_group // 2)       # enough tasks for every thread
    n_groups = -(-rows // rows_per_group)
    dwp = np.empty((n_groups, ni, nb, kh, kw, cib, cb), dtype=dy.dtype)
    _run(f"weight_gradient_i{cib}_c{cb}", xp.reshape(n, hp, wp, ni, cib),
         np.ascontiguousarray(dy).reshape(n, ho, wo, nb, cb), rows_per_group, dwp)
    dw = dwp.sum(axis=0)                               # (ni, nb, KH, KW, CIB, CB)
    dw = dw.transpose(2, 3, 0, 4, 1, 5).reshape(kh, kw, cin_wide, cout_wide)
    return np.ascontiguousarray(dw[:, :, :cin, :cout])


# ------------------------------------------------------------------------------ the op
class DirectCache(ConvCache):
    """The ConvCache of conv2d_direct_forward: (x, w, stride, pads), ``algorithm`` "direct"."""

    __slots__ = ()
    algorithm = "direct"


def applies(w_shape, stride: int, padding) -> bool:
    """The direct kernels cover stride-1 convs padded by at most kernel - 1 on each side.

    padding: the resolved (top, bottom, left, right), or a layer's option (an int, or "same": at
    stride 1, "same" pads (K-1)/2 on each side of an odd kernel)."""
    if len(w_shape) != 4 or stride != 1:
        return False
    kh, kw = w_shape[:2]
    if padding == "same":
        padding = (kh // 2, kh // 2, kw // 2, kw // 2) if kh % 2 and kw % 2 else None
    elif isinstance(padding, int):
        padding = (padding,) * 4
    if padding is None:
        return False
    top, bottom, left, right = padding
    return max(top, bottom) <= kh - 1 and max(left, right) <= kw - 1


DIRECT_MAX_CHANNELS = 24       # a fast layer takes the direct conv up to this many channels in and out


def chosen_for(w_shape, stride: int, padding) -> bool:
    """Whether a fast layer (``nn.Conv2d(fast=True)``) is built with the direct conv: a kernel larger
    than 1x1 that ``applies`` covers, at most DIRECT_MAX_CHANNELS channels in and out. A 1x1 conv is
    already a plain GEMM with no im2col; wider convs are GEMMs BLAS runs faster (module docstring)."""
    return (applies(w_shape, stride, padding) and tuple(w_shape[:2]) != (1, 1)
            and max(w_shape[2], w_shape[3]) <= DIRECT_MAX_CHANNELS)


def check_direct_inputs(x, w, stride, padding, op: str):
    """conv2d's input checks, then the geometry the direct kernels cover; returns (x, w, stride, pads)."""
    x, w, stride, pads = check_conv_inputs(x, w, stride, padding, depthwise=False)
    if not applies(w.shape, stride, pads):
        raise ValueError(f"{op}: the direct conv covers stride-1 convs padded by at most kernel - 1 on each "
                         f"side, got kernel {w.shape[0]}x{w.shape[1]}, stride {stride}, pads {pads} "
                         f"(conv2d_forward covers every conv)")
    return x, w, stride, pads


def conv2d_direct_forward(x, w, stride=1, padding=1):
    """conv2d_forward's signature and result, by the register-blocked direct kernel.

        y[n,i,j,co] = sum_{a,b,ci} xpad[n, i+a, j+b, ci] * w[a,b,ci,co]

    x (N, H, W, Cin), w (KH, KW, Cin, Cout), stride 1, padding an int or "same" (see ``applies``).
    Returns y (N, Ho, Wo, Cout) and the cache: DirectCache(x, w, stride, pads), algorithm "direct".
    """
    x, w, stride, pads = check_direct_inputs(x, w, stride, padding, "conv2d_direct_forward")
    top, bottom, left, right = pads
    y = correlate(_padded(x, top, bottom, left, right, x.shape[3]), w)
    return y, DirectCache(x, w, stride, pads)


def conv2d_direct_backward(dy, cache: DirectCache):
    """Gradients of conv2d_direct_forward, as conv2d_backward: dx (N, H, W, Cin), dw (KH, KW, Cin, Cout).

        dx = correlate(dy padded by (KH-1-top, KH-1-bottom, KW-1-left, KW-1-right), wflip)
        dw = weight_gradient(x, dy): sums of xpad * dy over the pixels
    """
    dy = check_upstream_gradient(dy, cache)
    check_algorithm(cache, "direct", "conv2d_direct_backward")
    x, w, _, (top, bottom, left, right) = cache
    kh, kw = w.shape[:2]
    wflip = np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2))       # (KH, KW, Cout, Cin)
    dx = correlate(_padded(dy, kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right, dy.shape[3]), wflip)
    dw = weight_gradient(x, dy, (top, bottom, left, right), kh, kw)
    return dx, dw


if __name__ == "__main__":
    print(f"wrote {write_kernels()}")
