"""Whole-network parity with torchvision's efficientnet_v2_s (CI) and _m, _l (slow).

Random weights (our seeded init) and random BN parameters and running statistics, copied into
torchvision through tinyeffnet.interop. Compared: eval logits, train logits (dropout and stochastic
depth 0 on both sides), dx, every parameter gradient and every BN running statistic after a
training forward; at an odd non-square input (65x49) and an even square one (64x64), batch 2.

Tolerances are relative to each tensor's scale (max |reference|; for a bias also its layer's
weight gradient, see tests/nn/test_blocks.py::_scale). float32 through 40-79 blocks of conv + BN:
each op is exact to ~1e-7 relative and train-mode BN re-normalises every layer, so the error grows
about linearly with depth, not geometrically. Measured maxima over both inputs (seeded, this file):

    variant  logits   dx       worst parameter gradient   running stats
    S        1.8e-5   9.9e-5   2.2e-4                     1.4e-5
    M        3.2e-5   1.4e-4   3.9e-4                     2.0e-5
    L        7.4e-5   2.8e-4   7.7e-4                     4.1e-5

(the worst gradients are deep in the last MBConv stages: every later block's rounding reaches them).
Tolerances, about 4x above L's numbers: logits 3e-4, dx and gradients 3e-3, running stats 2e-4. A
real bug (a wrong layout, a missing term, eps or momentum off) gives errors of 1e-2 or more.
"""
import numpy as np
import pytest
import torch
import torchvision

import tinyeffnet.models as models
from tinyeffnet import interop
from tinyeffnet.nn import BatchNorm2d

LOGIT_TOL, GRAD_TOL, STAT_TOL = 3e-4, 3e-3, 2e-4


def randomize(model, seed=1):
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


def scale(reference, key):
    s = float(np.abs(reference[key]).max())
    if key.endswith("bias") and key[:-4] + "weight" in reference:
        s = max(s, float(np.abs(reference[key[:-4] + "weight"]).max()))
    return max(s, 1e-30)


def worst(ours, reference):
    return max((float(np.abs(ours[k].astype(np.float64) - reference[k]).max()) / scale(reference, k), k)
               for k in reference)


def check_variant(name, builder):
    ours = models.create_model(name, drop_rate=0.0, drop_path_rate=0.0)
    randomize(ours)
    theirs = builder(dropout=0.0, stochastic_depth_prob=0.0)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in interop.torchvision_state_dict(ours).items()})
    rng = np.random.default_rng(2)
    measured = {"logits": 0.0, "dx": 0.0, "gradients": 0.0, "running stats": 0.0}
    for shape in [(2, 65, 49, 3), (2, 64, 64, 3)]:
        x = rng.standard_normal(shape).astype(np.float32)
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
        ours.eval()
        theirs.eval()
        with torch.no_grad():
            y_ref = theirs(xt).numpy()
        y = ours(x)
        err = np.abs(y - y_ref).max() / np.abs(y_ref).max()
        measured["logits"] = max(measured["logits"], err)
        assert err <= LOGIT_TOL, f"{name} {shape} eval logits: {err:.2e}"

        ours.train()
        theirs.train()
        y = ours(x)
        yt = theirs(xt)
        err = np.abs(y - yt.detach().numpy()).max() / np.abs(yt.detach().numpy()).max()
        measured["logits"] = max(measured["logits"], err)
        assert err <= LOGIT_TOL, f"{name} {shape} train logits: {err:.2e}"
        dy = rng.standard_normal(y.shape).astype(np.float32)
        ours.zero_grad()
        theirs.zero_grad()
        xt.grad = None
        dx = ours.backward(dy)
        yt.backward(torch.from_numpy(dy))
        dx_ref = xt.grad.numpy().transpose(0, 2, 3, 1)
        err = np.abs(dx - dx_ref).max() / np.abs(dx_ref).max()
        measured["dx"] = max(measured["dx"], err)
        assert err <= GRAD_TOL, f"{name} {shape} dx: {err:.2e}"
        grads_ref = {k: p.grad.numpy() for k, p in theirs.named_parameters()}
        grads = interop.torchvision_state_dict(ours, grads=True)
        assert list(grads) == list(grads_ref)
        err, key = worst(grads, grads_ref)
        measured["gradients"] = max(measured["gradients"], err)
        assert err <= GRAD_TOL, f"{name} {shape} worst gradient {key}: {err:.2e}"
        stats_ref = {k: v.numpy() for k, v in theirs.state_dict().items() if "running" in k or "num_batches" in k}
        err, key = worst(interop.torchvision_state_dict(ours), stats_ref)
        measured["running stats"] = max(measured["running stats"], err)
        assert err <= STAT_TOL, f"{name} {shape} worst running statistic {key}: {err:.2e}"
    print(f"\n{name}: {ours.num_parameters():,} params; max relative error vs torchvision (float32): "
          + ", ".join(f"{k} {v:.1e}" for k, v in measured.items()))


def test_efficientnet_v2_s_matches_torchvision():
    check_variant("efficientnetv2_s", torchvision.models.efficientnet_v2_s)


@pytest.mark.slow
def test_efficientnet_v2_m_matches_torchvision():
    check_variant("efficientnetv2_m", torchvision.models.efficientnet_v2_m)


@pytest.mark.slow
def test_efficientnet_v2_l_matches_torchvision():
    check_variant("efficientnetv2_l", torchvision.models.efficientnet_v2_l)
