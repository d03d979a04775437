"""The fused BN+SiLU speed path of ConvBNAct gives what the readable chain act(bn(conv(x))) gives."""
import numpy as np
import pytest

from tinyeffnet.models import create_model
from tinyeffnet.nn.layers import ConvBNAct
from tinyeffnet.testing import compare


def _run(model, x, dy_seed=1):
    model.zero_grad()
    y = model(x)
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(y.dtype)
    dx = model.backward(dy)
    grads = {name: p.grad.copy() for name, p in model.named_parameters()}
    state = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    return y, dx, grads, state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_and_readable_paths_agree_on_a_whole_model(monkeypatch, dtype):
    x = np.random.default_rng(0).standard_normal((2, 24, 20, 3)).astype(dtype)
    results = []
    for fuse in (True, False):
        monkeypatch.setattr(ConvBNAct, "fuse_bn_silu", fuse)
        model = create_model("efficientnetv2_tiny", num_classes=10, drop_rate=0.0, drop_path_rate=0.0,
                             dtype=dtype, seed=3)
        results.append(_run(model, x))
    (y1, dx1, g1, s1), (y0, dx0, g0, s0) = results
    # float64: summation order only; float32: a few ulps through ~20 layers of BN reductions.
    # atol is relative to the magnitude (see testing.compare). Gradients are judged against the
    # largest gradient of the model: some (the project BN biases, whose shift the next BN removes)
    # are zero in exact arithmetic and hold round-off only.
    atol, rtol = (1e-10, 1e-8) if dtype == np.float64 else (1e-4, 2e-3)
    grad_scale = max(float(np.max(np.abs(g))) for g in g0.values())
    rows = [compare("logits", y1, y0, atol=atol, rtol=rtol), compare("dx", dx1, dx0, atol=atol, rtol=rtol)]
    rows += [compare(k, g1[k], g0[k], atol=atol, rtol=rtol, scale=grad_scale) for k in g0]
    # State (weights, BN running statistics) against the state's own scale: a running mean whose
    # input is centred by the previous BN is ~0 in exact arithmetic, round-off of activations ~1.
    state_scale = max(float(np.max(np.abs(v))) for v in s0.values())
    rows += [compare(k, s1[k], s0[k], atol=atol, rtol=rtol, scale=state_scale) for k in s0]
    bad = [f"{row.name}: {row.error:.2e}" for row in rows if not row.ok]
    assert not bad, bad
