"""interop: torchvision/timm key maps and layouts, round trips, .npz, .pth, errors, refused pickles."""
import os
import zipfile

import numpy as np
import pytest
import timm
import torch
import torchvision

import tinyeffnet.models as models
from tinyeffnet import interop


@pytest.fixture(scope="module")
def tiny():
    return models.efficientnetv2_tiny(num_classes=10)


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_torchvision_round_trip_exact(tiny):
    exported = interop.torchvision_state_dict(tiny)
    other = models.efficientnetv2_tiny(num_classes=10, seed=5)
    interop.load_torchvision(other, {k: torch.from_numpy(v) for k, v in exported.items()})  # tensors accepted
    assert _same_state(tiny, other)
    again = interop.torchvision_state_dict(other)
    assert all(np.array_equal(exported[k], again[k]) for k in exported)


def test_torchvision_model_round_trip_through_torch():
    """tv -> ours -> tv: torchvision's own random init comes back bit for bit."""
    tv = torchvision.models.efficientnet_v2_s()
    ours = interop.load_torchvision(models.efficientnetv2_s(), tv.state_dict())
    back = interop.torchvision_state_dict(ours)
    for key, value in tv.state_dict().items():
        assert back[key].shape == tuple(value.shape), key
        np.testing.assert_array_equal(back[key], value.numpy(), err_msg=key)


def test_layouts(tiny):
    exported = interop.torchvision_state_dict(tiny)
    w = tiny.stem.conv.weight.data                             # (K, K, Cin, Cout)
    np.testing.assert_array_equal(exported["features.0.0.weight"][4, 2, 1, 0], w[1, 0, 2, 4])
    dw = tiny.stages[3][0].depthwise.conv.weight.data          # (K, K, C)
    np.testing.assert_array_equal(exported["features.4.0.block.1.0.weight"][7, 0, 2, 1], dw[2, 1, 7])
    se = tiny.stages[3][0].se.reduce.weight.data               # (Cin, Cout)
    np.testing.assert_array_equal(exported["features.4.0.block.2.fc1.weight"][3, 5, 0, 0], se[5, 3])
    fc = tiny.classifier.weight.data                           # (Cin, Cout)
    np.testing.assert_array_equal(exported["classifier.1.weight"][2, 9], fc[9, 2])
    assert exported["features.0.1.num_batches_tracked"].dtype == np.int64
    assert exported["features.0.1.num_batches_tracked"].shape == ()


def test_timm_keys_equal_timm_models_and_map_one_to_one_onto_torchvision():
    for name in ("tf_efficientnetv2_b0", "efficientnetv2_s"):
        ours = models.create_model(name)
        timm_keys = list(timm.create_model(name, pretrained=False).state_dict())
        rows = interop.key_map(ours, "timm")
        assert [theirs for _, theirs, _ in rows] == timm_keys
        tv_rows = interop.key_map(ours, "torchvision")
        assert [ours_key for ours_key, _, _ in rows] == [ours_key for ours_key, _, _ in tv_rows]
    s = models.efficientnetv2_s()
    pairs = dict((tv, tm) for (_, tv, _), (_, tm, _) in zip(interop.key_map(s), interop.key_map(s, "timm")))
    assert pairs["features.1.0.block.0.0.weight"] == "blocks.0.0.conv.weight"
    assert pairs["features.4.0.block.2.fc1.weight"] == "blocks.3.0.se.conv_reduce.weight"
    assert pairs["features.7.0.weight"] == "conv_head.weight"


def test_timm_round_trip(tiny):
    other = models.efficientnetv2_tiny(num_classes=10, seed=9)
    interop.load_timm(other, interop.timm_state_dict(tiny))
    assert _same_state(tiny, other)


