"""Dense conv2d, both tiers: gradient checks, PyTorch parity, Numba vs reference, padding rule, bad input.

Oracle: torch.nn.functional.conv2d on NCHW tensors. Our layout is channels-last, so the torch side
permutes x (N, H, W, Cin) -> (N, Cin, H, W), w (KH, KW, Cin, Cout) -> (Cout, Cin, KH, KW), and the
output back to (N, Ho, Wo, Cout). TensorFlow's "same" padding is computed in this file from its own
formula (not with our resolve_padding) and applied with F.pad.
"""
import math

import numpy as np
import pytest
import torch  # noqa: F401  (the parity oracle: without torch this module must fail, not skip)
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tinyeffnet.ops import conv2d_backward, conv2d_forward
from tinyeffnet.ops import reference
from tinyeffnet.testing import Report, compare, gradcheck, torch_parity

DTYPES = [np.float32, np.float64]

# (N, H, W, Cin, Cout, (KH, KW), stride, padding): stride 2 on odd and even sizes, kernels 1/3/5,
# paddings 0/1/2/"same", batch 1, one channel, non-square inputs and kernels, the 1x1 fast paths
# (stride 1 and 2, no padding) and a 1x1 with padding (general path), one medium shape (many rows
# per thread, where a race in the parallel kernels would show).
GRID = [
    (2, 7, 7, 3, 4, (3, 3), 2, 1),
    (2, 8, 8, 3, 4, (3, 3), 2, 1),
    (1, 6, 9, 2, 3, (1, 1), 1, 0),
    (2, 8, 6, 3, 2, (1, 1), 2, 0),
    (2, 7, 9, 3, 2, (1, 1), 2, 0),
    (2, 6, 5, 2, 3, (1, 1), 1, 1),
    (2, 7, 5, 1, 3, (5, 5), 1, 2),
    (1, 9, 7, 2, 1, (5, 5), 2, "same"),
    (2, 8, 10, 3, 4, (3, 3), 2, "same"),
    (2, 6, 6, 2, 3, (3, 3), 1, "same"),
    (1, 5, 4, 3, 2, (3, 3), 1, 0),
    (2, 8, 7, 2, 3, (5, 5), 2, 0),
    (1, 6, 8, 2, 2, (3, 1), 1, 1),
    (2, 7, 6, 2, 3, (1, 5), 2, "same"),
    (2, 13, 12, 8, 6, (3, 3), 1, 1),
]
GRID_IDS = [f"n{c[0]}-{c[1]}x{c[2]}-{c[3]}to{c[4]}-k{c[5][0]}x{c[5][1]}-s{c[6]}-p{c[7]}" for c in GRID]


