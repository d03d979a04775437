"""A whole (tiny) EfficientNetV2 on the device against the same model on the CPU, in the CUDA simulator.

Run: ``NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda/sim`` (see conftest.py for why a separate
process). The model is the real ``EfficientNetV2`` class with a tiny stage table, so every kind of
layer runs: stem ConvBNAct (3x3 s2), Fused-MBConv with expand 1 (residual, drop path), Fused-MBConv
with expand 2 (stride 2, no residual), MBConv with expand 2, depthwise 3x3 and Squeeze-Excite
(residual, drop path), head 1x1, global pool, dropout, classifier. Input (2, 8, 8, 3): the largest
launch is a few hundred threads (the simulator runs about 1,000 per second).

The CPU model and a deep copy of it moved with ``.to("cuda")`` get the same weights and the same
numpy Generator (the dropout / drop-path coins are drawn on the host, so the masks are equal). One
training step runs on both: on the device through ``tinyeffnet.train.update_step`` (forward, loss,
backward, ``tinyeffnet.cuda.SGD``), on the CPU written out by hand with ``tinyeffnet.optim.SGD``.
Then Algorithm 1's whole step, ``tinyeffnet.train.train_step`` (flip, mixup, soft-target loss), runs on
both devices from the same generator: the same function, only the model's device differs. Compared: loss,
logits, every parameter gradient, every BatchNorm running statistic, every updated parameter and
momentum buffer, then an eval-mode forward with the updated weights.

Tolerances: float64 atol = rtol = 1e-10 (only the summation order differs; the deepest chain here is
~20 ops, far below the ~1e-13 that would accumulate); float32 atol 1e-5 of the largest value, rtol 1e-4 (the op tests'
float32 tolerance; every value here is an O(1) quantity behind a BatchNorm, so a single op's float32
rounding does not grow through the chain).
"""
import copy

import numpy as np
import pytest

import tinyeffnet.cuda as tc
from tinyeffnet import ops
from tinyeffnet.models.config import Stage
from tinyeffnet.models.efficientnetv2 import EfficientNetV2
from tinyeffnet.nn import BatchNorm2d
from tinyeffnet.optim import SGD as HostSGD
from tinyeffnet.testing import compare
from tinyeffnet.train import StageSettings, train_step, update_step

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(atol=1e-5, rtol=1e-4), np.float64: dict(atol=1e-10, rtol=1e-10)}
STAGES = [  # block, repeats, kernel, stride, expand, in, out, se
    Stage("fused", 2, 3, 1, 1, 4, 4),           # residual, expand 1: conv -> BN -> SiLU (+ drop path)
    Stage("fused", 1, 3, 2, 2, 4, 8),           # stride 2: expand 3x3 + project 1x1, no residual
    Stage("mbconv", 1, 3, 1, 2, 8, 8, 0.25),    # expand 1x1, depthwise 3x3, SE (squeeze 2), residual
]
COIN_SEED = 5  # drops one of the 2 samples in the last block's drop path, in float32 and in float64
SGD_OPTIONS = dict(lr=0.1, momentum=0.9, weight_decay=0.01)
LABELS = np.array([1, 3])
SMOOTHING = 0.1


def tiny_model(dtype):
    """The tiny network, training mode, drop rates high enough that coins drop, BN not at its init."""
    model = EfficientNetV2(STAGES, num_classes=5, head_channels=16, drop_rate=0.5, drop_path_rate=0.6,
                           dtype=dtype, seed=3)
    rng = np.random.default_rng(11)
    for module in model.modules():
        if isinstance(module, BatchNorm2d):  # gamma, beta, running statistics away from 1, 0, 0, 1
            c = module.channels
            module.weight.data[...] = rng.uniform(0.5, 1.5, c)
            module.bias.data[...] = rng.uniform(-0.2, 0.2, c)
            module.running_mean[...] = rng.uniform(-0.2, 0.2, c)
            module.running_var[...] = rng.uniform(0.5, 1.5, c)
    return model


def _images(dtype):
    return np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(dtype)  # (N, H, W, 3)


def _assert_close(name, ours, reference, dtype, scale=None):
    ours = ours if isinstance(ours, np.ndarray) else tc.to_host(ours)
    row = compare(name, ours, np.asarray(reference), **TOLERANCE[dtype], scale=scale)
    assert row.ok, f"{name}: error {row.error:.3g}\n{row.detail}"


def _cpu_step(model, x):
    """The reference step on the CPU: zero grads, forward, loss, backward, SGD."""
    optimizer = HostSGD(model.parameters(), **SGD_OPTIONS)
    optimizer.zero_grad()
    logits = model(x)
    loss, dlogits = ops.softmax_cross_entropy(logits, LABELS, SMOOTHING)
    model.backward(dlogits)
    optimizer.step()
    return loss, logits, optimizer


