"""BatchNorm: gradients (finite differences), the NumPy tier against PyTorch (outputs, every gradient,
running statistics), the Numba tier against the NumPy tier, random shapes, and bad input.

Layout: ours is (N, H, W, C); PyTorch's F.batch_norm gets x.permute(0, 3, 1, 2) and its output is
permuted back. 2-D (N, C) input is compared with F.batch_norm on (N, C) directly.
"""
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
MODES = pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
SHAPES = pytest.mark.parametrize(
    "shape",
    [
        (2, 3, 4, 3),   # general
        (1, 3, 5, 2),   # batch 1 with H, W > 1: statistics over pixels only
        (2, 3, 3, 1),   # one channel
        (3, 2, 5, 4),   # non-square
        (6, 4),         # 2-D (N, C): BN after a linear layer
    ],
)
TOLERANCE = {np.float32: dict(atol=1e-5, rtol=1e-4), np.float64: dict(atol=1e-10, rtol=1e-10)}


def make_inputs(shape, dtype, seed=0):
    """x with a non-zero mean and non-unit spread; random gamma/beta; non-trivial running stats."""
    r = np.random.default_rng(seed)
    c = shape[-1]
    x = (1.5 * r.standard_normal(shape) + 0.7).astype(dtype)
    gamma = r.uniform(0.5, 1.5, c).astype(dtype) * r.choice([-1, 1], c).astype(dtype)
    beta = r.standard_normal(c).astype(dtype)
    running_mean = (0.5 * r.standard_normal(c)).astype(dtype)
    running_var = r.uniform(0.5, 2.0, c).astype(dtype)
    return x, gamma, beta, running_mean, running_var


def torch_batchnorm(running_mean, running_var, training, momentum=0.1, eps=1e-3):
    """F.batch_norm on channels-last tensors; the running statistics are copies updated by torch."""
    rm = torch.tensor(running_mean)
    rv = torch.tensor(running_var)

    def forward(x, gamma, beta):
        if x.dim() == 4:
            y = F.batch_norm(x.permute(0, 3, 1, 2), rm, rv, gamma, beta, training, momentum, eps)
            return y.permute(0, 2, 3, 1)
        return F.batch_norm(x, rm, rv, gamma, beta, training, momentum, eps)

    return forward, rm, rv


# ---------------------------------------------------------------- gradients by finite differences


@TIERS
@MODES
@pytest.mark.parametrize("shape", [(2, 3, 2, 3), (5, 3)])
def test_gradcheck(tier, training, shape):
    x, gamma, beta, running_mean, running_var = make_inputs(shape, np.float64, seed=1)

    def forward(x, gamma, beta, running_mean, running_var):
        return tier.batchnorm_forward(x, gamma, beta, running_mean, running_var, training)

    # Smooth op in float64: centred differences (eps 1e-6) are accurate to ~1e-9 relative; 1e-7
    # leaves room for the smallest entries of dx, where the three terms of the formula cancel.
    report = gradcheck(
        forward, tier.batchnorm_backward, [x, gamma, beta, running_mean, running_var],
        names=["x", "gamma", "beta", "running_mean", "running_var"], samples=None, tol=1e-7,
    )
    assert [row.name for row in report.rows] == ["dx", "dgamma", "dbeta"]
    assert report.ok, report


# ---------------------------------------------------------------- NumPy tier against PyTorch


@DTYPES
@MODES
@SHAPES
def test_reference_matches_torch(dtype, training, shape):
    x, gamma, beta, running_mean, running_var = make_inputs(shape, dtype)
    torch_forward, _, _ = torch_batchnorm(running_mean, running_var, training)
    report = torch_parity(
        reference.batchnorm_forward, reference.batchnorm_backward, torch_forward, [x, gamma, beta],
        kwargs=dict(running_mean=running_mean, running_var=running_var, training=training),
        names=["x", "gamma", "beta"],
    )
    assert [row.name for row in report.rows] == ["forward", "dx", "dgamma", "dbeta"]
    assert report.ok, report


