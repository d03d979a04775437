"""Fast paths are chosen once, when a layer is built (docs/DESIGN.md, section 5).

A model built with fast=True (direct convs on thin 3x3 stride-1 layers, Winograd on wider ones,
BatchNormSiLU units) and one built with
fast=False (im2col everywhere, BatchNorm2d + SiLU) from the same seed have the same weights, the same
state_dict keys, and give the same logits, input gradient, parameter gradients and BatchNorm running
statistics. The module tree says what runs, the caches say which algorithm ran, and a backward
before its forward is a clear error.
"""
import numpy as np
import pytest

from tinyeffnet import nn
from tinyeffnet.models import EfficientNetV2, Stage, create_model
from tinyeffnet.ops import conv2d, direct, winograd, winograd_fused
from tinyeffnet.testing import compare, gradcheck

CUSTOM = [  # block, repeats, kernel, stride, expand, in, out, se
    Stage("fused", 2, 3, 1, 1, 8, 8),           # 3x3 stride 1, thin (the direct conv when fast), residual
    Stage("fused", 1, 3, 1, 5, 8, 12),          # 3x3 stride-1 expand conv to 40 channels (Winograd), no residual
    Stage("fused", 1, 3, 2, 2, 12, 16),         # stride 2: im2col either way
    Stage("mbconv", 2, 3, 1, 2, 16, 16, 0.25),  # depthwise, SE
]


def _custom(dtype, fast, padding=None):
    return EfficientNetV2(CUSTOM, num_classes=5, head_channels=24, drop_rate=0.0, drop_path_rate=0.0,
                          padding=padding, dtype=dtype, seed=4, fast=fast)


def _tiny(dtype, fast):
    return create_model("efficientnetv2_tiny", num_classes=10, drop_rate=0.0, drop_path_rate=0.0,
                        dtype=dtype, seed=3, fast=fast)


MODELS = {"tiny": (_tiny, (2, 24, 20, 3)),
          "custom": (_custom, (2, 13, 10, 3)),
          "custom-same": (lambda dtype, fast: _custom(dtype, fast, "same"), (2, 12, 9, 3))}


@pytest.fixture(autouse=True)
def winograd_on_every_map(monkeypatch):
    """These small test models have maps of 3-12 px, where fast layers take im2col
    (winograd.WINOGRAD_MIN_SIZE, 24): lower the size so that their Winograd path is what is tested.
    ``test_the_size_rule_runs_both_algorithms_in_one_model`` tests the real size. Winograd's channel
    rule depends on the CPU (WINOGRAD_MIN_CHANNELS): the AVX2 one, every width, whatever runs the tests;
    ``test_winograd_is_chosen_by_input_channels_for_the_machines_vector_registers`` tests both."""
    monkeypatch.setattr(winograd, "WINOGRAD_MIN_SIZE", 1)
    monkeypatch.setattr(winograd, "vector_registers", lambda: 16)


def _run(model, x, dy_seed=1):
    model.zero_grad()
    y = model(x)
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(y.dtype)
    dx = model.backward(dy)
    grads = {name: p.grad.copy() for name, p in model.named_parameters()}
    return y, dx, grads, model.state_dict()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(MODELS))
def test_fast_and_readable_models_agree(name, dtype):
    build, shape = MODELS[name]
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    fast, readable = build(dtype, True), build(dtype, False)
    assert list(fast.state_dict()) == list(readable.state_dict())
    for key, value in readable.state_dict().items():  # the same seed, the same weights
        np.testing.assert_array_equal(fast.state_dict()[key], value, err_msg=key)
    (y1, dx1, g1, s1), (y0, dx0, g0, s0) = _run(fast, x), _run(readable, x)
    # float64: summation order only; float32: a few ulps through ~20 layers of BN reductions, with
    # atol relative to the magnitude (testing.compare). Gradients are judged against the largest
    # gradient of the model: some (the project BN biases, whose shift the next BN removes) are zero in
    # exact arithmetic and hold round-off only. State (weights, running statistics) against the
    # state's own scale: a running mean of an input centred by the previous BN is ~0 in exact arithmetic.
    atol, rtol = (1e-10, 1e-8) if dtype == np.float64 else (1e-4, 2e-3)
    grad_scale = max(float(np.max(np.abs(g))) for g in g0.values())
    state_scale = max(float(np.max(np.abs(v))) for v in s0.values())
    rows = [compare("logits", y1, y0, atol=atol, rtol=rtol), compare("dx", dx1, dx0, atol=atol, rtol=rtol)]
    rows += [compare(k, g1[k], g0[k], atol=atol, rtol=rtol, scale=grad_scale) for k in g0]
    rows += [compare(k, s1[k], s0[k], atol=atol, rtol=rtol, scale=state_scale) for k in s0]
    bad = [f"{row.name}: {row.error:.2e}" for row in rows if not row.ok]
    assert not bad, bad


