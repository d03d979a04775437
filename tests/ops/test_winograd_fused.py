"""One-pass Winograd F(2x2, 3x3) (``ops/winograd_fused.py``): its agreement with the three-pass kernel,
its op contract, and how a layer asks for it. The arithmetic tests (the NumPy tier in float64, float32
error against im2col, finite differences on every entry, PyTorch) run on both kernels in
``test_winograd.py``.
"""
import numpy as np
import pytest
import torch  # noqa: F401  (torch missing must fail these tests, never skip them)

from tinyeffnet.nn import Conv2d
from tinyeffnet.ops import conv2d, winograd, winograd_fused


def _sample(shape, dtype, seed=0):
    n, h, w, cin, cout = shape
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, h, w, cin)).astype(dtype),
            rng.standard_normal((3, 3, cin, cout)).astype(dtype),
            np.random.default_rng(seed + 100).standard_normal((n, h, w, cout)).astype(dtype))


def test_float32_agrees_with_the_three_pass_winograd():
    x, w, dy = _sample((3, 10, 12, 8, 16), np.float32)
    ours = (winograd_fused.fused_winograd_forward(x, w), *winograd_fused.fused_winograd_backward(dy, x, w))
    theirs = (winograd.winograd_conv3x3_forward(x, w), *winograd.winograd_conv3x3_backward(dy, x, w))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * np.abs(b).max())


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


def test_conv2d_takes_the_fused_kernel_only_when_asked():
    assert Conv2d(128, 128, 3).algorithm in ("winograd_or_im2col", "im2col")  # slower inside a step: not a default
    layer = Conv2d(24, 24, 3, algorithm="winograd_fused")
    assert (layer.forward_op, layer.backward_op) == Conv2d.ALGORITHMS["winograd_fused"]
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 24)).astype(np.float32)
    layer(x)
    assert layer._cache.algorithm == "winograd_fused"
    with pytest.raises(ValueError, match="algorithm 'winograd_fused' covers 3x3 stride-1"):
        Conv2d(24, 24, 3, stride=2, algorithm="winograd_fused")
    with pytest.raises(ValueError, match="algorithm must be None or one of"):
        Conv2d(24, 24, 3, algorithm="fft")