@TIERS
@DTYPES
@SHAPES
@pytest.mark.parametrize("momentum", [0.1, 0.01])
def test_running_statistics_match_torch(tier, dtype, shape, momentum):
    x, gamma, beta, running_mean, running_var = make_inputs(shape, dtype)
    torch_forward, rm, rv = torch_batchnorm(running_mean, running_var, True, momentum=momentum)
    torch_forward(torch.tensor(x), torch.tensor(gamma), torch.tensor(beta))
    tier.batchnorm_forward(x, gamma, beta, running_mean, running_var, True, momentum=momentum)
    rows = [
        compare("running_mean", running_mean, rm.numpy(), **TOLERANCE[dtype]),
        compare("running_var", running_var, rv.numpy(), **TOLERANCE[dtype]),
    ]
    assert all(row.ok for row in rows), rows


@TIERS
def test_eval_leaves_running_statistics_alone(tier):
    x, gamma, beta, running_mean, running_var = make_inputs((2, 3, 3, 2), np.float64)
    before = running_mean.copy(), running_var.copy()
    tier.batchnorm_forward(x, gamma, beta, running_mean, running_var, False)
    np.testing.assert_array_equal(running_mean, before[0])
    np.testing.assert_array_equal(running_var, before[1])


@TIERS
def test_training_output_has_zero_mean_unit_variance_per_channel(tier):
    # Independent of PyTorch: with gamma = 1, beta = 0, each channel of y has mean 0 and biased
    # variance var / (var + eps).
    x, _, _, running_mean, running_var = make_inputs((4, 3, 5, 3), np.float64)
    ones, zeros = np.ones(3), np.zeros(3)
    y, _ = tier.batchnorm_forward(x, ones, zeros, running_mean, running_var, True, eps=1e-3)
    var = x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2)), var / (var + 1e-3), rtol=1e-12)


# ---------------------------------------------------------------- Numba tier against the NumPy tier


@DTYPES
@MODES
@pytest.mark.parametrize("shape", [(2, 3, 4, 3), (1, 3, 5, 2), (6, 4), (3, 10, 11, 5)])  # last: M = 330 > 256, two row chunks
def test_numba_matches_reference(dtype, training, shape):
    x, gamma, beta, running_mean, running_var = make_inputs(shape, dtype, seed=3)
    dy = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    results = {}
    for name, tier in (("numba", ops), ("numpy", reference)):
        rm, rv = running_mean.copy(), running_var.copy()
        y, cache = tier.batchnorm_forward(x, gamma, beta, rm, rv, training)
        results[name] = (y, *tier.batchnorm_backward(dy, cache), rm, rv)
    names = ["y", "dx", "dgamma", "dbeta", "running_mean", "running_var"]
    rows = [compare(n, a, b, **TOLERANCE[dtype]) for n, a, b in zip(names, results["numba"], results["numpy"])]
    assert all(row.ok for row in rows), "\n".join(f"{r.name}: {r.error:.3g}\n{r.detail}" for r in rows if not r.ok)


def test_numba_variance_is_centred_in_float32():
    # Channels with mean 1000 and std 1: a one-pass E[x^2] - E[x]^2 in float32 loses every digit of the
    # variance (E[x^2] ~ 1e6, float32 keeps ~7 digits; measured: y off by 1.25). Centring (around each
    # chunk's mean, then Chan's merge) keeps y within ~2e-4 (float32 rounding of sums of numbers near
    # 1000); 2e-3 leaves margin.
    r = np.random.default_rng(5)
    x = (1000 + r.standard_normal((4, 8, 8, 3))).astype(np.float32)
    gamma, beta = np.ones(3, np.float32), np.zeros(3, np.float32)
    y, _ = ops.batchnorm_forward(x, gamma, beta, np.zeros(3, np.float32), np.ones(3, np.float32), True)
    exact, _ = reference.batchnorm_forward(x.astype(np.float64), gamma.astype(np.float64),
                                           beta.astype(np.float64), np.zeros(3), np.ones(3), True)
    np.testing.assert_allclose(y, exact, atol=2e-3 * np.abs(exact).max() / 3)      # y is normalised: max|y| ~ 3


