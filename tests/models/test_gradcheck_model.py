"""float64 gradient check of a whole small custom EfficientNetV2, every parameter tensor sampled.

Train-mode BN (batch statistics: the harder backward), drop path active (rate 0.3, its masks fixed
by module_as_op reseeding the model's generator before every forward) and dropout active.
Threshold 1e-5: the chain is smooth, but a sampled entry whose gradient is ~1e-6 of the tensor's
largest (weights whose effect a later train-mode BN mostly cancels) carries the finite-difference
round-off of L (~1e-16 |L| / eps) as a relative error up to ~1e-6; a wrong term gives 1e-2 or more.

Two tensors have an analytically ZERO gradient, which a relative error cannot check (it compares
two rounding noises): the last BN bias of a block without residual whose next block starts with a
1x1 conv and a train-mode BN. A per-channel constant added there passes the 1x1 conv as a
per-channel constant and the next BN subtracts it again (mean removal). For those we check the
analytic gradient is zero to rounding and the loss is flat along them (absolute differences).
"""
import numpy as np
import torch  # noqa: F401

from tinyeffnet.models import EfficientNetV2, Stage
from tinyeffnet.nn import module_as_op
from tinyeffnet.testing import gradcheck

TOL = 1e-5


def test_gradcheck_whole_small_model():
    model = EfficientNetV2([
        Stage("fused", 1, 3, 1, 1, 8, 8),
        Stage("fused", 1, 3, 2, 2, 8, 8),
        Stage("mbconv", 2, 3, 2, 2, 8, 16, 0.25),
    ], num_classes=5, head_channels=16, drop_rate=0.2, drop_path_rate=0.3, dtype=np.float64, seed=0)
    rng = np.random.default_rng(1)
    for name, param in model.named_parameters():  # BN / bias values away from their 1 / 0 init
        if name.endswith("bn.weight"):
            param.data[...] = rng.uniform(0.5, 1.5, param.shape)
        elif name.endswith("bias"):
            param.data[...] = rng.normal(0, 0.2, param.shape)
    x = rng.standard_normal((4, 11, 10, 3))
    forward, backward, names, values = module_as_op(model, seed=3)
    report = gradcheck(forward, backward, [x] + values, names=names, tol=TOL, samples=6)
    assert len(report.rows) == len(values) + 1 == 1 + len(list(model.parameters()))
    zero = {"stages.1.0.project.bn.bias", "stages.2.0.project.bn.bias"}
    for row in report.rows:
        if row.name[1:] not in zero:
            assert row.ok, str(report)
    # the two analytically zero gradients
    y, _ = forward(x, *values)
    dy = np.random.default_rng(0).standard_normal(y.shape)
    grads = dict(zip(names, backward(dy, None)))
    scale = max(np.abs(g).max() for g in grads.values())
    for name in zero:
        assert np.abs(grads[name]).max() <= 1e-12 * scale, name
        index = names.index(name)
        for step in (1e-3, -1e-3):  # a large step: the loss must not move along this direction
            shifted = [v.copy() for v in values]
            shifted[index - 1] += step
            moved = np.sum((forward(x, *shifted)[0] - forward(x, *values)[0]) * dy)
            assert abs(moved) <= 1e-10 * np.abs(y * dy).sum(), (name, moved)
