"""Every tinyeffnet.cuda op against the CPU op of tinyeffnet.ops, in the CUDA simulator.

Run: ``NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda/sim`` (see conftest.py for why a separate
process). Tiny shapes: the simulator runs about 1,000 CUDA threads per second.

For each op: the same seeded inputs go through the CPU op (numpy arrays) and the CUDA op (device
arrays); forward output, every gradient (for the same random dy) and, for batchnorm, the running
statistics are compared with ``tinyeffnet.testing.compare``, in float32 and float64.
Tolerances: float64 atol = rtol = 1e-10 (only the summation order differs between the two tiers);
float32 atol 1e-5 of the largest value (testing.compare scales it), rtol 1e-4 (float32 rounding
accumulated over a few dozen terms; same as the PyTorch parity default).
"""
import numpy as np
import pytest

import tinyeffnet.cuda as tc
from tinyeffnet import ops
from tinyeffnet.cuda import batchnorm as cuda_bn
from tinyeffnet.cuda import conv2d as cuda_conv
from tinyeffnet.cuda import depthwise as cuda_dw
from tinyeffnet.testing import compare

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(atol=1e-5, rtol=1e-4), np.float64: dict(atol=1e-10, rtol=1e-10)}


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _assert_close(name, ours_device, reference, dtype):
    ours = tc.to_host(ours_device) if not isinstance(ours_device, np.ndarray) else ours_device
    row = compare(name, ours, np.asarray(reference), **TOLERANCE[dtype])
    assert row.ok, f"{name}: error {row.error:.3g}\n{row.detail}"


def _check_op(cpu_forward, cpu_backward, cuda_forward, cuda_backward, inputs, dtype, kwargs=None, names=None, seed=1):
    """Forward and every gradient of the CUDA op equal the CPU op's (same inputs, same dy)."""
    kwargs = kwargs or {}
    y_cpu, cache_cpu = cpu_forward(*inputs, **kwargs)
    y_gpu, cache_gpu = cuda_forward(*[tc.to_device(a) for a in inputs], **kwargs)
    _assert_close("forward", y_gpu, y_cpu, dtype)
    dy = _rand(np.random.default_rng(seed), y_cpu.shape, dtype)
    grads_cpu = cpu_backward(dy, cache_cpu)
    grads_gpu = cuda_backward(tc.to_device(dy), cache_gpu)
    assert len(grads_cpu) == len(grads_gpu)
    names = names or [f"d{i}" for i in range(len(grads_cpu))]
    for name, ours, theirs in zip(names, grads_gpu, grads_cpu):
        if theirs is None:
            assert ours is None, name
            continue
        _assert_close(name, ours, theirs, dtype)
    return y_gpu, grads_gpu


def test_cuda_is_available_here():  # the simulator, or the real GPU under `tinyeffnet bench gpu`
    assert tc.is_available() is True


# ------------------------------------------------------------------------------------ convolutions
CONV_CASES = [  # (x shape, kernel, stride, padding)
    ((2, 5, 4, 3), 3, 2, 1),  # strided, symmetric padding, odd sizes
    ((1, 4, 4, 3), 3, 2, "same"),  # TF "same" on even sizes: asymmetric padding (0 before, 1 after)
    ((2, 3, 3, 4), 1, 1, 0),  # 1x1 stride 1: the GEMM-only fast path
    ((1, 5, 5, 3), 1, 2, 0),  # 1x1 stride 2: im2col path
    ((1, 4, 5, 2), (2, 3), 1, 0),  # even, non-square kernel, no padding
]