@pytest.mark.parametrize("rows, channels", [(1, 3), (7, 2), (256, 5), (257, 4), (3000, 6), (128, 1536)])
@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_chunked_mean_and_m2_equal_the_two_pass_sums(rows, channels, offset):
    # The speed path (one trip through memory, chunks merged by Chan's formula) against the readable
    # two-pass NumPy sums (whole-array mean, then centred squares) and float64 ground truth. Chunk
    # sizes from rows_per_chunk: one chunk, a partial last chunk, and many chunks.
    from tinyeffnet.ops import batchnorm as bn

    # Tolerances: float32 measured worst 1.9e-7 (mean, relative to the offset) and 1.2e-5 (M2, relative;
    # the merge term n_k (mean_k - mean)^2 subtracts numbers near the offset); the two-pass sums reach
    # 6e-7 on M2. Both far from a wrong formula (a lost merge term changes M2 by ~10%).
    x = offset + np.random.default_rng(rows).standard_normal((rows, channels)) * 2
    scale = max(1.0, offset)
    for dtype, mean_tol, m2_tol in ((np.float64, 1e-13, 1e-12), (np.float32, 5e-7, 5e-5 if offset else 1e-6)):
        x2 = x.astype(dtype)
        exact = x2.astype(np.float64)                                           # the same numbers, exactly
        exact_mean = exact.mean(axis=0)
        exact_m2 = ((exact - exact_mean) ** 2).sum(axis=0)
        mean, m2 = bn._mean_and_m2(x2, bn.rows_per_chunk(rows))
        two_pass_mean = x2.mean(axis=0)                                         # the readable way, in x's dtype
        two_pass_m2 = ((x2 - two_pass_mean) ** 2).sum(axis=0)
        assert mean.dtype == dtype and m2.dtype == dtype
        np.testing.assert_allclose(mean, exact_mean, rtol=0, atol=mean_tol * scale)
        np.testing.assert_allclose(m2, exact_m2, rtol=m2_tol)
        np.testing.assert_allclose(m2, two_pass_m2, rtol=m2_tol + 1e-6 * (dtype == np.float32))


def test_rows_per_chunk_keeps_every_core_busy():
    from tinyeffnet.ops import batchnorm as bn

    assert bn.rows_per_chunk(8 * 64 * 64) == bn.ROWS_PER_CHUNK              # big activations: full chunks
    assert -(-128 // bn.rows_per_chunk(128)) >= bn.MIN_CHUNKS                # stage 6 (M = 128): 16 chunks
    assert bn.rows_per_chunk(1) == 1


@DTYPES
@MODES
def test_dtype_is_preserved(dtype, training):
    x, gamma, beta, running_mean, running_var = make_inputs((2, 2, 3, 2), dtype)
    y, cache = ops.batchnorm_forward(x, gamma, beta, running_mean, running_var, training)
    grads = ops.batchnorm_backward(np.ones_like(y), cache)
    assert [a.dtype for a in (y, *grads, running_mean, running_var)] == [np.dtype(dtype)] * 6


@TIERS
def test_non_contiguous_input_is_accepted(tier):
    x, gamma, beta, running_mean, running_var = make_inputs((2, 4, 3, 2), np.float64)
    x_view = np.ascontiguousarray(x.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)   # same values, strided
    assert not x_view.flags.c_contiguous
    y_view, _ = tier.batchnorm_forward(x_view, gamma, beta, running_mean.copy(), running_var.copy(), True)
    y, _ = tier.batchnorm_forward(x, gamma, beta, running_mean.copy(), running_var.copy(), True)
    np.testing.assert_allclose(y_view, y, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- random shapes against PyTorch


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 3), h=st.integers(1, 4), w=st.integers(1, 4), c=st.integers(1, 4),
    training=st.booleans(), use_numba=st.booleans(), seed=st.integers(0, 2**16),
)
def test_random_shapes_match_torch(n, h, w, c, training, use_numba, seed):
    if training and n * h * w < 2:
        n = 2  # a variance needs two values per channel (PyTorch raises too)
    tier = ops if use_numba else reference
    x, gamma, beta, running_mean, running_var = make_inputs((n, h, w, c), np.float64, seed)
    torch_forward, rm, rv = torch_batchnorm(running_mean, running_var, training)
    report = torch_parity(
        tier.batchnorm_forward, tier.batchnorm_backward, torch_forward, [x, gamma, beta],
        kwargs=dict(running_mean=running_mean, running_var=running_var, training=training),
        names=["x", "gamma", "beta"], seed=seed,
    )
    assert report.ok, report


