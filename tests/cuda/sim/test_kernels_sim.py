"""The extra CUDA kernels (residual add, Squeeze-Excite gate, fills, SGD, sums, GEMM versions), the
input checks of the CUDA ops, and non-contiguous device views, in the CUDA simulator.

Run: ``NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda/sim`` (see conftest.py).
References are independent: numpy formulas, and torch.optim.SGD for the optimiser step.
Tolerances as in test_ops_sim.py: float64 1e-10 (summation order only), float32 atol 1e-5 (of the largest value, as testing.compare scales it) rtol 1e-4.
"""
import numpy as np
import pytest
import torch

import tinyeffnet.cuda as tc
from tinyeffnet import ops
from tinyeffnet.cuda import elementwise, gemm
from tinyeffnet.testing import compare

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(atol=1e-5, rtol=1e-4), np.float64: dict(atol=1e-10, rtol=1e-10)}


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _assert_close(name, ours_device, reference, dtype):
    row = compare(name, tc.to_host(ours_device), np.asarray(reference, dtype=dtype), **TOLERANCE[dtype])
    assert row.ok, f"{name}: error {row.error:.3g}\n{row.detail}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_fill_zeros_axpy(dtype):
    rng = np.random.default_rng(0)
    a, b = _rand(rng, (2, 3, 4), dtype), _rand(rng, (2, 3, 4), dtype)
    out = tc.add(tc.to_device(a), tc.to_device(b))
    _assert_close("add", out, a + b, dtype)
    y = tc.to_device(b)
    tc.axpy(0.5, tc.to_device(a), y)
    _assert_close("axpy", y, b + dtype(0.5) * a, dtype)
    tc.fill(y, 2.5)
    _assert_close("fill", y, np.full(a.shape, 2.5), dtype)
    z = tc.zeros((3, 2), dtype)
    assert z.dtype == dtype
    _assert_close("zeros", z, np.zeros((3, 2)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum,nesterov,weight_decay", [(0.0, False, 0.0), (0.9, False, 1e-2), (0.9, True, 0.0)])
def test_sgd_step_matches_torch_sgd(momentum, nesterov, weight_decay, dtype):
    rng = np.random.default_rng(0)
    p0 = _rand(rng, (5, 3), dtype)
    grads = [_rand(rng, (5, 3), dtype) for _ in range(3)]
    param_t = torch.tensor(p0, requires_grad=True)
    opt = torch.optim.SGD([param_t], lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    param, buf = tc.to_device(p0), None
    for g in grads:  # three steps: the first creates the momentum buffer, the next two use it
        param_t.grad = torch.tensor(g)
        opt.step()
        buf = tc.sgd_step(param, tc.to_device(g), 0.1, momentum, weight_decay, nesterov, buf)
    assert (buf is None) == (momentum == 0)
    _assert_close("param", param, param_t.detach().numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_channel_gate_forward_and_backward(dtype):
    rng = np.random.default_rng(0)
    x, g, dy = _rand(rng, (2, 3, 2, 4), dtype), _rand(rng, (2, 4), dtype), _rand(rng, (2, 3, 2, 4), dtype)
    y, cache = tc.channel_gate_forward(tc.to_device(x), tc.to_device(g))
    _assert_close("forward", y, x * g[:, None, None, :], dtype)
    dx, dg = tc.channel_gate_backward(tc.to_device(dy), cache)
    _assert_close("dx", dx, dy * g[:, None, None, :], dtype)
    _assert_close("dgate", dg, np.einsum("nhwc,nhwc->nc", dy, x), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_total_and_column_sums_in_several_passes(dtype):
    a = _rand(np.random.default_rng(0), (37, 3), dtype)
    s = elementwise.total(tc.to_device(a), chunk=4)  # 111 -> 28 -> 7 -> 2 -> 1: four passes
    assert s.shape == ()
    _assert_close("total", s, a.sum(), dtype)
    _assert_close("column_sums", elementwise.column_sums(tc.to_device(a), rows_per_chunk=4), a.sum(axis=0), dtype)
    one_row = tc.to_device(a[:1])
    sums = elementwise.column_sums(one_row)  # a copy, never a view of its input
    tc.fill(one_row, 0)
    _assert_close("column_sums of one row", sums, a[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transpose_a,splits", [(False, 1), (True, 1), (True, 3)])
def test_tiled_gemm_matches_simple_gemm_and_numpy(transpose_a, splits, dtype):
    rng = np.random.default_rng(0)
    a = _rand(rng, (40, 17) if transpose_a else (17, 40), dtype)  # K = 40: three 16-wide tiles, last partial
    b = _rand(rng, (40, 18), dtype)
    a_dev = tc.to_device(a).T if transpose_a else tc.to_device(a)  # a transposed view: strided, no copy
    a_ref = a.T if transpose_a else a
    simple = gemm.matmul_simple(a_dev, tc.to_device(b))
    tiled = gemm.matmul(a_dev, tc.to_device(b), splits=splits)
    _assert_close("simple", simple, a_ref @ b, dtype)
    _assert_close("tiled", tiled, tc.to_host(simple), dtype)


def test_non_contiguous_device_view_is_accepted():
    x = np.random.default_rng(0).standard_normal((2, 6, 4, 3)).astype(np.float32)
    view = tc.to_device(x)[:, ::2]  # (2, 3, 4, 3), strided
    assert not view.is_c_contiguous()
    y, _ = tc.silu_forward(view)
    expected, _ = ops.silu_forward(np.ascontiguousarray(x[:, ::2]))
    _assert_close("silu of a strided view", y, expected, np.float32)


# ---------------------------------------------------------------------------------- bad input
def test_host_array_is_refused_with_a_hint():
    with pytest.raises(TypeError, match=r"x must be a CUDA device array, got a numpy.ndarray .*to_device\(x\)"):
        tc.silu_forward(np.zeros(3, np.float32))


def test_mixed_dtypes_are_refused():
    x = tc.to_device(np.zeros((1, 3, 3, 2), np.float32))
    w = tc.to_device(np.zeros((3, 3, 2), np.float64))
    with pytest.raises(TypeError, match="mixed dtypes: w has dtype float64 but the input has dtype float32"):
        tc.depthwise_conv2d_forward(x, w)


def test_int_input_is_refused():
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got int64"):
        tc.sigmoid_forward(tc.to_device(np.zeros(3, np.int64)))


def test_conv_channel_mismatch_and_padding_errors():
    x = tc.to_device(np.zeros((1, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="channel mismatch: x of shape .* has 3 channels but w"):
        tc.conv2d_forward(x, tc.to_device(np.zeros((3, 3, 2, 4), np.float32)))
    with pytest.raises(ValueError, match='padding="same" needs an odd kernel size'):
        tc.conv2d_forward(x, tc.to_device(np.zeros((2, 2, 3, 4), np.float32)), padding="same")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        tc.conv2d_forward(x, tc.to_device(np.zeros((3, 3, 3, 4), np.float32)), stride=0)


def test_wrong_gradient_shape_is_refused():
    _, cache = tc.silu_forward(tc.to_device(np.zeros((2, 3), np.float32)))
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3\), got \(3, 2\)"):
        tc.silu_backward(tc.to_device(np.zeros((3, 2), np.float32)), cache)


def test_bad_labels_are_refused():
    logits = tc.to_device(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got 3"):
        tc.softmax_cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(TypeError, match="labels must have an integer dtype"):
        tc.softmax_cross_entropy(logits, np.array([0.0, 1.0]))


def test_batchnorm_running_stats_must_be_device_arrays():
    x = tc.to_device(np.zeros((2, 3), np.float32))
    v = tc.to_device(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="running_var must be a CUDA device array"):
        tc.batchnorm_forward(x, v, v, v, np.ones(3, np.float32), True)
