"""One op contract, three tiers: the same op set with the same parameter names in tinyeffnet.ops,
tinyeffnet.ops.reference and tinyeffnet.cuda; and the ops between the layers (residual add,
Squeeze-Excite's channel gate, fill / axpy / copy / zeros) in the two CPU tiers: gradient check,
PyTorch parity, CPU against reference, bad input, and no silent cast of a gradient."""
import inspect

import numpy as np
import pytest
import torch

import tinyeffnet.cuda as tc
from tinyeffnet import backend, ops
from tinyeffnet.nn import Parameter
from tinyeffnet.ops import OP_NAMES, reference
from tinyeffnet.testing import compare, gradcheck, torch_parity

TIERS = pytest.mark.parametrize("tier", [ops, reference], ids=["numba", "numpy"])
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64])
TOLERANCE = {np.float32: dict(atol=1e-5, rtol=1e-4), np.float64: dict(atol=1e-10, rtol=1e-10)}
# a tier may add trailing tuning knobs with defaults (the CUDA reductions' chunk size); nothing else
TUNING_KNOBS = {"rows_per_chunk"}


def _cuda_op(name):
    return getattr(tc, name)  # loads the kernel module (numba-cuda is installed for the tests)


def _parameters(fn):
    return list(inspect.signature(fn).parameters.values())


# ------------------------------------------------------------------------------------ the op sets
def test_op_names_are_unique_and_exported_by_every_tier():
    assert len(set(OP_NAMES)) == len(OP_NAMES)
    assert set(ops.__all__) - {"OP_NAMES"} == set(OP_NAMES)
    assert set(reference.__all__) == set(OP_NAMES)
    assert set(tc.OPS) == set(OP_NAMES)
    assert not set(tc.DEVICE_HELPERS) & set(OP_NAMES)  # cuda's extras are helpers, listed apart


def _public_functions(module):
    return {name for name, value in vars(module).items()
            if not name.startswith("_") and inspect.isfunction(value) and name.endswith(("_forward", "_backward"))}


def test_no_tier_has_an_op_pair_outside_the_set():
    for module in (ops, reference):
        assert _public_functions(module) <= set(OP_NAMES), module.__name__


@pytest.mark.parametrize("name", OP_NAMES)
def test_every_tier_has_the_op_with_the_same_parameter_names(name):
    cpu = _parameters(getattr(ops, name))
    for label, fn in (("reference", getattr(reference, name)), ("cuda", _cuda_op(name))):
        assert callable(fn), f"{label}.{name}"
        theirs = _parameters(fn)
        assert [p.name for p in theirs[:len(cpu)]] == [p.name for p in cpu], f"{label}.{name}"
        for p in theirs[len(cpu):]:
            assert p.name in TUNING_KNOBS and p.default is not inspect.Parameter.empty, f"{label}.{name}: {p}"
        for ours, other in zip(cpu, theirs):
            assert (ours.default is inspect.Parameter.empty) == (other.default is inspect.Parameter.empty), name
            if ours.default is not inspect.Parameter.empty:
                assert ours.default == other.default, f"{label}.{name}: default of {ours.name}"


def test_backend_only_picks_the_tier_and_moves_arrays():
    public = {n for n in vars(backend) if not n.startswith("_") and inspect.isfunction(getattr(backend, n))}
    assert public == {"ops_for", "to_device", "to_host", "mover"}
    assert backend.ops_for(np.zeros(1)) is ops


# ------------------------------------------------------------------------------------ channel gate
def _gate_inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    gate = rng.uniform(0.1, 0.9, (shape[0], shape[3])).astype(dtype)
    return x, gate


def _torch_gate(x, gate):
    return x * gate[:, None, None, :]  # the same NHWC layout as ours: no permute needed


@TIERS
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (3, 2, 5, 1)])
def test_channel_gate_gradcheck(tier, shape):
    report = gradcheck(tier.channel_gate_forward, tier.channel_gate_backward, list(_gate_inputs(shape, np.float64)),
                       names=["x", "gate"], samples=None)
    assert report.ok, report


