"""Dropout and drop path: gradients with a fixed mask, properties of the random masks (fraction kept,
exact 1/(1-p) scaling, one coin per sample for drop path, repeatable from the seed), identity in eval,
the Numba tier against the NumPy tier, and bad input.

PyTorch draws its masks from its own generator, so the masks cannot be compared entry by entry; the
properties below are what torch.nn.functional.dropout and torchvision's StochasticDepth(p, "row")
guarantee, and they are checked on our masks.
"""
import numpy as np
import pytest
import torch  # noqa: F401  (the test suite needs torch; fail, never skip, without it)

from tinyeffnet import ops
from tinyeffnet.ops import reference
from tinyeffnet.testing import gradcheck

TIERS = pytest.mark.parametrize("tier", [ops, reference], ids=["numba", "numpy"])
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64])
KINDS = pytest.mark.parametrize("kind", ["dropout", "drop_path"])


def pair(tier, kind):
    return getattr(tier, f"{kind}_forward"), getattr(tier, f"{kind}_backward")


def sample(shape, dtype, seed=0):
    # |x| >= 0.5: a kept entry is never 0, so "y == 0" means "dropped"
    r = np.random.default_rng(seed)
    return ((0.5 + r.random(shape)) * r.choice([-1.0, 1.0], shape)).astype(dtype)


@TIERS
@KINDS
@pytest.mark.parametrize("shape", [(3, 2, 2, 4), (5, 3)])
def test_gradcheck(tier, kind, shape):
    forward, backward = pair(tier, kind)

    def forward_fixed_mask(x):
        # a fresh Generator with the same seed on every call: every evaluation draws the same mask
        return forward(x, 0.4, np.random.default_rng(7))

    # Linear in x for a fixed mask: centred differences are exact up to round-off (~1e-10 relative).
    report = gradcheck(forward_fixed_mask, backward, [sample(shape, np.float64)], names=["x"], samples=None, tol=1e-7)
    assert report.ok, report


@TIERS
@DTYPES
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keeps_about_1_minus_p_and_scales_exactly(tier, dtype, p):
    x = sample((20, 10, 10, 100), dtype)                          # 200,000 entries
    y, cache = tier.dropout_forward(x, p, np.random.default_rng(1))
    kept = y != 0
    # binomial standard deviation sqrt(p (1 - p) / 200000) <= 1.2e-3: 0.01 is more than 8 of them
    assert abs(kept.mean() - (1 - p)) < 0.01
    scale = np.dtype(dtype).type(1 / (1 - p))
    np.testing.assert_array_equal(y[kept], x[kept] * scale)      # bit-exact, in x's dtype
    (dx,) = tier.dropout_backward(x, cache)                       # dy = x: dx must equal y
    np.testing.assert_array_equal(dx, y)


@TIERS
@DTYPES
@pytest.mark.parametrize("shape", [(4000, 2, 2, 3), (4000, 5)])
def test_drop_path_drops_whole_samples(tier, dtype, shape):
    p = 0.3
    x = sample(shape, dtype)
    y, cache = tier.drop_path_forward(x, p, np.random.default_rng(2))
    rows_x, rows_y = x.reshape(len(x), -1), y.reshape(len(y), -1)
    kept = np.all(rows_y != 0, axis=1)
    dropped = np.all(rows_y == 0, axis=1)
    assert np.all(kept | dropped)                                 # one coin per sample, never mixed
    # binomial standard deviation sqrt(0.21 / 4000) = 7.2e-3: 0.04 is more than 5 of them
    assert abs(kept.mean() - (1 - p)) < 0.04
    scale = np.dtype(dtype).type(1 / (1 - p))
    np.testing.assert_array_equal(rows_y[kept], rows_x[kept] * scale)
    assert cache[0].shape == (shape[0],) + (1,) * (len(shape) - 1)   # the mask broadcasts over each sample
    (dx,) = tier.drop_path_backward(x, cache)
    np.testing.assert_array_equal(dx, y)