# ---------------------------------------------------------------- bad input


def _good(dtype=np.float32, shape=(2, 3, 3, 4)):
    x, gamma, beta, running_mean, running_var = make_inputs(shape, dtype)
    return dict(x=x, gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var, training=True)


@TIERS
@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(x=np.zeros((2, 3, 4), np.float32)), ValueError, r"x must be 4-D \(N, H, W, C\) or 2-D \(N, C\), got 3-D"),
        (dict(gamma=np.ones(5, np.float32)), ValueError, r"gamma must have shape \(4,\) to match the 4 channels of x"),
        (dict(running_var=np.ones(3, np.float32)), ValueError, r"running_var must have shape \(4,\)"),
        (dict(x=np.zeros((2, 3, 3, 4), np.int64)), TypeError, "x must have dtype float32 or float64, got int64"),
        (dict(x=np.zeros((2, 3, 3, 4), np.float16)), TypeError, "x must have dtype float32 or float64, got float16"),
        (dict(beta=np.zeros(4, np.float64)), TypeError, "mixed dtypes: beta has dtype float64 but the input has dtype float32"),
        (dict(training=1), TypeError, "training must be True or False"),
        (dict(x=np.zeros((1, 1, 1, 4), np.float32)), ValueError, "more than 1 value per channel"),
        (dict(x=np.zeros((0, 3, 3, 4), np.float32)), ValueError, "x must have at least one value per channel"),
        (dict(momentum=1.5), ValueError, r"momentum must be a float in \[0, 1\]"),
        (dict(eps=0.0), ValueError, "eps must be a float > 0"),
    ],
    ids=["ndim", "gamma-channels", "running_var-channels", "int", "float16", "mixed", "training-flag",
         "one-value-per-channel", "empty-batch", "momentum", "eps"],
)
def test_bad_forward_input(tier, change, error, match):
    kwargs = {**_good(), **change}
    with pytest.raises(error, match=match):
        tier.batchnorm_forward(**kwargs)


@TIERS
def test_read_only_running_stats_are_refused_in_training(tier):
    kwargs = _good()
    kwargs["running_mean"].flags.writeable = False
    with pytest.raises(ValueError, match="running_mean must be writeable"):
        tier.batchnorm_forward(**kwargs)


@TIERS
@pytest.mark.parametrize(
    "dy, error, match",
    [
        (np.zeros((2, 3, 3, 5), np.float32), ValueError, r"dy must have shape \(2, 3, 3, 4\), got \(2, 3, 3, 5\)"),
        (np.zeros((2, 3, 3, 4), np.float64), TypeError, "mixed dtypes: dy has dtype float64"),
    ],
    ids=["shape", "dtype"],
)
def test_bad_gradient(tier, dy, error, match):
    _, cache = tier.batchnorm_forward(**_good())
    with pytest.raises(error, match=match):
        tier.batchnorm_backward(dy, cache)
