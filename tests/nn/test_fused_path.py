"""The fused BN+SiLU speed path (BatchNormSiLU, what ConvBNAct(fast=True) builds) gives what the
readable chain SiLU(BatchNorm2d(conv(x))) gives, and keeps BatchNorm2d's state_dict.

The convs here are 1x1 or stride 2, which are im2col either way: the fused op is the only difference.
The whole model, every fast path at once, is compared in test_fast_paths.py.
"""
import numpy as np
import pytest

from tinyeffnet import nn
from tinyeffnet.testing import compare


def _run(unit, x, dy_seed=1):
    unit.zero_grad()
    y = unit(x)
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(y.dtype)
    dx = unit.backward(dy)
    grads = {name: p.grad.copy() for name, p in unit.named_parameters()}
    return y, dx, grads, unit.state_dict()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel, stride", [(1, 1), (3, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_fused_and_readable_units_agree(dtype, kernel, stride, training):
    x = (np.random.default_rng(0).standard_normal((2, 11, 10, 6)) * 2 + 0.5).astype(dtype)
    results = []
    for fast in (True, False):
        unit = nn.ConvBNAct(6, 8, kernel, stride, rng=np.random.default_rng(3), dtype=dtype, fast=fast)
        unit.train(training)
        assert isinstance(unit.bn, nn.BatchNormSiLU) is fast and (unit.act is None) is fast
        assert unit.conv.algorithm == ("direct" if fast and kernel == 3 else "im2col")   # a thin 3x3 conv: direct
        for _ in range(2):  # the second forward normalises with running statistics moved by the first
            result = _run(unit, x)
        results.append(result)
    (y1, dx1, g1, s1), (y0, dx0, g0, s0) = results
    assert list(s1) == list(s0)
    # float64: summation order only; float32: a few ulps over the per-channel reductions, relative to
    # the magnitude (testing.compare); gradients judged against the largest gradient.
    atol, rtol = (1e-10, 1e-8) if dtype == np.float64 else (1e-5, 1e-4)
    grad_scale = max(float(np.max(np.abs(g))) for g in g0.values())
    rows = [compare("y", y1, y0, atol=atol, rtol=rtol), compare("dx", dx1, dx0, atol=atol, rtol=rtol)]
    rows += [compare(k, g1[k], g0[k], atol=atol, rtol=rtol, scale=grad_scale) for k in g0]
    rows += [compare(k, s1[k], s0[k], atol=atol, rtol=rtol) for k in s0]
    bad = [f"{row.name}: {row.error:.2e}" for row in rows if not row.ok]
    assert not bad, bad


def test_batchnorm_silu_is_a_batchnorm_with_its_keys():
    fused, plain = nn.BatchNormSiLU(5), nn.BatchNorm2d(5)
    assert isinstance(fused, nn.BatchNorm2d)
    assert list(fused.state_dict()) == list(plain.state_dict()) == [
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert repr(fused) == "BatchNormSiLU(5, eps=0.001, momentum=0.1)"
