"""SqueezeExcite, MBConv and FusedMBConv: float64 gradient checks, and parity with torchvision's
own MBConv / FusedMBConv / SqueezeExcitation modules (weights copied through tinyeffnet.interop).
"""
from functools import partial

import numpy as np
import pytest
import torch
from torchvision.models.efficientnet import FusedMBConv as TvFused
from torchvision.models.efficientnet import FusedMBConvConfig, MBConvConfig
from torchvision.models.efficientnet import MBConv as TvMBConv
from torchvision.ops.misc import SqueezeExcitation

import tinyeffnet.nn as nn
from tinyeffnet import interop
from tinyeffnet.nn import module_as_op
from tinyeffnet.testing import gradcheck

# Gradient-check threshold. Everything here is smooth (SiLU, sigmoid, BN with batch statistics), so
# in float64 with eps = 1e-6 the centred difference is exact to O(eps^2) ~ 1e-12 relative, plus
# round-off ~1e-16 * |L| / eps ~ 1e-10 / |grad|. Entries whose gradient is tiny (a BN removes most of
# a weight's effect) carry relative errors up to ~1e-7; 1e-6 leaves room for that and still fails
# any wrong term (those give errors of order 1e-2 to 1).
GRADCHECK_TOL = 1e-6
BN_EPS = 1e-3


