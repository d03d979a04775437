"""`tinyeffnet export` and the road to PyTorch: a model trained here continues training in PyTorch.

A tiny training run (efficientnetv2_tiny, 16 px, 8 AdamW steps) makes the checkpoint every test
starts from. Exports are checked by loading them with PyTorch's own loaders (torch.load with
weights_only=True, safetensors.torch.load_file) into torchvision's EfficientNet, strict.
"""
import json
import sys

import numpy as np
import pytest
import safetensors.torch
import torch
import torch.nn.functional as F

import tinyeffnet.models as models
from tinyeffnet import interop, ops
from tinyeffnet.cli import main
from tinyeffnet.files import read_npz
from tinyeffnet.train import Trainer, TrainConfig, normalize, train

NAME = "efficientnetv2_tiny"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """runs/<tmp>/checkpoint.npz after 2 epochs of 4 steps. The exponential schedule (flat after its
    1-epoch warmup) leaves a non-zero learning rate in the optimizer to continue with."""
    out = tmp_path_factory.mktemp("run")
    train(epochs=2, train_samples=64, val_samples=16, batch_size=16, stages=1, min_size=16, max_size=16,
          eval_size=16, lr_schedule="exponential", out=str(out), progress=False, log=lambda *args, **kw: None)
    return out / "checkpoint.npz"


