"""interop's .safetensors files: every key flavour round trips, PyTorch reads ours and we read
PyTorch's (torchvision and timm names, DDP's "module." prefix), damage is named in one line,
writes are atomic."""
import os

import numpy as np
import pytest
import safetensors
import safetensors.numpy
import safetensors.torch
import timm
import torch

import tinyeffnet.models as models
from tinyeffnet import interop
from tinyeffnet.files import BadFileError


@pytest.fixture(scope="module")
def tiny():
    return models.efficientnetv2_tiny(num_classes=10, seed=3)


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(np.array_equal(sa[k], sb[k]) for k in sa)


def _metadata(path):
    with safetensors.safe_open(path, framework="np") as f:
        return f.metadata()


@pytest.mark.parametrize("keys", ["tinyeffnet", "torchvision", "timm"])
def test_round_trip_is_exact_for_every_key_flavour(keys, tiny, tmp_path):
    path = tmp_path / f"{keys}.safetensors"
    interop.save_safetensors(tiny, path, keys=keys)
    assert _metadata(path)["keys"] == keys
    expected = {"tinyeffnet": tiny.state_dict(), "torchvision": interop.torchvision_state_dict(tiny),
                "timm": interop.timm_state_dict(tiny)}[keys]
    stored = safetensors.numpy.load_file(path)
    assert sorted(stored) == sorted(expected)
    assert all(stored[k].dtype == v.dtype and np.array_equal(stored[k], v) for k, v in expected.items())
    other = interop.load_safetensors(models.efficientnetv2_tiny(num_classes=10, seed=8), path)
    assert _same_state(tiny, other)


def test_default_keys_are_torchvision_and_load_straight_into_pytorch(tiny, tmp_path):
    path = tmp_path / "tv.safetensors"
    interop.save_safetensors(tiny, path)
    theirs = interop.torchvision_model(models.efficientnetv2_tiny(num_classes=10, seed=9), copy_weights=False)
    theirs.load_state_dict(safetensors.torch.load_file(path))        # strict=True
    for key, value in interop.torchvision_state_dict(tiny).items():
        np.testing.assert_array_equal(theirs.state_dict()[key].numpy(), value, err_msg=key)


def test_timm_keys_load_into_timm(tmp_path):
    ours = models.create_model("tf_efficientnetv2_b0", num_classes=5)
    path = tmp_path / "timm.safetensors"
    interop.save_safetensors(ours, path, keys="timm")
    theirs = timm.create_model("tf_efficientnetv2_b0", pretrained=False, num_classes=5)
    theirs.load_state_dict(safetensors.torch.load_file(path))        # strict=True


def test_files_written_by_pytorch_load_by_their_key_names(tmp_path):
    """No metadata: the flavour comes from the names (features.0.0.weight / conv_stem.weight)."""
    torch.manual_seed(0)
    tv = interop.torchvision_model(models.efficientnetv2_tiny(num_classes=10))
    with torch.no_grad():
        for value in tv.state_dict().values():
            if value.is_floating_point():
                value.normal_()
    path = tmp_path / "from_torch.safetensors"
    safetensors.torch.save_file(tv.state_dict(), path)
    assert not _metadata(path)
    ours = interop.load_safetensors(models.efficientnetv2_tiny(num_classes=10), path)
    back = interop.torchvision_state_dict(ours)
    for key, value in tv.state_dict().items():
        np.testing.assert_array_equal(back[key], value.numpy(), err_msg=key)

    tm = timm.create_model("tf_efficientnetv2_b0", pretrained=False, num_classes=4)
    path = tmp_path / "from_timm.safetensors"
    safetensors.torch.save_file(tm.state_dict(), path)
    ours = interop.load_safetensors(models.create_model("tf_efficientnetv2_b0", num_classes=4), path)
    np.testing.assert_array_equal(interop.timm_state_dict(ours)["conv_head.weight"],
                                  tm.state_dict()["conv_head.weight"].numpy())

    path = tmp_path / "ddp.safetensors"           # DistributedDataParallel's module.<key> names
    safetensors.torch.save_file({f"module.{k}": v for k, v in tv.state_dict().items()}, path)
    ours = interop.load_safetensors(models.efficientnetv2_tiny(num_classes=10), path)
    np.testing.assert_array_equal(interop.torchvision_state_dict(ours)["classifier.1.weight"],
                                  tv.state_dict()["classifier.1.weight"].numpy())


