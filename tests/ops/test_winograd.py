"""Winograd F(2x2, 3x3): its hand-written transforms, and the op against im2col, the NumPy tier,
finite differences and PyTorch.

conv2d_forward (test_conv2d.py) is always im2col; the Winograd conv is its sibling op
``winograd.conv2d_winograd_forward/backward``, picked by ``nn.Conv2d(..., fast=True)`` when it is built.
This file covers odd sizes, single-tile inputs, float32 error bounds, the sibling op's contract (its
cache says "winograd", it refuses other geometries and other caches) and which geometries it covers.
"""
import numpy as np
import pytest
import torch  # noqa: F401  (torch missing must fail these tests, never skip them)
import torch.nn.functional as F

from tinyeffnet.ops import conv2d, reference, winograd, winograd_fused
from tinyeffnet.testing import gradcheck, torch_parity

# (N, H, W, Cin, Cout): even and odd sizes (an odd size adds a dropped output row/column), a single
# pixel, a single row, one channel, and a medium case with many tile rows per thread.
SHAPES = [(2, 6, 6, 3, 4), (1, 5, 7, 2, 3), (2, 1, 1, 2, 2), (1, 1, 6, 1, 1), (1, 3, 2, 1, 1),
          (3, 9, 4, 5, 2), (2, 16, 14, 8, 12), (5, 2, 9, 4, 1), (1, 13, 13, 6, 6)]
IDS = ["x".join(map(str, s)) for s in SHAPES]
# The two kernels of the same algorithm: three passes (transforms + 16 GEMMs), and one pass per tile
# (ops/winograd_fused.py). Every test of the arithmetic below runs on both.
KERNELS = {"three-pass": (winograd.winograd_conv3x3_forward, winograd.winograd_conv3x3_backward),
           "one-pass": (winograd_fused.fused_winograd_forward, winograd_fused.fused_winograd_backward)}
kernels = pytest.mark.parametrize("forward, backward", list(KERNELS.values()), ids=list(KERNELS))


def _sample(shape, dtype, seed=0):
    n, h, w, cin, cout = shape
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, h, w, cin)).astype(dtype),
            rng.standard_normal((3, 3, cin, cout)).astype(dtype),
            np.random.default_rng(seed + 100).standard_normal((n, h, w, cout)).astype(dtype))


def _apply(fn, matrix_cols):
    """The hand-written 1-D transform applied to each unit vector: the columns of its matrix."""
    columns = [fn(tuple(np.eye(matrix_cols)[k])) for k in range(matrix_cols)]
    return np.array(columns).T


def test_hand_written_transforms_are_the_matrices():
    assert np.array_equal(_apply(winograd._bt.py_func, 4), winograd.B_T)
    assert np.array_equal(_apply(winograd._b.py_func, 4), winograd.B_T.T)
    assert np.array_equal(_apply(winograd._at.py_func, 4), winograd.A_T)
    assert np.array_equal(_apply(winograd._a.py_func, 2), winograd.A_T.T)


def test_one_dimensional_f23_identity():
    # y = A^T [(G g) * (B^T d)] equals the direct 3-tap correlation, for random d and g.
    rng = np.random.default_rng(1)
    d, g = rng.standard_normal(4), rng.standard_normal(3)
    direct = np.array([d[0:3] @ g, d[1:4] @ g])
    np.testing.assert_allclose(winograd.A_T @ ((winograd.G @ g) * (winograd.B_T @ d)), direct, rtol=1e-14)


@kernels
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_float64_equals_the_numpy_tier(shape, forward, backward):
    x, w, dy = _sample(shape, np.float64)
    y_ref, cache = reference.conv2d_forward(x, w, 1, 1)
    dx_ref, dw_ref = reference.conv2d_backward(dy, cache)
    y = forward(x, w)
    dx, dw = backward(dy, x, w)
    for ours, ref in ((y, y_ref), (dx, dx_ref), (dw, dw_ref)):
        assert ours.shape == ref.shape and ours.dtype == np.float64
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()))