@pytest.fixture(scope="module", params=DTYPES, ids=["float32", "float64"])
def step(request):
    """One training step on the CPU and on the device from the same weights and the same coins."""
    dtype = request.param
    cpu = tiny_model(dtype)
    gpu = copy.deepcopy(cpu).to("cuda")
    cpu.set_rng(np.random.default_rng(COIN_SEED))
    gpu.set_rng(np.random.default_rng(COIN_SEED))
    x = _images(dtype)
    loss_cpu, logits_cpu, opt_cpu = _cpu_step(cpu, x)
    opt_gpu = tc.SGD(gpu.parameters(), **SGD_OPTIONS)
    loss_gpu, logits_gpu = update_step(gpu, opt_gpu, tc.to_device(x), LABELS, SMOOTHING, check_finite=False)
    return dict(dtype=dtype, cpu=cpu, gpu=gpu, x=x, opt_cpu=opt_cpu, opt_gpu=opt_gpu,
                loss=(loss_gpu, loss_cpu), logits=(logits_gpu, logits_cpu))


def test_the_step_drew_dropped_coins(step):
    """The comparisons below test the drop kernels only if some coins dropped: redraw them in forward
    order (block 1 drop path p = 0.15, block 3 drop path p = 0.45, dropout p = 0.5 on (N, 16))."""
    dtype = step["dtype"]
    rates = [m.p for m in step["cpu"].modules() if m.stochastic and m.p > 0]
    assert rates == pytest.approx([0.15, 0.45, 0.5])
    rng = np.random.default_rng(COIN_SEED)
    keep = [rng.random(shape, dtype=dtype) >= p for shape, p in zip([(2, 1, 1, 1), (2, 1, 1, 1), (2, 16)], rates)]
    assert keep[1].sum() == 1  # one sample's residual branch dropped, the other kept
    assert 0 < keep[2].sum() < keep[2].size


def test_model_moved_to_device_holds_device_arrays(step):
    gpu = step["gpu"]
    assert all(not isinstance(p.data, np.ndarray) for p in gpu.parameters())
    assert all(not isinstance(p.grad, np.ndarray) for p in gpu.parameters())
    bn = gpu.stem.bn
    assert not isinstance(bn.running_mean, np.ndarray) and not isinstance(bn.running_var, np.ndarray)
    assert isinstance(bn.num_batches_tracked, np.ndarray)  # a host counter
    assert int(bn.num_batches_tracked) == int(step["cpu"].stem.bn.num_batches_tracked) == 1


def test_training_forward_loss_and_logits_match_cpu(step):
    dtype = step["dtype"]
    logits_gpu, logits_cpu = step["logits"]
    assert logits_gpu.shape == (2, 5) and logits_gpu.dtype == dtype
    _assert_close("logits", logits_gpu, logits_cpu, dtype)
    loss_gpu, loss_cpu = step["loss"]
    _assert_close("loss", tc.to_host(loss_gpu), np.asarray(loss_cpu, dtype=dtype), dtype)


def test_every_parameter_gradient_matches_cpu(step):
    gpu_params = dict(step["gpu"].named_parameters())
    names = [name for name, _ in step["cpu"].named_parameters()]
    assert len(names) == len(gpu_params) == 33  # 9 BatchNorms x 2, 7 convs, 2 SE linears x 2, classifier x 2
    # Judged against the largest gradient of the model (testing.compare): the project BN biases
    # before a residual are zero in exact arithmetic and hold round-off only.
    grad_scale = max(float(np.max(np.abs(p.grad))) for p in step["cpu"].parameters())
    for name, param in step["cpu"].named_parameters():
        _assert_close(f"grad {name}", gpu_params[name].grad, param.grad, step["dtype"], scale=grad_scale)


def test_batchnorm_running_statistics_match_cpu(step):
    gpu_buffers = dict(step["gpu"].named_buffers())
    checked = 0
    for name, value in step["cpu"].named_buffers():
        if value.dtype.kind == "f":
            _assert_close(name, gpu_buffers[name], value, step["dtype"])
            checked += 1
    assert checked == 2 * 9  # running_mean and running_var of the 9 BatchNorms