def _convs(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("fast", [True, False])
def test_the_caches_say_which_algorithm_ran(fast):
    model = _custom(np.float64, fast)
    model(np.random.default_rng(0).standard_normal((1, 9, 8, 3)))
    ran = [(conv.algorithm, conv._cache.algorithm, type(conv._cache)) for conv in _convs(model)]
    # winograd_or_im2col runs one of the two, by the map's size: the cache says which
    assert all(chosen == cached or (chosen == "winograd_or_im2col" and cached in ("winograd", "im2col"))
               for chosen, cached, _ in ran)
    expected = {"winograd": winograd.WinogradCache, "im2col": conv2d.Im2colCache,
                "winograd_fused": winograd_fused.FusedWinogradCache, "direct": direct.DirectCache}
    assert all(kind is expected[cached] for _, cached, kind in ran)
    algorithms = {chosen for chosen, _, _ in ran}
    assert algorithms == ({"direct", "winograd_or_im2col", "im2col"} if fast else {"im2col"})


def test_the_printed_tree_is_what_runs():
    fast_model, readable_model = _custom(np.float32, True), _custom(np.float32, False)
    fast, readable = repr(fast_model), repr(readable_model)
    assert "(bn): BatchNormSiLU(" in fast and "algorithm=winograd_or_im2col" in fast and "algorithm=direct" in fast
    assert "BatchNormSiLU" not in readable and "winograd" not in readable
    assert "(bn): BatchNorm2d(" in readable and "algorithm=im2col" in readable
    # the only SiLU children of the fast model are the SE blocks' own (2 MBConv blocks)
    assert fast.count("(act): SiLU()") == 2 < readable.count("(act): SiLU()")
    for fast_unit, readable_unit in zip(*[[m for m in model.modules() if isinstance(m, nn.ConvBNAct)]
                                          for model in (fast_model, readable_model)]):
        assert list(fast_unit._modules) == ["conv", "bn"]
        if isinstance(fast_unit.bn, nn.BatchNormSiLU):
            assert list(readable_unit._modules) == ["conv", "bn", "act"] and type(readable_unit.bn) is nn.BatchNorm2d
    # the thin stem (stride 2) is the direct conv when fast, im2col when readable; the head (1x1) im2col in both
    assert "(conv): Conv2d(3, 8, kernel=3, stride=2, padding=1, algorithm=direct)" in fast
    assert "(conv): Conv2d(3, 8, kernel=3, stride=2, padding=1, algorithm=im2col)" in readable
    assert "(conv): Conv2d(16, 24, kernel=1, stride=1, padding=0, algorithm=im2col)" in fast


@pytest.mark.parametrize("channels, kernel, stride, padding, fast, algorithm", [
    (40, 3, 1, None, True, "winograd_or_im2col"), (40, 3, 1, 1, True, "winograd_or_im2col"),
    (40, 3, 1, "same", True, "winograd_or_im2col"),
    (32, 3, 1, None, True, "direct"), (8, 3, 1, "same", True, "direct"), (8, 5, 1, None, True, "direct"),
    (8, 3, 1, 0, True, "direct"), (40, 3, 1, 0, True, "im2col"), (40, 5, 1, None, True, "im2col"),
    (8, 3, 1, None, False, "im2col"), (40, 3, 1, None, False, "im2col"), (8, 3, 2, None, True, "direct"),
    (8, 3, 2, "same", True, "direct"), (40, 3, 2, "same", True, "im2col"), (8, 1, 1, None, True, "im2col"),
    (8, 3, 3, None, True, "im2col"),
])
def test_conv2d_picks_its_op_pair_when_built(channels, kernel, stride, padding, fast, algorithm):
    conv = nn.Conv2d(channels, channels, kernel, stride, padding, fast=fast)
    assert conv.algorithm == algorithm
    assert (conv.forward_op, conv.backward_op) == nn.Conv2d.ALGORITHMS[algorithm]
    assert f"algorithm={algorithm}" in repr(conv)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("make", [
    lambda fast: nn.Conv2d(3, 4, 3, fast=fast),
    lambda fast: nn.ConvBNAct(3, 4, 3, fast=fast),
    lambda fast: nn.ConvBNAct(3, 4, 1, act=False, fast=fast),
    lambda fast: nn.FusedMBConv(3, 3, 3, 1, 1, fast=fast),
    lambda fast: _custom(np.float32, fast),
], ids=["Conv2d", "ConvBNAct", "ConvBN", "FusedMBConv", "model"])
def test_backward_before_forward_is_a_clear_error(make, fast):
    module = make(fast)
    dy = np.zeros((1, 5) if isinstance(module, EfficientNetV2) else (1, 4, 4, module_out(module)), np.float32)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        module.backward(dy)


def module_out(module):
    return {nn.Conv2d: 4, nn.ConvBNAct: 4, nn.FusedMBConv: 3}[type(module)]


def test_fast_must_be_a_bool():
    for build in (lambda: nn.Conv2d(3, 4, 3, fast="yes"), lambda: nn.ConvBNAct(3, 4, 3, fast=1),
                  lambda: create_model("efficientnetv2_tiny", fast=None)):
        with pytest.raises(TypeError, match="fast"):
            build()


def test_a_cache_is_a_plain_attribute_and_parameters_still_register():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self._cache = (1, 2)                              # private state: not registered
            self._weight = nn.Parameter(np.zeros(2))           # a Parameter registers under any name
            self._child = nn.SiLU()

    holder = Holder()
    assert list(holder._parameters) == ["_weight"] and list(holder._modules) == ["_child"]
    holder._child = None                                      # replacing a registered child unregisters it
    assert not holder._modules and holder._cache == (1, 2)


@pytest.mark.parametrize("registers, built", [(32, {48: "im2col", 64: "im2col", 96: "winograd_or_im2col",
                                                     128: "winograd_or_im2col"}),
                                               (16, {40: "winograd_or_im2col", 48: "winograd_or_im2col"})],
                         ids=["avx512", "avx2"])
def test_winograd_is_chosen_by_input_channels_for_the_machines_vector_registers(monkeypatch, registers, built):
    # With AVX-512 OpenBLAS's GEMM is fast enough that Winograd's 16 thin GEMMs lose below 96 input
    # channels (winograd.WINOGRAD_MIN_CHANNELS); with AVX2 it keeps every width.
    monkeypatch.setattr(winograd, "vector_registers", lambda: registers)
    for cin, algorithm in built.items():
        assert nn.Conv2d(cin, 4 * cin, 3).algorithm == algorithm, cin
        assert nn.Conv2d(cin, 4 * cin, 3, fast=False).algorithm == "im2col"
    s_model = create_model("efficientnetv2_s", num_classes=10)
    winograd_layers = [c for c in _convs(s_model) if c.algorithm == "winograd_or_im2col"]
    assert (len(winograd_layers) == 0) is (registers == 32)      # S's 3x3 convs have 24-64 input channels


def test_the_size_rule_runs_both_algorithms_in_one_model(monkeypatch):
    # At 48 px this model has 3x3 stride-1 maps of 24 px (stage 1: Winograd) and 12 and 6 px
    # (stages 2 and 3: im2col), with the real WINOGRAD_MIN_SIZE; 40 channels, too wide for the direct conv.
    monkeypatch.setattr(winograd, "WINOGRAD_MIN_SIZE", 24)
    stages = [Stage("fused", 1, 3, 1, 1, 40, 40), Stage("fused", 2, 3, 2, 2, 40, 40), Stage("fused", 2, 3, 2, 2, 40, 40)]

    def build(fast):
        return EfficientNetV2(stages, num_classes=4, head_channels=32, drop_rate=0.0, drop_path_rate=0.0,
                              dtype=np.float64, seed=2, fast=fast)

    x = np.random.default_rng(0).standard_normal((1, 48, 48, 3))
    fast, readable = build(True), build(False)
    fast(x)                                                # a forward, to read its caches
    ran = {(conv._cache.algorithm, conv._cache.x.shape[1]) for conv in _convs(fast)
           if conv.algorithm == "winograd_or_im2col"}
    (y1, dx1, g1, _), (y0, dx0, g0, _) = _run(fast, x), _run(readable, x)
    assert {size for algorithm, size in ran if algorithm == "winograd"} == {24}
    assert {size for algorithm, size in ran if algorithm == "im2col"} == {12, 6}
    rows = [compare("logits", y1, y0, atol=1e-10, rtol=1e-8), compare("dx", dx1, dx0, atol=1e-10, rtol=1e-8)]
    grad_scale = max(float(np.max(np.abs(g))) for g in g0.values())
    rows += [compare(k, g1[k], g0[k], atol=1e-10, rtol=1e-8, scale=grad_scale) for k in g0]
    bad = [f"{row.name}: {row.error:.2e}" for row in rows if not row.ok]
    assert not bad, bad


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "readable"])
@pytest.mark.parametrize("name", list(MODELS))
def test_a_backward_without_the_input_gradient_fills_the_same_parameter_gradients(name, fast):
    # What training runs (the images need no gradient): the stem's conv computes dw alone.
    make, shape = MODELS[name]
    model = make(np.float64, fast)
    x = np.random.default_rng(0).standard_normal(shape)
    _, dx, grads, _ = _run(model, x)
    model.zero_grad()
    y = model(x)
    assert model.backward(np.random.default_rng(1).standard_normal(y.shape), input_gradient=False) is None
    assert dx.shape == x.shape
    for key, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad, grads[key], err_msg=key)


