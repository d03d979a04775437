"""interop for EfficientNet V1 (efficientnet_b*): torchvision and timm key maps, weights both ways,
files, torchvision_model, and timm's own V1 models computing what ours computes."""
import numpy as np
import pytest
import timm
import torch
import torchvision

import tinyeffnet.models as models
from tinyeffnet import interop
from tinyeffnet.nn import BatchNorm2d


@pytest.fixture(scope="module")
def b0():
    return models.efficientnet_b0(num_classes=10)


def _randomize_bn(model, rng):
    """BN weights and running statistics away from their init, so that every one is tested."""
    for module in model.modules():
        if isinstance(module, BatchNorm2d):
            module.weight.data[...] = rng.uniform(0.5, 1.5, module.channels)
            module.bias.data[...] = rng.normal(0, 0.1, module.channels)
            module.running_mean[...] = rng.normal(0, 0.1, module.channels)
            module.running_var[...] = rng.uniform(0.5, 1.5, module.channels)


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(np.array_equal(sa[k], sb[k]) for k in sa)


def _nchw(x):
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


def test_key_maps_equal_torchvision_and_timm():
    """Same keys, same order as torchvision's efficientnet_b* and timm's efficientnet_b* /
    tf_efficientnet_b*; the two lists pair one to one (timm's stage i is torchvision's i + 1)."""
    for name in ("efficientnet_b0", "efficientnet_b3", "tf_efficientnet_b0"):
        ours = models.create_model(name)
        timm_keys = list(timm.create_model(name, pretrained=False).state_dict())
        assert [theirs for _, theirs, _ in interop.key_map(ours, "timm")] == timm_keys, name
        if not name.startswith("tf_"):
            tv_keys = list(getattr(torchvision.models, name)().state_dict())
            assert [theirs for _, theirs, _ in interop.key_map(ours)] == tv_keys, name
    b0 = models.efficientnet_b0()
    pairs = {tv: tm for (_, tv, _), (_, tm, _) in zip(interop.key_map(b0), interop.key_map(b0, "timm"))}
    assert pairs["features.1.0.block.0.0.weight"] == "blocks.0.0.conv_dw.weight"       # no expand conv
    assert pairs["features.1.0.block.1.fc1.weight"] == "blocks.0.0.se.conv_reduce.weight"
    assert pairs["features.1.0.block.2.0.weight"] == "blocks.0.0.conv_pw.weight"
    assert pairs["features.3.0.block.1.0.weight"] == "blocks.2.0.conv_dw.weight"       # 5x5 depthwise
    assert pairs["features.8.0.weight"] == "conv_head.weight"
    assert pairs["classifier.1.weight"] == "classifier.weight"


def test_torchvision_weights_round_trip_exact():
    """torchvision -> ours -> torchvision: torchvision's own random init comes back bit for bit."""
    tv = torchvision.models.efficientnet_b0()
    ours = interop.load_torchvision(models.efficientnet_b0(), tv.state_dict())
    assert ours.stages[2][0].depthwise.conv.weight.shape == (5, 5, 144)
    back = interop.torchvision_state_dict(ours)
    for key, value in tv.state_dict().items():
        np.testing.assert_array_equal(back[key], value.numpy(), err_msg=key)


def test_timm_weights_round_trip_exact():
    tm = timm.create_model("efficientnet_b0", pretrained=False)
    ours = interop.load_timm(models.efficientnet_b0(), tm.state_dict())
    back = interop.timm_state_dict(ours)
    for key, value in tm.state_dict().items():
        np.testing.assert_array_equal(back[key], value.numpy(), err_msg=key)


