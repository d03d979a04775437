"""Softmax cross-entropy: the gradient against finite differences, the NumPy tier against PyTorch's
F.cross_entropy (label smoothing 0 and 0.1, class indices and probability targets), the Numba tier
against the NumPy tier, huge logits, random shapes, and bad input.

The loss returns (loss, dlogits) in one call. For the proof helpers it is wrapped into the usual pair:
forward(logits) -> (loss, dlogits as the cache), backward(dloss, cache) -> (dlogits * dloss,).
"""
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
SMOOTHING = pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
TOLERANCE = {np.float32: dict(atol=1e-5, rtol=1e-4), np.float64: dict(atol=1e-10, rtol=1e-10)}


def as_pair(tier, labels, label_smoothing):
    """(forward, backward) over the logits alone, in the shape gradcheck and torch_parity expect."""

    def forward(logits):
        loss, dlogits = tier.softmax_cross_entropy(logits, labels, label_smoothing)
        return loss, dlogits

    def backward(dloss, dlogits):
        return (dlogits * dloss,)

    return forward, backward


def make_inputs(n, k, dtype, seed=0, soft=False, scale=3.0):
    r = np.random.default_rng(seed)
    logits = (scale * r.standard_normal((n, k))).astype(dtype)
    if soft:
        p = r.random((n, k))
        labels = (p / p.sum(axis=1, keepdims=True)).astype(dtype)   # rows sum to 1
    else:
        labels = r.integers(0, k, n)
    return logits, labels


def torch_loss(labels, label_smoothing):
    target = torch.tensor(labels)
    return lambda logits: F.cross_entropy(logits, target, label_smoothing=label_smoothing)


@TIERS
@SMOOTHING
@pytest.mark.parametrize("soft", [False, True], ids=["indices", "probabilities"])
def test_gradcheck(tier, label_smoothing, soft):
    logits, labels = make_inputs(4, 6, np.float64, soft=soft)
    forward, backward = as_pair(tier, labels, label_smoothing)
    # Smooth in float64: centred differences are accurate to ~1e-9 relative.
    report = gradcheck(forward, backward, [logits], names=["logits"], samples=None, tol=1e-7)
    assert report.ok, report


@DTYPES
@SMOOTHING
@pytest.mark.parametrize("soft", [False, True], ids=["indices", "probabilities"])
@pytest.mark.parametrize("n, k", [(5, 10), (1, 3), (8, 2)])
def test_reference_matches_torch(dtype, label_smoothing, soft, n, k):
    logits, labels = make_inputs(n, k, dtype, soft=soft)
    forward, backward = as_pair(reference, labels, label_smoothing)
    report = torch_parity(forward, backward, torch_loss(labels, label_smoothing), [logits], names=["logits"])
    assert [row.name for row in report.rows] == ["forward", "dlogits"]
    assert report.ok, report


@DTYPES
@SMOOTHING
@pytest.mark.parametrize("soft", [False, True], ids=["indices", "probabilities"])
def test_numba_matches_reference(dtype, label_smoothing, soft):
    logits, labels = make_inputs(7, 12, dtype, seed=1, soft=soft)
    ours = ops.softmax_cross_entropy(logits, labels, label_smoothing)
    theirs = reference.softmax_cross_entropy(logits, labels, label_smoothing)
    rows = [compare(n, a, b, **TOLERANCE[dtype]) for n, a, b in zip(["loss", "dlogits"], ours, theirs)]
    assert all(row.ok for row in rows), rows


@TIERS
def test_uniform_logits_give_log_k(tier):
    # Independent of PyTorch: equal logits -> softmax 1/K, loss ln K, gradient (1/K - onehot) / N.
    logits = np.zeros((2, 4))
    loss, dlogits = tier.softmax_cross_entropy(logits, np.array([1, 3]))
    assert loss == pytest.approx(np.log(4), rel=1e-12)
    np.testing.assert_allclose(dlogits, (0.25 - np.eye(4)[[1, 3]]) / 2, atol=1e-15)


@TIERS
@DTYPES
def test_huge_logits_are_stable(tier, dtype):
    # exp(1000) overflows: the row maximum is subtracted first. No warning, PyTorch's values.
    logits = np.array([[1000.0, 0.0, -1000.0], [-500.0, 500.0, 499.0]], dtype=dtype)
    labels = np.array([2, 1])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        loss, dlogits = tier.softmax_cross_entropy(logits, labels, 0.1)
    forward, backward = as_pair(tier, labels, 0.1)
    report = torch_parity(forward, backward, torch_loss(labels, 0.1), [logits], names=["logits"])
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    assert report.ok, report


