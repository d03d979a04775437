"""Direct convolution with register blocking: convs on thin channels without im2col (a speed path).

The readable version is im2col + GEMM (``conv2d.py``); this op gives the same result, summed in
another order, from the same equations written as sums over kernel taps (a, b) and channels:

    y[n,i,j,co]   = sum_{a,b,ci} xpad[n, i*S+a, j*S+b, ci] * w[a,b,ci,co]                  (forward)
    dw[a,b,ci,co] = sum_{n,i,j} xpad[n, i*S+a, j*S+b, ci] * dy[n,i,j,co]                   (weight gradient)
    dx[n,h,v,ci]  = sum_{a,b,co} dypad[n, h+a, v+b, co] * wflip[a,b,co,ci]      (input gradient, S = 1)

At stride 1 the input gradient is the forward's own sum run on dy: dy zero-padded by (KH-1-top,
KH-1-bottom, KW-1-left, KW-1-right) and the kernel flipped in space with its channel axes swapped,
``wflip[a,b,co,ci] = w[KH-1-a, KW-1-b, ci, co]``. So two kernels do all three passes: ``correlate``
(forward and dx) and ``weight_gradient`` (dw), both at stride 1.

Stride 2 (the stem) runs on the same stride-1 kernels, by space-to-depth: write each input row and
column index as 2i + r, r in {0, 1}, and a tap as a = 2b + r; then

    sum_{a,e} xpad[2i+a, 2j+e] w[a,e] = sum_{b,d} xs[i+b, j+d] w2[b,d],
    xs[i, j, (2*rh+rw)*Cin + c] = xpad[2i+rh, 2j+rw, c],   w2[b, d, (2*rh+rw)*Cin + c] = w[2b+rh, 2d+rw, c]

(w2 is 0 where 2b+rh >= KH): a stride-2 KxK conv on Cin channels is a stride-1 ceil(K/2)-square conv
on the four phases of the input, 4*Cin channels (``space_to_depth``, ``phase_weight``); dw is the
stride-1 weight gradient on the phases, read back through ``unphase_weight``. So the stem compiles no
kernels of its own (each generated kernel costs 4-5 s to compile). At stride 2 dx is im2col's: one GEMM
dcol = dy w^T and the col2im gather of ``conv2d.py``, which needs no im2col of x.

Why it is faster on thin channels: im2col writes a matrix nine times the size of a 3x3 conv's input,
and backward writes another (dcol) and reads both back; on a map with 16-32 channels that traffic,
not the arithmetic, is most of the time, and BLAS is slow on matrices 16-32 columns wide. Here
nothing is written but the result. Each kernel keeps a block of sums in vector registers for the
whole sum (register blocking):

    correlate:        JB neighbouring output pixels of one row x CB output channels  (JB*CB sums)
                      per (a, b, ci): load CB weights (a vector), broadcast JB inputs, JB*CB/8 FMAs
    weight_gradient:  CIB input channels x CB output channels of dw at one tap (a, b)
                      per pixel: load CB values of dy (a vector), broadcast CIB inputs, CIB*CB/8 FMAs

How the blocking reaches the machine: Numba cannot keep an array in registers, but it can keep
scalars there, so each block size is a function whose JB*CB sums are separate local variables, with
the block sizes as literals. ``correlate_source(2, 2)`` shows the shape of one::

    for a in range(kh):
        for b in range(kw):
            for ci in range(cin):
                w_0 = wb[k, a, b, ci, 0]
                w_1 = wb[k, a, b, ci, 1]
                x_0 = xp[n, i + a, j0 + 0 + b, ci]
                acc_0_0 += x_0 * w_0
                acc_0_1 += x_0 * w_1
                x_1 = xp[n, i + a, j0 + 1 + b, ci]
                ...

These functions are written out by ``kernels_text()`` into a module in Numba's cache directory the
first time they are needed (``kernels()``; a Numba cache needs a source file). LLVM's SLP vectorizer
then packs the CB scalars of a pixel into vector registers. Numba switches that vectorizer off by
default (numba PR 8852: it miscompiled some code in 2023), so these kernels compile with it on, and
only these (``_superword_vectorization``), and every one is tested against the readable op. Without
it the same kernels ran at 25 GFLOP/s: scalar code.

Measured on a 2-core Xeon (family 6, AVX-512; LLVM uses 256-bit vectors there), float32, GFLOP/s of
one kernel call against the GEMM on a ready im2col matrix: forward 16->16 channels at 24x24, batch
64: 195 against 138; 24->24 at 64x64, batch 8: 229 against 159; weight gradient of the stem, 3->16
channels, stride 2: 133 against 46; but forward 48->192 at 32x32: 222 against 299 (a wide GEMM is
what BLAS is best at). Block sizes (``blocks``): CB, the widest of 32, 24, 16, 8 that divides the
output channels (other counts are padded with zero channels); JB or CIB as many as the vector
registers hold (32 of them with AVX-512, 16 with AVX2), fewer on maps narrower than a block; the
last block of a row starts at Wo - JB and overlaps its neighbour rather than run past the row. The dw
sums are split into row groups small enough to stay in the core's cache and of at most GROUP_PIXELS
pixels (each sum is sequential: shorter sums, smaller float32 error), each group writing its own
partial dw (no two threads add into one array), summed at the end.

Scope (``applies``): any kernel, stride 1 with padding up to kernel - 1 on each side, or stride 2 with
any padding. A layer is built with it (``chosen_for``) for kernels above 1x1 with at most
DIRECT_MAX_CHANNELS channels in and out. The op: ``conv2d_direct_forward(x, w, stride, padding)``
and ``conv2d_direct_backward(dy, cache)`` have the signatures of ``conv2d_forward`` /
``conv2d_backward``; their cache is a ``DirectCache``.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
from contextlib import contextmanager

import numba
import numpy as np
from numba import njit, prange

from . import blas
from ..machine import numba_vector_registers as vector_registers  # 32 with AVX-512, else 16
from ._checks import ConvCache, check_conv_inputs, check_upstream_gradient
from .conv2d import _col2im, check_algorithm

DIRECT_MAX_CHANNELS = 32       # a fast layer takes the direct conv up to this many channels in and out
GROUP_BYTES = 256 * 1024        # input + dy bytes per row group of the weight gradient (fits in L2)
GROUP_PIXELS = 512              # and at most this many pixels: each dw sum runs sequentially over a group

# Block sizes, by output-channel block CB: the pixels (JB) of a correlate block and the input channels
# (CIB) of a weight-gradient block, for 32 and for 16 vector registers; the smaller JBs serve narrow maps.
CHANNEL_BLOCKS = (32, 24, 16, 8)
PIXEL_BLOCKS = {32: (4, 2, 1), 24: (4, 3, 2, 1), 16: (8, 4, 2, 1), 8: (12, 8, 4, 2, 1)}
PIXEL_BLOCK_LIMIT = {32: {32: 4, 24: 4, 16: 8, 8: 12}, 16: {32: 2, 24: 3, 16: 4, 8: 8}}
# CIB 8 x CB 24 (192 sums) ran 8% faster than 4 x 24 but took 14 s to compile, against 5 s.
INPUT_CHANNEL_BLOCKS = {32: (4, 2), 24: (4, 2), 16: (8, 4), 8: (16, 8)}
INPUT_BLOCK_LIMIT = {32: {32: 4, 24: 4, 16: 8, 8: 16}, 16: {32: 2, 24: 4, 16: 4, 8: 8}}


# ------------------------------------------------------------------------------ the generator
def _lines(template: str) -> list:
    return template.strip("\n").split("\n")


def correlate_source(jb: int, cb: int) -> str:
    """The source of ``correlate_j{jb}_c{cb}(xp, wb, y)``: y = the correlation of xp and wb (stride 1).

    xp (N, Hp, Wp, Cin), already padded; wb (nb, KH, KW, Cin, CB), the weight with its output
    channels in nb blocks of CB; y (N, Ho, Wo, nb, CB), Wo >= JB."""
    body = _lines(f'''
@njit(parallel=True, cache=True, fastmath=FASTMATH)
def correlate_j{jb}_c{cb}(xp, wb, y):
    """y[n, i, j, k, c] = sum_(a, b, ci) xp[n, i+a, j+b, ci] * wb[k, a, b, ci, c],
    {jb} pixels x {cb} channels at a time."""
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
    body += [f"            y[n, i, j0 + {q}, k, {c}] = acc_{q}_{c}" for q in range(jb) for c in range(cb)]
    return "\n".join(body) + "\n"


def weight_gradient_source(cib: int, cb: int) -> str:
    """The source of ``weight_gradient_i{cib}_c{cb}(xp, dy, rows_per_group, dwp)``: partial dw (stride 1).

    xp (N, Hp, Wp, ni, CIB), padded, input channels in ni blocks of CIB; dy (N, Ho, Wo, nb, CB); dwp
    (G, ni, nb, KH, KW, CIB, CB): group g sums the output rows g*rows_per_group onwards."""
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
    body += [f"                dwp[g, m, k, a, b, {r}, {c}] = acc_{r}_{c}" for r in range(cib) for c in range(cb)]
    return "\n".join(body) + "\n"


KERNELS_HEADER = '''"""Register-blocked direct convolution kernels, GENERATED by ops/direct.py (kernels_text).

