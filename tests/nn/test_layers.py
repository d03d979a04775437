"""Each layer against the same computation in PyTorch (forward, dx and every parameter gradient).

The ops themselves are tested in tests/ops; here we test the wrappers: parameters passed in the
right order and layout, gradients accumulated into the right Parameter, modes (train/eval) and
options (stride, padding) forwarded. Default torch_parity tolerances (float64 1e-10: only summation
order differs; float32 atol 1e-5 (of the largest value: testing.compare scales it) / rtol 1e-4: a few float32 ulps
over the reductions).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tinyeffnet.nn as nn
from tinyeffnet.nn import module_as_op
from tinyeffnet.testing import torch_parity

DTYPES = [np.float64, np.float32]


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


def _x(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _parity(layer, x, torch_forward):
    forward, backward, names, values = module_as_op(layer)
    torch_parity(forward, backward, torch_forward, [x] + values, names=names).assert_ok()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride,padding", [(1, None), (2, None), (2, "same"), (1, 0)])
def test_conv2d(dtype, stride, padding):
    layer = nn.Conv2d(3, 5, 3, stride, padding, rng=np.random.default_rng(0), dtype=dtype)
    x = _x((2, 7, 6, 3), dtype)

    def torch_forward(x, w):
        xt = nchw(x)
        if padding == "same":  # TF rule, stride 2: H 7 -> 4 pads (1, 1); W 6 -> 3 pads (0, 1)
            xt = F.pad(xt, (0, 1, 1, 1)) if stride == 2 else F.pad(xt, (1, 1, 1, 1))
            pad = 0
        else:
            pad = 1 if padding is None else padding
        return nhwc(F.conv2d(xt, w.permute(3, 2, 0, 1), stride=stride, padding=pad))

    _parity(layer, x, torch_forward)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise(dtype, stride):
    layer = nn.DepthwiseConv2d(4, 3, stride, rng=np.random.default_rng(0), dtype=dtype)
    x = _x((2, 7, 6, 4), dtype)
    _parity(layer, x, lambda x, w: nhwc(F.conv2d(nchw(x), w.permute(2, 0, 1)[:, None], stride=stride,
                                                 padding=1, groups=4)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_and_running_stats(dtype, training):
    layer = nn.BatchNorm2d(4, dtype=dtype)
    rng = np.random.default_rng(3)
    layer.weight.data[...] = rng.uniform(0.5, 1.5, 4)
    layer.bias.data[...] = rng.normal(0, 0.5, 4)
    layer.running_mean[...] = rng.normal(0, 0.5, 4)
    layer.running_var[...] = rng.uniform(0.5, 1.5, 4)
    layer.train(training)
    x = _x((2, 5, 3, 4), dtype) * 2 + 1
    mean0, var0 = torch.tensor(layer.running_mean.copy()), torch.tensor(layer.running_var.copy())

    def torch_forward(x, gamma, beta):
        return nhwc(F.batch_norm(nchw(x), mean0.clone(), var0.clone(), gamma, beta, training=training,
                                 momentum=0.1, eps=1e-3))

    _parity(layer, x, torch_forward)
    # running statistics after one forward, like torch's
    layer.running_mean[...], layer.running_var[...] = mean0.numpy(), var0.numpy()
    layer(x)
    mean_t, var_t = mean0.clone(), var0.clone()
    F.batch_norm(torch.from_numpy(x).permute(0, 3, 1, 2), mean_t, var_t, training=training, momentum=0.1, eps=1e-3)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(layer.running_mean, mean_t.numpy(), rtol=tol, atol=tol * np.abs(mean_t.numpy()).max())
    np.testing.assert_allclose(layer.running_var, var_t.numpy(), rtol=tol, atol=tol * np.abs(var_t.numpy()).max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear(dtype, bias):
    layer = nn.Linear(6, 3, bias=bias, rng=np.random.default_rng(0), dtype=dtype)
    if bias:
        layer.bias.data[...] = [0.1, -0.2, 0.3]
        _parity(layer, _x((4, 6), dtype), lambda x, w, b: x @ w + b)
    else:
        _parity(layer, _x((4, 6), dtype), lambda x, w: x @ w)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layer,torch_fn", [(nn.SiLU, F.silu), (nn.Sigmoid, torch.sigmoid),
                                            (nn.GlobalAvgPool, lambda x: x.mean(dim=(1, 2)))])
def test_parameter_free_layers(dtype, layer, torch_fn):
    _parity(layer(), _x((2, 3, 4, 5), dtype) * 3, torch_fn)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_bn_act_unit(dtype):
    unit = nn.ConvBNAct(3, 4, 3, 2, rng=np.random.default_rng(0), dtype=dtype)
    mean0, var0 = torch.zeros(4, dtype=torch.float64 if dtype == np.float64 else torch.float32), None
    var0 = torch.ones_like(mean0)

    def torch_forward(x, w, gamma, beta):
        h = F.conv2d(nchw(x), w.permute(3, 2, 0, 1), stride=2, padding=1)
        return nhwc(F.silu(F.batch_norm(h, mean0.clone(), var0.clone(), gamma, beta, training=True, eps=1e-3)))

    _parity(unit, _x((2, 7, 6, 3), dtype), torch_forward)


def test_depthwise_unit_requires_equal_channels():
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        nn.ConvBNAct(4, 8, 3, depthwise=True)


def test_dropout_train_and_eval():
    layer = nn.Dropout(0.25, rng=np.random.default_rng(0))
    x = np.ones((200, 50), np.float32)
    y = layer(x)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    dy = _x(x.shape, np.float32)
    np.testing.assert_allclose(layer.backward(dy), dy * kept / np.float32(0.75), rtol=1e-6)
    layer.eval()
    assert layer(x) is x and layer.backward(dy) is dy


def test_drop_path_is_per_sample():
    layer = nn.DropPath(0.5, rng=np.random.default_rng(1))
    x = np.ones((64, 3, 2, 4), np.float32)
    y = layer(x)
    per_sample = y.reshape(64, -1)
    assert np.all((per_sample == 0).all(axis=1) | (per_sample == 2).all(axis=1))  # whole samples
    assert 10 < (per_sample[:, 0] == 0).sum() < 54
    dy = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward(dy), y)  # same mask and scale
    layer.eval()
    assert layer(x) is x


# ------------------------------------------------------- the gradients a layer hands to its Parameters
FRESH_LAYERS = {  # every layer with parameters, every conv algorithm, both BatchNorm ops
    **{f"conv2d-{a}": (lambda a=a: nn.Conv2d(8, 8, 3, rng=np.random.default_rng(0), algorithm=a))
       for a in nn.Conv2d.ALGORITHMS},
    "conv2d-1x1": lambda: nn.Conv2d(8, 16, 1, rng=np.random.default_rng(0)),
    "conv2d-stride2": lambda: nn.Conv2d(8, 16, 3, 2, rng=np.random.default_rng(0)),
    "depthwise": lambda: nn.DepthwiseConv2d(8, 3, rng=np.random.default_rng(0)),
    "batchnorm": lambda: nn.BatchNorm2d(8),
    "batchnorm-silu": lambda: nn.BatchNormSiLU(8),
    "linear": lambda: nn.Linear(8, 5, rng=np.random.default_rng(0)),
}


def _layer_input(name):
    return _x((3, 8), np.float32) if name == "linear" else _x((2, 6, 6, 8), np.float32)


FRESH_CASES = [(name, True) for name in sorted(FRESH_LAYERS)] + \
              [(name, False) for name in sorted(FRESH_LAYERS) if name.startswith("conv2d")]  # a Conv2d option


@pytest.mark.parametrize("name,input_gradient", FRESH_CASES)
def test_each_parameter_gradient_is_a_new_array_that_no_op_holds(name, input_gradient):
    """Layers hand their ops' parameter gradients to ``Parameter.accumulate(..., fresh=True)``,
    which keeps them without a copy. That is right only if each is a new array: sharing memory with
    nothing the step touches, and never written again by a later call of the op."""
    layer = FRESH_LAYERS[name]()
    x = _layer_input(name)
    y = layer(x)
    dy = _x(y.shape, np.float32, seed=1)
    dx = layer.backward(dy) if input_gradient else layer.backward(dy, input_gradient=False)
    params = list(layer.parameters())
    grads = [p.grad for p in params]
    kept = [g.copy() for g in grads]
    others = [x, y, dy] + ([] if dx is None else [dx]) + [p.data for p in params]
    for i, g in enumerate(grads):
        assert not any(np.shares_memory(g, a) for a in others + grads[:i] + grads[i + 1:]), name
    layer.zero_grad()                                      # a second step on other data
    y2 = layer(_layer_input(name) * 2)
    dy2 = _x(y2.shape, np.float32, seed=3)
    layer.backward(dy2) if input_gradient else layer.backward(dy2, input_gradient=False)
    for g, before, p in zip(grads, kept, params):
        assert np.array_equal(g, before), f"{name}: a later call wrote into the first step's gradient"
        assert not np.shares_memory(g, p.grad)
