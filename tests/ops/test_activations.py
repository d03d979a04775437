"""SiLU and sigmoid: gradients, the NumPy tier against PyTorch, the Numba tier against the NumPy tier,
stability at huge |x|, random shapes, and bad input."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyeffnet import ops
from tinyeffnet.ops import reference
from tinyeffnet.testing import compare, gradcheck, torch_parity

TIERS = pytest.mark.parametrize("tier", [ops, reference], ids=["numba", "numpy"])
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64])
TOLERANCE = {np.float32: dict(atol=1e-5, rtol=1e-4), np.float64: dict(atol=1e-10, rtol=1e-10)}
# (name, torch function) for each activation
ACTIVATIONS = pytest.mark.parametrize("name, torch_fn", [("silu", F.silu), ("sigmoid", torch.sigmoid)])
EXTREMES = [-1000.0, -100.0, -30.0, -1.0, -0.0, 0.0, 1.0, 30.0, 100.0, 1000.0]


def pair(tier, name):
    return getattr(tier, f"{name}_forward"), getattr(tier, f"{name}_backward")


def sample(shape, dtype, seed=0, scale=4.0):
    # scale 4: values well into both tails of the sigmoid, not only its linear middle
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


@TIERS
@ACTIVATIONS
def test_gradcheck(tier, name, torch_fn):
    forward, backward = pair(tier, name)
    # Smooth elementwise op in float64: centred differences are accurate to ~1e-10 relative.
    report = gradcheck(forward, backward, [sample((2, 3, 4, 5), np.float64)], names=["x"], samples=None, tol=1e-7)
    assert report.ok, report


@DTYPES
@ACTIVATIONS
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7,), (3, 6)])
def test_reference_matches_torch(dtype, name, torch_fn, shape):
    forward, backward = pair(reference, name)
    report = torch_parity(forward, backward, torch_fn, [sample(shape, dtype)], names=["x"])
    assert report.ok, report


@DTYPES
@ACTIVATIONS
def test_numba_matches_reference(dtype, name, torch_fn):
    x = sample((3, 5, 4, 7), dtype, seed=2)
    dy = sample(x.shape, dtype, seed=3, scale=1.0)
    outputs = {}
    for label, tier in (("numba", ops), ("numpy", reference)):
        forward, backward = pair(tier, name)
        y, cache = forward(x)
        outputs[label] = (y, *backward(dy, cache))
    rows = [compare(n, a, b, **TOLERANCE[dtype]) for n, a, b in zip(["y", "dx"], outputs["numba"], outputs["numpy"])]
    assert all(row.ok for row in rows), rows


@TIERS
@DTYPES
@ACTIVATIONS
def test_extreme_inputs_are_stable(tier, dtype, name, torch_fn):
    # exp(1000) overflows; the stable form never computes it: no warning, and PyTorch's values.
    x = np.array(EXTREMES, dtype=dtype)
    forward, backward = pair(tier, name)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        y, cache = forward(x)
        (dx,) = backward(np.ones_like(x), cache)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    xt = torch.tensor(x, requires_grad=True)
    yt = torch_fn(xt)
    yt.backward(torch.ones_like(yt))
    rows = [compare("y", y, yt.detach().numpy(), **TOLERANCE[dtype]), compare("dx", dx, xt.grad.numpy(), **TOLERANCE[dtype])]
    assert all(row.ok for row in rows), rows


def test_known_values():
    # Independent of PyTorch: sigmoid(0) = 1/2, silu(0) = 0 with slope 1/2, silu(-1000) = 0, silu'(1000) = 1.
    x = np.array([0.0, -1000.0, 1000.0])
    for tier in (ops, reference):
        s, _ = tier.sigmoid_forward(x)
        np.testing.assert_array_equal(s, [0.5, 0.0, 1.0])
        y, cache = tier.silu_forward(x)
        np.testing.assert_array_equal(y, [0.0, 0.0, 1000.0])
        np.testing.assert_array_equal(tier.silu_backward(np.ones(3), cache)[0], [0.5, 0.0, 1.0])


@DTYPES
@ACTIVATIONS
def test_dtype_is_preserved(dtype, name, torch_fn):
    forward, backward = pair(ops, name)
    y, cache = forward(sample((2, 3), dtype))
    (dx,) = backward(np.ones_like(y), cache)
    assert y.dtype == dx.dtype == np.dtype(dtype)


@TIERS
@ACTIVATIONS
def test_non_contiguous_input_is_accepted(tier, name, torch_fn):
    forward, _ = pair(tier, name)
    x = sample((4, 6), np.float64)
    np.testing.assert_array_equal(forward(x.T)[0], forward(np.ascontiguousarray(x.T))[0])


@settings(max_examples=15, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple),
    scale=st.sampled_from([0.1, 3.0, 50.0]),
    use_numba=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_silu_random_shapes_match_torch(shape, scale, use_numba, dtype, seed):
    tier = ops if use_numba else reference
    report = torch_parity(tier.silu_forward, tier.silu_backward, F.silu, [sample(shape, dtype, seed, scale)],
                          names=["x"], seed=seed)
    assert report.ok, report


@TIERS
@ACTIVATIONS
@pytest.mark.parametrize(
    "x, error, match",
    [
        (np.zeros((2, 3), np.int32), TypeError, "x must have dtype float32 or float64, got int32"),
        (np.zeros((2, 3), np.float16), TypeError, "x must have dtype float32 or float64, got float16"),
        ([[1.0, 2.0]], TypeError, "x must be a numpy.ndarray of float32 or float64, got list"),
    ],
    ids=["int", "float16", "list"],
)
def test_bad_input(tier, name, torch_fn, x, error, match):
    forward, _ = pair(tier, name)
    with pytest.raises(error, match=match):
        forward(x)


@TIERS
@ACTIVATIONS
@pytest.mark.parametrize(
    "dy, error, match",
    [
        (np.zeros((3, 2), np.float32), ValueError, r"dy must have shape \(2, 3\), got \(3, 2\)"),
        (np.zeros((2, 3), np.float64), TypeError, "mixed dtypes: dy has dtype float64 but the input has dtype float32"),
    ],
    ids=["shape", "dtype"],
)
def test_bad_gradient(tier, name, torch_fn, dy, error, match):
    forward, backward = pair(tier, name)
    _, cache = forward(np.zeros((2, 3), np.float32))
    with pytest.raises(error, match=match):
        backward(dy, cache)