def test_tf_efficientnetv2_b0_matches_timm_logits():
    """timm's tf_ variant uses TF "same" padding (asymmetric at stride 2 on even sizes) and eps 1e-3.
    float32, eval mode, random BN statistics. Tolerance 1e-5 relative to the largest logit (measured
    ~5e-7; the symmetric-padding model differs by ~5e-3 at 64x64, so padding is really tested)."""
    ours = models.create_model("tf_efficientnetv2_b0", drop_rate=0.0, drop_path_rate=0.0)
    rng = np.random.default_rng(0)
    for module in ours.modules():
        if type(module).__name__ == "BatchNorm2d":
            module.weight.data[...] = rng.uniform(0.5, 1.5, module.channels)
            module.bias.data[...] = rng.normal(0, 0.1, module.channels)
            module.running_mean[...] = rng.normal(0, 0.1, module.channels)
            module.running_var[...] = rng.uniform(0.5, 1.5, module.channels)
    theirs = timm.create_model("tf_efficientnetv2_b0", pretrained=False).eval()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in interop.timm_state_dict(ours).items()})
    ours.eval()
    symmetric = models.create_model("efficientnetv2_b0")
    symmetric.load_state_dict(ours.state_dict())
    symmetric.eval()
    for shape in [(2, 64, 64, 3), (1, 65, 49, 3)]:
        x = rng.standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            reference = theirs(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
        scale = np.abs(reference).max()
        assert np.abs(ours(x) - reference).max() <= 1e-5 * scale
        if shape[1] % 2 == 0:
            assert np.abs(symmetric(x) - reference).max() > 1e-3 * scale


def test_bad_state_dict_lists_every_problem(tiny):
    state = interop.torchvision_state_dict(tiny)
    del state["features.0.0.weight"]
    del state["classifier.1.bias"]
    state["features.99.weight"] = np.zeros(3, np.float32)
    state["features.1.0.block.0.1.running_mean"] = np.zeros(5, np.float32)
    before = tiny.state_dict()
    with pytest.raises(ValueError) as info:
        interop.load_torchvision(tiny, state)
    message = str(info.value)
    assert "missing keys (2): features.0.0.weight, classifier.1.bias" in message
    assert "unexpected keys (1): features.99.weight" in message
    assert "features.1.0.block.0.1.running_mean: expected (16,), got (5,)" in message
    assert _same_state(tiny, tiny) and all(np.array_equal(v, before[k]) for k, v in tiny.state_dict().items())


def test_wrong_variant_is_refused():
    with pytest.raises(ValueError, match="missing keys"):
        interop.load_torchvision(models.efficientnetv2_s(), torchvision.models.efficientnet_v2_m().state_dict())


def test_grads_export_requires_a_backward(tiny):
    fresh = models.efficientnetv2_tiny(num_classes=10)
    with pytest.raises(ValueError, match="no gradient yet"):
        interop.torchvision_state_dict(fresh, grads=True)
    x = np.zeros((1, 32, 32, 3), np.float32)
    fresh.backward(np.ones_like(fresh(x)))
    grads = interop.torchvision_state_dict(fresh, grads=True)
    assert "features.0.1.running_mean" not in grads and "features.0.0.weight" in grads
    assert grads["features.0.0.weight"].shape == (16, 3, 3, 3)


def test_npz_round_trip(tiny, tmp_path):
    path = tmp_path / "tiny.npz"
    interop.save_npz(tiny, path)
    other = models.efficientnetv2_tiny(num_classes=10, seed=7)
    interop.load_npz(other, path)
    assert _same_state(tiny, other)


def test_npz_with_pickled_object_is_refused(tiny, tmp_path):
    path = tmp_path / "evil.npz"
    state = tiny.state_dict()
    state["stem.conv.weight"] = np.array([{"a": 1}], dtype=object)
    np.savez(path, **state)
    with pytest.raises(ValueError, match="refused to load .* pickled objects"):
        interop.load_npz(models.efficientnetv2_tiny(num_classes=10), path)


def test_pth_path_is_loaded(tiny, tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({k: torch.from_numpy(v) for k, v in interop.torchvision_state_dict(tiny).items()}, path)
    other = interop.load_torchvision(models.efficientnetv2_tiny(num_classes=10, seed=3), str(path))
    assert _same_state(tiny, other)


class RunsCode:
    """Unpickling this calls exec(...), which would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def test_pth_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pth"
    torch.save({"features.0.0.weight": RunsCode(marker)}, path)
    assert zipfile.is_zipfile(path)
    with pytest.raises(ValueError, match="refused to load"):
        interop.load_torchvision(models.efficientnetv2_tiny(num_classes=10), path)
    assert not os.path.exists(marker)


def test_key_map_rejects_other_modules():
    with pytest.raises(ValueError, match="flavour"):
        interop.key_map(models.efficientnetv2_tiny(), "keras")
    from tinyeffnet.nn import Linear
    with pytest.raises(TypeError, match="EfficientNetV2"):
        interop.key_map(Linear(2, 3))