@TIERS
@DTYPES
def test_loss_is_a_scalar_of_the_logits_dtype(tier, dtype):
    logits, labels = make_inputs(3, 4, dtype)
    loss, dlogits = tier.softmax_cross_entropy(logits, labels)
    assert np.shape(loss) == () and loss.dtype == np.dtype(dtype) and isinstance(float(loss), float)
    assert dlogits.dtype == np.dtype(dtype) and dlogits.shape == logits.shape


@TIERS
def test_any_integer_label_dtype_is_accepted(tier):
    logits, labels = make_inputs(4, 5, np.float64)
    expected = tier.softmax_cross_entropy(logits, labels)[0]
    for int_dtype in (np.int32, np.uint8, np.int16):
        assert tier.softmax_cross_entropy(logits, labels.astype(int_dtype))[0] == expected


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 6), k=st.integers(2, 12),
    label_smoothing=st.sampled_from([0.0, 0.05, 0.3, 0.9]),
    soft=st.booleans(), use_numba=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_match_torch(n, k, label_smoothing, soft, use_numba, dtype, seed):
    logits, labels = make_inputs(n, k, dtype, seed=seed, soft=soft)
    forward, backward = as_pair(ops if use_numba else reference, labels, label_smoothing)
    report = torch_parity(forward, backward, torch_loss(labels, label_smoothing), [logits], names=["logits"], seed=seed)
    assert report.ok, report


# ---------------------------------------------------------------- bad input

LOGITS = np.zeros((4, 10), np.float32)


@TIERS
@pytest.mark.parametrize(
    "logits, labels, label_smoothing, error, match",
    [
        (LOGITS, np.array([0, 1, 2, 12]), 0.0, ValueError, r"labels must be in \[0, 10\), got 12"),
        (LOGITS, np.array([0, -1, 2, 3]), 0.0, ValueError, r"labels must be in \[0, 10\), got -1"),
        (LOGITS, np.array([0, 1, 2, 3, 4]), 0.0, ValueError, "labels has length 5 but logits has 4 rows"),
        (LOGITS, np.array([0.0, 1.0, 2.0, 3.0]), 0.0, TypeError, "labels must have an integer dtype .* got dtype float64"),
        (LOGITS, np.array([True, False, True, True]), 0.0, TypeError, "labels must have an integer dtype .* got dtype bool"),
        (LOGITS, [0, 1, 2, 3], 0.0, TypeError, "labels must be a numpy.ndarray of class indices, got list"),
        (LOGITS, np.zeros((4, 1), np.int64), 0.0, ValueError, r"labels must be 1-D \(N,\), got 2-D"),
        (LOGITS, np.zeros((4, 9), np.float32), 0.0, ValueError, r"probability targets must have the shape of logits \(4, 10\)"),
        (LOGITS, np.zeros((4, 10), np.float64), 0.0, TypeError, "mixed dtypes: labels has dtype float64 but the input has dtype float32"),
        (LOGITS, np.arange(4), 1.0, ValueError, r"label_smoothing must be a float in \[0, 1\), got 1.0"),
        (LOGITS, np.arange(4), -0.1, ValueError, r"label_smoothing must be a float in \[0, 1\), got -0.1"),
        (np.zeros(10, np.float32), np.arange(4), 0.0, ValueError, "logits must be 2-D, got 1-D"),
        (np.zeros((4, 10), np.int64), np.arange(4), 0.0, TypeError, "logits must have dtype float32 or float64, got int64"),
        (np.zeros((4, 10), np.float16), np.arange(4), 0.0, TypeError, "logits must have dtype float32 or float64, got float16"),
        (np.zeros((0, 10), np.float32), np.arange(0), 0.0, ValueError, "logits must have at least one row"),
    ],
    ids=["label-too-big", "label-negative", "labels-length", "float-labels", "bool-labels", "list-labels",
         "labels-2d-int", "soft-shape", "soft-mixed-dtype", "smoothing-1", "smoothing-negative", "logits-1d",
         "int-logits", "float16-logits", "empty-batch"],
)
def test_bad_input(tier, logits, labels, label_smoothing, error, match):
    with pytest.raises(error, match=match):
        tier.softmax_cross_entropy(logits, labels, label_smoothing)
