"""The fused BatchNorm+SiLU op against its readable version (the two ops in a row) and finite differences."""
import numpy as np
import pytest
import torch  # noqa: F401  (torch missing must fail these tests, never skip them)
import torch.nn.functional as F

from tinyeffnet import ops
from tinyeffnet.ops.fused import batchnorm_silu_backward, batchnorm_silu_forward
from tinyeffnet.testing import compare, gradcheck, torch_parity


def unfused_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-3):
    h, bn_cache = ops.batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    y, silu_cache = ops.silu_forward(h)
    return y, (bn_cache, silu_cache)


def unfused_backward(dy, cache):
    bn_cache, silu_cache = cache
    (dh,) = ops.silu_backward(dy, silu_cache)
    return ops.batchnorm_backward(dh, bn_cache)


def _inputs(shape, dtype, seed=0):
    r = np.random.default_rng(seed)
    c = shape[-1]
    return [(r.standard_normal(shape) * 2 + 0.5).astype(dtype), r.uniform(0.5, 1.5, c).astype(dtype),
            r.standard_normal(c).astype(dtype), r.standard_normal(c).astype(dtype), r.uniform(0.5, 2, c).astype(dtype)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (1, 3, 3, 1), (4, 9), (3, 40, 30, 6)])  # 3600 rows: many chunks
def test_fused_equals_the_two_ops_in_a_row(shape, training, dtype):
    args = _inputs(shape, dtype)
    fused_args = [a.copy() for a in args]
    y0, cache0 = unfused_forward(*args, training=training)
    y1, cache1 = batchnorm_silu_forward(*fused_args, training=training)
    dy = np.random.default_rng(5).standard_normal(y0.shape).astype(dtype)
    grads0 = unfused_backward(dy, cache0)
    grads1 = batchnorm_silu_backward(dy, cache1)
    # float64: only summation order differs; float32: a few ulps over the per-channel reductions.
    atol, rtol = (1e-12, 1e-10) if dtype == np.float64 else (1e-5, 1e-4)
    rows = [compare("y", y1, y0, atol=atol, rtol=rtol),
            compare("running_mean", fused_args[3], args[3], atol=atol, rtol=rtol),
            compare("running_var", fused_args[4], args[4], atol=atol, rtol=rtol)]
    rows += [compare(name, a, b, atol=atol, rtol=rtol) for name, a, b in zip(("dx", "dgamma", "dbeta"), grads1, grads0)]
    bad = [str(row.name) + "\n" + row.detail for row in rows if not row.ok]
    assert not bad, bad
    assert y1.dtype == dtype and all(g.dtype == dtype for g in grads1)


@pytest.mark.parametrize("training", [True, False])
def test_fused_gradcheck(training):
    # float64, smooth composite op: finite differences agree to ~1e-9; 1e-7 catches any wrong term.
    report = gradcheck(batchnorm_silu_forward, batchnorm_silu_backward, _inputs((2, 4, 3, 3), np.float64),
                       kwargs={"training": training}, names=["x", "gamma", "beta"])
    assert report.ok, report


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_matches_torch(dtype):
    def torch_bn_silu(x, gamma, beta, rm, rv):
        h = F.batch_norm(x.permute(0, 3, 1, 2), rm.detach().clone(), rv.detach().clone(), gamma, beta, True, 0.1, 1e-3)
        return F.silu(h).permute(0, 2, 3, 1)

    report = torch_parity(batchnorm_silu_forward, batchnorm_silu_backward, torch_bn_silu,
                          _inputs((2, 6, 5, 4), dtype), kwargs={"training": True}, names=["x", "gamma", "beta"])
    assert report.ok, report


def test_fused_checks_its_input():
    args = _inputs((2, 3, 3, 4), np.float32)
    args[1] = args[1][:3]
    with pytest.raises(ValueError, match="gamma"):
        batchnorm_silu_forward(*args, training=True)