@TIERS
@KINDS
@DTYPES
def test_mask_is_drawn_in_the_input_dtype(tier, kind, dtype):
    # keep = (u >= p), u = rng.random(mask shape, dtype=x.dtype): the same draw, written out here.
    x = sample((6, 3, 2, 2), dtype)
    p = 0.5
    y, _ = pair(tier, kind)[0](x, p, np.random.default_rng(11))
    mask_shape = x.shape if kind == "dropout" else (6, 1, 1, 1)
    keep = np.random.default_rng(11).random(mask_shape, dtype=dtype) >= p
    np.testing.assert_array_equal(y, np.where(keep, x * np.dtype(dtype).type(2), 0))
    assert y.dtype == np.dtype(dtype)


@KINDS
@DTYPES
def test_numba_draws_the_same_mask_as_reference(kind, dtype):
    x = sample((5, 4, 3, 6), dtype)
    dy = sample(x.shape, dtype, seed=1)
    results = []
    for tier in (ops, reference):
        forward, backward = pair(tier, kind)
        y, cache = forward(x, 0.35, np.random.default_rng(3))
        results.append((y, backward(dy, cache)[0]))
    np.testing.assert_array_equal(results[0][0], results[1][0])   # both exact: one multiply per entry
    np.testing.assert_array_equal(results[0][1], results[1][1])


@TIERS
@KINDS
def test_same_seed_same_mask_other_seed_other_mask(tier, kind):
    forward, _ = pair(tier, kind)
    x = sample((64, 4, 4, 2), np.float32)
    first, _ = forward(x, 0.5, np.random.default_rng(5))
    again, _ = forward(x, 0.5, np.random.default_rng(5))
    other, _ = forward(x, 0.5, np.random.default_rng(6))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@TIERS
@KINDS
@pytest.mark.parametrize("p, training", [(0.5, False), (0.0, True)], ids=["eval", "p=0"])
def test_identity_in_eval_and_with_p_zero(tier, kind, p, training):
    forward, backward = pair(tier, kind)
    x = sample((3, 2, 2, 4), np.float32)
    dy = sample(x.shape, np.float32, seed=1)
    y, cache = forward(x, p, None, training=training)             # no rng needed: no coin is drawn
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(backward(dy, cache)[0], dy)


@TIERS
@KINDS
@DTYPES
def test_dtype_is_preserved(tier, kind, dtype):
    forward, backward = pair(tier, kind)
    y, cache = forward(sample((4, 3), dtype), 0.5, np.random.default_rng(0))
    (dx,) = backward(np.ones_like(y), cache)
    assert y.dtype == dx.dtype == np.dtype(dtype)


@TIERS
@KINDS
@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(p=1.0), ValueError, r"p must be a float in \[0, 1\), got 1.0"),
        (dict(p=-0.1), ValueError, r"p must be a float in \[0, 1\), got -0.1"),
        (dict(rng=None), TypeError, "rng must be a numpy.random.Generator .* when training with p > 0, got NoneType"),
        (dict(rng=np.random.RandomState(0)), TypeError, "rng must be a numpy.random.Generator .* got RandomState"),
        (dict(training="yes"), TypeError, "training must be True or False"),
        (dict(x=np.zeros((4, 3), np.int64)), TypeError, "x must have dtype float32 or float64, got int64"),
        (dict(x=np.zeros((4, 3), np.float16)), TypeError, "x must have dtype float32 or float64, got float16"),
        (dict(x=np.float32(1.0)), TypeError, "x must be a numpy.ndarray"),
    ],
    ids=["p-1", "p-negative", "missing-rng", "legacy-rng", "training-flag", "int", "float16", "scalar"],
)
def test_bad_input(tier, kind, change, error, match):
    forward, _ = pair(tier, kind)
    kwargs = {**dict(x=np.zeros((4, 3), np.float32), p=0.5, rng=np.random.default_rng(0), training=True), **change}
    with pytest.raises(error, match=match):
        forward(**kwargs)


@TIERS
@KINDS
@pytest.mark.parametrize(
    "dy, error, match",
    [
        (np.zeros((3, 4), np.float32), ValueError, r"dy must have shape \(4, 3\), got \(3, 4\)"),
        (np.zeros((4, 3), np.float64), TypeError, "mixed dtypes: dy has dtype float64"),
    ],
    ids=["shape", "dtype"],
)
def test_bad_gradient(tier, kind, dy, error, match):
    forward, backward = pair(tier, kind)
    _, cache = forward(np.zeros((4, 3), np.float32), 0.5, np.random.default_rng(0))
    with pytest.raises(error, match=match):
        backward(dy, cache)