@pytest.mark.parametrize("algorithm, stride", [("im2col", 2), ("direct", 2), ("direct", 1), ("winograd", 1),
                                               ("winograd_fused", 1)])
def test_conv2d_backward_without_the_input_gradient_adds_the_same_dw(algorithm, stride):
    rng = np.random.default_rng(5)
    conv = nn.Conv2d(3, 8, 3, stride, rng=rng, dtype=np.float64, algorithm=algorithm)
    x = rng.standard_normal((2, 9, 8, 3))
    dy = rng.standard_normal(conv(x).shape)
    dx = conv.backward(dy)
    full = conv.weight.grad.copy()
    conv.zero_grad()
    conv(x)
    assert conv.backward(dy, input_gradient=False) is None and dx.shape == x.shape
    np.testing.assert_array_equal(conv.weight.grad, full)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        conv.backward(dy, input_gradient=False)          # the cache is used up either way


@pytest.mark.parametrize("depthwise", [False, True])
def test_conv_bn_act_backward_without_the_input_gradient(depthwise):
    rng = np.random.default_rng(6)
    unit = nn.ConvBNAct(4, 4, 3, 2, depthwise=depthwise, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 7, 7, 4))
    dy = rng.standard_normal(unit(x).shape)
    unit.backward(dy)
    full = {k: p.grad.copy() for k, p in unit.named_parameters()}
    unit.zero_grad()
    unit(x)
    assert unit.backward(dy, input_gradient=False) is None
    for key, p in unit.named_parameters():
        np.testing.assert_array_equal(p.grad, full[key], err_msg=key)


