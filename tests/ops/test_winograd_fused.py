"""One-pass Winograd F(2x2, 3x3) for thin channels (``ops/winograd_fused.py``) against the readable conv
(the NumPy tier), against the three-pass Winograd, finite differences and PyTorch; its op contract.

The readable version of every conv is im2col + GEMM (``reference.conv2d_forward``); this kernel must
give the same numbers in float64 (to 1e-12 of the largest value) and, in float32, an error against a
float64 truth no worse than 4x that of im2col in float32.
"""
import numpy as np
import pytest
import torch  # noqa: F401  (torch missing must fail these tests, never skip them)
import torch.nn.functional as F

from tinyeffnet.nn import Conv2d
from tinyeffnet.ops import conv2d, reference, winograd, winograd_fused
from tinyeffnet.testing import gradcheck, torch_parity

# (N, H, W, Cin, Cout): even and odd sizes, one pixel, one row, one channel, a single tile row, more
# tile rows than chunks, Cin != Cout both ways.
SHAPES = [(2, 6, 6, 3, 4), (1, 5, 7, 2, 3), (2, 1, 1, 2, 2), (1, 1, 6, 1, 1), (1, 3, 2, 1, 1),
          (3, 9, 4, 5, 2), (2, 16, 14, 8, 12), (5, 2, 9, 4, 1), (1, 13, 13, 6, 6)]
IDS = ["x".join(map(str, s)) for s in SHAPES]


def _sample(shape, dtype, seed=0):
    n, h, w, cin, cout = shape
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, h, w, cin)).astype(dtype),
            rng.standard_normal((3, 3, cin, cout)).astype(dtype),
            np.random.default_rng(seed + 100).standard_normal((n, h, w, cout)).astype(dtype))


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_float64_equals_the_numpy_tier(shape):
    x, w, dy = _sample(shape, np.float64)
    y_ref, cache = reference.conv2d_forward(x, w, 1, 1)
    dx_ref, dw_ref = reference.conv2d_backward(dy, cache)
    y = winograd_fused.fused_winograd_forward(x, w)
    dx, dw = winograd_fused.fused_winograd_backward(dy, x, w)
    for ours, ref in ((y, y_ref), (dx, dx_ref), (dw, dw_ref)):
        assert ours.shape == ref.shape and ours.dtype == np.float64
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()))


@pytest.mark.parametrize("shape", [(8, 32, 32, 24, 24), (4, 17, 15, 16, 40)], ids=["stage1-like", "odd"])
def test_float32_error_is_close_to_im2col(shape):
    x, w, dy = _sample(shape, np.float32)
    y_ref, cache = reference.conv2d_forward(x.astype(np.float64), w.astype(np.float64), 1, 1)
    truth = (y_ref, *reference.conv2d_backward(dy.astype(np.float64), cache))
    fused = (winograd_fused.fused_winograd_forward(x, w), *winograd_fused.fused_winograd_backward(dy, x, w))
    y32, cache32 = conv2d.conv2d_forward(x, w, 1, 1)                 # im2col, the readable algorithm
    im2col = (y32, *conv2d.conv2d_backward(dy, cache32))

    def relative(a, b):
        return np.abs(a - b).max() / np.abs(b).max()

    for name, ours, baseline, exact in zip(("y", "dx", "dw"), fused, im2col, truth):
        assert ours.dtype == np.float32
        assert relative(ours, exact) < 4 * relative(baseline, exact) + 1e-7, name


def test_float32_agrees_with_the_three_pass_winograd():
    x, w, dy = _sample((3, 10, 12, 8, 16), np.float32)
    ours = (winograd_fused.fused_winograd_forward(x, w), *winograd_fused.fused_winograd_backward(dy, x, w))
    theirs = (winograd.winograd_conv3x3_forward(x, w), *winograd.winograd_conv3x3_backward(dy, x, w))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * np.abs(b).max())


def test_float64_gradcheck_every_entry():
    x, w, _ = _sample((2, 5, 4, 2, 3), np.float64)
    report = gradcheck(lambda x, w: (winograd_fused.fused_winograd_forward(x, w), (x, w)),
                       lambda dy, cache: winograd_fused.fused_winograd_backward(dy, *cache),
                       [x, w], names=["x", "w"], samples=x.size + w.size)
    assert report.ok, report


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(dtype):
    x, w, _ = _sample((2, 7, 6, 3, 5), dtype)

    def torch_forward(xt, wt):
        y = F.conv2d(xt.permute(0, 3, 1, 2).contiguous(), wt.permute(3, 2, 0, 1).contiguous(), padding=1)
        return y.permute(0, 2, 3, 1)

    report = torch_parity(lambda x, w: (winograd_fused.fused_winograd_forward(x, w), (x, w)),
                          lambda dy, cache: winograd_fused.fused_winograd_backward(dy, *cache),
                          torch_forward, [x, w], names=["x", "w"])
    assert report.ok, report


@pytest.mark.parametrize("padding", [1, "same"])
def test_the_op_pair_and_its_cache(padding):
    x, w, dy = _sample((2, 9, 8, 4, 6), np.float64)
    y, cache = winograd_fused.conv2d_winograd_fused_forward(x, w, 1, padding)
    assert cache.algorithm == "winograd_fused"
    dx, dw = winograd_fused.conv2d_winograd_fused_backward(dy, cache)
    y_slow, cache_slow = conv2d.conv2d_forward(x, w, 1, padding)
    for a, b in zip((y, dx, dw), (y_slow, *conv2d.conv2d_backward(dy, cache_slow))):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())
    with pytest.raises(ValueError, match="made by the winograd_fused conv.*conv2d_winograd_fused_backward"):
        conv2d.conv2d_backward(dy, cache)
    with pytest.raises(ValueError, match="conv2d_winograd_fused_backward: this cache was made by the im2col"):
        winograd_fused.conv2d_winograd_fused_backward(dy, cache_slow)


def test_the_op_refuses_other_geometries():
    with pytest.raises(ValueError, match="conv2d_winograd_fused_forward: Winograd F\\(2x2, 3x3\\) covers 3x3"):
        winograd_fused.conv2d_winograd_fused_forward(np.zeros((1, 6, 6, 2)), np.zeros((3, 3, 2, 2)), 2, 1)


@pytest.mark.parametrize("cin, cout, expected", [(24, 24, True), (16, 32, True), (32, 32, True),
                                                 (16, 64, False), (48, 192, False), (33, 8, False)])
def test_suits_thin_channels_only(cin, cout, expected):
    assert winograd_fused.suits((3, 3, cin, cout), 1, 1) is expected
    assert winograd_fused.suits((3, 3, cin, cout), 2, 1) is False


def test_conv2d_takes_the_fused_kernel_only_when_asked():
    assert Conv2d(24, 24, 3).algorithm == "winograd"                   # slower inside a whole step: not a default
    layer = Conv2d(24, 24, 3, algorithm="winograd_fused")
    assert (layer.forward_op, layer.backward_op) == Conv2d.ALGORITHMS["winograd_fused"]
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 24)).astype(np.float32)
    layer(x)
    assert layer._cache.algorithm == "winograd_fused"
    with pytest.raises(ValueError, match="algorithm 'winograd_fused' covers 3x3 stride-1"):
        Conv2d(24, 24, 3, stride=2, algorithm="winograd_fused")
    with pytest.raises(ValueError, match="algorithm must be None or one of"):
        Conv2d(24, 24, 3, algorithm="fft")
