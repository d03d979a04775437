"""Linear layer: gradients (with and without bias), the NumPy tier against PyTorch's x @ w + b, the
Numba tier against the NumPy tier, and bad input."""
import numpy as np
import pytest
import torch  # noqa: F401  (parity must fail, not skip, without torch)
import torch.nn.functional as F

from tinyeffnet import ops
from tinyeffnet.ops import reference
from tinyeffnet.testing import compare, gradcheck, torch_parity

TIERS = pytest.mark.parametrize("tier", [ops, reference], ids=["numba", "numpy"])
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64])
SHAPES = pytest.mark.parametrize("n, c_in, c_out", [(4, 5, 3), (1, 7, 2), (3, 1, 1), (6, 16, 10)])
TOLERANCE = {np.float32: dict(atol=1e-5, rtol=1e-4), np.float64: dict(atol=1e-10, rtol=1e-10)}


def make_inputs(n, c_in, c_out, dtype, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, c_in)).astype(dtype)
    w = (r.standard_normal((c_in, c_out)) / np.sqrt(c_in)).astype(dtype)
    b = r.standard_normal(c_out).astype(dtype)
    return x, w, b


@TIERS
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck(tier, bias):
    x, w, b = make_inputs(3, 4, 5, np.float64)
    inputs = [x, w, b if bias else None]
    # Bilinear op in float64: centred differences are exact up to round-off (~1e-10 relative).
    report = gradcheck(tier.linear_forward, tier.linear_backward, inputs, names=["x", "w", "b"], samples=None, tol=1e-7)
    assert [row.name for row in report.rows] == (["dx", "dw", "db"] if bias else ["dx", "dw"])
    assert report.ok, report


@TIERS
def test_no_bias_gives_db_none(tier):
    x, w, _ = make_inputs(3, 4, 5, np.float32)
    y, cache = tier.linear_forward(x, w)
    assert tier.linear_backward(np.ones_like(y), cache)[2] is None


@DTYPES
@SHAPES
@pytest.mark.parametrize("bias", [True, False])
def test_reference_matches_torch(dtype, n, c_in, c_out, bias):
    x, w, b = make_inputs(n, c_in, c_out, dtype)
    if bias:
        report = torch_parity(reference.linear_forward, reference.linear_backward, lambda x, w, b: x @ w + b,
                              [x, w, b], names=["x", "w", "b"])
    else:
        report = torch_parity(reference.linear_forward, reference.linear_backward, lambda x, w: x @ w,
                              [x, w], names=["x", "w"])
    assert len(report.rows) == (4 if bias else 3)
    assert report.ok, report


@DTYPES
def test_matches_torch_linear_with_its_transposed_weight(dtype):
    # PyTorch's nn.Linear stores (Cout, Cin): our w is its transpose.
    x, w, b = make_inputs(4, 6, 3, dtype)
    report = torch_parity(ops.linear_forward, ops.linear_backward, lambda x, w, b: F.linear(x, w.T, b),
                          [x, w, b], names=["x", "w", "b"])
    assert report.ok, report


@DTYPES
@SHAPES
def test_numba_matches_reference(dtype, n, c_in, c_out):
    x, w, b = make_inputs(n, c_in, c_out, dtype, seed=1)
    dy = np.random.default_rng(2).standard_normal((n, c_out)).astype(dtype)
    outputs = {}
    for label, tier in (("numba", ops), ("numpy", reference)):
        y, cache = tier.linear_forward(x, w, b)
        outputs[label] = (y, *tier.linear_backward(dy, cache))
    names = ["y", "dx", "dw", "db"]
    rows = [compare(k, a, r, **TOLERANCE[dtype]) for k, a, r in zip(names, outputs["numba"], outputs["numpy"])]
    assert all(row.ok for row in rows), rows


@TIERS
@DTYPES
def test_dtype_is_preserved(tier, dtype):
    x, w, b = make_inputs(2, 3, 4, dtype)
    y, cache = tier.linear_forward(x, w, b)
    grads = tier.linear_backward(np.ones_like(y), cache)
    assert [a.dtype for a in (y, *grads)] == [np.dtype(dtype)] * 4


@TIERS
def test_non_contiguous_input_is_accepted(tier):
    x, w, b = make_inputs(5, 4, 3, np.float64)
    x_t = np.ascontiguousarray(x.T).T                  # same values, Fortran order
    w_t = np.ascontiguousarray(w.T).T
    np.testing.assert_allclose(tier.linear_forward(x_t, w_t, b)[0], x @ w + b, rtol=1e-12)


@TIERS
@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(x=np.zeros((2, 3, 4), np.float32)), ValueError, "x must be 2-D, got 3-D"),
        (dict(w=np.zeros((5, 2), np.float32)), ValueError, r"w must have shape \(Cin, Cout\) with Cin = 4"),
        (dict(b=np.zeros(3, np.float32)), ValueError, r"b must have shape \(Cout,\) = \(2,\)"),
        (dict(x=np.zeros((3, 4), np.int64)), TypeError, "x must have dtype float32 or float64, got int64"),
        (dict(x=np.zeros((3, 4), np.float16)), TypeError, "x must have dtype float32 or float64, got float16"),
        (dict(w=np.zeros((4, 2), np.float64)), TypeError, "mixed dtypes: w has dtype float64 but the input has dtype float32"),
    ],
    ids=["ndim", "w-rows", "b-length", "int", "float16", "mixed"],
)
def test_bad_input(tier, change, error, match):
    kwargs = {**dict(x=np.zeros((3, 4), np.float32), w=np.zeros((4, 2), np.float32), b=np.zeros(2, np.float32)), **change}
    with pytest.raises(error, match=match):
        tier.linear_forward(**kwargs)


@TIERS
def test_bad_gradient_shape(tier):
    _, cache = tier.linear_forward(np.zeros((3, 4), np.float32), np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"dy must have shape \(3, 2\), got \(3, 4\)"):
        tier.linear_backward(np.zeros((3, 4), np.float32), cache)