@kernels
@pytest.mark.parametrize("shape", [(8, 32, 32, 48, 64), (4, 17, 15, 24, 24)], ids=["stage2-like", "odd"])
def test_float32_error_is_close_to_im2col(shape, forward, backward):
    # Against float64 ground truth. im2col in float32 is the baseline; Winograd adds a few additions in
    # the transforms, so it may be somewhat less accurate, but within 4x of im2col and below 5e-6.
    x, w, dy = _sample(shape, np.float32)
    y_ref, cache = reference.conv2d_forward(x.astype(np.float64), w.astype(np.float64), 1, 1)
    truth = (y_ref, *reference.conv2d_backward(dy.astype(np.float64), cache))
    winograd_result = (forward(x, w), *backward(dy, x, w))
    y32, cache32 = conv2d.conv2d_forward(x, w, 1, 1)                 # always im2col
    assert cache32.algorithm == "im2col"
    im2col_result = (y32, *conv2d.conv2d_backward(dy, cache32))

    def relative(a, b):
        return np.abs(a - b).max() / np.abs(b).max()

    for name, ours, baseline, exact in zip(("y", "dx", "dw"), winograd_result, im2col_result, truth):
        assert ours.dtype == np.float32
        assert relative(ours, exact) < 5e-6, name
        assert relative(ours, exact) < 4 * relative(baseline, exact) + 1e-7, name


@kernels
def test_float64_gradcheck_every_entry(forward, backward):
    x, w, _ = _sample((2, 5, 4, 2, 3), np.float64)
    report = gradcheck(lambda x, w: (forward(x, w), (x, w)), lambda dy, cache: backward(dy, *cache),
                       [x, w], names=["x", "w"], samples=x.size + w.size)
    assert report.ok, report


@kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(dtype, forward, backward):
    x, w, _ = _sample((2, 7, 6, 3, 5), dtype)

    def torch_forward(xt, wt):
        y = F.conv2d(xt.permute(0, 3, 1, 2).contiguous(), wt.permute(3, 2, 0, 1).contiguous(), padding=1)
        return y.permute(0, 2, 3, 1)

    report = torch_parity(lambda x, w: (forward(x, w), (x, w)), lambda dy, cache: backward(dy, *cache),
                          torch_forward, [x, w], names=["x", "w"])
    assert report.ok, report


