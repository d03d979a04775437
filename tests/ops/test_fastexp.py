"""The vectorisable exp(-a): accuracy against float64 exp, the bit trick, and that it really vectorises."""
import math
import re

import numba
import numpy as np
import pytest
from numba import njit

from tinyeffnet.ops import activations, fused
from tinyeffnet.ops.fastexp import _int_bits_as_float32, exp_neg, exp_neg_float32


@njit(cache=False)
def _exp_neg_all(a, out):
    for i in range(a.shape[0]):
        out[i] = exp_neg(a[i])


def _fast_and_exact(a):
    out = np.empty_like(a)
    _exp_neg_all(a, out)
    return out, np.exp(-a.astype(np.float64))


def test_float32_relative_error_across_the_range():
    # Every float32 grid point of [0, 87]: exp(-87) = 1.6e-38 is close to the smallest normal float32.
    a = np.linspace(0, 87, 2_000_001, dtype=np.float32)
    fast, exact = _fast_and_exact(a)
    relative = np.abs(fast - exact) / exact
    assert fast.dtype == np.float32
    assert relative[a <= 16].max() < 1e-6          # the range sigmoid cares about: near float32's eps
    assert relative.max() < 5e-6                    # grows with a: t = a log2(e) is rounded to float32


def test_float32_special_points():
    a = np.array([0, 1, 0.5 * math.log(2), 1e-30, 200, 1e30, np.inf], dtype=np.float32)
    fast, _ = _fast_and_exact(a)
    assert fast[0] == 1.0                             # exp(0) exactly 1
    assert abs(fast[1] - math.exp(-1)) < 1e-7
    assert fast[3] == 1.0
    assert np.all(fast[4:] == np.float32(2.0 ** -126))   # clamped: a tiny positive number, never inf/nan
    assert np.all(np.isfinite(fast))


def test_float64_keeps_the_exact_exp():
    # The property: float64 (the gradient checks) takes libm's exact exp, never the float32 polynomial.
    # Checked in the compiled code itself: the float64 specialisation calls exp. (Not by comparing bits
    # with np.exp: numpy's own SIMD exp differs from libm's by 1 ulp at ~5% of points on AVX-512 CPUs.)
    a = np.linspace(0, 700, 10_001)
    fast, exact = _fast_and_exact(a)
    assert fast.dtype == np.float64
    ir = _exp_neg_all.inspect_llvm((numba.float64[::1], numba.float64[::1]))
    assert _EXP_CALL.search(ir), "the float64 exp_neg no longer calls libm's exp"
    # and the values are exp's own: within one ulp of numpy's float64 exp (whatever its SIMD path)
    assert np.all(np.abs(fast - exact) <= np.spacing(exact))


def test_bits_of_a_power_of_two():
    # A float32 with exponent field e and zero mantissa is exactly 2^(e - 127).
    @njit
    def power_of_two(n):
        return _int_bits_as_float32((127 - n) << 23)

    for n in (0, 1, 10, 126):
        assert power_of_two(n) == np.float32(2.0 ** -n)
    assert exp_neg_float32(np.float32(0)) == 1.0


_EXP_CALL = re.compile(r"@(llvm\.exp\.|expf?\b)")   # LLVM's exp intrinsic or libm's expf / exp


def _serial_copy(kernel):
    """The kernel's Python source compiled afresh (no cache: cached code cannot be inspected), with its
    own options but serial: prange runs as range, and the loop body is the same code LLVM vectorises."""
    options = dict(kernel.targetoptions, cache=False, parallel=False)
    options.pop("nopython", None)
    return njit(**options)(kernel.py_func)


@pytest.mark.parametrize("kernel, n_arrays", [
    (activations._silu_forward_kernel, 2),
    (activations._silu_backward_kernel, 3),
    (activations._sigmoid_forward_kernel, 2),
    (fused._bn_silu_kernel, None),
])
def test_float32_kernels_are_vectorised(kernel, n_arrays):
    # The point of fastexp: LLVM turns the loops into SIMD code (<8 x float> with AVX2). If an edit
    # brings back a scalar exp call or a division check, this fails before any benchmark notices.
    serial = _serial_copy(kernel)
    x = np.linspace(-5, 5, 4096, dtype=np.float32)
    if n_arrays is None:                                   # (x2, mean, scale, beta, y2)
        c = np.ones(16, np.float32)
        serial(x.reshape(256, 16), c, c, c, np.empty((256, 16), np.float32))
    else:
        serial(*([x] * (n_arrays - 1)), np.empty_like(x))
    ir = serial.inspect_llvm(serial.signatures[0])
    assert re.search(r"<\d+ x float>", ir), "no SIMD float vector in the compiled kernel"
    assert not _EXP_CALL.search(ir), "a libm exp call is back in the kernel"


def test_the_libm_version_calls_exp():
    # The control for the test above: with math.exp the loop calls libm's exp (LLVM may still pack the
    # loads into vectors, but each exp is a scalar call), so the check above can fail.
    @njit(fastmath=True, error_model="numpy")
    def silu_with_libm_exp(x, y):
        for i in range(x.shape[0]):
            y[i] = x[i] / (np.float32(1) + math.exp(-x[i]))

    x = np.linspace(-5, 5, 4096, dtype=np.float32)
    silu_with_libm_exp(x, np.empty_like(x))
    ir = silu_with_libm_exp.inspect_llvm(silu_with_libm_exp.signatures[0])
    assert _EXP_CALL.search(ir)
