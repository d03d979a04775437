"""Depthwise conv2d, both tiers: gradient checks, PyTorch parity, Numba vs reference, padding rule, bad input.

Oracle: torch.nn.functional.conv2d with groups=C on NCHW tensors. Our layout is channels-last, so the
torch side permutes x (N, H, W, C) -> (N, C, H, W), w (KH, KW, C) -> (C, 1, KH, KW), and the output
back to (N, Ho, Wo, C). TensorFlow's "same" padding is computed in this file from its own formula
(not with our resolve_padding) and applied with F.pad.
"""
import math

import numpy as np
import pytest
import torch  # noqa: F401  (the parity oracle: without torch this module must fail, not skip)
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tinyeffnet.ops import depthwise_conv2d_backward, depthwise_conv2d_forward
from tinyeffnet.ops import reference
from tinyeffnet.testing import Report, compare, gradcheck, torch_parity

DTYPES = [np.float32, np.float64]

# (N, H, W, C, (KH, KW), stride, padding): stride 2 on odd and even sizes, kernels 1/3/5, paddings
# 0/1/2/"same", batch 1, one channel, non-square inputs and kernels, a C that is not a multiple of
# the SIMD width, and one medium shape (many rows per thread, where a race would show; its dw sums
# over more rows than there are partial buffers).
GRID = [
    (2, 7, 7, 3, (3, 3), 2, 1),
    (2, 8, 8, 3, (3, 3), 2, 1),
    (1, 6, 9, 2, (1, 1), 1, 0),
    (2, 8, 6, 3, (1, 1), 2, 0),
    (2, 7, 5, 1, (5, 5), 1, 2),
    (1, 9, 7, 2, (5, 5), 2, "same"),
    (2, 8, 10, 3, (3, 3), 2, "same"),
    (2, 6, 6, 5, (3, 3), 1, "same"),
    (1, 5, 4, 3, (3, 3), 1, 0),
    (2, 8, 7, 2, (5, 5), 2, 0),
    (1, 6, 8, 2, (3, 1), 1, 1),
    (2, 7, 6, 2, (1, 5), 2, "same"),
    (2, 16, 15, 19, (3, 3), 1, 1),
]
GRID_IDS = [f"n{c[0]}-{c[1]}x{c[2]}-c{c[3]}-k{c[4][0]}x{c[4][1]}-s{c[5]}-p{c[6]}" for c in GRID]


