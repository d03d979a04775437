"""exp(-a) that the compiler can vectorise: the speed path behind SiLU, sigmoid and BN+SiLU.

Why: pip's llvmlite has no SVML, so ``math.exp`` inside a Numba loop is a call to the scalar libm
function, one element at a time (about 6 ns per element here), and the loop around it cannot use the
8-wide AVX2 registers. PyTorch's exp is vectorised, which made our SiLU 2.3-2.7x slower than
PyTorch's. Written as plain arithmetic instead, the loop vectorises (about 1.6 ns per element on one
core; ``tests/ops/test_fastexp.py`` holds the accuracy, ``tinyeffnet bench ops`` the speed).

The math, for a >= 0 (sigmoid only ever needs exp(-|x|), a number in (0, 1]):

    exp(-a) = 2^(-t)                        t = a log2(e), clamped to t <= 126
            = 2^(-n) * 2^(n - t)            n = round(t), an integer in [0, 126]
            = 2^(-n) * e^u                  u = (n - t) ln 2, so |u| <= ln(2) / 2 = 0.347

    e^u   ~ 1 + u + u^2/2! + ... + u^7/7!  (Taylor, Horner form; error <= 0.347^8 / 8! = 5e-9)
    2^(-n) is built from its bits: a float32 is sign | 8 exponent bits (biased by 127) | 23 mantissa
           bits, so the int32 (127 - n) << 23 read as a float32 is exactly 2^(-n).

Accuracy (float32): relative error below 1e-6 for a <= 16, below 5e-6 up to a = 87 (the rounding
of t = a log2(e) grows with a). Past t = 126 the result stays at 2^-126 (1.2e-38) instead of going to
zero; a sigmoid built on it is then off by at most that much, far below float32's resolution at 1.

float64 arrays (the gradient checks) keep the exact ``math.exp``: ``exp_neg`` picks the version by
the argument's type when Numba compiles the calling kernel.

One more condition for vectorising: kernels that divide must be compiled with
``error_model="numpy"``. Numba's default ("python") guards every ``/`` with a division-by-zero check
that raises ZeroDivisionError, and that branch stops LLVM from vectorising the loop. With "numpy", 1/0
gives inf as in NumPy, and our divisions (1 / (1 + e), with e >= 0) never divide by zero anyway.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

LOG2_E = np.float32(1.4426950408889634)      # 1 / ln 2
LN_2 = np.float32(0.6931471805599453)
MAX_POWER = np.float32(126.0)                 # 2^-126 is the smallest normal float32
EXPONENT_BIAS = 127
MANTISSA_BITS = 23


@intrinsic
def _int_bits_as_float32(typingctx, bits):
    """Reinterpret the low 32 bits of an integer as a float32 (no conversion: the same bits).

    NumPy spells this ``np.int32(i).view(np.float32)``; in Numba that allocates an array per call,
    which is slow and blocks vectorisation. Here it is the single LLVM instruction ``bitcast``."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        value = args[0]
        if bits.bitwidth > 32:
            value = builder.trunc(value, ir.IntType(32))
        return builder.bitcast(value, ir.FloatType())

    return types.float32(bits), codegen


@njit(fastmath=True, cache=True, inline="always")
def exp_neg_float32(a):
    """exp(-a) for a float32 a >= 0, vectorisable (see the module docstring for the math)."""
    t = min(a * LOG2_E, MAX_POWER)
    n = np.floor(t + np.float32(0.5))                       # round(t), as a float32
    u = (n - t) * LN_2                                      # |u| <= ln(2) / 2
    p = np.float32(1 / 5040)                                # e^u: Taylor up to u^7 / 7!, Horner form
    p = p * u + np.float32(1 / 720)
    p = p * u + np.float32(1 / 120)
    p = p * u + np.float32(1 / 24)
    p = p * u + np.float32(1 / 6)
    p = p * u + np.float32(1 / 2)
    p = p * u + np.float32(1)
    p = p * u + np.float32(1)
    two_to_minus_n = _int_bits_as_float32((EXPONENT_BIAS - np.int32(n)) << MANTISSA_BITS)
    return p * two_to_minus_n


def exp_neg(a):
    """exp(-a) for a >= 0. In Python: math.exp(-a). In Numba kernels: exp_neg_float32 for float32,
    math.exp for float64 (picked at compile time by the overload below)."""
    return math.exp(-a)


@overload(exp_neg, inline="always")
def _exp_neg_for_type(a):
    if a == types.float32:
        return lambda a: exp_neg_float32(a)
    if isinstance(a, types.Float):
        return lambda a: math.exp(-a)
    return None
