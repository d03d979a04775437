"""EfficientNet V1 (efficientnet_b0 .. _b7) against torchvision's own efficientnet_b* builders.

Structure, all eight: parameter count (also torchvision's published num_params), every tensor's key,
order and shape, BatchNorm eps and momentum, dropout, the stochastic-depth schedule.

Numbers, B0 and B3 at 64 px, batch 2 (B3, width 1.2, is the one variant whose table V1's rounding
changes: stage 1 has 16 * 1.2 = 19.2 -> 24 channels, V2's rule would give 16): random weights
and BN statistics copied into torchvision's model through interop; eval logits, train logits (dropout
and stochastic depth 0 on both sides), dx, every parameter gradient, every BN running statistic after
the training forward; float64 and float32. Tolerances are relative to each tensor's scale (max
|reference|; a bias also its layer's weight gradient: see tests/models/test_torchvision_parity.py).
Measured maxima (this file's seeds and shapes, an Intel Xeon CPU):

    variant  dtype    logits   dx       worst parameter gradient   running stats
    B0       float64  3.3e-14  8.5e-14  4.9e-13                    5.1e-15
    B0       float32  8.6e-6   5.1e-5   9.2e-5                     2.6e-6
    B3       float32  3.5e-5   1.8e-4   3.2e-4                     1.0e-5

float64 is exact to round-off, so its tolerance is 1e-10 everywhere. float32 tolerances are the V2
parity test's (logits 3e-4, dx and gradients 3e-3, running stats 2e-4), 9x or more above these
16- and 26-block networks' numbers. What a real bug gives (measured on B0, float32): BatchNorm eps 1e-3 instead
of torchvision's 1e-5, 6.3e-4 in the eval logits and 0.75 in the train logits; momentum 0.01 instead
of 0.1, 0.65 in the running statistics.
"""
import numpy as np
import pytest
import torch
import torchvision

import tinyeffnet.models as models
from tinyeffnet import interop
from tinyeffnet.nn import BatchNorm2d
from tinyeffnet.testing import compare

V1_NAMES = [f"efficientnet_b{i}" for i in range(8)]
WEIGHTS = {f"efficientnet_b{i}": getattr(torchvision.models, f"EfficientNet_B{i}_Weights") for i in range(8)}
TOLERANCES = {np.float64: dict(logits=1e-10, dx=1e-10, gradients=1e-10, stats=1e-10),
              np.float32: dict(logits=3e-4, dx=3e-3, gradients=3e-3, stats=2e-4)}


def _stochastic_depths(tv_model) -> list:
    return [block.stochastic_depth.p if block.use_res_connect else None
            for stage in list(tv_model.features)[1:-1] for block in stage]


@pytest.mark.parametrize("name", V1_NAMES)
def test_structure_equals_torchvision(name):
    ours, theirs = models.create_model(name), getattr(torchvision.models, name)()
    count = sum(p.numel() for p in theirs.parameters())
    assert ours.num_parameters() == count == WEIGHTS[name].IMAGENET1K_V1.meta["num_params"]
    exported, reference = interop.torchvision_state_dict(ours), theirs.state_dict()
    assert list(exported) == list(reference)
    assert [v.shape for v in exported.values()] == [tuple(v.shape) for v in reference.values()]
    del exported, reference
    assert ({(m.eps, m.momentum) for m in ours.modules() if isinstance(m, BatchNorm2d)}
            == {(m.eps, m.momentum) for m in theirs.modules() if isinstance(m, torch.nn.BatchNorm2d)})
    assert ours.dropout.p == theirs.classifier[0].p
    rates = [block.drop_path.p if block.use_residual else None for stage in ours.stages for block in stage]
    assert rates == pytest.approx(_stochastic_depths(theirs), abs=1e-12)


def test_names_and_defaults():
    names = models.list_models()
    assert set(V1_NAMES) <= set(names) and "tf_efficientnet_b3" in names
    assert "tf_efficientnetv2_s" in names and "efficientnetv2_tiny" in names    # V2 still there
    b0 = models.efficientnet_b0(num_classes=10)
    assert b0.num_classes == 10 and b0.stem.conv.padding == 1
    assert (b0.stem.bn.eps, b0.stem.bn.momentum) == (1e-5, 0.1)
    b5 = models.create_model("efficientnet_b5", num_classes=3)
    assert (b5.stem.bn.eps, b5.stem.bn.momentum) == (1e-3, 0.01)
    tf = models.tf_efficientnet_b0()
    assert tf.stem.conv.padding == "same" and (tf.stem.bn.eps, tf.stem.bn.momentum) == (1e-3, 0.1)
    assert models.create_model("efficientnet_b0", bn_eps=1e-3, bn_momentum=0.01).head.bn.momentum == 0.01
    assert models.EfficientNet is models.EfficientNetV2
    assert [s.kernel for s in b0.config] == [3, 3, 5, 3, 5, 5, 3]
    assert all(s.block == "mbconv" and s.se == 0.25 for s in b0.config)
    assert b0.stages[0][0].expand is None                     # expand ratio 1: no expand conv
    b3 = models.create_model("efficientnet_b3")
    assert b3.config[0].out_ch == 24                          # 16 * 1.2 = 19.2: V1 rounds to 24 (V2: 16)
    with pytest.raises(ValueError, match="create_model: momentum must be a float in"):
        models.create_model("efficientnet_b0", bn_momentum=2.0)
    with pytest.raises(ValueError, match="unknown model 'efficientnet_b8'"):
        models.create_model("efficientnet_b8")