def _damaged_copies(good, tmp_path):
    data = good.read_bytes()
    header_length = int.from_bytes(data[:8], "little")
    in_header, in_data = bytearray(data), bytearray(data)
    in_header[8 + header_length // 2] ^= 0x40
    in_data[len(data) - 100] ^= 0x01               # one bit of one float: safetensors itself can't tell
    rng = np.random.default_rng(0)
    variants = {"empty": b"", "truncated": data[: len(data) // 2], "short by 4 bytes": data[:-4],
                "header bit-flipped": bytes(in_header), "data bit-flipped": bytes(in_data),
                "random bytes": rng.bytes(len(data)), "an npz": b"PK\x03\x04" + rng.bytes(500)}
    paths = {}
    for name, content in variants.items():
        paths[name] = tmp_path / f"{name.replace(' ', '_')}.safetensors"
        paths[name].write_bytes(content)
    return paths


def test_damaged_files_give_one_line_naming_the_file(tiny, tmp_path):
    good = tmp_path / "good.safetensors"
    interop.save_safetensors(tiny, good)
    for name, path in _damaged_copies(good, tmp_path).items():
        with pytest.raises(BadFileError) as info:
            interop.load_safetensors(models.efficientnetv2_tiny(num_classes=10), path)
        message = str(info.value)
        assert os.fspath(path) in message and "\n" not in message, f"{name}: {message}"
        chained = info.value.__cause__ or (None if info.value.__suppress_context__ else info.value.__context__)
        assert chained is None, f"{name}: a chained traceback: {chained!r}"
        if name == "data bit-flipped":
            assert "SHA-256" in message
    with pytest.raises(FileNotFoundError, match="does not exist"):
        interop.load_safetensors(tiny, tmp_path / "nowhere.safetensors")


def test_bfloat16_tensors_are_named(tmp_path):
    path = tmp_path / "bf16.safetensors"
    safetensors.torch.save_file({"features.0.0.weight": torch.zeros(2, dtype=torch.bfloat16)}, path)
    with pytest.raises(BadFileError, match="tensor features.0.0.weight has a dtype NumPy cannot read"):
        interop.load_safetensors(models.efficientnetv2_tiny(num_classes=10), path)


def test_file_of_another_model_names_the_file_and_the_keys(tiny, tmp_path):
    path = tmp_path / "tiny.safetensors"
    interop.save_safetensors(tiny, path)
    with pytest.raises(ValueError) as info:
        interop.load_safetensors(models.efficientnetv2_tiny(num_classes=3), path)
    message = str(info.value)
    assert message.startswith(f"weights file {path} does not fit this model (efficientnetv2_tiny, 3 classes)")
    assert "classifier.1.weight: expected (3, 320), got (10, 320)" in message and "\n" not in message
    path = tmp_path / "other.safetensors"
    safetensors.numpy.save_file({"weight": np.zeros(3, np.float32)}, path)
    with pytest.raises(ValueError, match="holds no EfficientNetV2 weights .* its keys: weight"):
        interop.load_safetensors(tiny, path)


def test_arguments_are_checked(tiny, tmp_path):
    with pytest.raises(ValueError, match="keys must be one of tinyeffnet, torchvision, timm, got 'keras'"):
        interop.save_safetensors(tiny, tmp_path / "x.safetensors", keys="keras")
    with pytest.raises(TypeError, match="model must be a tinyeffnet Module"):
        interop.load_safetensors(None, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="path must be a file path"):
        interop.save_safetensors(tiny, None)
    assert not list(tmp_path.iterdir())


def test_save_is_atomic(tiny, tmp_path, monkeypatch):
    """A crash while writing leaves the previous file whole (safetensors.numpy.save_file would not)."""
    path = tmp_path / "weights.safetensors"
    interop.save_safetensors(tiny, path)
    before = path.read_bytes()

    def fsync(fd):
        raise OSError("simulated crash before the file reached the disk")
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="simulated crash"):
        interop.save_safetensors(models.efficientnetv2_tiny(num_classes=10, seed=12), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