def _x(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _randomize_bn(module, seed=0):
    """Non-trivial BN parameters and running statistics (identity BN would hide layout bugs)."""
    rng = np.random.default_rng(seed)
    for sub in module.modules():
        if isinstance(sub, nn.BatchNorm2d):
            sub.weight.data[...] = rng.uniform(0.5, 1.5, sub.channels)
            sub.bias.data[...] = rng.normal(0, 0.2, sub.channels)
            sub.running_mean[...] = rng.normal(0, 0.2, sub.channels)
            sub.running_var[...] = rng.uniform(0.5, 1.5, sub.channels)
        if isinstance(sub, nn.Linear) and sub.bias is not None:
            sub.bias.data[...] = rng.normal(0, 0.2, sub.bias.shape)


def _gradcheck_module(module, x, samples=20):
    forward, backward, names, values = module_as_op(module)
    report = gradcheck(forward, backward, [x] + values, names=names, tol=GRADCHECK_TOL, samples=samples)
    assert len(report.rows) == len(values) + 1  # dx and every parameter tensor were checked
    report.assert_ok()


# ------------------------------------------------------------------------- gradient checks (float64)
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_squeeze_excite(training):
    se = nn.SqueezeExcite(8, 2, rng=np.random.default_rng(0), dtype=np.float64)
    _randomize_bn(se)
    se.train(training)
    _gradcheck_module(se, _x((2, 4, 3, 8)))


@pytest.mark.parametrize("stride,out,drop", [(1, 8, 0.0), (1, 8, 0.5), (2, 8, 0.0), (1, 12, 0.0)])
def test_gradcheck_mbconv(stride, out, drop):
    """Residual (stride 1, 8 -> 8; also with drop path active, mask fixed by reseeding), and
    no residual (stride 2; channel change)."""
    block = nn.MBConv(8, out, 3, stride, 4, 0.25, drop, rng=np.random.default_rng(0), dtype=np.float64)
    assert block.use_residual == (stride == 1 and out == 8)
    _randomize_bn(block)
    _gradcheck_module(block, _x((4 if drop else 2, 5, 6, 8)))


@pytest.mark.parametrize("expand,stride,out", [(1, 1, 6), (4, 1, 6), (4, 2, 8), (1, 2, 8)])
def test_gradcheck_fused_mbconv(expand, stride, out):
    block = nn.FusedMBConv(6, out, 3, stride, expand, rng=np.random.default_rng(0), dtype=np.float64)
    _randomize_bn(block)
    _gradcheck_module(block, _x((2, 5, 6, 6)))


def test_gradcheck_mbconv_in_eval_mode():
    """Eval-mode BN (running statistics) takes the other backward formula."""
    block = nn.MBConv(8, 8, 3, 1, 4, 0.25, rng=np.random.default_rng(0), dtype=np.float64)
    _randomize_bn(block)
    block.eval()
    _gradcheck_module(block, _x((2, 5, 5, 8)))


# ------------------------------------------------------------------------- parity with torchvision
def _scale(reference: dict, key: str) -> float:
    """The scale a gradient's error is measured against: the tensor's largest entry, and for a bias
    also its layer's weight gradient. (A BN bias feeding only 1x1 convs and train-mode BNs has an
    analytically zero gradient: a per-channel constant is removed by the next BN. Its computed value
    is the rounding noise of a sum of the same terms as the weight gradient's, so that is its scale.)"""
    scale = float(np.abs(reference[key]).max())
    sibling = key[: -len("bias")] + "weight" if key.endswith("bias") else None
    if sibling in reference:
        scale = max(scale, float(np.abs(reference[sibling]).max()))
    return max(scale, 1e-30)


def _relative_errors(ours: dict, reference: dict) -> dict:
    errors = {}
    for key, ref in reference.items():
        assert ours[key].shape == ref.shape, key
        assert ours[key].dtype == ref.dtype, key
        errors[key] = float(np.abs(ours[key].astype(np.float64) - ref).max()) / _scale(reference, key)
    return errors


def _torch_dtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def compare_with_torch(ours: nn.Module, theirs: torch.nn.Module, x: np.ndarray, training: bool):
    """Load our weights into theirs, run both; return the worst relative error of the output, dx,
    the parameter gradients and (training) the BN running statistics."""
    theirs.to(_torch_dtype(x.dtype))  # first: loading float64 values into float32 tensors would round them
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in interop.torchvision_state_dict(ours).items()})
    ours.train(training)
    theirs.train(training)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
    y = ours(x)
    yt = theirs(xt)
    dy = _x(y.shape, seed=9, dtype=x.dtype)
    ours.zero_grad()
    dx = ours.backward(dy)
    yt.backward(torch.from_numpy(dy.transpose(0, 3, 1, 2).copy()))
    errors = {}
    y_ref = yt.detach().numpy().transpose(0, 2, 3, 1)
    errors["output"] = float(np.abs(y - y_ref).max() / np.abs(y_ref).max())
    dx_ref = xt.grad.numpy().transpose(0, 2, 3, 1)
    errors["dx"] = float(np.abs(dx - dx_ref).max() / np.abs(dx_ref).max())
    grads_ref = {k: p.grad.numpy() for k, p in theirs.named_parameters()}
    errors.update({"d " + k: v for k, v in _relative_errors(interop.torchvision_state_dict(ours, grads=True), grads_ref).items()})
    state_ref = {k: v.numpy() for k, v in theirs.state_dict().items() if "running" in k or "num_batches" in k}
    state = interop.torchvision_state_dict(ours)
    errors.update({k: v for k, v in _relative_errors(state, state_ref).items()})
    assert y.dtype == x.dtype and dx.dtype == x.dtype
    return errors


# Tolerances, relative to each tensor's scale (see _scale). float64: only summation order differs
# (1e-16 per operation, a few hundred terms per sum) -> 1e-12. float32: eps 6e-8 times the
# accumulated rounding of the chain (conv sums of up to 9*Cin terms, BN statistics, the SE mean),
# measured at most ~2e-6 here -> 2e-5.
TOL = {np.float64: 1e-12, np.float32: 2e-5}
NORM = partial(torch.nn.BatchNorm2d, eps=BN_EPS)


def _assert_within(errors: dict, tol: float):
    bad = {k: v for k, v in errors.items() if not v <= tol}
    assert not bad, f"relative errors above {tol:g}: {bad}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("expand,stride,cin,cout", [(4, 1, 16, 16), (6, 2, 16, 24), (1, 1, 16, 16)])