@pytest.mark.parametrize("name", ["efficientnet_b0", "tf_efficientnet_b0"])
def test_timm_v1_computes_what_ours_computes(name):
    """timm's efficientnet_b0 (symmetric padding, BN eps 1e-5) and tf_efficientnet_b0 ("same"
    padding, eps 1e-3), our weights copied in. float32, eval mode, random BN statistics, an even and
    an odd input; tolerance 1e-5 relative to the largest logit. Measured: ours at most 7.3e-7; the
    wrong BN eps (1e-3 for 1e-5 or back) 1.0e-3; tf_efficientnet_b0 with symmetric padding 5.7e-5
    (random weights: only border pixels differ) -- both far outside the tolerance."""
    ours = models.create_model(name, drop_rate=0.0, drop_path_rate=0.0)
    rng = np.random.default_rng(0)
    _randomize_bn(ours, rng)
    theirs = timm.create_model(name, pretrained=False).eval()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in interop.timm_state_dict(ours).items()})
    ours.eval()
    for shape in [(2, 64, 64, 3), (1, 57, 49, 3)]:
        x = rng.standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            reference = theirs(_nchw(x)).numpy()
        assert np.abs(ours(x) - reference).max() <= 1e-5 * np.abs(reference).max(), (name, shape)


def test_torchvision_model_of_a_v1_network(b0):
    """torchvision_model: the same V1 network as a torchvision EfficientNet, eps, momentum, dropout
    and stochastic depth carried over; same logits (eval) and the same running statistics after a
    training forward with B5-B7's momentum 0.01. Tolerances 1e-5 relative (float32)."""
    rng = np.random.default_rng(1)
    for ours in (b0, models.efficientnet_b0(num_classes=10, bn_momentum=0.01, bn_eps=1e-3, drop_rate=0.0,
                                            drop_path_rate=0.0)):
        _randomize_bn(ours, rng)
        ours.eval()
        theirs = interop.torchvision_model(ours)
        assert isinstance(theirs, torchvision.models.EfficientNet) and not theirs.training
        assert sum(p.numel() for p in theirs.parameters()) == ours.num_parameters()
        bns = [m for m in theirs.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert {(m.eps, m.momentum) for m in bns} == {(ours.stem.bn.eps, ours.stem.bn.momentum)}
        assert theirs.classifier[0].p == ours.dropout.p
        x = rng.standard_normal((2, 48, 40, 3)).astype(np.float32)
        with torch.no_grad():
            reference = theirs(_nchw(x)).numpy()
        assert np.abs(ours(x) - reference).max() <= 1e-5 * np.abs(reference).max()
    ours.train(), theirs.train()
    ours(x)
    with torch.no_grad():
        theirs(_nchw(x))
    exported, stats = interop.torchvision_state_dict(ours), theirs.state_dict()
    for key in (k for k in stats if "running" in k):
        reference = stats[key].numpy()
        assert np.abs(exported[key] - reference).max() <= 1e-5 * np.abs(reference).max(), key


def test_files_both_ways(b0, tmp_path):
    """save_pth -> torchvision and timm load strictly; load_weights builds efficientnet_b0 from a file
    with its number of classes; export writes what timm loads."""
    tv_path, timm_path = tmp_path / "b0_tv.pth", tmp_path / "b0_timm.pth"
    interop.save_pth(b0, tv_path)
    interop.save_pth(b0, timm_path, keys="timm")
    tv = torchvision.models.efficientnet_b0(num_classes=10)
    tv.load_state_dict(torch.load(tv_path, weights_only=True))
    timm.create_model("efficientnet_b0", num_classes=10).load_state_dict(torch.load(timm_path, weights_only=True))
    again = interop.load_weights("efficientnet_b0", tv_path)
    assert again.num_classes == 10 and _same_state(b0, again)

    npz, out = tmp_path / "b0.npz", tmp_path / "exported.pth"
    interop.save_npz(b0, npz)
    summary = interop.export("efficientnet_b0", npz, "timm", out)
    assert summary["num_classes"] == 10 and summary["model"] == "efficientnet_b0" and summary["bn_eps"] == 1e-5
    timm.create_model("efficientnet_b0", num_classes=10).load_state_dict(torch.load(out, weights_only=True))
    with pytest.raises(ValueError, match="missing keys"):
        interop.load_weights(models.efficientnetv2_b0(num_classes=10), npz)   # a V2 is not a V1