@TIERS
@DTYPES
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 7, 6, 3), (4, 1, 1, 8)])
def test_channel_gate_matches_torch(tier, dtype, shape):
    report = torch_parity(tier.channel_gate_forward, tier.channel_gate_backward, _torch_gate,
                          list(_gate_inputs(shape, dtype)), names=["x", "gate"])
    assert report.ok, report


@DTYPES
def test_channel_gate_cpu_matches_reference(dtype):
    x, gate = _gate_inputs((3, 5, 4, 6), dtype, seed=1)
    dy = np.random.default_rng(2).standard_normal(x.shape).astype(dtype)
    results = {}
    for label, tier in (("numba", ops), ("numpy", reference)):
        y, cache = tier.channel_gate_forward(x, gate)
        results[label] = (y, *tier.channel_gate_backward(dy, cache))
    for name, ours, theirs in zip(["y", "dx", "dgate"], results["numba"], results["numpy"]):
        assert ours.dtype == dtype and ours.shape == theirs.shape
        row = compare(name, ours, theirs, **TOLERANCE[dtype])
        assert row.ok, row.detail


@TIERS
def test_channel_gate_bad_input(tier):
    x, gate = _gate_inputs((2, 3, 3, 4), np.float32)
    with pytest.raises(ValueError, match="channel_gate_forward: gate must have shape"):
        tier.channel_gate_forward(x, gate[:, :3])
    with pytest.raises(TypeError, match="mixed dtypes"):
        tier.channel_gate_forward(x, gate.astype(np.float64))
    with pytest.raises(ValueError, match="x must be 4-D"):
        tier.channel_gate_forward(x[0], gate)
    with pytest.raises(TypeError, match="channel_gate_backward: cache must be the tuple"):
        tier.channel_gate_backward(x, None)
    _, cache = tier.channel_gate_forward(x, gate)
    with pytest.raises(ValueError, match="dy must have shape"):
        tier.channel_gate_backward(x[:1], cache)


# --------------------------------------------------------------------- add, fill, axpy, copy, zeros
@TIERS
@DTYPES
def test_add_fill_axpy_copy_zeros(tier, dtype):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4)).astype(dtype), rng.standard_normal((2, 3, 4)).astype(dtype)
    out = tier.add(a, b)
    assert out.dtype == dtype and np.array_equal(out, a + b)
    for alpha in (1, 0.5):
        y = b.copy()
        tier.axpy(alpha, a, y)
        assert y.dtype == dtype
        assert compare("axpy", y, b + dtype(alpha) * a, **TOLERANCE[dtype]).ok
    c = tier.copy(a)
    assert c is not a and np.array_equal(c, a) and c.dtype == dtype
    tier.fill(c, 2.5)
    assert np.array_equal(c, np.full(a.shape, 2.5, dtype))
    z = tier.zeros((3, 2), dtype)
    assert z.dtype == dtype and z.shape == (3, 2) and not z.any()



@DTYPES
@pytest.mark.parametrize("shape", [(2, 3, 4), (4, 16, 16, 40)])      # below and above PARALLEL_MIN_SIZE
def test_cpu_add_and_gate_match_the_reference_on_both_sides_of_the_size_threshold(dtype, shape):
    from tinyeffnet.ops import elementwise

    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    assert (a.size >= elementwise.PARALLEL_MIN_SIZE) == (len(shape) == 4)
    assert np.array_equal(ops.add(a, b), reference.add(a, b))                  # one rounding either way
    assert np.array_equal(ops.add(a[..., ::-1], b), reference.add(a[..., ::-1], b))   # a strided view
    if len(shape) == 4:
        gate = rng.uniform(0.1, 0.9, (shape[0], shape[3])).astype(dtype)
        y, cache = ops.channel_gate_forward(a, gate)
        assert np.array_equal(y, reference.channel_gate_forward(a, gate)[0])
        dx, dgate = ops.channel_gate_backward(b, cache)
        ref_dx, ref_dgate = reference.channel_gate_backward(b, reference.channel_gate_forward(a, gate)[1])
        assert np.array_equal(dx, ref_dx)
        assert compare("dgate", dgate, ref_dgate, **TOLERANCE[dtype]).ok