def test_mbconv_matches_torchvision(dtype, training, expand, stride, cin, cout):
    ours = nn.MBConv(cin, cout, 3, stride, expand, 0.25, rng=np.random.default_rng(1), dtype=dtype)
    _randomize_bn(ours, seed=2)
    theirs = TvMBConv(MBConvConfig(expand, 3, stride, cin, cout, 1), 0.0, NORM)
    errors = compare_with_torch(ours, theirs, _x((2, 7, 6, cin), seed=3, dtype=dtype), training)
    _assert_within(errors, TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("expand,stride,cin,cout", [(1, 1, 8, 8), (4, 1, 8, 8), (4, 2, 8, 16), (1, 2, 8, 16)])
def test_fused_mbconv_matches_torchvision(dtype, training, expand, stride, cin, cout):
    ours = nn.FusedMBConv(cin, cout, 3, stride, expand, rng=np.random.default_rng(1), dtype=dtype)
    _randomize_bn(ours, seed=2)
    theirs = TvFused(FusedMBConvConfig(expand, 3, stride, cin, cout, 1), 0.0, NORM)
    errors = compare_with_torch(ours, theirs, _x((2, 7, 6, cin), seed=3, dtype=dtype), training)
    _assert_within(errors, TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_squeeze_excite_matches_torchvision(dtype):
    ours = nn.SqueezeExcite(12, 3, rng=np.random.default_rng(0), dtype=dtype)
    _randomize_bn(ours)
    theirs = SqueezeExcitation(12, 3, activation=torch.nn.SiLU).to(_torch_dtype(dtype))
    with torch.no_grad():  # fc1/fc2 are 1x1 convs (Cout, Cin, 1, 1); ours are Linear (Cin, Cout)
        theirs.fc1.weight.copy_(torch.from_numpy(ours.reduce.weight.data.T[:, :, None, None].copy()))
        theirs.fc1.bias.copy_(torch.from_numpy(ours.reduce.bias.data))
        theirs.fc2.weight.copy_(torch.from_numpy(ours.expand.weight.data.T[:, :, None, None].copy()))
        theirs.fc2.bias.copy_(torch.from_numpy(ours.expand.bias.data))
    x = _x((2, 5, 4, 12), seed=4, dtype=dtype)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
    y, yt = ours(x), theirs(xt)
    dy = _x(y.shape, seed=5, dtype=dtype)
    dx = ours.backward(dy)
    yt.backward(torch.from_numpy(dy.transpose(0, 3, 1, 2).copy()))
    tol = TOL[dtype]
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=0, atol=tol * np.abs(y).max())
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=0, atol=tol * np.abs(dx).max())
    dw = theirs.fc1.weight.grad.numpy()[:, :, 0, 0].T
    np.testing.assert_allclose(ours.reduce.weight.grad, dw, rtol=0, atol=tol * np.abs(dw).max())
    np.testing.assert_allclose(ours.expand.bias.grad, theirs.fc2.bias.grad.numpy(), rtol=0,
                               atol=tol * np.abs(theirs.fc2.bias.grad.numpy()).max())


def test_squeeze_width_comes_from_block_input():
    block = nn.MBConv(64, 128, 3, 2, 4, 0.25)
    assert (block.se.channels, block.se.squeeze) == (256, 16)  # 0.25 x 64, not 0.25 x 256
    assert nn.squeeze_channels(3, 0.25) == 1


def test_residual_rule_and_eval_drop_path_is_identity():
    assert nn.MBConv(8, 8, stride=1).use_residual
    assert not nn.MBConv(8, 8, stride=2).use_residual
    assert not nn.FusedMBConv(8, 16, stride=1).use_residual
    block = nn.FusedMBConv(8, 8, 3, 1, 4, drop_path_rate=0.9, rng=np.random.default_rng(0))
    block.set_rng(np.random.default_rng(0))
    x = _x((16, 4, 4, 8), dtype=np.float32)
    block.eval()
    expected = x + block.project(block.expand(x))
    np.testing.assert_allclose(block(x), expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())  # float32 ulps of the largest value
    block.train()
    y = block(x)
    dropped = [n for n in range(16) if np.array_equal(y[n], x[n])]  # branch dropped: y = x exactly
    assert len(dropped) >= 8  # p = 0.9 over 16 samples