def test_sgd_step_on_device_matches_cpu_sgd(step):
    """train_step's update (first step: momentum buffer = d) and a second step (buffer = 0.9 buf + d)."""
    dtype = step["dtype"]
    step["opt_cpu"].step()  # the same gradients again: the momentum path of the kernel
    step["opt_gpu"].step()
    gpu_params = dict(step["gpu"].named_parameters())
    for name, param in step["cpu"].named_parameters():
        _assert_close(f"param {name}", gpu_params[name].data, param.data, dtype)
    state_gpu, state_cpu = step["opt_gpu"].state_dict(), step["opt_cpu"].state_dict()
    assert state_gpu.keys() == state_cpu.keys()
    # momentum buffers are gradient sums: judged against the largest of them, as the gradients are
    buffer_scale = max(float(np.max(np.abs(v))) for k, v in state_cpu.items() if k.startswith("state."))
    for key, value in state_cpu.items():
        assert isinstance(state_gpu[key], np.ndarray), key  # a host copy, checkpoint-ready
        if key.startswith("state."):
            _assert_close(key, state_gpu[key], value, dtype, scale=buffer_scale)
    restored = tc.SGD(step["gpu"].parameters(), **SGD_OPTIONS)
    restored.load_state_dict(state_cpu)  # a CPU checkpoint resumes on the device
    buffers = [state["momentum_buffer"] for state in restored.state.values()]
    assert len(buffers) == 33 and not any(isinstance(b, np.ndarray) for b in buffers)
    _assert_close("restored buffer", buffers[0], state_cpu["state.0.momentum_buffer"], dtype)


def test_eval_forward_with_updated_weights_matches_cpu(step):
    dtype = step["dtype"]
    cpu, gpu = step["cpu"].eval(), step["gpu"].eval()
    logits_cpu = cpu(step["x"])
    logits_gpu = gpu(tc.to_device(step["x"]))
    _assert_close("eval logits", logits_gpu, logits_cpu, dtype)


def test_to_cuda_then_to_cpu_round_trip_is_exact():
    model = tiny_model(np.float64)
    for param in model.parameters():
        param.grad = np.full_like(param.data, 0.5)
    before = model.state_dict()
    assert model.to("cuda") is model
    assert all(not isinstance(p.data, np.ndarray) for p in model.parameters())
    on_device = model.state_dict()  # host copies, read from the device
    assert model.to("cpu") is model
    after = model.state_dict()
    assert before.keys() == on_device.keys() == after.keys()
    for key in before:
        assert isinstance(after[key], np.ndarray) and after[key].dtype == before[key].dtype, key
        assert np.array_equal(on_device[key], before[key]) and np.array_equal(after[key], before[key]), key
    for param in model.parameters():
        assert isinstance(param.data, np.ndarray) and isinstance(param.grad, np.ndarray)
        assert np.all(param.grad == 0.5)
    assert model.to("cpu") is model  # already on the host: nothing changes


def test_zero_grad_and_accumulate_on_the_device():
    model = tiny_model(np.float32).to("cuda")
    param = model.classifier.bias  # (5,)
    param.grad = None
    param.zero_grad()  # allocates zeros on the device
    g = np.arange(5, dtype=np.float32)
    param.accumulate(tc.to_device(g))
    param.accumulate(tc.to_device(g))
    assert np.array_equal(tc.to_host(param.grad), 2 * g)
    param.zero_grad()  # fills in place
    assert np.array_equal(tc.to_host(param.grad), np.zeros(5, np.float32))
    param.grad = None
    source = tc.to_device(g)
    param.accumulate(source)  # the first gradient is copied, never aliased
    param.accumulate(source)
    assert np.array_equal(tc.to_host(source), g)


def test_host_input_to_a_device_model_is_refused():
    """A numpy batch into a model on the device: the CPU op refuses the device weight (no silent mixing)."""
    model = tiny_model(np.float32).to("cuda")
    with pytest.raises(TypeError, match="w must be a numpy.ndarray"):
        model(_images(np.float32))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_algorithm_train_step_is_the_same_function_on_both_devices(dtype):
    """train_step with mixup (soft targets) on a CPU model and on its device copy, same generator:
    the same loss, the same number correct, the same updated weights."""
    stage = StageSettings(index=0, epochs=(0,), image_size=8, dropout=0.5, randaug=0.0, mixup=0.8)
    cpu = tiny_model(dtype)
    gpu = copy.deepcopy(cpu).to("cuda")
    for model in (cpu, gpu):
        model.set_rng(np.random.default_rng(COIN_SEED))
    images = np.random.default_rng(2).random((2, 8, 8, 3)).astype(np.float32)   # [0, 1], as a dataset gives
    results = {}
    for name, model, sgd in (("cpu", cpu, HostSGD), ("gpu", gpu, tc.SGD)):
        optimizer = sgd(model.parameters(), **SGD_OPTIONS)
        results[name] = train_step(model, optimizer, images, LABELS, stage, np.random.default_rng(9),
                                   label_smoothing=SMOOTHING)
    (loss_gpu, correct_gpu), (loss_cpu, correct_cpu) = results["gpu"], results["cpu"]
    assert compare("loss", np.float64(loss_gpu), np.float64(loss_cpu), **TOLERANCE[dtype]).ok
    assert correct_gpu == correct_cpu
    for (key, p_gpu), (_, p_cpu) in zip(gpu.named_parameters(), cpu.named_parameters()):
        row = compare(key, tc.to_host(p_gpu.data), p_cpu.data, **TOLERANCE[dtype])
        assert row.ok, f"updated {key}: {row.detail}"