@TIERS
def test_elementwise_bad_input(tier):
    a = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="add: mixed dtypes"):
        tier.add(a, a.astype(np.float64))
    with pytest.raises(ValueError, match="add: b must have shape"):
        tier.add(a, a[:1])  # no broadcasting
    with pytest.raises(TypeError, match="axpy: mixed dtypes"):
        tier.axpy(1, a.astype(np.float64), a.copy())
    with pytest.raises(ValueError, match="axpy: y must be a writeable"):
        tier.axpy(1, a, a.T)
    frozen = a.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="fill: a must be a writeable"):
        tier.fill(frozen, 0)
    with pytest.raises(TypeError, match="fill: value must be a number"):
        tier.fill(a.copy(), "0")
    with pytest.raises(TypeError, match="copy: a must be a numpy.ndarray"):
        tier.copy([1.0])
    with pytest.raises(TypeError, match="zeros: dtype must be float32 or float64"):
        tier.zeros((2,), np.int64)


# ---------------------------------------------------------------------------------- gradients
def test_a_gradient_of_the_wrong_dtype_is_refused_not_cast():
    p = Parameter(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="mixed dtypes: a gradient of dtype float64 for a parameter of dtype float32"):
        p.accumulate(np.ones((2, 3), np.float64))
    p.accumulate(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match="mixed dtypes"):
        p.accumulate(np.ones((2, 3), np.float64))  # the second gradient too (it was cast by += before)
    with pytest.raises(ValueError, match="the gradient must have the parameter's shape"):
        p.accumulate(np.ones((3,), np.float32))
    assert np.array_equal(p.grad, np.ones((2, 3), np.float32))


def test_accumulate_copies_the_first_gradient_and_adds_the_next():
    p = Parameter(np.zeros(4, np.float64))
    g = np.arange(4.0)
    p.accumulate(g)
    assert p.grad is not g
    p.accumulate(g)
    assert np.array_equal(p.grad, 2 * g) and np.array_equal(g, np.arange(4.0))
    p.zero_grad()
    assert not p.grad.any()



def test_accumulate_fresh_keeps_the_first_gradient_itself_and_adds_the_next_into_it():
    p = Parameter(np.zeros(4, np.float64))
    first, second = np.arange(4.0), np.ones(4)
    p.accumulate(first, fresh=True)
    assert p.grad is first                               # no copy: the layer handed over a new array
    p.accumulate(second, fresh=True)
    assert p.grad is first and np.array_equal(first, np.arange(4.0) + 1) and np.array_equal(second, np.ones(4))
    p.zero_grad()
    third = np.full(4, 5.0)
    p.accumulate(third, fresh=True)                      # zeros + g: g again, the old array untouched
    assert p.grad is third and np.array_equal(first, np.arange(4.0) + 1)

# ---------------------------------------------------------------------------- fused BN + SiLU
@DTYPES
@pytest.mark.parametrize("training", [True, False])
def test_reference_batchnorm_silu_matches_the_fused_cpu_op(dtype, training):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    gamma, beta = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    results = {}
    for label, tier in (("numba", ops), ("numpy", reference)):
        rm, rv = np.zeros(5, dtype), np.ones(5, dtype)
        y, cache = tier.batchnorm_silu_forward(x, gamma, beta, rm, rv, training)
        results[label] = (y, *tier.batchnorm_silu_backward(dy, cache), rm, rv)
    for name, ours, theirs in zip(["y", "dx", "dgamma", "dbeta", "running_mean", "running_var"],
                                  results["numba"], results["numpy"]):
        row = compare(name, ours, theirs, **TOLERANCE[dtype])
        assert row.ok, row.detail


def test_reference_batchnorm_silu_gradcheck():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 3, 4))
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)

    def forward(x, gamma, beta):
        return reference.batchnorm_silu_forward(x, gamma, beta, np.zeros(4), np.ones(4), True)

    report = gradcheck(forward, reference.batchnorm_silu_backward, [x, gamma, beta], names=["x", "gamma", "beta"])
    assert report.ok, report


def test_torch_is_importable():  # torch missing must fail these tests, never skip them
    assert torch.tensor([1.0]).dtype == torch.float32