def tf_same_pads(size, k, stride):
    """TensorFlow SAME, written out independently of tinyeffnet: output ceil(size/stride), the
    total padding that needs, the smaller half before."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def torch_depthwise(stride, padding, kernel, size):
    """torch version of our depthwise_conv2d_forward(x, w, stride, padding) on channels-last tensors."""

    def forward(x, w):
        channels = x.shape[3]
        # .contiguous(): plain NCHW memory. A permuted NHWC tensor is "channels_last" to torch, which
        # then runs oneDNN's nhwc kernels; on this AVX2 machine the dense 1x1 stride-2 backward_weights
        # with Cin < 8 returned a wrong dw in ~1/3 of runs and corrupted the heap (measured with torch
        # 2.14.1; oneDNN issue uxlfoundation/oneDNN#6035). The NCHW path is the oracle we trust, here too.
        x_nchw = x.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
        w_c1hw = w.permute(2, 0, 1)[:, None].contiguous()  # (C, 1, KH, KW)
        if padding == "same":
            top, bottom = tf_same_pads(size[0], kernel[0], stride)
            left, right = tf_same_pads(size[1], kernel[1], stride)
            y = F.conv2d(F.pad(x_nchw, (left, right, top, bottom)), w_c1hw, stride=stride, groups=channels)
        else:
            y = F.conv2d(x_nchw, w_c1hw, stride=stride, padding=padding, groups=channels)
        return y.permute(0, 2, 3, 1)  # (N, Ho, Wo, C)

    return forward


def make_inputs(n, h, w, channels, kernel, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, channels)).astype(dtype)
    weight = rng.standard_normal((kernel[0], kernel[1], channels)).astype(dtype)
    return x, weight


# ---------------------------------------------------------------- gradient checks (float64)
# Depthwise conv is bilinear: L = sum(y * dy) is linear in each single entry of x (or of w) that
# gradcheck moves, so the centred difference is exact for every step h: no truncation error, only
# round-off, about ulp(L) / h. h = 1e-3 keeps that near 1e-12 (with h = 1e-6 it reaches ~3e-9 absolute,
# above 1e-7 relative for small gradient entries). Threshold: cs231n's 1e-7 for smooth ops in float64.
GRADCHECK_EPS = 1e-3
GRADCHECK_TOL = 1e-7
GRADCHECK_CONFIGS = [
    (2, 5, 5, 3, (3, 3), 1, 1),
    (2, 6, 6, 2, (3, 3), 2, 1),
    (1, 6, 5, 3, (1, 1), 1, 0),
    (2, 6, 7, 2, (1, 1), 2, 0),
    (1, 7, 6, 2, (5, 5), 2, "same"),
    (2, 6, 8, 3, (3, 3), 2, "same"),
    (1, 5, 7, 2, (3, 1), 1, 0),
    (1, 8, 8, 2, (5, 5), 1, 2),
]


@pytest.mark.parametrize("config", GRADCHECK_CONFIGS)
def test_gradcheck_numba(config):
    n, h, w, channels, kernel, stride, padding = config
    x, weight = make_inputs(n, h, w, channels, kernel, np.float64)
    report = gradcheck(depthwise_conv2d_forward, depthwise_conv2d_backward, [x, weight], names=["x", "w"],
                       kwargs={"stride": stride, "padding": padding}, eps=GRADCHECK_EPS, tol=GRADCHECK_TOL)
    assert len(report.rows) == 2
    report.assert_ok()


def test_gradcheck_reference():
    x, weight = make_inputs(2, 6, 5, 3, (3, 3), np.float64)
    report = gradcheck(reference.depthwise_conv2d_forward, reference.depthwise_conv2d_backward, [x, weight],
                       names=["x", "w"], kwargs={"stride": 2, "padding": 1}, eps=GRADCHECK_EPS, tol=GRADCHECK_TOL)
    assert len(report.rows) == 2
    report.assert_ok()


# ---------------------------------------------------------------- PyTorch parity
# Default tolerances of torch_parity (float64 1e-10: only the summation order differs; float32
# atol 1e-5 of the largest value (testing.compare scales it), rtol 1e-4: float32 rounding over sums of
# at most a few hundred terms).
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", GRID, ids=GRID_IDS)
def test_reference_matches_torch(config, dtype):
    n, h, w, channels, kernel, stride, padding = config
    x, weight = make_inputs(n, h, w, channels, kernel, dtype)
    report = torch_parity(reference.depthwise_conv2d_forward, reference.depthwise_conv2d_backward,
                          torch_depthwise(stride, padding, kernel, (h, w)), [x, weight], names=["x", "w"],
                          kwargs={"stride": stride, "padding": padding})
    assert len(report.rows) == 3  # forward, dx, dw
    report.assert_ok()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", [GRID[1], GRID[3], GRID[5], GRID[11], GRID[12]],
                         ids=[GRID_IDS[i] for i in (1, 3, 5, 11, 12)])
def test_numba_matches_torch(config, dtype):
    n, h, w, channels, kernel, stride, padding = config
    x, weight = make_inputs(n, h, w, channels, kernel, dtype)
    report = torch_parity(depthwise_conv2d_forward, depthwise_conv2d_backward,
                          torch_depthwise(stride, padding, kernel, (h, w)), [x, weight], names=["x", "w"],
                          kwargs={"stride": stride, "padding": padding})
    assert len(report.rows) == 3
    report.assert_ok()


# ---------------------------------------------------------------- Numba tier vs reference tier
# Same tolerances as the torch parity above, for the same reason (summation order only).
TIER_TOL = {np.float32: dict(atol=1e-5, rtol=1e-4), np.float64: dict(atol=1e-10, rtol=1e-10)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", GRID, ids=GRID_IDS)
def test_numba_matches_reference(config, dtype):
    n, h, w, channels, kernel, stride, padding = config
    x, weight = make_inputs(n, h, w, channels, kernel, dtype)
    y, cache = depthwise_conv2d_forward(x, weight, stride, padding)
    y_ref, cache_ref = reference.depthwise_conv2d_forward(x, weight, stride, padding)
    dy = np.random.default_rng(1).standard_normal(y_ref.shape).astype(dtype)
    dx, dw = depthwise_conv2d_backward(dy, cache)
    dx_ref, dw_ref = reference.depthwise_conv2d_backward(dy, cache_ref)
    report = Report(f"depthwise numba vs reference {config} {np.dtype(dtype)}")
    for name, ours, ref in [("y", y, y_ref), ("dx", dx, dx_ref), ("dw", dw, dw_ref)]:
        report.rows.append(compare(name, ours, ref, **TIER_TOL[dtype]))
    report.assert_ok()


# ---------------------------------------------------------------- hypothesis vs torch
@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 2), h=st.integers(1, 7), w=st.integers(1, 7), channels=st.integers(1, 9),
    k=st.sampled_from([1, 3, 5]), stride=st.sampled_from([1, 2]),
    padding=st.sampled_from([0, 1, 2, "same"]), dtype=st.sampled_from(DTYPES),
)
def test_random_shapes_match_torch(n, h, w, channels, k, stride, padding, dtype):
    if padding != "same":
        assume(k <= h + 2 * padding and k <= w + 2 * padding)  # the kernel must fit the padded input
    x, weight = make_inputs(n, h, w, channels, (k, k), dtype)
    report = torch_parity(depthwise_conv2d_forward, depthwise_conv2d_backward,
                          torch_depthwise(stride, padding, (k, k), (h, w)), [x, weight], names=["x", "w"],
                          kwargs={"stride": stride, "padding": padding})
    report.assert_ok()


# ---------------------------------------------------------------- "same" is TensorFlow's rule
@pytest.mark.parametrize(
    "size, k, stride, expected_pads",
    [
        (8, 3, 2, (0, 1)),  # even size, stride 2: total 1, the smaller half (0) first
        (7, 3, 2, (1, 1)),  # odd size: total 2
        (8, 5, 2, (1, 2)),  # total 3: 1 before, 2 after
        (6, 5, 1, (2, 2)),  # stride 1: (k - 1) / 2 each side
    ],
)
def test_same_padding_is_tensorflow_rule(size, k, stride, expected_pads):
    assert tf_same_pads(size, k, stride) == expected_pads  # the hand-written numbers agree with the formula
    x, weight = make_inputs(1, size, size, 2, (k, k), np.float64)
    y, cache = depthwise_conv2d_forward(x, weight, stride, "same")
    assert cache.pads == expected_pads + expected_pads  # (top, bottom, left, right)
    assert y.shape == (1, math.ceil(size / stride), math.ceil(size / stride), 2)


def test_same_padding_stride2_even_pads_bottom_right_only():
    # With (0 top, 1 bottom): output (0, 0) reads x[0:3, 0:3] (no zero border) and the last output
    # (3, 3) reads x[6:8, 6:8] plus the zero row and column below and right.
    x, weight = make_inputs(1, 8, 8, 4, (3, 3), np.float64)
    y, _ = depthwise_conv2d_forward(x, weight, 2, "same")
    np.testing.assert_allclose(y[0, 0, 0], np.sum(x[0, 0:3, 0:3] * weight, axis=(0, 1)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y[0, 3, 3], np.sum(x[0, 6:8, 6:8] * weight[:2, :2], axis=(0, 1)),
                               rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- layout and dtype
@pytest.mark.parametrize("stride, padding", [(2, 1), (1, "same")])
def test_non_contiguous_input_same_as_contiguous(stride, padding):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((2, 9, 7, 6))
    x = base.transpose(0, 2, 1, 3)[:, :, :, ::2]  # (2, 7, 9, 3), neither C- nor F-contiguous
    weight = rng.standard_normal((3, 3, 6))[:, :, 1::2]  # (3, 3, 3) strided view
    assert not x.flags.c_contiguous and not weight.flags.c_contiguous
    y, cache = depthwise_conv2d_forward(x, weight, stride, padding)
    y_c, cache_c = depthwise_conv2d_forward(np.ascontiguousarray(x), np.ascontiguousarray(weight), stride, padding)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(y, y_c)
    for grad, grad_c in zip(depthwise_conv2d_backward(dy[:, ::-1], cache),
                            depthwise_conv2d_backward(dy[:, ::-1].copy(), cache_c)):
        np.testing.assert_array_equal(grad, grad_c)


@pytest.mark.parametrize("impl", [(depthwise_conv2d_forward, depthwise_conv2d_backward),
                                  (reference.depthwise_conv2d_forward, reference.depthwise_conv2d_backward)],
                         ids=["numba", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_preserved(impl, dtype):
    forward, backward = impl
    x, weight = make_inputs(2, 6, 5, 3, (3, 3), dtype)
    y, cache = forward(x, weight, 2, 1)
    dx, dw = backward(np.ones_like(y), cache)
    assert (y.dtype, dx.dtype, dw.dtype) == (np.dtype(dtype),) * 3
    assert dx.shape == x.shape and dw.shape == weight.shape


# ---------------------------------------------------------------- bad input, one test each
def f64(*shape):
    return np.zeros(shape)


def test_bad_x_ndim():
    with pytest.raises(ValueError, match=r"x must be 4-D, got 3-D array of shape \(5, 5, 3\)"):
        depthwise_conv2d_forward(f64(5, 5, 3), f64(3, 3, 3))


def test_bad_w_ndim():
    with pytest.raises(ValueError, match=r"w must be 3-D, got 4-D array of shape \(3, 3, 3, 1\)"):
        depthwise_conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 3, 1))


def test_channel_mismatch():
    with pytest.raises(ValueError, match=r"channel mismatch: x of shape \(1, 5, 5, 3\) has 3 channels but "
                                         r"w of shape \(3, 3, 4\) has 4 channels"):
        depthwise_conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 4))


def test_integer_x():
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got int64"):
        depthwise_conv2d_forward(np.zeros((1, 5, 5, 3), dtype=np.int64), f64(3, 3, 3))


def test_float16_x():
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got float16"):
        depthwise_conv2d_forward(np.zeros((1, 5, 5, 3), dtype=np.float16), f64(3, 3, 3))


def test_mixed_dtypes():
    with pytest.raises(TypeError, match="mixed dtypes: w has dtype float64 but the input has dtype float32"):
        depthwise_conv2d_forward(np.zeros((1, 5, 5, 3), dtype=np.float32), f64(3, 3, 3))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"kernel 5x5 is larger than the padded input 4x6"):
        depthwise_conv2d_forward(f64(1, 4, 6, 3), f64(5, 5, 3))


def test_stride_zero():
    with pytest.raises(ValueError, match="stride must be >= 1, got 0"):
        depthwise_conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 3), stride=0)


def test_even_kernel_with_same():
    with pytest.raises(ValueError, match='padding="same" needs an odd kernel size, got kernel 4x4'):
        depthwise_conv2d_forward(f64(1, 5, 5, 3), f64(4, 4, 3), padding="same")


def test_padding_valid_string():
    with pytest.raises(ValueError, match="padding must be an int >= 0 or \"same\", got 'valid'"):
        depthwise_conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 3), padding="valid")


def test_negative_padding():
    with pytest.raises(ValueError, match="padding must be an int >= 0 or \"same\", got -1"):
        depthwise_conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 3), padding=-1)


@pytest.mark.parametrize("backward", [depthwise_conv2d_backward, reference.depthwise_conv2d_backward],
                         ids=["numba", "reference"])
def test_dy_wrong_shape(backward):
    _, cache = depthwise_conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 3), stride=2, padding=1)
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 3, 3, 3\), got \(1, 5, 5, 3\)"):
        backward(f64(1, 5, 5, 3), cache)


def test_dy_wrong_dtype():
    _, cache = depthwise_conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 3), padding=1)
    with pytest.raises(TypeError, match="mixed dtypes: dy has dtype float32 but the input has dtype float64"):
        depthwise_conv2d_backward(np.zeros((1, 5, 5, 3), dtype=np.float32), cache)


def test_reference_rejects_bad_input_too():
    with pytest.raises(ValueError, match="channel mismatch"):
        reference.depthwise_conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 4))