Written here, in Numba's cache directory, because a Numba cache needs a source file; the file name
carries a hash of this text, so a changed generator writes a new file. Do not edit.
"""
from numba import njit, prange

# fastmath without reassociation: FMAs, but no reordering of a sum (the sums over channels must stay
# sums of scalars, which the SLP vectorizer packs across output channels, not across the sum).
FASTMATH = {"contract", "nnan", "ninf", "nsz", "arcp"}
'''


def kernels_text() -> str:
    """The whole generated module: every correlate and weight-gradient block size."""
    parts = [KERNELS_HEADER]
    parts += [correlate_source(jb, cb) for cb in CHANNEL_BLOCKS for jb in PIXEL_BLOCKS[cb]]
    parts += [weight_gradient_source(cib, cb) for cb in CHANNEL_BLOCKS for cib in INPUT_CHANNEL_BLOCKS[cb]]
    return "\n\n".join(parts)


def _kernels_directory() -> str:
    cache = numba.config.CACHE_DIR or os.environ.get("NUMBA_CACHE_DIR")
    if not cache:
        from ..process import defaults
        cache = defaults()["NUMBA_CACHE_DIR"]
    return os.path.join(cache, "tinyeffnet_generated")


@functools.lru_cache(maxsize=None)
def kernels():
    """The generated kernel module, written (atomically: parallel test workers share the directory)
    and imported on first use. An unwritable cache directory falls back to a temporary one."""
    text = kernels_text()
    name = f"direct_kernels_{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    for directory in (_kernels_directory(), os.path.join(tempfile.gettempdir(), f"tinyeffnet-{os.getuid()}")):
        path = os.path.join(directory, name + ".py")
        try:
            if not os.path.exists(path):
                os.makedirs(directory, exist_ok=True)
                handle, partial = tempfile.mkstemp(dir=directory, suffix=".part")
                with os.fdopen(handle, "w") as f:
                    f.write(text)
                os.replace(partial, path)
            break
        except OSError:
            continue
    spec = importlib.util.spec_from_file_location(f"tinyeffnet_generated_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module    # a cached kernel names its module; loading it imports that name
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------ compiling and choosing
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
    kernel = getattr(kernels(), name)
    with _superword_vectorization():
        kernel(*args)


def blocks(cin: int, cout: int, wo: int) -> tuple:
    """(JB, CB, CIB): the correlate block (JB pixels x CB output channels) for an output row of wo
    pixels and the weight-gradient block (CIB input x CB output channels)."""
    cb = next((c for c in CHANNEL_BLOCKS if cout % c == 0), 8)
    registers = vector_registers()
    jb = max(j for j in PIXEL_BLOCKS[cb] if j <= min(PIXEL_BLOCK_LIMIT[registers][cb], wo))
    choices = INPUT_CHANNEL_BLOCKS[cb]
    cib = min(INPUT_BLOCK_LIMIT[registers][cb], max(choices))
    if cin < cib:                     # few input channels (the stem's 3): the smallest block that holds them
        cib = min((c for c in choices if c >= cin), default=min(choices))
    return jb, cb, cib


# ------------------------------------------------------------------------------ padding, space-to-depth
@njit(parallel=True, cache=True)
def _pad_into(x, top, left, xp):
    """xp[n, top+h, left+v, c] = x[n, h, v, c]; every other entry of xp (the border, extra channels) 0.
    Row by row, the copy apart from the zeros (a test per entry ran at a third of the speed)."""
    n_img, h_in, w_in, c_in = x.shape
    _, h_out, w_out, c_out = xp.shape
    zero = xp.dtype.type(0)
    for row in prange(n_img * h_out):  # one padded row (n, r) per iteration
        n, r = row // h_out, row % h_out
        h = r - top
        if h < 0 or h >= h_in:
            xp[n, r] = zero
            continue
        xp[n, r, :left] = zero
        xp[n, r, left + w_in:] = zero
        for u in range(w_in):
            for c in range(c_in):
                xp[n, r, left + u, c] = x[n, h, u, c]
            for c in range(c_in, c_out):
                xp[n, r, left + u, c] = zero


def _padded(x: np.ndarray, top: int, bottom: int, left: int, right: int, channels: int) -> np.ndarray:
    """x (N, H, W, C) with zero rows, columns and (up to ``channels``) channels around it; x itself
    when there is nothing to add."""
    n, h, width, c = x.shape
    if not (top or bottom or left or right) and channels == c:
        return x
    xp = np.empty((n, top + h + bottom, left + width + right, channels), dtype=x.dtype)
    _pad_into(x, top, left, xp)
    return xp


@njit(parallel=True, cache=True)
def _space_to_depth_into(x, top, left, xs):
    """xs[n, i, j, (2*rh + rw)*C + c] = xpad[n, 2i+rh, 2j+rw, c] for the four phases rh, rw in {0, 1},
    xpad being x with ``top`` rows and ``left`` columns of zeros before it and zeros after it; the
    channels of xs past 4C are 0."""
    n_img, h_in, w_in, c_in = x.shape
    _, h_out, w_out, c_out = xs.shape
    zero = xs.dtype.type(0)
    for row in prange(n_img * h_out):  # one row (n, i) of xs per iteration
        n, i = row // h_out, row % h_out
        for j in range(w_out):
            for rh in range(2):
                h = 2 * i + rh - top
                for rw in range(2):
                    v = 2 * j + rw - left
                    first = (2 * rh + rw) * c_in
                    if 0 <= h < h_in and 0 <= v < w_in:
                        for c in range(c_in):
                            xs[n, i, j, first + c] = x[n, h, v, c]
                    else:
                        for c in range(c_in):
                            xs[n, i, j, first + c] = zero
            for q in range(4 * c_in, c_out):
                xs[n, i, j, q] = zero


def space_to_depth(x: np.ndarray, top: int, left: int, size: tuple, channels: int) -> np.ndarray:
    """x (N, H, W, C), padded by (top, left) -> xs (N, size[0], size[1], channels >= 4C): the four
    stride-2 phases of the padded input side by side in the channels (``_space_to_depth_into``)."""
    xs = np.empty((x.shape[0], *size, channels), dtype=x.dtype)
    _space_to_depth_into(x, top, left, xs)
    return xs


def phase_weight(w: np.ndarray) -> np.ndarray:
    """The stride-1 kernel over ``space_to_depth``'s phases that a stride-2 kernel is:

        w2[b, d, (2*rh + rw)*Cin + c, co] = w[2b+rh, 2d+rw, c, co]   (0 where 2b+rh >= KH or 2d+rw >= KW)

    w (KH, KW, Cin, Cout) -> w2 (ceil(KH/2), ceil(KW/2), 4*Cin, Cout). Then for every output pixel
    sum_{a,e} xpad[2i+a, 2j+e] w[a,e] = sum_{b,d} xs[i+b, j+d] w2[b,d]: a stride-2 conv is a stride-1
    conv with a kernel half the size on four times the channels (the 3x3 stem: 2x2 on 12)."""
    kh, kw, cin, cout = w.shape
    kh2, kw2 = -(-kh // 2), -(-kw // 2)
    whole = np.zeros((2 * kh2, 2 * kw2, cin, cout), dtype=w.dtype)
    whole[:kh, :kw] = w
    w2 = whole.reshape(kh2, 2, kw2, 2, cin, cout).transpose(0, 2, 1, 3, 4, 5)   # (b, d, rh, rw, Cin, Cout)
    return np.ascontiguousarray(w2.reshape(kh2, kw2, 4 * cin, cout))


def unphase_weight(w2: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """``phase_weight``'s inverse (the gradient of dw flows back the same way): w2 (KH2, KW2, 4*Cin,
    Cout) -> w (KH, KW, Cin, Cout); the entries that stand for taps past the kernel are dropped."""
    kh2, kw2, c4, cout = w2.shape
    whole = w2.reshape(kh2, kw2, 2, 2, c4 // 4, cout).transpose(0, 2, 1, 3, 4, 5)  # (b, rh, d, rw, Cin, Cout)
    return np.ascontiguousarray(whole.reshape(2 * kh2, 2 * kw2, c4 // 4, cout)[:kh, :kw])


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


# ------------------------------------------------------------------------------ the two sums
def correlate(xp: np.ndarray, w: np.ndarray, out_shape: tuple | None = None) -> np.ndarray:
    """y[n,i,j,co] = sum_{a,b,ci} xp[n, i+a, j+b, ci] w[a,b,ci,co], no padding added, stride 1: xp (N,
    Hp, Wp, Cin), w (KH, KW, Cin, Cout) -> y (N, Ho, Wo, Cout), Ho = Hp-KH+1 (or ``out_shape``'s)."""
    n, hp, wp, cin = xp.shape
    kh, kw, _, cout = w.shape
    ho, wo = out_shape if out_shape else (hp - kh + 1, wp - kw + 1)
    jb, cb, _ = blocks(cin, cout, wo)
    wide = _round_up(cout, cb)                         # output channels padded to whole blocks
    if wide != cout:
        w = np.concatenate([w, np.zeros((kh, kw, cin, wide - cout), dtype=w.dtype)], axis=3)
    nb = wide // cb
    wb = np.ascontiguousarray(w.reshape(kh, kw, cin, nb, cb).transpose(3, 0, 1, 2, 4))  # (nb, KH, KW, Cin, CB)
    y = np.empty((n, ho, wo, nb, cb), dtype=xp.dtype)
    _run(f"correlate_j{jb}_c{cb}", np.ascontiguousarray(xp), wb, y)
    y = y.reshape(n, ho, wo, wide)
    return y if wide == cout else np.ascontiguousarray(y[..., :cout])


def convolve(x: np.ndarray, w: np.ndarray, stride: int, pads: tuple, out_shape: tuple) -> np.ndarray:
    """The forward, y[n,i,j,co] = sum_{a,b,ci} xpad[n, i*S+a, j*S+b, ci] w[a,b,ci,co]: x (N, H, W,
    Cin), pads (top, bottom, left, right), out_shape (Ho, Wo) -> y (N, Ho, Wo, Cout). Stride 1
    correlates the padded input; stride 2 correlates its ``space_to_depth`` with ``phase_weight(w)``."""
    if stride == 1:
        return correlate(_padded(x, *pads, x.shape[3]), w, out_shape)
    w2 = phase_weight(w)
    ho, wo = out_shape
    xs = space_to_depth(x, pads[0], pads[2], (ho + w2.shape[0] - 1, wo + w2.shape[1] - 1), w2.shape[2])
    return correlate(xs, w2, out_shape)


def _weight_gradient_sums(xp: np.ndarray, dy: np.ndarray, kh: int, kw: int, cib: int, cb: int) -> np.ndarray:
    """dw[a,b,ci,co] = sum_{n,i,j} xp[n, i+a, j+b, ci] dy[n,i,j,co] (stride 1, xp already padded,
    its channels a multiple of CIB; dy's a multiple of CB) -> dw (KH, KW, Cin_p, Cout_p)."""
    n, hp, wp, cin_wide = xp.shape
    _, ho, wo, cout_wide = dy.shape
    ni, nb = cin_wide // cib, cout_wide // cb
    rows = n * ho
    row_bytes = (wp * cin_wide + wo * cout_wide) * dy.itemsize
    rows_per_group = max(1, min(GROUP_BYTES // row_bytes, GROUP_PIXELS // wo, rows))
    while rows_per_group > 1 and -(-rows // rows_per_group) * ni * nb < 4 * numba.get_num_threads():
        rows_per_group = -(-rows_per_group // 2)       # enough tasks for every thread
    n_groups = -(-rows // rows_per_group)
    dwp = np.empty((n_groups, ni, nb, kh, kw, cib, cb), dtype=dy.dtype)
    _run(f"weight_gradient_i{cib}_c{cb}", np.ascontiguousarray(xp).reshape(n, hp, wp, ni, cib),
         np.ascontiguousarray(dy).reshape(n, ho, wo, nb, cb), rows_per_group, dwp)
    dw = dwp.sum(axis=0)                               # (ni, nb, KH, KW, CIB, CB)
    return dw.transpose(2, 3, 0, 4, 1, 5).reshape(kh, kw, cin_wide, cout_wide)


def weight_gradient(x: np.ndarray, dy: np.ndarray, stride: int, pads: tuple, kh: int, kw: int) -> np.ndarray:
    """dw[a,b,ci,co] = sum_{n,i,j} xpad[n, i*S+a, j*S+b, ci] dy[n,i,j,co]: x (N, H, W, Cin), pads
    (top, bottom, left, right), dy (N, Ho, Wo, Cout) -> dw (KH, KW, Cin, Cout). Stride 2 sums over
    ``space_to_depth``'s phases (the gradient of ``phase_weight(w)``) and takes dw back out of it."""
    cin, (_, ho, wo, cout) = x.shape[3], dy.shape
    if stride == 1:
        _, cb, cib = blocks(cin, cout, wo)
        xp = _padded(x, *pads, _round_up(cin, cib))    # (N, Hp, Wp, Cin_p): zero channels to whole blocks
        dy_wide = _padded(dy, 0, 0, 0, 0, _round_up(cout, cb))
        return np.ascontiguousarray(_weight_gradient_sums(xp, dy_wide, kh, kw, cib, cb)[:, :, :cin, :cout])
    kh2, kw2 = -(-kh // 2), -(-kw // 2)
    _, cb, cib = blocks(4 * cin, cout, wo)
    xs = space_to_depth(x, pads[0], pads[2], (ho + kh2 - 1, wo + kw2 - 1), _round_up(4 * cin, cib))
    dy_wide = _padded(dy, 0, 0, 0, 0, _round_up(cout, cb))
    dw2 = _weight_gradient_sums(xs, dy_wide, kh2, kw2, cib, cb)[:, :, :4 * cin, :cout]
    return unphase_weight(dw2, kh, kw)


def strided_input_gradient(dy: np.ndarray, w: np.ndarray, x_shape: tuple, stride: int, pads: tuple) -> np.ndarray:
    """dx of a strided conv, as im2col's backward computes it: dcol = dy2d @ w2d^T (P, KH*KW*Cin),
    then conv2d's col2im gather adds each entry back to the input pixel it came from."""
    n, h, width, cin = x_shape
    kh, kw, _, cout = w.shape
    _, ho, wo, _ = dy.shape
    dcol = np.empty((n * ho * wo, kh * kw * cin), dtype=dy.dtype)
    blas.matmul(dy.reshape(-1, cout), w.reshape(-1, cout).T, out=dcol)   # (P, Cout) @ (Cout, K)
    dx = np.empty(x_shape, dtype=dy.dtype)
    top, _, left, _ = pads
    _col2im(dcol, kh, kw, stride, top, left, ho, wo, dx)
    return dx


# ------------------------------------------------------------------------------ the op
class DirectCache(ConvCache):
    """The ConvCache of conv2d_direct_forward: (x, w, stride, pads), ``algorithm`` "direct"."""

    __slots__ = ()
    algorithm = "direct"


def _resolved(w_shape, stride: int, padding):
    """A layer's padding option as (top, bottom, left, right), or None where it depends on the input
    size ("same" at stride 2) or needs an odd kernel ("same" with an even one)."""
    if isinstance(padding, str):
        kh, kw = w_shape[:2]
        if padding != "same" or stride != 1 or not (kh % 2 and kw % 2):
            return None
        return (kh // 2, kh // 2, kw // 2, kw // 2)
    return (padding,) * 4 if isinstance(padding, (int, np.integer)) else tuple(padding)


def applies(w_shape, stride: int, padding) -> bool:
    """The direct kernels cover stride 1 with padding up to kernel - 1 on each side (so that dx is a
    correlation of padded dy) and stride 2 with any padding (dx by col2im).

    padding: the resolved (top, bottom, left, right), or a layer's option (an int, or "same": at
    stride 1, (K-1)/2 on each side of an odd kernel; at stride 2 it depends on the input size)."""
    if len(w_shape) != 4 or stride not in (1, 2):
        return False
    if stride == 2:
        return padding == "same" or _resolved(w_shape, stride, padding) is not None
    pads = _resolved(w_shape, stride, padding)
    kh, kw = w_shape[:2]
    return pads is not None and max(pads[:2]) <= kh - 1 and max(pads[2:]) <= kw - 1


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
                         f"side and stride-2 convs, got kernel {w.shape[0]}x{w.shape[1]}, stride {stride}, "
                         f"pads {pads} (conv2d_forward covers every conv)")
    return x, w, stride, pads


def conv2d_direct_forward(x, w, stride=1, padding=1):
    """conv2d_forward's signature and result, by the register-blocked direct kernel.

        y[n,i,j,co] = sum_{a,b,ci} xpad[n, i*S+a, j*S+b, ci] * w[a,b,ci,co]

    x (N, H, W, Cin), w (KH, KW, Cin, Cout), stride 1 or 2, padding an int or "same" (``applies``).
    Returns y (N, Ho, Wo, Cout) and the cache: DirectCache(x, w, stride, pads), algorithm "direct".
    """
    x, w, stride, pads = check_direct_inputs(x, w, stride, padding, "conv2d_direct_forward")
    cache = DirectCache(x, w, stride, pads)
    _, ho, wo, _ = cache.output_shape
    y = convolve(x, w, stride, pads, (ho, wo))
    return y, cache


def conv2d_direct_weight_gradient(dy, cache: DirectCache):
    """The weight gradient alone, dw (KH, KW, Cin, Cout) = weight_gradient(x, dy), for a layer whose
    input needs no gradient (the stem: the image). The cache is not consumed."""
    dy = check_upstream_gradient(dy, cache)
    check_algorithm(cache, "direct", "conv2d_direct_weight_gradient")
    x, w, stride, pads = cache
    return weight_gradient(x, dy, stride, pads, *w.shape[:2])


def conv2d_direct_backward(dy, cache: DirectCache):
    """Gradients of conv2d_direct_forward, as conv2d_backward: dx (N, H, W, Cin), dw (KH, KW, Cin, Cout).

        dw = weight_gradient(x, dy): sums of xpad * dy over the pixels
        dx = correlate(dy padded by (KH-1-top, KH-1-bottom, KW-1-left, KW-1-right), wflip)   stride 1
        dx = col2im(dy2d @ w2d^T)                                                            stride 2
    """
    dy = check_upstream_gradient(dy, cache)
    check_algorithm(cache, "direct", "conv2d_direct_backward")
    x, w, stride, pads = cache
    dw = weight_gradient(x, dy, stride, pads, *w.shape[:2])
    if stride != 1:
        return strided_input_gradient(dy, w, x.shape, stride, pads), dw
    kh, kw = w.shape[:2]
    top, bottom, left, right = pads
    wflip = np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2))       # (KH, KW, Cout, Cin)
    dy_padded = _padded(dy, kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right, dy.shape[3])
    return correlate(dy_padded, wflip, x.shape[1:3]), dw
