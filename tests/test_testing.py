"""The proof helpers must themselves be able to fail: a wrong backward or a wrong forward is caught."""
import numpy as np
import pytest
import torch

from tinyeffnet.testing import compare, gradcheck, rel_error, torch_parity


def square_forward(x, w):
    # y = x^2 * w  (elementwise), a tiny op with two inputs
    return x * x * w, (x, w)


def square_backward(dy, cache):
    x, w = cache
    return dy * 2 * x * w, dy * x * x


def square_backward_wrong(dy, cache):
    x, w = cache
    return dy * x * w, dy * x * x  # missing the factor 2 in dx


def _inputs():
    r = np.random.default_rng(0)
    return [r.standard_normal((3, 4)), r.standard_normal((3, 4))]


def test_rel_error_definition():
    assert rel_error(np.array([1.0]), np.array([1.0])) == 0.0
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    # tensor-wide: the largest difference over the largest magnitude (a tiny entry's ulps don't count)
    assert rel_error(np.array([10.0, 1e-3]), np.array([10.0, 2e-3])) == pytest.approx(1e-3 / 20)
    assert rel_error(np.array([0.0]), np.array([0.0])) == 0.0  # guarded by max(1e-8, ...)


def test_gradcheck_passes_a_correct_backward():
    # float64, eps 1e-6, a polynomial op: centred differences are accurate to ~1e-10 relative.
    report = gradcheck(square_forward, square_backward, _inputs(), names=["x", "w"], samples=None)
    assert report.ok, report
    assert [row.name for row in report.rows] == ["dx", "dw"]
    assert report.max_error < 1e-8


def test_gradcheck_catches_a_wrong_backward():
    report = gradcheck(square_forward, square_backward_wrong, _inputs(), names=["x", "w"])
    rows = {row.name: row for row in report.rows}
    assert not rows["dx"].ok and rows["dx"].error > 0.1
    assert rows["dw"].ok
    with pytest.raises(AssertionError, match="dx"):
        report.assert_ok()


def test_gradcheck_does_not_mutate_inputs():
    inputs = _inputs()
    before = [v.copy() for v in inputs]
    gradcheck(square_forward, square_backward, inputs)
    for a, b in zip(inputs, before):
        np.testing.assert_array_equal(a, b)


def test_gradcheck_reports_a_gradient_of_the_wrong_shape():
    report = gradcheck(square_forward, lambda dy, c: (dy[:, :2], dy), _inputs())
    assert not report.ok
    assert "shape" in report.rows[0].detail


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_parity_passes_and_fails(dtype):
    inputs = [v.astype(dtype) for v in _inputs()]
    good = torch_parity(square_forward, square_backward, lambda x, w: x * x * w, inputs, names=["x", "w"])
    assert good.ok, good
    bad = torch_parity(square_forward, square_backward_wrong, lambda x, w: x * x * w, inputs, names=["x", "w"])
    assert not bad.ok
    assert "FAIL" in str(bad) and "ours" in str(bad)


def test_compare_checks_shape_and_dtype():
    a = np.zeros((2, 3), np.float32)
    assert not compare("y", a, np.zeros((3, 2), np.float32), atol=1, rtol=0).ok
    assert not compare("y", a, np.zeros((2, 3), np.float64), atol=1, rtol=0).ok
    assert compare("y", a, a.copy(), atol=1e-6, rtol=0).ok
    assert not compare("y", a, a + 1e-3, atol=1e-6, rtol=0).ok


def test_torch_is_the_oracle_not_optional():
    # The parity tests import torch at module level: a CI without torch fails instead of skipping.
    assert torch.__version__


def test_upstream_gradient_is_not_the_input_drawn_with_the_same_seed():
    # A real trap found while building the self-check: inputs drawn with default_rng(0) and a dy drawn
    # with default_rng(0) are the same numbers, and BatchNorm's dx vanishes for dy == x.
    x = np.random.default_rng(0).standard_normal((3, 4))
    seen = {}

    def forward(v):
        return v.copy(), None

    def backward(dy, cache):
        seen["dy"] = dy
        return (dy,)

    gradcheck(forward, backward, [x], seed=0)
    assert not np.allclose(seen["dy"], x)


def test_compare_scales_atol_with_the_tensors_magnitude():
    # A float32 sum's round-off follows the whole tensor's magnitude: an entry that cancels to ~1
    # inside a tensor whose values reach 100 may be off by a few ulps of 100, not of 1.
    ref = np.array([100.0, -80.0, 1.0])
    off_by_ulps_of_100 = ref + np.array([0.0, 0.0, 5e-4])          # 5e-6 of the largest value
    assert compare("dw", off_by_ulps_of_100, ref, atol=1e-5, rtol=0).ok
    # The same absolute error in a tensor whose largest value is 1 is 50x too much: it fails.
    small = ref / 100
    assert not compare("dw", small + np.array([0.0, 0.0, 5e-4]), small, atol=1e-5, rtol=0).ok
    # An all-zero reference falls back to an absolute atol.
    assert compare("z", np.full(3, 1e-6), np.zeros(3), atol=1e-5, rtol=0).ok
    assert not compare("z", np.full(3, 1e-4), np.zeros(3), atol=1e-5, rtol=0).ok


def test_compare_needs_non_finite_entries_in_the_same_places():
    ref = np.array([1.0, np.inf, np.nan])
    assert compare("y", ref.copy(), ref, atol=1e-5, rtol=0).ok
    assert not compare("y", np.array([1.0, np.inf, 0.0]), ref, atol=1e-5, rtol=0).ok
    assert not compare("y", np.array([1.0, -np.inf, np.nan]), ref, atol=1e-5, rtol=0).ok
