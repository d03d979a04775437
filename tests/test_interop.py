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
from tinyeffnet.nn import BatchNorm2d


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


def _randomize_bn(model, rng):
    """BN weights and running statistics away from their init (drawn from rng), so every one is tested."""
    for module in model.modules():
        if isinstance(module, BatchNorm2d):            # BatchNormSiLU (the fast path) included
            module.weight.data[...] = rng.uniform(0.5, 1.5, module.channels)
            module.bias.data[...] = rng.normal(0, 0.1, module.channels)
            module.running_mean[...] = rng.normal(0, 0.1, module.channels)
            module.running_var[...] = rng.uniform(0.5, 1.5, module.channels)


def test_tf_efficientnetv2_b0_matches_timm_logits():
    """timm's tf_ variant uses TF "same" padding (asymmetric at stride 2 on even sizes) and eps 1e-3.
    float32, eval mode, random BN statistics. Tolerance 1e-5 relative to the largest logit (measured
    ~5e-7; the symmetric-padding model differs by ~5e-3 at 64x64, so padding is really tested)."""
    ours = models.create_model("tf_efficientnetv2_b0", drop_rate=0.0, drop_path_rate=0.0)
    rng = np.random.default_rng(0)
    _randomize_bn(ours, rng)
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


# ------------------------------------------------------------------------------ damaged and foreign files
from tinyeffnet.files import BadFileError  # noqa: E402


