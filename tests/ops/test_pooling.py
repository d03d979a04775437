"""Global average pooling: gradients, the NumPy tier against PyTorch's x.mean((1, 2)), the Numba tier
against the NumPy tier, and bad input."""
import numpy as np
import pytest
import torch  # noqa: F401  (parity must fail, not skip, without torch)

from tinyeffnet import ops
from tinyeffnet.ops import reference
from tinyeffnet.testing import compare, gradcheck, torch_parity

TIERS = pytest.mark.parametrize("tier", [ops, reference], ids=["numba", "numpy"])
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64])
SHAPES = pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 3), (3, 2, 7, 1), (2, 5, 5, 4)])
TOLERANCE = {np.float32: dict(atol=1e-5, rtol=1e-4), np.float64: dict(atol=1e-10, rtol=1e-10)}


def sample(shape, dtype, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) + 0.5).astype(dtype)


def torch_pool(x):
    return x.mean((1, 2))  # channels-last: average over H and W


@TIERS
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 3)])
def test_gradcheck(tier, shape):
    # Linear op in float64: centred differences are exact up to round-off (~1e-10 relative).
    report = gradcheck(tier.global_avg_pool_forward, tier.global_avg_pool_backward, [sample(shape, np.float64)],
                       names=["x"], samples=None, tol=1e-7)
    assert report.ok, report


@DTYPES
@SHAPES
def test_reference_matches_torch(dtype, shape):
    report = torch_parity(reference.global_avg_pool_forward, reference.global_avg_pool_backward, torch_pool,
                          [sample(shape, dtype)], names=["x"])
    assert [row.name for row in report.rows] == ["forward", "dx"]
    assert report.ok, report


@DTYPES
@SHAPES
def test_numba_matches_reference(dtype, shape):
    x = sample(shape, dtype, seed=1)
    dy = sample((shape[0], shape[3]), dtype, seed=2)
    outputs = {}
    for label, tier in (("numba", ops), ("numpy", reference)):
        y, cache = tier.global_avg_pool_forward(x)
        outputs[label] = (y, *tier.global_avg_pool_backward(dy, cache))
    rows = [compare(n, a, b, **TOLERANCE[dtype]) for n, a, b in zip(["y", "dx"], outputs["numba"], outputs["numpy"])]
    assert all(row.ok for row in rows), rows


@TIERS
def test_known_values(tier):
    # 2x2 image, channel 0 = [[1, 2], [3, 6]] -> mean 3; channel 1 constant 5; each pixel gets dy / 4.
    x = np.zeros((1, 2, 2, 2))
    x[0, :, :, 0] = [[1, 2], [3, 6]]
    x[0, :, :, 1] = 5
    y, cache = tier.global_avg_pool_forward(x)
    np.testing.assert_array_equal(y, [[3.0, 5.0]])
    (dx,) = tier.global_avg_pool_backward(np.array([[4.0, 8.0]]), cache)
    np.testing.assert_array_equal(dx[0, :, :, 0], np.ones((2, 2)))
    np.testing.assert_array_equal(dx[0, :, :, 1], np.full((2, 2), 2.0))


@TIERS
@DTYPES
def test_dtype_is_preserved(tier, dtype):
    y, cache = tier.global_avg_pool_forward(sample((2, 3, 3, 4), dtype))
    (dx,) = tier.global_avg_pool_backward(np.ones_like(y), cache)
    assert y.dtype == dx.dtype == np.dtype(dtype)
    assert dx.flags.writeable  # a real array, not a read-only broadcast view


@TIERS
@pytest.mark.parametrize(
    "x, error, match",
    [
        (np.zeros((2, 3, 4), np.float32), ValueError, "x must be 4-D, got 3-D array of shape"),
        (np.zeros((2, 3, 3, 4), np.int64), TypeError, "x must have dtype float32 or float64, got int64"),
        (np.zeros((2, 3, 3, 4), np.float16), TypeError, "x must have dtype float32 or float64, got float16"),
        (np.zeros((2, 0, 3, 4), np.float32), ValueError, "x must have H, W >= 1"),
    ],
    ids=["ndim", "int", "float16", "empty-image"],
)
def test_bad_input(tier, x, error, match):
    with pytest.raises(error, match=match):
        tier.global_avg_pool_forward(x)


@TIERS
@pytest.mark.parametrize(
    "dy, error, match",
    [
        (np.zeros((2, 5), np.float32), ValueError, r"dy must have shape \(2, 4\), got \(2, 5\)"),
        (np.zeros((2, 4), np.float64), TypeError, "mixed dtypes: dy has dtype float64"),
        (np.zeros((2, 1, 1, 4), np.float32), ValueError, "dy must be 2-D"),
    ],
    ids=["shape", "dtype", "ndim"],
)
def test_bad_gradient(tier, dy, error, match):
    _, cache = tier.global_avg_pool_forward(np.zeros((2, 3, 3, 4), np.float32))
    with pytest.raises(error, match=match):
        tier.global_avg_pool_backward(dy, cache)