# ------------------------------------------------------------------ Squeeze-Excite's fused backward
def _squeeze_excite_pair(dtype):
    return [nn.SqueezeExcite(24, 6, rng=np.random.default_rng(7), dtype=dtype, fast=fast) for fast in (True, False)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_squeeze_excite_backward_matches_the_three_readable_ops(dtype):
    fused, readable = _squeeze_excite_pair(dtype)
    x = np.random.default_rng(8).standard_normal((3, 5, 7, 24)).astype(dtype)
    dy = np.random.default_rng(9).standard_normal(x.shape).astype(dtype)
    results = []
    for se in (fused, readable):
        se.zero_grad()
        y = se(x)
        results.append((y, se.backward(dy), {name: p.grad.copy() for name, p in se.named_parameters()}))
    (y_f, dx_f, g_f), (y_r, dx_r, g_r) = results
    tol = dict(atol=1e-12, rtol=1e-12) if dtype == np.float64 else dict(atol=1e-6, rtol=1e-5)
    assert np.array_equal(y_f, y_r)                      # the forward is shared
    assert compare("dx", dx_f, dx_r, **tol).ok
    for name in g_r:
        assert compare(name, g_f[name], g_r[name], **tol).ok, name


def test_fused_squeeze_excite_backward_passes_a_gradient_check():
    se = nn.SqueezeExcite(6, 2, rng=np.random.default_rng(1), dtype=np.float64)
    assert se.fast
    forward, backward, names, values = nn.module_as_op(se)
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 6))
    report = gradcheck(forward, backward, [x] + values, names=names, samples=None)
    assert report.ok, report


def test_squeeze_excite_says_which_backward_runs_and_keeps_one_cache_per_forward():
    fused, readable = _squeeze_excite_pair(np.float32)
    assert "backward=fused" in repr(fused) and "backward" not in repr(readable)
    x = np.ones((1, 2, 2, 24), np.float32)
    fused.backward(fused(x))
    assert fused.pool._cache is None                      # the pool's cache was used up, as its backward would
    with pytest.raises(RuntimeError, match="without a forward"):
        fused.backward(x)
    with pytest.raises(TypeError, match="SqueezeExcite: fast must be True or False"):
        nn.SqueezeExcite(4, 1, fast="yes")