def _damaged_copies(good, tmp_path):
    """name -> path of a damaged copy of the file ``good``: the ways a download or a crash breaks one."""
    data = good.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF                     # one byte in the middle of the arrays
    rng = np.random.default_rng(0)
    variants = {"empty": b"", "truncated": data[: len(data) // 2], "short by 10 bytes": data[:-10],
                "bit-flipped": bytes(flipped), "random bytes": rng.bytes(len(data))}
    paths = {}
    for name, content in variants.items():
        path = tmp_path / f"{name.replace(' ', '_')}{good.suffix}"
        path.write_bytes(content)
        paths[name] = path
    return paths


def _assert_one_line_naming(error, path):
    message = str(error.value)
    assert os.fspath(path) in message, message
    assert "\n" not in message, message
    chained = error.value.__cause__ or (None if error.value.__suppress_context__ else error.value.__context__)
    assert chained is None, f"a chained traceback: {chained!r}"


def test_damaged_npz_gives_one_line_naming_the_file(tiny, tmp_path):
    good = tmp_path / "good.npz"
    interop.save_npz(tiny, good)
    for name, path in _damaged_copies(good, tmp_path).items():
        with pytest.raises(BadFileError) as info:
            interop.load_npz(models.efficientnetv2_tiny(num_classes=10), path)
        _assert_one_line_naming(info, path)
        assert "allow_pickle" not in str(info.value), f"{name}: numpy's misleading advice leaked"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        interop.load_npz(tiny, tmp_path / "nowhere.npz")


def test_damaged_pth_gives_one_line_naming_the_file(tiny, tmp_path):
    good = tmp_path / "good.pth"
    interop.save_pth(tiny, good)
    for name, path in _damaged_copies(good, tmp_path).items():
        if name == "bit-flipped":
            continue  # torch's zip reader checks no CRC of the tensor bytes (a known limit of .pth)
        with pytest.raises(BadFileError) as info:
            interop.load_torchvision(models.efficientnetv2_tiny(num_classes=10), path)
        _assert_one_line_naming(info, path)
        assert "refused" not in str(info.value), f"{name}: random bytes are not a dangerous pickle"


def test_npz_of_another_model_names_the_file_and_the_keys(tiny, tmp_path):
    path = tmp_path / "tiny.npz"
    interop.save_npz(tiny, path)
    with pytest.raises(ValueError) as info:
        interop.load_npz(models.efficientnetv2_tiny(num_classes=5), path)
    message = str(info.value)
    assert message.startswith(f"weights file {path} does not fit this model (efficientnetv2_tiny, 5 classes)")
    assert "shape mismatches (2): classifier.weight: expected (320, 5), got (320, 10)" in message
    with pytest.raises(ValueError) as info:
        interop.load_npz(models.efficientnetv2_b0(), path)
    message = str(info.value)
    assert "\n" not in message and "missing keys (264)" in message and "... and 260 more" in message
    assert "stem.conv.weight: expected (3, 3, 3, 32), got (3, 3, 3, 16)" in message


def test_npz_refuses_a_training_checkpoint_with_a_pointer(tiny, tmp_path):
    path = tmp_path / "checkpoint.npz"
    np.savez(path, config=np.array('{"model": "efficientnetv2_tiny"}'),
             **{f"model.{k}": v for k, v in tiny.state_dict().items()})
    with pytest.raises(ValueError, match="is a training checkpoint .*interop.load_weights"):
        interop.load_npz(tiny, path)


def test_npz_with_torchvision_names_loads(tiny, tmp_path):
    path = tmp_path / "tv.npz"
    np.savez(path, **interop.torchvision_state_dict(tiny))
    assert _same_state(tiny, interop.load_npz(models.efficientnetv2_tiny(num_classes=10, seed=2), path))


def test_arguments_of_the_wrong_kind_are_named():
    model = models.efficientnetv2_tiny(num_classes=10)
    with pytest.raises(TypeError, match="state_dict must be a mapping of name -> array .* got NoneType"):
        interop.load_torchvision(model, None)
    with pytest.raises(TypeError, match="state_dict must be a mapping of name -> array .* got int"):
        interop.load_timm(model, 3)
    with pytest.raises(TypeError, match=r"path must be a file path \(str or os.PathLike\), got NoneType"):
        interop.load_npz(model, None)
    with pytest.raises(TypeError, match="model must be a tinyeffnet Module .* got dict"):
        interop.save_npz({}, "x.npz")
    with pytest.raises(TypeError, match="model must be a tinyeffnet Module .* got NoneType"):
        interop.load_torchvision(None, {})


def _crash_during_fsync(monkeypatch):
    def fsync(fd):
        raise OSError("simulated crash before the file reached the disk")
    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("save, suffix", [(interop.save_npz, ".npz"), (interop.save_pth, ".pth")])
def test_saves_are_atomic(save, suffix, tiny, tmp_path, monkeypatch):
    """A crash while writing leaves the previous file whole (and no temporary file behind)."""
    path = tmp_path / f"weights{suffix}"
    save(tiny, path)
    before = path.read_bytes()
    _crash_during_fsync(monkeypatch)
    with pytest.raises(OSError, match="simulated crash"):
        save(models.efficientnetv2_tiny(num_classes=10, seed=11), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_save_npz_writes_exactly_the_path(tiny, tmp_path):
    path = tmp_path / "weights.bin"
    interop.save_npz(tiny, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.bin"]  # np.savez would add .npz
    assert _same_state(tiny, interop.load_npz(models.efficientnetv2_tiny(num_classes=10, seed=1), path))


# ------------------------------------------------------------------------------ torchvision_model
@pytest.mark.parametrize("name", ["efficientnetv2_tiny", "efficientnetv2_b2"])
def test_torchvision_model_computes_what_ours_computes(name):
    """Variants torchvision has no builder for (tiny; B2 with width 1.1 and depth 1.2) become a
    torchvision EfficientNet with the same logits. float32, eval mode, random BN statistics;
    tolerance 1e-5 relative to the largest logit (measured ~1e-6)."""
    ours = models.create_model(name, num_classes=7, drop_rate=0.3, drop_path_rate=0.2, bn_eps=1e-3)
    _randomize_bn(ours, np.random.default_rng(1))
    ours.eval()
    theirs = interop.torchvision_model(ours)
    assert isinstance(theirs, torchvision.models.EfficientNet) and not theirs.training
    assert sum(p.numel() for p in theirs.parameters()) == ours.num_parameters()
    assert theirs.classifier[0].p == 0.3
    depths = [m.p for m in theirs.modules() if type(m).__name__ == "StochasticDepth"]
    blocks = [b for stage in ours.stages for b in stage]
    assert depths[-1] == pytest.approx(0.2 * (len(blocks) - 1) / len(blocks))
    assert {m.eps for m in theirs.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1e-3}
    x = np.random.default_rng(0).standard_normal((2, 40, 36, 3)).astype(np.float32)
    with torch.no_grad():
        reference = theirs(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    assert np.abs(ours(x) - reference).max() <= 1e-5 * np.abs(reference).max()
    assert interop.torchvision_model(ours.train()).training


def test_torchvision_model_refuses_what_torchvision_cannot_express():
    with pytest.raises(ValueError, match='"same" padding'):
        interop.torchvision_model(models.create_model("tf_efficientnetv2_b0"))
    no_se = models.EfficientNetV2([models.Stage("fused", 1, 3, 1, 1, 16, 16),
                                   models.Stage("mbconv", 1, 3, 2, 4, 16, 32)], num_classes=3, head_channels=64)
    with pytest.raises(ValueError, match="cannot express this model .* missing keys"):
        interop.torchvision_model(no_se)
    with pytest.raises(TypeError, match="model must be a tinyeffnet Module"):
        interop.torchvision_model("efficientnetv2_tiny")