def tf_same_pads(size, k, stride):
    """TensorFlow SAME, written out independently of tinyeffnet: output ceil(size/stride), the
    total padding that needs, the smaller half before."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def torch_conv2d(stride, padding, kernel, size):
    """torch version of our conv2d_forward(x, w, stride, padding) on channels-last tensors."""

    def forward(x, w):
        # .contiguous(): plain NCHW memory. A permuted NHWC tensor is "channels_last" to torch, which
        # then runs oneDNN's nhwc kernels; on this AVX2 machine the dense 1x1 stride-2 backward_weights
        # with Cin < 8 returned a wrong dw in ~1/3 of runs and corrupted the heap (measured with torch
        # 2.14.1; oneDNN issue uxlfoundation/oneDNN#6035). The NCHW path is the oracle we trust.
        x_nchw = x.permute(0, 3, 1, 2).contiguous()  # (N, Cin, H, W)
        # .contiguous(): torch's slow_conv2d backward refuses a permuted weight ("grad_weight must be
        # contiguous") for some shapes, e.g. Cout = 1.
        w_oihw = w.permute(3, 2, 0, 1).contiguous()  # (Cout, Cin, KH, KW)
        if padding == "same":
            top, bottom = tf_same_pads(size[0], kernel[0], stride)
            left, right = tf_same_pads(size[1], kernel[1], stride)
            y = F.conv2d(F.pad(x_nchw, (left, right, top, bottom)), w_oihw, stride=stride)
        else:
            y = F.conv2d(x_nchw, w_oihw, stride=stride, padding=padding)
        return y.permute(0, 2, 3, 1)  # (N, Ho, Wo, Cout)

    return forward


def make_inputs(n, h, w, cin, cout, kernel, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, cin)).astype(dtype)
    weight = rng.standard_normal((kernel[0], kernel[1], cin, cout)).astype(dtype)
    return x, weight


# ---------------------------------------------------------------- gradient checks (float64)
# conv is bilinear: L = sum(y * dy) is linear in each single entry of x (or of w) that gradcheck
# moves, so the centred difference (L(+h) - L(-h)) / 2h is exact for every h: no truncation error,
# only round-off, about ulp(L) / h. With the default h = 1e-6 that is ~3e-9 absolute (measured), which
# is above 1e-7 relative for gradient entries near 0.01. So h = 1e-3 (exact all the same, 1000x less
# round-off) and the cs231n threshold for smooth ops in float64, 1e-7.
GRADCHECK_EPS = 1e-3
GRADCHECK_TOL = 1e-7
GRADCHECK_CONFIGS = [
    (2, 5, 5, 2, 3, (3, 3), 1, 1),
    (2, 6, 6, 2, 3, (3, 3), 2, 1),
    (1, 6, 5, 3, 2, (1, 1), 1, 0),
    (2, 6, 7, 2, 2, (1, 1), 2, 0),
    (1, 7, 6, 2, 2, (5, 5), 2, "same"),
    (2, 6, 8, 2, 3, (3, 3), 2, "same"),
    (1, 5, 7, 2, 2, (3, 1), 1, 0),
]


@pytest.mark.parametrize("config", GRADCHECK_CONFIGS)
def test_gradcheck_numba(config):
    n, h, w, cin, cout, kernel, stride, padding = config
    x, weight = make_inputs(n, h, w, cin, cout, kernel, np.float64)
    report = gradcheck(conv2d_forward, conv2d_backward, [x, weight], names=["x", "w"],
                       kwargs={"stride": stride, "padding": padding}, eps=GRADCHECK_EPS, tol=GRADCHECK_TOL)
    assert len(report.rows) == 2
    report.assert_ok()


def test_gradcheck_reference():
    x, weight = make_inputs(2, 6, 5, 2, 3, (3, 3), np.float64)
    report = gradcheck(reference.conv2d_forward, reference.conv2d_backward, [x, weight], names=["x", "w"],
                       kwargs={"stride": 2, "padding": 1}, eps=GRADCHECK_EPS, tol=GRADCHECK_TOL)
    assert len(report.rows) == 2
    report.assert_ok()


# ---------------------------------------------------------------- PyTorch parity
# Default tolerances of torch_parity (float64 1e-10: only the summation order differs; float32
# atol 1e-5 of the largest value (testing.compare scales it), rtol 1e-4: float32 rounding over sums of
# at most a few hundred terms).
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", GRID, ids=GRID_IDS)
def test_reference_matches_torch(config, dtype):
    n, h, w, cin, cout, kernel, stride, padding = config
    x, weight = make_inputs(n, h, w, cin, cout, kernel, dtype)
    report = torch_parity(reference.conv2d_forward, reference.conv2d_backward,
                          torch_conv2d(stride, padding, kernel, (h, w)), [x, weight], names=["x", "w"],
                          kwargs={"stride": stride, "padding": padding})
    assert len(report.rows) == 3  # forward, dx, dw
    report.assert_ok()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", [GRID[1], GRID[3], GRID[7], GRID[13]], ids=[GRID_IDS[i] for i in (1, 3, 7, 13)])
def test_numba_matches_torch(config, dtype):
    n, h, w, cin, cout, kernel, stride, padding = config
    x, weight = make_inputs(n, h, w, cin, cout, kernel, dtype)
    report = torch_parity(conv2d_forward, conv2d_backward, torch_conv2d(stride, padding, kernel, (h, w)),
                          [x, weight], names=["x", "w"], kwargs={"stride": stride, "padding": padding})
    assert len(report.rows) == 3
    report.assert_ok()


# ---------------------------------------------------------------- Numba tier vs reference tier
# Same tolerances as the torch parity above, for the same reason (summation order only).
TIER_TOL = {np.float32: dict(atol=1e-5, rtol=1e-4), np.float64: dict(atol=1e-10, rtol=1e-10)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", GRID, ids=GRID_IDS)
def test_numba_matches_reference(config, dtype):
    n, h, w, cin, cout, kernel, stride, padding = config
    x, weight = make_inputs(n, h, w, cin, cout, kernel, dtype)
    y, cache = conv2d_forward(x, weight, stride, padding)
    y_ref, cache_ref = reference.conv2d_forward(x, weight, stride, padding)
    dy = np.random.default_rng(1).standard_normal(y_ref.shape).astype(dtype)
    dx, dw = conv2d_backward(dy, cache)
    dx_ref, dw_ref = reference.conv2d_backward(dy, cache_ref)
    report = Report(f"conv2d numba vs reference {config} {np.dtype(dtype)}")
    for name, ours, ref in [("y", y, y_ref), ("dx", dx, dx_ref), ("dw", dw, dw_ref)]:
        report.rows.append(compare(name, ours, ref, **TIER_TOL[dtype]))
    report.assert_ok()


# ---------------------------------------------------------------- hypothesis vs torch
@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 2), h=st.integers(1, 7), w=st.integers(1, 7), cin=st.integers(1, 3),
    cout=st.integers(1, 3), k=st.sampled_from([1, 3, 5]), stride=st.sampled_from([1, 2]),
    padding=st.sampled_from([0, 1, 2, "same"]), dtype=st.sampled_from(DTYPES),
)
def test_random_shapes_match_torch(n, h, w, cin, cout, k, stride, padding, dtype):
    if padding != "same":
        assume(k <= h + 2 * padding and k <= w + 2 * padding)  # the kernel must fit the padded input
    x, weight = make_inputs(n, h, w, cin, cout, (k, k), dtype)
    report = torch_parity(conv2d_forward, conv2d_backward, torch_conv2d(stride, padding, (k, k), (h, w)),
                          [x, weight], names=["x", "w"], kwargs={"stride": stride, "padding": padding})
    report.assert_ok()


# ---------------------------------------------------------------- "same" is TensorFlow's rule
@pytest.mark.parametrize(
    "size, k, stride, expected_pads",
    [
        (8, 3, 2, (0, 1)),  # even size, stride 2: total 1, the smaller half (0) first
        (7, 3, 2, (1, 1)),  # odd size: total 2
        (8, 5, 2, (1, 2)),  # total 3: 1 before, 2 after
        (6, 3, 1, (1, 1)),  # stride 1: (k - 1) / 2 each side
    ],
)
def test_same_padding_is_tensorflow_rule(size, k, stride, expected_pads):
    assert tf_same_pads(size, k, stride) == expected_pads  # the hand-written numbers agree with the formula
    x, weight = make_inputs(1, size, size, 2, 2, (k, k), np.float64)
    y, cache = conv2d_forward(x, weight, stride, "same")
    assert cache.pads == expected_pads + expected_pads  # (top, bottom, left, right)
    assert y.shape == (1, math.ceil(size / stride), math.ceil(size / stride), 2)


def test_same_padding_stride2_even_pads_bottom_right_only():
    # With (0 top, 1 bottom) output (0, 0) reads x[0:3, 0:3] and never the zero border: check directly.
    x, weight = make_inputs(1, 8, 8, 2, 3, (3, 3), np.float64)
    y, _ = conv2d_forward(x, weight, 2, "same")
    expected = np.einsum("abc,abcd->d", x[0, 0:3, 0:3, :], weight)
    np.testing.assert_allclose(y[0, 0, 0], expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- layout and dtype
@pytest.mark.parametrize("kernel, stride", [((3, 3), 2), ((1, 1), 1), ((1, 1), 2)])
def test_non_contiguous_input_same_as_contiguous(kernel, stride):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((2, 9, 7, 6))
    x = base.transpose(0, 2, 1, 3)[:, :, :, ::2]  # (2, 7, 9, 3), neither C- nor F-contiguous
    weight = rng.standard_normal((kernel[1], kernel[0], 4, 3)).transpose(1, 0, 3, 2)  # (KH, KW, 3, 4) view
    assert not x.flags.c_contiguous and not weight.flags.c_contiguous
    y, cache = conv2d_forward(x, weight, stride, 1 if kernel == (3, 3) else 0)
    y_c, cache_c = conv2d_forward(np.ascontiguousarray(x), np.ascontiguousarray(weight), stride,
                                  1 if kernel == (3, 3) else 0)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(y, y_c)
    for grad, grad_c in zip(conv2d_backward(dy[:, ::-1], cache), conv2d_backward(dy[:, ::-1].copy(), cache_c)):
        np.testing.assert_array_equal(grad, grad_c)


@pytest.mark.parametrize("impl", [(conv2d_forward, conv2d_backward),
                                  (reference.conv2d_forward, reference.conv2d_backward)], ids=["numba", "reference"])
@pytest.mark.parametrize("kernel, stride, padding", [((3, 3), 2, 1), ((1, 1), 1, 0), ((1, 1), 2, 0)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_preserved(impl, kernel, stride, padding, dtype):
    forward, backward = impl
    x, weight = make_inputs(2, 6, 5, 3, 4, kernel, dtype)
    y, cache = forward(x, weight, stride, padding)
    dx, dw = backward(np.ones_like(y), cache)
    assert (y.dtype, dx.dtype, dw.dtype) == (np.dtype(dtype),) * 3
    assert dx.shape == x.shape and dw.shape == weight.shape


# ---------------------------------------------------------------- bad input, one test each
def f64(*shape):
    return np.zeros(shape)


def test_bad_x_ndim():
    with pytest.raises(ValueError, match=r"x must be 4-D, got 3-D array of shape \(5, 5, 3\)"):
        conv2d_forward(f64(5, 5, 3), f64(3, 3, 3, 2))


def test_bad_w_ndim():
    with pytest.raises(ValueError, match=r"w must be 4-D, got 3-D array of shape \(3, 3, 3\)"):
        conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 3))


def test_channel_mismatch():
    with pytest.raises(ValueError, match=r"channel mismatch: x of shape \(1, 5, 5, 3\) has 3 channels but "
                                         r"w of shape \(3, 3, 4, 2\) has 4 input channels"):
        conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 4, 2))


def test_integer_x():
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got int64"):
        conv2d_forward(np.zeros((1, 5, 5, 3), dtype=np.int64), f64(3, 3, 3, 2))


def test_float16_x():
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got float16"):
        conv2d_forward(np.zeros((1, 5, 5, 3), dtype=np.float16), f64(3, 3, 3, 2))


def test_mixed_dtypes():
    with pytest.raises(TypeError, match="mixed dtypes: w has dtype float64 but the input has dtype float32"):
        conv2d_forward(np.zeros((1, 5, 5, 3), dtype=np.float32), f64(3, 3, 3, 2))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"kernel 5x5 is larger than the padded input 4x6"):
        conv2d_forward(f64(1, 4, 6, 3), f64(5, 5, 3, 2))


def test_stride_zero():
    with pytest.raises(ValueError, match="stride must be >= 1, got 0"):
        conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 3, 2), stride=0)


def test_even_kernel_with_same():
    with pytest.raises(ValueError, match='padding="same" needs an odd kernel size, got kernel 2x2'):
        conv2d_forward(f64(1, 5, 5, 3), f64(2, 2, 3, 2), padding="same")


def test_padding_valid_string():
    with pytest.raises(ValueError, match="padding must be an int >= 0 or \"same\", got 'valid'"):
        conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 3, 2), padding="valid")


def test_negative_padding():
    with pytest.raises(ValueError, match="padding must be an int >= 0 or \"same\", got -1"):
        conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 3, 2), padding=-1)


def test_empty_kernel():
    with pytest.raises(ValueError, match=r"w must have a kernel of at least 1x1, got shape \(0, 3, 3, 2\)"):
        conv2d_forward(f64(1, 5, 5, 3), f64(0, 3, 3, 2))


@pytest.mark.parametrize("backward", [conv2d_backward, reference.conv2d_backward], ids=["numba", "reference"])
def test_dy_wrong_shape(backward):
    _, cache = conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 3, 2), padding=1)
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 5, 5, 2\), got \(1, 5, 5, 3\)"):
        backward(f64(1, 5, 5, 3), cache)


def test_dy_wrong_dtype():
    _, cache = conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 3, 2), padding=1)
    with pytest.raises(TypeError, match="mixed dtypes: dy has dtype float32 but the input has dtype float64"):
        conv2d_backward(np.zeros((1, 5, 5, 2), dtype=np.float32), cache)


def test_reference_rejects_bad_input_too():
    with pytest.raises(ValueError, match="channel mismatch"):
        reference.conv2d_forward(f64(1, 5, 5, 3), f64(3, 3, 4, 2))