def test_v1_rounding_rule():
    """V1 adds 8 when rounding lost more than 10% (torchvision's _make_divisible); V2 does not."""
    from torchvision.models._utils import _make_divisible

    assert models.round_filters(24, 0.8) == 16                       # 19.2 -> 16: V2's rule
    assert models.round_filters(24, 0.8, rounding="v1") == 24 == _make_divisible(24 * 0.8, 8)
    for channels in (16, 24, 32, 40, 80, 112, 192, 320, 1280, 12, 20, 36):
        for width in (0.25, 0.5, 0.8, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0, 3.1):
            assert models.round_filters(channels, width, rounding="v1") == _make_divisible(channels * width, 8)
    with pytest.raises(ValueError, match="rounding must be one of"):
        models.round_filters(24, 1.0, rounding="v3")
    with pytest.raises(ValueError, match="rounding must be one of"):
        models.EfficientNetV2(models.V1_BASE, rounding="V1")


# ------------------------------------------------------------------------------ numbers
def _randomize(model, seed=1):
    rng = np.random.default_rng(seed)
    for module in model.modules():
        if isinstance(module, BatchNorm2d):
            module.weight.data[...] = rng.uniform(0.5, 1.5, module.channels)
            module.bias.data[...] = rng.normal(0, 0.1, module.channels)
            module.running_mean[...] = rng.normal(0, 0.1, module.channels)
            module.running_var[...] = rng.uniform(0.5, 1.5, module.channels)
    head = model.classifier.weight.shape[0]
    model.classifier.weight.data[...] = rng.normal(0, 1 / np.sqrt(head), model.classifier.weight.shape)
    model.classifier.bias.data[...] = rng.normal(0, 0.1, model.classifier.bias.shape)


def _scale(reference: dict, key: str) -> float:
    scale = float(np.abs(reference[key]).max())
    if key.endswith("bias") and key[:-4] + "weight" in reference:
        scale = max(scale, float(np.abs(reference[key[:-4] + "weight"]).max()))
    return scale or 1.0


def _check_dict(kind, ours: dict, reference: dict, atol: float, rows: list) -> None:
    assert list(ours) == list(reference), kind
    for key, ref in reference.items():
        rows.append((kind, compare(key, ours[key].astype(ref.dtype), ref, atol=atol, rtol=0.0,
                                   scale=_scale(reference, key))))


def _parity(name, dtype, shapes):
    """Rows (kind, CheckRow) of ours against torchvision's own builder, every tensor."""
    tol = TOLERANCES[dtype]
    ours = models.create_model(name, drop_rate=0.0, drop_path_rate=0.0, dtype=dtype, fast=dtype == np.float32)
    _randomize(ours)
    theirs = getattr(torchvision.models, name)(dropout=0.0, stochastic_depth_prob=0.0)
    if dtype == np.float64:
        theirs = theirs.double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in interop.torchvision_state_dict(ours).items()})
    rng = np.random.default_rng(2)
    rows = []
    for shape in shapes:
        x = rng.standard_normal(shape).astype(dtype)
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
        ours.eval(), theirs.eval()
        with torch.no_grad():
            reference = theirs(xt).numpy()
        rows.append(("logits", compare("eval logits", ours(x), reference, atol=tol["logits"], rtol=0.0)))

        ours.train(), theirs.train()
        y, yt = ours(x), theirs(xt)
        rows.append(("logits", compare("train logits", y, yt.detach().numpy(), atol=tol["logits"], rtol=0.0)))
        dy = rng.standard_normal(y.shape).astype(dtype)
        ours.zero_grad(), theirs.zero_grad()
        dx = ours.backward(dy)
        yt.backward(torch.from_numpy(dy))
        rows.append(("dx", compare("dx", dx, xt.grad.numpy().transpose(0, 2, 3, 1), atol=tol["dx"], rtol=0.0)))
        _check_dict("gradients", interop.torchvision_state_dict(ours, grads=True),
                    {k: p.grad.numpy() for k, p in theirs.named_parameters()}, tol["gradients"], rows)
        stats = {k: v.numpy() for k, v in theirs.state_dict().items() if "running" in k or "num_batches" in k}
        exported = interop.torchvision_state_dict(ours)
        _check_dict("stats", {k: exported[k] for k in stats}, stats, tol["stats"], rows)
    return rows, tol


def _assert_rows(name, dtype, rows, tol):
    worst = {}
    for kind, row in rows:
        worst[kind] = max(worst.get(kind, 0.0), row.error * tol[kind])
    print(f"\n{name} {np.dtype(dtype).name}: max relative error vs torchvision: "
          + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    failed = [f"{kind} {row.name}: {row.error * tol[kind]:.2e} (tolerance {tol[kind]:g})\n{row.detail}"
              for kind, row in rows if not row.ok]
    assert not failed, f"{name} {np.dtype(dtype).name}: " + "\n".join(failed[:5])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_b0_forward_and_backward_match_torchvision(dtype):
    shapes = [(2, 64, 64, 3)] if dtype == np.float64 else [(2, 64, 64, 3), (2, 57, 49, 3)]
    rows, tol = _parity("efficientnet_b0", dtype, shapes)
    _assert_rows("efficientnet_b0", dtype, rows, tol)


def test_b3_forward_and_backward_match_torchvision():
    rows, tol = _parity("efficientnet_b3", np.float32, [(2, 64, 64, 3)])
    _assert_rows("efficientnet_b3", np.float32, rows, tol)