def _export(capsys, *args):
    """Run `tinyeffnet export ...`; (exit code, stdout, stderr)."""
    code = main(["export", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _tv_model(num_classes):
    return interop.torchvision_model(models.create_model(NAME, num_classes=num_classes), copy_weights=False)


def _batch(seed=5):
    """A fixed batch of the built-in shapes at 16 px, normalised as in training: (x, labels)."""
    from tinyeffnet.data import ShapesDataset

    images, labels = ShapesDataset(16, 16, seed=seed, split="val").batch(np.arange(16), 16)
    return normalize(images), labels


def _nchw(x):
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


# ------------------------------------------------------------------------------ formats
def test_torchvision_export_holds_the_ema_weights_and_runs_in_pytorch(checkpoint, tmp_path, capsys):
    """Default: the EMA weights (what validation measured), loadable with weights_only=True, strict,
    into torchvision's EfficientNet, which then gives our logits (eval mode; tolerance 1e-5 of the
    largest logit, measured ~1e-7)."""
    out = tmp_path / "tiny.pth"
    code, stdout, stderr = _export(capsys, NAME, "--weights", checkpoint, "--format", "torchvision", "--out", out)
    assert code == 0 and stderr == "", stderr
    assert f"wrote {out}" in stdout and "EMA weights" in stdout
    state = torch.load(out, weights_only=True)
    arrays = read_npz(checkpoint)
    np.testing.assert_array_equal(state["classifier.1.weight"].numpy(), arrays["ema.shadow.classifier.weight"].T)
    assert not np.array_equal(arrays["ema.shadow.classifier.weight"], arrays["model.classifier.weight"])
    theirs = _tv_model(state["classifier.1.weight"].shape[0])
    theirs.load_state_dict(state)                                   # strict=True
    ours = interop.load_weights(NAME, checkpoint)                   # the same EMA weights, here
    x, _ = _batch()
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        reference = theirs(_nchw(x)).numpy()
    assert np.abs(ours(x) - reference).max() <= 1e-5 * np.abs(reference).max()


def test_no_ema_exports_the_raw_training_weights(checkpoint, tmp_path, capsys):
    out = tmp_path / "raw.pth"
    code, stdout, _ = _export(capsys, NAME, "--weights", checkpoint, "--format", "torchvision", "--out", out,
                              "--no-ema")
    assert code == 0 and "raw (non-EMA) weights" in stdout
    state = torch.load(out, weights_only=True)
    np.testing.assert_array_equal(state["classifier.1.weight"].numpy(),
                                  read_npz(checkpoint)["model.classifier.weight"].T)


def test_timm_export_uses_timm_names_and_layouts(checkpoint, tmp_path, capsys):
    out = tmp_path / "tiny_timm.pth"
    assert _export(capsys, NAME, "--weights", checkpoint, "--format", "timm", "--out", out)[0] == 0
    state = torch.load(out, weights_only=True)
    model = interop.load_weights(NAME, checkpoint)
    assert list(state) == [theirs for _, theirs, _ in interop.key_map(model, "timm")]
    for key, value in interop.timm_state_dict(model).items():
        np.testing.assert_array_equal(state[key].numpy(), value, err_msg=key)


def test_safetensors_export_defaults_to_torchvision_keys(checkpoint, tmp_path, capsys):
    out = tmp_path / "tiny.safetensors"
    assert _export(capsys, NAME, "--weights", checkpoint, "--format", "safetensors", "--out", out)[0] == 0
    state = safetensors.torch.load_file(out)
    _tv_model(state["classifier.1.weight"].shape[0]).load_state_dict(state)      # strict=True
    out = tmp_path / "ours.safetensors"
    assert _export(capsys, NAME, "--weights", checkpoint, "--format", "safetensors", "--keys", "tinyeffnet",
                   "--out", out)[0] == 0
    expected = interop.load_weights(NAME, checkpoint).state_dict()
    assert {k: v.shape for k, v in safetensors.torch.load_file(out).items()} == \
        {k: torch.Size(v.shape) for k, v in expected.items()}


def test_weights_files_export_too_with_their_number_of_classes(tmp_path, capsys):
    """A save_safetensors (timm keys) or save_npz file; the classes (7) come from its classifier."""
    model = models.create_model(NAME, num_classes=7, seed=4)
    for path in (tmp_path / "w.safetensors", tmp_path / "w.npz"):
        if path.suffix == ".npz":
            interop.save_npz(model, path)
        else:
            interop.save_safetensors(model, path, keys="timm")
        out = tmp_path / f"{path.stem}{path.suffix}.pth"
        code, stdout, _ = _export(capsys, NAME, "--weights", path, "--format", "torchvision", "--out", out)
        assert code == 0 and "(7 classes)" in stdout
        state = torch.load(out, weights_only=True)
        for key, value in interop.torchvision_state_dict(model).items():
            np.testing.assert_array_equal(state[key].numpy(), value, err_msg=key)


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit) as info:
        main(["export", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "(default: False)" in text and "(default: torchvision)" in text
    assert "torchvision,timm,safetensors" in text


# ------------------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def tf_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("tf") / "tf_b0.npz"
    interop.save_npz(models.create_model("tf_efficientnetv2_b0", num_classes=3), path)
    return path


BAD = {  # name: (arguments after "export", a piece of the one-line error)
    "unknown model": (["efficientnetv2_huge", "--weights", "{ckpt}", "--format", "torchvision"],
                      "unknown model 'efficientnetv2_huge'"),
    "missing weights": ([NAME, "--weights", "{tmp}/nowhere.npz", "--format", "torchvision"], "does not exist"),
    "damaged checkpoint": ([NAME, "--weights", "{truncated}", "--format", "torchvision"],
                           "is damaged or not an .npz archive"),
    "other model than trained": (["efficientnetv2_b0", "--weights", "{ckpt}", "--format", "torchvision"],
                                 "was trained as efficientnetv2_tiny, not efficientnetv2_b0"),
    "other model than the weights": (["efficientnetv2_b0", "--weights", "{npz}", "--format", "safetensors"],
                                     "does not fit this model (efficientnetv2_b0, 10 classes)"),
    "unknown format": ([NAME, "--weights", "{ckpt}", "--format", "onnx"],
                       "format must be one of torchvision, timm, safetensors, got 'onnx'"),
    "keys without safetensors": ([NAME, "--weights", "{ckpt}", "--format", "timm", "--keys", "timm"],
                                 "keys is for format safetensors only"),
    "unknown keys": ([NAME, "--weights", "{ckpt}", "--format", "safetensors", "--keys", "keras"],
                     "keys must be one of tinyeffnet, torchvision, timm, got 'keras'"),
    "same padding to torchvision": (["tf_efficientnetv2_b0", "--weights", "{tf}", "--format", "torchvision"],
                                    '"same" padding'),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, checkpoint, tf_weights, tmp_path, capsys):
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(checkpoint.read_bytes()[:5000])
    npz = tmp_path / "tiny.npz"
    interop.save_npz(interop.load_weights(NAME, checkpoint), npz)
    args, expected = BAD[case]
    args = [a.format(ckpt=checkpoint, tmp=tmp_path, truncated=truncated, npz=npz, tf=tf_weights) for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, stdout, stderr = _export(capsys, *args, "--out", tmp_path / "out.pth")
    assert code == 2
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert expected in stderr, stderr
    assert stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_out_is_checked_before_anything_is_read(checkpoint, tmp_path, capsys):
    code, _, stderr = _export(capsys, NAME, "--weights", checkpoint, "--format", "torchvision",
                              "--out", tmp_path / "no" / "such" / "folder" / "x.pth")
    assert code == 2 and "its folder" in stderr and "does not exist" in stderr
    copy = tmp_path / "checkpoint.npz"
    copy.write_bytes(checkpoint.read_bytes())
    code, _, stderr = _export(capsys, NAME, "--weights", copy, "--format", "torchvision", "--out", copy)
    assert code == 2 and "out must differ from weights" in stderr
    assert copy.read_bytes() == checkpoint.read_bytes()


def test_without_torch_pth_formats_say_so_and_safetensors_still_works(checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)          # `import torch` now raises ImportError
    code, _, stderr = _export(capsys, NAME, "--weights", checkpoint, "--format", "torchvision",
                              "--out", tmp_path / "x.pth")
    assert code == 2 and "needs PyTorch, which is not installed: pip install torch" in stderr, stderr
    assert not (tmp_path / "x.pth").exists()
    code, _, stderr = _export(capsys, NAME, "--weights", checkpoint, "--format", "safetensors",
                              "--out", tmp_path / "x.safetensors")
    assert code == 0, stderr
    monkeypatch.undo()
    assert (tmp_path / "x.safetensors").exists()


# ------------------------------------------------------------------------------ the road to PyTorch
def _without_randomness(tinyeffnet_model, torch_model):
    """Dropout and stochastic depth off on both sides: the two frameworks draw different random masks."""
    for module in tinyeffnet_model.modules():
        if type(module).__name__ in ("Dropout", "DropPath"):
            module.p = 0.0
    for module in torch_model.modules():
        if isinstance(module, torch.nn.Dropout) or type(module).__name__ == "StochasticDepth":
            module.p = 0.0


def _torch_adamw_like(optimizer, model, torch_model):
    """torch.optim.AdamW with our optimizer's hyperparameters AND its state (step count, first and
    second moments), so PyTorch takes the very next step our run would have taken.

    The moments have the parameters' shapes, so the same layout conversion applies: put them in a
    scratch model's parameters and export that. Weight decay goes only to parameters with
    p.decay (not BatchNorm's gamma/beta, not biases), as in our optimizer: two torch param groups.
    """
    names = [name for name, _ in model.named_parameters()]
    to_theirs = {ours: theirs for ours, theirs, _ in interop.key_map(model)}

    def torch_layout(by_index):
        scratch = models.create_model(NAME, num_classes=model.num_classes)
        state = scratch.state_dict()
        state.update({names[k]: value for k, value in by_index.items()})
        scratch.load_state_dict(state)
        return interop.torchvision_state_dict(scratch)

    exp_avg = torch_layout({k: s["exp_avg"] for k, s in optimizer.state.items()})
    exp_avg_sq = torch_layout({k: s["exp_avg_sq"] for k, s in optimizer.state.items()})
    theirs = dict(torch_model.named_parameters())
    group = optimizer.param_groups[0]
    decays = [p.decay for _, p in model.named_parameters()]
    result = torch.optim.AdamW(
        [{"params": [theirs[to_theirs[n]] for n, d in zip(names, decays) if d], "weight_decay": group["weight_decay"]},
         {"params": [theirs[to_theirs[n]] for n, d in zip(names, decays) if not d], "weight_decay": 0.0}],
        lr=group["lr"], betas=(group["beta1"], group["beta2"]), eps=group["eps"])
    for k, state in optimizer.state.items():
        key = to_theirs[names[k]]
        result.state[theirs[key]] = {"step": torch.tensor(float(state["step"])),
                                     "exp_avg": torch.from_numpy(exp_avg[key].copy()),
                                     "exp_avg_sq": torch.from_numpy(exp_avg_sq[key].copy())}
    return result


def test_training_continues_in_pytorch(checkpoint, tmp_path, capsys):
    """Train here, export, continue in PyTorch: the loss goes on from where tinyeffnet stopped.

    Ours: the run resumed from its checkpoint (model, AdamW and its state). PyTorch: the export
    (--no-ema: the weights the optimizer left) loaded with weights_only=True into
    interop.torchvision_model, and torch.optim.AdamW carrying the same state. Then both take the
    same steps on one fixed batch (train mode: batch statistics; dropout and stochastic depth off).

    - before: eval-mode losses equal (relative 1e-5; measured ~1e-7);
    - every step: the training losses equal (relative 1e-5; measured <= 2e-7) and go down;
    - after: eval-mode losses still equal (relative 1e-4; measured ~5e-6: a few BatchNorm biases
      that the next train-mode BatchNorm cancels have an exactly zero gradient, so AdamW moves them
      by float noise, differently in each framework; only eval mode sees them).
    """
    out = tmp_path / "raw.pth"
    assert _export(capsys, NAME, "--weights", checkpoint, "--format", "torchvision", "--out", out,
                   "--no-ema")[0] == 0
    arrays = read_npz(checkpoint)
    config = TrainConfig(**json.loads(str(arrays["config"])))
    trainer = Trainer(config, progress=False, log=lambda *args, **kw: None)
    trainer.load_state_arrays(arrays)
    ours, optimizer = trainer.model, trainer.optimizer
    assert config.optimizer == "adamw" and optimizer.param_groups[0]["lr"] == pytest.approx(config.lr)

    theirs = _tv_model(ours.num_classes)
    theirs.load_state_dict(torch.load(out, weights_only=True))
    _without_randomness(ours, theirs)
    torch_optimizer = _torch_adamw_like(optimizer, ours, theirs)

    x, labels = trainer.train_set.batch(np.arange(16), 16)
    x = normalize(x)
    x_torch, labels_torch = _nchw(x), torch.from_numpy(labels.astype(np.int64))
    smoothing = config.label_smoothing

    def eval_losses():
        ours.eval()
        theirs.eval()
        with torch.no_grad():
            theirs_loss = float(F.cross_entropy(theirs(x_torch), labels_torch, label_smoothing=smoothing))
        return float(ops.softmax_cross_entropy(ours(x), labels, smoothing)[0]), theirs_loss

    ours_loss, theirs_loss = eval_losses()
    assert abs(ours_loss - theirs_loss) <= 1e-5 * abs(theirs_loss), (ours_loss, theirs_loss)

    ours.train()
    theirs.train()
    history = []
    for step in range(5):
        loss, dlogits = ops.softmax_cross_entropy(ours(x), labels, smoothing)
        ours.zero_grad()
        ours.backward(dlogits)
        optimizer.step()
        torch_optimizer.zero_grad()
        torch_loss = F.cross_entropy(theirs(x_torch), labels_torch, label_smoothing=smoothing)
        torch_loss.backward()
        torch_optimizer.step()
        history.append((float(loss), float(torch_loss.detach())))
        assert abs(history[-1][0] - history[-1][1]) <= 1e-5 * abs(history[-1][1]), (step, history)
    torch_history = [theirs_loss for _, theirs_loss in history]
    assert all(b < a for a, b in zip(torch_history, torch_history[1:])), torch_history
    assert torch_history[-1] < 0.8 * torch_history[0], torch_history

    ours_loss, theirs_loss = eval_losses()
    assert abs(ours_loss - theirs_loss) <= 1e-4 * abs(theirs_loss), (ours_loss, theirs_loss)