def _conv_weight(rng, kernel, cin, cout, dtype):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return _rand(rng, (kh, kw, cin, cout), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kernel,stride,padding", CONV_CASES)
def test_conv2d_gemm_version_matches_cpu(shape, kernel, stride, padding, dtype):
    rng = np.random.default_rng(0)
    x = _rand(rng, shape, dtype)
    w = _conv_weight(rng, kernel, shape[3], 3, dtype)
    _check_op(ops.conv2d_forward, ops.conv2d_backward, tc.conv2d_forward, tc.conv2d_backward, [x, w], dtype,
              dict(stride=stride, padding=padding), ["dx", "dw"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kernel,stride,padding", CONV_CASES[:2] + CONV_CASES[4:])
def test_conv2d_direct_version_matches_cpu(shape, kernel, stride, padding, dtype):
    rng = np.random.default_rng(0)
    x = _rand(rng, shape, dtype)
    w = _conv_weight(rng, kernel, shape[3], 2, dtype)
    _check_op(ops.conv2d_forward, ops.conv2d_backward, cuda_conv.conv2d_forward_direct,
              cuda_conv.conv2d_backward_direct, [x, w], dtype, dict(stride=stride, padding=padding), ["dx", "dw"])


DEPTHWISE_CASES = [((2, 4, 5, 3), 3, 1, 1), ((1, 6, 6, 2), 5, 2, "same"), ((1, 5, 4, 3), 3, 2, 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kernel,stride,padding", DEPTHWISE_CASES)
def test_depthwise_matches_cpu(shape, kernel, stride, padding, dtype):
    rng = np.random.default_rng(0)
    x = _rand(rng, shape, dtype)
    w = _rand(rng, (kernel, kernel, shape[3]), dtype)

    def chunked_backward(dy, cache):  # 2 output rows per chunk: several partials to add up
        return cuda_dw.depthwise_conv2d_backward(dy, cache, rows_per_chunk=2)

    _check_op(ops.depthwise_conv2d_forward, ops.depthwise_conv2d_backward, tc.depthwise_conv2d_forward,
              chunked_backward, [x, w], dtype, dict(stride=stride, padding=padding), ["dx", "dw"])
    _check_op(ops.depthwise_conv2d_forward, ops.depthwise_conv2d_backward, tc.depthwise_conv2d_forward,
              cuda_dw.depthwise_conv2d_backward_simple, [x, w], dtype, dict(stride=stride, padding=padding),
              ["dx", "dw (version 1)"])


def _bn_inputs(rng, shape, dtype):
    """x (..., C) away from zero mean and unit scale, gamma, beta, running mean and variance (C,)."""
    channels = shape[-1]
    x = _rand(rng, shape, dtype) * dtype(2) + dtype(0.5)
    gamma, beta = _rand(rng, (channels,), dtype), _rand(rng, (channels,), dtype)
    return x, gamma, beta, _rand(rng, (channels,), dtype), rng.uniform(0.5, 2.0, channels).astype(dtype)


# ------------------------------------------------------------------------------------- batchnorm
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,training", [((2, 3, 3, 4), True), ((5, 3), True), ((2, 2, 3, 4), False)])
def test_batchnorm_matches_cpu_with_running_stats(shape, training, dtype):
    rng = np.random.default_rng(0)
    x, gamma, beta, running_mean_cpu, running_var_cpu = _bn_inputs(rng, shape, dtype)
    running_mean_gpu, running_var_gpu = tc.to_device(running_mean_cpu), tc.to_device(running_var_cpu)
    y_cpu, cache_cpu = ops.batchnorm_forward(x, gamma, beta, running_mean_cpu, running_var_cpu, training,
                                             momentum=0.1, eps=1e-3)
    # 4 rows per chunk: the per-channel sums take several partial passes, as on big inputs
    y_gpu, cache_gpu = cuda_bn.batchnorm_forward(tc.to_device(x), tc.to_device(gamma), tc.to_device(beta),
                                                 running_mean_gpu, running_var_gpu, training, momentum=0.1,
                                                 eps=1e-3, rows_per_chunk=4)
    _assert_close("forward", y_gpu, y_cpu, dtype)
    _assert_close("running_mean", running_mean_gpu, running_mean_cpu, dtype)
    _assert_close("running_var", running_var_gpu, running_var_cpu, dtype)
    dy = _rand(rng, shape, dtype)
    grads_cpu = ops.batchnorm_backward(dy, cache_cpu)
    grads_gpu = cuda_bn.batchnorm_backward(tc.to_device(dy), cache_gpu, rows_per_chunk=4)
    for name, ours, theirs in zip(["dx", "dgamma", "dbeta"], grads_gpu, grads_cpu):
        _assert_close(name, ours, theirs, dtype)


# ------------------------------------------------------------------------- pointwise and the rest
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["silu", "sigmoid"])
def test_activations_match_cpu(name, dtype):
    x = _rand(np.random.default_rng(0), (2, 3, 2, 5), dtype) * dtype(4)
    x.flat[:3] = [dtype(-40), dtype(40), dtype(0)]  # stable at both tails and at 0
    _check_op(getattr(ops, f"{name}_forward"), getattr(ops, f"{name}_backward"), getattr(tc, f"{name}_forward"),
              getattr(tc, f"{name}_backward"), [x], dtype, names=["dx"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_avg_pool_matches_cpu(dtype):
    x = _rand(np.random.default_rng(0), (2, 3, 4, 5), dtype)
    _check_op(ops.global_avg_pool_forward, ops.global_avg_pool_backward, tc.global_avg_pool_forward,
              tc.global_avg_pool_backward, [x], dtype, names=["dx"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_cpu(bias, dtype):
    rng = np.random.default_rng(0)
    x, w = _rand(rng, (3, 7), dtype), _rand(rng, (7, 5), dtype)
    b = _rand(rng, (5,), dtype) if bias else None

    def cpu_forward(x, w, b=None):
        return ops.linear_forward(x, w, b)

    inputs = [x, w] + ([b] if bias else [])
    _check_op(cpu_forward, ops.linear_backward, tc.linear_forward, tc.linear_backward, inputs, dtype,
              names=["dx", "dw", "db"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("targets,smoothing", [("hard", 0.0), ("hard", 0.1), ("soft", 0.2), ("device", 0.1)])
def test_softmax_cross_entropy_matches_cpu(targets, smoothing, dtype):
    rng = np.random.default_rng(0)
    logits = _rand(rng, (4, 6), dtype) * dtype(3)
    labels = rng.integers(0, 6, 4)
    if targets == "soft":
        labels = rng.uniform(size=(4, 6)).astype(dtype)
        labels /= labels.sum(axis=1, keepdims=True)
    loss_cpu, dlogits_cpu = ops.softmax_cross_entropy(logits, labels, smoothing)
    device_labels = tc.to_device(labels) if targets == "device" else labels
    loss_gpu, dlogits_gpu = tc.softmax_cross_entropy(tc.to_device(logits), device_labels, smoothing)
    assert loss_gpu.shape == ()
    _assert_close("loss", tc.to_host(loss_gpu), np.asarray(loss_cpu), dtype)
    _assert_close("dlogits", dlogits_gpu, dlogits_cpu, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,shape", [("dropout", (3, 8)), ("drop_path", (8, 2, 2, 3))])
def test_dropout_and_drop_path_match_cpu_with_the_same_coins(name, shape, dtype):
    x = _rand(np.random.default_rng(0), shape, dtype)

    def forward_with(module):
        def forward(x):  # a fresh Generator with the same seed: the same coins on both devices
            return getattr(module, f"{name}_forward")(x, 0.5, np.random.default_rng(7), training=True)
        return forward

    y, _ = _check_op(forward_with(ops), getattr(ops, f"{name}_backward"), forward_with(tc),
                     getattr(tc, f"{name}_backward"), [x], dtype, names=["dx"])
    assert (tc.to_host(y) == 0).any() and (tc.to_host(y) != 0).any()  # p = 0.5 really dropped something


@pytest.mark.parametrize("name", ["dropout", "drop_path"])
def test_dropout_identity_in_eval(name):
    x = tc.to_device(np.arange(6, dtype=np.float32).reshape(2, 3))
    y, cache = getattr(tc, f"{name}_forward")(x, 0.5, None, training=False)
    assert y is x
    (dx,) = getattr(tc, f"{name}_backward")(x, cache)
    np.testing.assert_array_equal(tc.to_host(dx), np.arange(6, dtype=np.float32).reshape(2, 3))


# ---------------------------------------------------------------------- fused BN + SiLU, gradients
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,training", [((2, 3, 3, 4), True), ((5, 3), True), ((2, 2, 3, 4), False)])
def test_batchnorm_silu_matches_cpu_with_running_stats(shape, training, dtype):
    rng = np.random.default_rng(0)
    x, gamma, beta, running_mean_cpu, running_var_cpu = _bn_inputs(rng, shape, dtype)
    running_mean_gpu, running_var_gpu = tc.to_device(running_mean_cpu), tc.to_device(running_var_cpu)
    y_cpu, cache_cpu = ops.batchnorm_silu_forward(x, gamma, beta, running_mean_cpu, running_var_cpu, training)
    y_gpu, cache_gpu = tc.batchnorm_silu_forward(tc.to_device(x), tc.to_device(gamma), tc.to_device(beta),
                                                 running_mean_gpu, running_var_gpu, training)
    _assert_close("forward", y_gpu, y_cpu, dtype)
    _assert_close("running_mean", running_mean_gpu, running_mean_cpu, dtype)
    _assert_close("running_var", running_var_gpu, running_var_cpu, dtype)
    dy = _rand(rng, shape, dtype)
    grads_cpu = ops.batchnorm_silu_backward(dy, cache_cpu)
    grads_gpu = tc.batchnorm_silu_backward(tc.to_device(dy), cache_gpu)
    for name, ours, theirs in zip(["dx", "dgamma", "dbeta"], grads_gpu, grads_cpu):
        _assert_close(name, ours, theirs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_channel_gate_matches_cpu(dtype):
    rng = np.random.default_rng(0)
    x, gate = _rand(rng, (2, 3, 2, 4), dtype), _rand(rng, (2, 4), dtype)
    _check_op(ops.channel_gate_forward, ops.channel_gate_backward, tc.channel_gate_forward,
              tc.channel_gate_backward, [x, gate], dtype, names=["dx", "dgate"])


def test_a_gradient_of_the_wrong_dtype_is_refused_on_the_device_as_on_the_host():
    from tinyeffnet.nn import Parameter

    messages = []
    for move in (lambda a: a, tc.to_device):
        p = Parameter(np.zeros((2, 3), np.float32))
        p.data = move(p.data)
        with pytest.raises(TypeError, match="mixed dtypes") as error:
            p.accumulate(move(np.ones((2, 3), np.float64)))
        messages.append(str(error.value))
        p.accumulate(move(np.ones((2, 3), np.float32)))
        p.accumulate(move(np.ones((2, 3), np.float32)))
        _assert_close("grad", p.grad, np.full((2, 3), 2.0, np.float32), np.float32)
    assert messages[0] == messages[1]
