"""Training: the progressive schedule, checkpoints, exact resume, the NaN guard, sanity checks."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinyeffnet import ops
from tinyeffnet.models import create_model
from tinyeffnet.optim import AdamW
from tinyeffnet.train import (CHECKPOINT, METRICS, TrainConfig, Trainer, TrainingDiverged, load_checkpoint,
                              progressive_schedule, save_checkpoint, stage_of_epoch, train)

# A run small enough for a test: 96 images, batches of 32, sizes 16 -> 24, eval at 24.
TINY = dict(train_samples=96, val_samples=40, batch_size=32, min_size=16, max_size=24, eval_size=24,
            epochs=4, stages=2, warmup_epochs=0.5)


def test_progressive_schedule_follows_the_linear_formula():
    cfg = TrainConfig(epochs=8, stages=4, min_size=24, max_size=48, dropout=(0.1, 0.4), randaug=(5, 15),
                      mixup=(0.0, 0.3))
    stages = progressive_schedule(cfg)
    assert len(stages) == 4
    for i, stage in enumerate(stages):
        frac = i / 3  # i / (M - 1)
        assert stage.image_size == round(24 + (48 - 24) * frac)
        assert stage.dropout == pytest.approx(0.1 + 0.3 * frac)
        assert stage.randaug == pytest.approx(5 + 10 * frac)
        assert stage.mixup == pytest.approx(0.3 * frac)
        assert stage.epochs == (2 * i, 2 * i + 1)
    assert stage_of_epoch(stages, 5).index == 2


def test_schedule_splits_uneven_epochs_and_fixed_mode_uses_the_last_values():
    stages = progressive_schedule(TrainConfig(epochs=10, stages=4))
    assert [len(s.epochs) for s in stages] == [2, 2, 3, 3]
    assert sum(len(s.epochs) for s in stages) == 10
    fixed = progressive_schedule(TrainConfig(epochs=10, progressive=False, max_size=40, dropout=(0.1, 0.3)))
    assert len(fixed) == 1 and fixed[0].image_size == 40 and fixed[0].dropout == 0.3
    assert fixed[0].epochs == tuple(range(10))


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="optimizer must be"):
        TrainConfig(optimizer="lamb")
    with pytest.raises(ValueError, match="min_size"):
        TrainConfig(min_size=64, max_size=32)


def test_bad_data_path_names_the_path(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises((FileNotFoundError, NotADirectoryError, ValueError), match="no_such_folder"):
        Trainer(TrainConfig(data=str(missing), out=str(tmp_path / "out")), progress=False)


def test_unreadable_image_names_the_file(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / "data" / cls).mkdir(parents=True)
    import matplotlib.image

    for cls in ("a", "b"):
        for i in range(3):
            matplotlib.image.imsave(tmp_path / "data" / cls / f"{i}.png", np.random.rand(8, 8, 3))
    (tmp_path / "data" / "b" / "broken.png").write_bytes(b"not a png at all")
    cfg = TrainConfig(data=str(tmp_path / "data"), out=str(tmp_path / "out"), **{**TINY, "epochs": 1, "batch_size": 2})
    with pytest.raises(Exception, match="broken.png"):
        Trainer(cfg, progress=False).run()


def test_initial_loss_is_close_to_log_num_classes(tmp_path):
    # cs231n sanity check: a fresh network predicts about uniformly, so the loss is ~ ln(10) = 2.303.
    model = Trainer(TrainConfig(out=str(tmp_path), **TINY), progress=False).model
    x = np.random.default_rng(0).uniform(-1, 1, (32, 24, 24, 3)).astype(np.float32)
    labels = np.arange(32) % 10
    loss, _ = ops.softmax_cross_entropy(model(x), labels)
    assert abs(float(loss) - math.log(10)) < 0.15


def test_a_tiny_batch_can_be_overfit():
    # 10 images, one per class: the network must be able to memorise them (loss -> ~0).
    from tinyeffnet.data import ShapesDataset

    images, labels = ShapesDataset(10, 24, seed=3).arrays()
    model = create_model("efficientnetv2_tiny", num_classes=10, drop_rate=0.0, drop_path_rate=0.0, seed=0)
    opt = AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    x = (images - 0.5) / 0.5
    for _ in range(80):
        loss, dlogits = ops.softmax_cross_entropy(model(x), labels)
        model.zero_grad()
        model.backward(dlogits)
        opt.step()
    assert float(loss) < 0.05


def test_run_writes_metrics_checkpoint_and_curves(tmp_path):
    rows = train(out=str(tmp_path), progress=False, log=lambda *a: None, **TINY)
    assert len(rows) == 4
    lines = [json.loads(line) for line in (tmp_path / METRICS).read_text().splitlines()]
    assert lines == rows
    for key in ("epoch", "stage", "image_size", "lr", "train_loss", "train_acc", "val_loss", "val_acc",
                "seconds", "images_per_second"):
        assert key in lines[0]
    assert [r["image_size"] for r in rows] == [16, 16, 24, 24]
    assert [r["stage"] for r in rows] == [0, 0, 1, 1]
    assert (tmp_path / "curves.png").stat().st_size > 1000
    state = load_checkpoint(tmp_path / CHECKPOINT)
    assert int(state["counters.epoch"]) == 4


def _losses(rows):
    return np.array([[r["train_loss"], r["val_loss"], r["val_acc"]] for r in rows])


def test_resume_after_an_epoch_gives_the_same_losses(tmp_path):
    full = train(out=str(tmp_path / "full"), progress=False, log=lambda *a: None, **TINY)
    # the same run stopped after 2 epochs, then resumed to 4
    train(out=str(tmp_path / "split"), progress=False, log=lambda *a: None, until_epoch=2, **TINY)
    resumed = train(out=str(tmp_path / "split"), resume=True, progress=False, log=lambda *a: None, **TINY)
    assert [r["epoch"] for r in resumed] == [2, 3]
    np.testing.assert_allclose(_losses(resumed), _losses(full[2:]), rtol=0, atol=1e-6)


def test_ctrl_c_mid_epoch_saves_and_resume_continues_exactly(tmp_path, monkeypatch):
    full = train(out=str(tmp_path / "full"), progress=False, log=lambda *a: None, **TINY)
    trainer = Trainer(TrainConfig(out=str(tmp_path / "cut"), **TINY), progress=False, log=lambda *a: None)
    real_step = trainer.train_step
    calls = {"n": 0}

    def step_then_interrupt(indices, stage):
        result = real_step(indices, stage)
        calls["n"] += 1
        if calls["n"] == 4:  # a real SIGINT in the first batch of epoch 2 (3 batches per epoch)
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(trainer, "train_step", step_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert int(load_checkpoint(tmp_path / "cut" / CHECKPOINT)["counters.global_step"]) == 4
    resumed = train(out=str(tmp_path / "cut"), resume=True, progress=False, log=lambda *a: None, **TINY)
    rows = [json.loads(line) for line in (tmp_path / "cut" / METRICS).read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    np.testing.assert_allclose(_losses(resumed), _losses(full[1:]), rtol=0, atol=1e-6)


def test_resume_refuses_a_checkpoint_made_with_other_settings(tmp_path):
    train(out=str(tmp_path), progress=False, log=lambda *a: None, until_epoch=1, **TINY)
    with pytest.raises(ValueError, match="different settings: lr"):
        train(out=str(tmp_path), resume=True, progress=False, log=lambda *a: None, **{**TINY, "lr": 0.1})


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    args = ["--train-samples", "96", "--val-samples", "40", "--batch-size", "32", "--min-size", "16",
            "--max-size", "24", "--eval-size", "24", "--epochs", "4", "--stages", "2", "--no-progress-bar"]
    cmd = [sys.executable, "-m", "tinyeffnet", "train", *args]
    subprocess.run([*cmd, "--out", str(tmp_path / "full")], check=True, capture_output=True)
    killed = subprocess.Popen([*cmd, "--out", str(tmp_path / "killed")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    metrics = tmp_path / "killed" / METRICS
    deadline = time.time() + 300
    while time.time() < deadline and killed.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 1:
            break
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    subprocess.run([*cmd, "--out", str(tmp_path / "killed"), "--resume"], check=True, capture_output=True)
    full = [json.loads(x) for x in (tmp_path / "full" / METRICS).read_text().splitlines()]
    resumed = [json.loads(x) for x in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in resumed] == [0, 1, 2, 3]
    np.testing.assert_allclose(_losses(resumed), _losses(full), rtol=0, atol=1e-6)


def test_a_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / CHECKPOINT
    save_checkpoint(path, {"a": np.arange(3)})

    def torn_write(f, **arrays):
        f.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(np, "savez", torn_write)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"a": np.arange(5)})
    monkeypatch.undo()
    np.testing.assert_array_equal(load_checkpoint(path)["a"], np.arange(3))


def test_nan_loss_stops_with_step_and_stage_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    cfg = TrainConfig(out=str(tmp_path), **TINY)
    train(cfg=cfg, progress=False, log=lambda *a: None, until_epoch=1)
    before = (tmp_path / CHECKPOINT).read_bytes()
    trainer = Trainer(cfg, progress=False, log=lambda *a: None)
    real_forward = trainer.model.forward

    def poisoned(x):
        if trainer.counters.global_step == 4:
            return np.full((x.shape[0], 10), np.nan, dtype=np.float32)
        return real_forward(x)

    monkeypatch.setattr(trainer.model, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 4 \(stage 0, epoch 1\)"):
        trainer.run(resume=True)
    assert (tmp_path / CHECKPOINT).read_bytes() == before


def test_cli_train_reports_a_bad_data_path(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tinyeffnet", "train", "--data", str(tmp_path / "nope"),
                          "--out", str(tmp_path / "o"), "--no-progress-bar"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "nope" in out.stderr
