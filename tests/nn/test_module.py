"""Module API: registration, state_dict, modes, gradients accumulation, dtype, device, rng, init."""
import numpy as np
import pytest
import torch  # noqa: F401  (the test environment must have torch; see common test rules)

import tinyeffnet.nn as nn
from tinyeffnet.nn import Parameter


class TwoConvs(nn.Module):
    def __init__(self, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng(0)
        self.first = nn.ConvBNAct(3, 4, 3, rng=rng, dtype=dtype)
        self.second = nn.ConvBNAct(4, 5, 1, act=False, rng=rng, dtype=dtype)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.second(self.first(x)))

    def backward(self, dy):
        return self.first.backward(self.second.backward(self.drop.backward(dy)))


def _x(shape=(2, 6, 5, 3), dtype=np.float32, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_registration_order_and_names():
    model = TwoConvs()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["first.conv.weight", "first.bn.weight", "first.bn.bias",
                     "second.conv.weight", "second.bn.weight", "second.bn.bias"]
    buffers = [name for name, _ in model.named_buffers()]
    assert buffers == ["first.bn.running_mean", "first.bn.running_var", "first.bn.num_batches_tracked",
                       "second.bn.running_mean", "second.bn.running_var", "second.bn.num_batches_tracked"]
    # torch order: per module its parameters, then its buffers, then its children
    assert list(model.state_dict())[:6] == ["first.conv.weight", "first.bn.weight", "first.bn.bias",
                                            "first.bn.running_mean", "first.bn.running_var",
                                            "first.bn.num_batches_tracked"]
    assert model.num_parameters() == 3 * 3 * 3 * 4 + 8 + 4 * 5 + 10


def test_reassigning_replaces_registration():
    model = TwoConvs()
    model.second = None
    assert not any(name.startswith("second.") for name, _ in model.named_parameters())


def test_missing_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = Parameter(np.zeros(2, np.float32))

    with pytest.raises(RuntimeError, match="must call super"):
        Broken()


def test_state_dict_round_trip_and_copies():
    a, b = TwoConvs(), TwoConvs()
    for p in b.parameters():
        p.data[...] = 7
    state = a.state_dict()
    state["first.conv.weight"][...] = 0  # a copy: the model is not changed
    assert not np.all(a.first.conv.weight.data == 0)
    b.load_state_dict(a.state_dict())
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and np.array_equal(va, vb)


def test_load_state_dict_lists_every_problem_by_name():
    model = TwoConvs()
    state = model.state_dict()
    del state["first.bn.bias"]
    state["extra.weight"] = np.zeros(3, np.float32)
    state["second.conv.weight"] = np.zeros((1, 1, 4, 6), np.float32)
    before = model.state_dict()
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing keys (1): first.bn.bias" in message
    assert "unexpected keys (1): extra.weight" in message
    assert "second.conv.weight: expected (1, 1, 4, 5), got (1, 1, 4, 6)" in message
    for key, value in model.state_dict().items():  # nothing was loaded
        assert np.array_equal(value, before[key])


def test_load_state_dict_converts_dtype():
    model = TwoConvs()
    state = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert model.first.conv.weight.data.dtype == np.float32


def test_train_eval_propagate():
    model = TwoConvs()
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_backward_accumulates_and_zero_grad_resets():
    model = TwoConvs()
    model.drop.p = 0.0
    x = _x()
    dy = _x(model(x).shape, seed=2)
    model.backward(dy)
    once = [p.grad.copy() for p in model.parameters()]
    model(x)
    model.backward(dy)
    for p, g in zip(model.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-6, atol=1e-6 * max(1.0, np.abs(g).max()))
    model.zero_grad()
    assert all(np.all(p.grad == 0) for p in model.parameters())


def test_zero_grad_is_lazy_but_reads_as_zeros_and_the_next_backward_starts_from_zero():
    from tinyeffnet.nn.parameter import Parameter

    p = Parameter(np.ones((2, 3), np.float32))
    p.zero_grad()                                        # never had a gradient: reads as zeros
    assert p.grad.dtype == np.float32 and np.array_equal(p.grad, np.zeros((2, 3)))
    g = np.full((2, 3), 2.0, np.float32)
    p.accumulate(g)
    p.accumulate(g)
    np.testing.assert_array_equal(p.grad, 4.0)
    p.zero_grad()
    p.accumulate(g)                                      # zeros + g, not 4 + g
    np.testing.assert_array_equal(p.grad, 2.0)
    g[...] = 7.0                                         # the gradient is a copy, not the op's array
    np.testing.assert_array_equal(p.grad, 2.0)
    p.zero_grad()
    held = p.grad                                        # read after zero_grad: zeros, in place
    assert np.array_equal(held, np.zeros((2, 3)))
    p.accumulate(np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(held, 1.0)             # adds into the array that was read
    p.grad = None
    assert p.grad is None


def test_backward_without_forward_raises():
    layer = nn.Conv2d(3, 4, 3)
    with pytest.raises(RuntimeError, match="without a forward"):
        layer.backward(np.zeros((1, 4, 4, 4), np.float32))
    layer(_x((1, 4, 4, 3)))
    layer.backward(np.zeros((1, 4, 4, 4), np.float32))
    with pytest.raises(RuntimeError, match="without a forward"):  # the cache serves one backward
        layer.backward(np.zeros((1, 4, 4, 4), np.float32))


def test_num_batches_tracked_counts_training_forwards_only():
    model = TwoConvs()
    model(_x())
    model(_x())
    model.eval()
    model(_x())
    assert model.first.bn.num_batches_tracked == 2
    assert model.first.bn.num_batches_tracked.dtype == np.int64
    assert "first.bn.num_batches_tracked" in model.state_dict()


def test_astype_float64_and_back():
    model = TwoConvs().double()
    assert model.dtype == np.float64
    assert all(v.dtype == np.float64 for k, v in model.state_dict().items() if "num_batches" not in k)
    assert model.first.bn.num_batches_tracked.dtype == np.int64
    y = model(_x(dtype=np.float64))
    assert y.dtype == np.float64
    model.float()
    assert model(_x()).dtype == np.float32
    with pytest.raises(TypeError, match="float32 or float64"):
        model.astype(np.float16)


def test_to_cpu_is_identity_and_cuda_is_a_clear_error():
    model = TwoConvs()
    assert model.to("cpu") is model
    with pytest.raises(RuntimeError, match=r'pip install "tinyeffnet\[cuda\]"'):
        model.to("cuda")
    with pytest.raises(ValueError, match="device must be"):
        model.to("tpu")


def test_set_rng_makes_dropout_reproducible():
    model = TwoConvs()
    x = _x()
    model.set_rng(np.random.default_rng(5))
    first = model(x)
    model.set_rng(np.random.default_rng(5))
    assert np.array_equal(model(x), first)
    assert model.drop.rng is not None
    assert np.any(first == 0)  # p = 0.5: some entries dropped
    with pytest.raises(TypeError, match="Generator"):
        model.set_rng(5)


def test_decay_flags():
    model = nn.Sequential(nn.ConvBNAct(3, 4, 3), nn.GlobalAvgPool(), nn.Linear(4, 2))
    flags = {name: p.decay for name, p in model.named_parameters()}
    assert flags == {"0.conv.weight": True, "0.bn.weight": False, "0.bn.bias": False,
                     "2.weight": True, "2.bias": False}


def test_init_statistics_match_torchvision_rules():
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(64, 128, 3, rng=rng)
    np.testing.assert_allclose(conv.weight.data.std(), np.sqrt(2 / (128 * 9)), rtol=0.02)
    dw = nn.DepthwiseConv2d(256, 3, rng=rng)
    np.testing.assert_allclose(dw.weight.data.std(), np.sqrt(2 / (256 * 9)), rtol=0.05)
    fc = nn.Linear(512, 100, rng=rng)
    assert np.abs(fc.weight.data).max() <= 1 / np.sqrt(100)
    np.testing.assert_allclose(fc.weight.data.std(), 1 / np.sqrt(100) / np.sqrt(3), rtol=0.03)
    assert np.all(fc.bias.data == 0)
    se_fc = nn.Linear(512, 100, init="conv1x1", rng=rng)
    np.testing.assert_allclose(se_fc.weight.data.std(), np.sqrt(2 / 100), rtol=0.03)
    # same seed, same weights
    a = nn.Conv2d(3, 4, 3, rng=np.random.default_rng(1))
    b = nn.Conv2d(3, 4, 3, rng=np.random.default_rng(1))
    assert np.array_equal(a.weight.data, b.weight.data)


def test_sequential_runs_in_order_and_back_in_reverse():
    seq = nn.Sequential(nn.Conv2d(3, 4, 3, rng=np.random.default_rng(0)), nn.SiLU())
    x = _x()
    y = seq(x)
    conv_only = seq[0](x)
    expected = conv_only / (1 + np.exp(-conv_only))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())  # scaled: float32 ulps
    seq(x)
    assert seq.backward(np.ones_like(y)).shape == x.shape
    assert len(seq) == 2 and isinstance(list(seq)[1], nn.SiLU)


def test_repr_shows_tree():
    text = repr(TwoConvs())
    assert "(first): ConvBNAct(" in text and "Conv2d(3, 4, kernel=3" in text


def test_parameter_rejects_non_float():
    with pytest.raises(TypeError, match="float32 or float64"):
        Parameter(np.zeros(3, dtype=np.int32))