@pytest.mark.parametrize("padding", [1, "same"])
def test_the_sibling_ops_agree_and_their_caches_say_which_ran(monkeypatch, padding):
    x, w, dy = _sample((2, 9, 8, 4, 6), np.float64)
    calls = []
    original = winograd.winograd_conv3x3_forward
    monkeypatch.setattr(winograd, "winograd_conv3x3_forward", lambda *a: calls.append(a) or original(*a))
    y_fast, cache_fast = winograd.conv2d_winograd_forward(x, w, 1, padding)
    grads_fast = winograd.conv2d_winograd_backward(dy, cache_fast)
    assert len(calls) == 1 and cache_fast.algorithm == "winograd"

    y_slow, cache_slow = conv2d.conv2d_forward(x, w, 1, padding)   # the readable op: im2col + GEMM, no switch
    grads_slow = conv2d.conv2d_backward(dy, cache_slow)
    assert len(calls) == 1 and cache_slow.algorithm == "im2col"
    for a, b in zip((y_fast, *grads_fast), (y_slow, *grads_slow)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_a_backward_takes_only_its_own_algorithms_cache():
    x, w, dy = _sample((1, 4, 4, 2, 3), np.float64)
    _, fast_cache = winograd.conv2d_winograd_forward(x, w, 1, 1)
    _, slow_cache = conv2d.conv2d_forward(x, w, 1, 1)
    with pytest.raises(ValueError, match="conv2d_backward: this cache was made by the winograd conv.*"
                                         "conv2d_winograd_backward"):
        conv2d.conv2d_backward(dy, fast_cache)
    with pytest.raises(ValueError, match="conv2d_winograd_backward: this cache was made by the im2col conv"):
        winograd.conv2d_winograd_backward(dy, slow_cache)
    _, reference_cache = reference.conv2d_forward(x, w, 1, 1)      # the NumPy tier's plain ConvCache: im2col's
    conv2d.conv2d_backward(dy, reference_cache)


@pytest.mark.parametrize("w_shape, stride, padding", [((3, 3, 2, 2), 2, 1), ((3, 3, 2, 2), 1, 0),
                                                      ((5, 5, 2, 2), 1, 2), ((1, 1, 2, 2), 1, 0)])
def test_the_winograd_op_refuses_other_geometries(w_shape, stride, padding):
    x = np.zeros((1, 6, 6, w_shape[2]))
    with pytest.raises(ValueError, match="conv2d_winograd_forward: Winograd F\\(2x2, 3x3\\) covers 3x3 stride-1"):
        winograd.conv2d_winograd_forward(x, np.zeros(w_shape), stride, padding)


@pytest.mark.parametrize("w_shape, stride, pads, expected", [
    ((3, 3, 2, 2), 1, (1, 1, 1, 1), True),           # the "same" 3x3 stride-1 conv: Winograd
    ((3, 3, 2, 2), 2, (1, 1, 1, 1), False),          # stride 2
    ((3, 3, 2, 2), 1, (0, 0, 0, 0), False),          # no padding
    ((5, 5, 2, 2), 1, (1, 1, 1, 1), False),          # 5x5 kernel
    ((1, 1, 2, 2), 1, (0, 0, 0, 0), False),          # 1x1
    ((3, 3, 2, 2), 1, (0, 1, 0, 1), False),          # asymmetric padding
    ((3, 3, 2, 2), 1, 1, True),                      # the options a layer is built with: padding 1,
    ((3, 3, 2, 2), 1, "same", True),                 # "same" at stride 1 (pads 1 on every side),
    ((3, 3, 2, 2), 2, "same", False),                # "same" at stride 2 (asymmetric on even sizes)
    ((3, 3, 2, 2), 1, 0, False),
])
def test_which_geometries_take_winograd(w_shape, stride, pads, expected):
    assert winograd.applies(w_shape, stride, pads) is expected


@pytest.mark.parametrize("shape, ran", [((2, 24, 25, 4, 6), "winograd"),   # both sides >= 24
                                        ((2, 23, 30, 4, 6), "im2col"),     # one side below
                                        ((1, 8, 8, 3, 5), "im2col")])
def test_winograd_or_im2col_runs_the_op_its_size_picks_and_follows_it_backward(shape, ran):
    assert winograd.WINOGRAD_MIN_SIZE == 24
    x, w, dy = _sample(shape, np.float64)
    y, cache = winograd.conv2d_winograd_or_im2col_forward(x, w, 1, 1)
    grads = winograd.conv2d_winograd_or_im2col_backward(dy, cache)
    assert cache.algorithm == ran
    op_forward, op_backward = {"winograd": (winograd.conv2d_winograd_forward, winograd.conv2d_winograd_backward),
                               "im2col": (conv2d.conv2d_forward, conv2d.conv2d_backward)}[ran]
    y_op, cache_op = op_forward(x, w, 1, 1)
    np.testing.assert_array_equal(y, y_op)                         # the very op, not an approximation
    for a, b in zip(grads, op_backward(dy, cache_op)):
        np.testing.assert_array_equal(a, b)
    y_ref, _ = conv2d.conv2d_forward(x, w, 1, 1)                     # and right: the readable op
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-12 * max(1.0, np.abs(y_ref).max()))


def test_winograd_or_im2col_takes_im2col_for_a_geometry_winograd_does_not_cover():
    x, w, _ = _sample((1, 30, 30, 3, 4), np.float64)
    _, cache = winograd.conv2d_winograd_or_im2col_forward(x, w, 2, 1)     # stride 2
    assert cache.algorithm == "im2col"
