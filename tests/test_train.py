"""Training: the progressive schedule, config checks, checkpoints, exact resume, the NaN guard,
small folders, what the user sees, sanity checks. (Faults: tests/test_faults.py.)"""
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]              # counted from 1, like the messages
    assert [r["stage"] for r in rows] == [1, 1, 2, 2]
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
    assert [r["epoch"] for r in resumed] == [3, 4]
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
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
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
    assert [r["epoch"] for r in resumed] == [1, 2, 3, 4]
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
    # global_step 4 = four steps done: the fifth step, the second of epoch 2 (3 steps per epoch)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 5 \(stage 1/2, epoch 2/4\)"):
        trainer.run(resume=True)
    assert (tmp_path / CHECKPOINT).read_bytes() == before


def test_cli_train_reports_a_bad_data_path(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tinyeffnet", "train", "--data", str(tmp_path / "nope"),
                          "--out", str(tmp_path / "o"), "--no-progress-bar"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "nope" in out.stderr


# ------------------------------------------------------------------ TrainConfig checks every field
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("overrides, message", [
    (dict(model="resnet50"), "model must be one of efficientnetv2_b0, "),
    (dict(model=3), "model must be one of"),
    (dict(epochs=0), "epochs must be an int >= 1, got 0"),
    (dict(epochs=2.0), "epochs must be an int >= 1, got 2.0"),
    (dict(epochs=True), "epochs must be an int >= 1, got True"),
    (dict(stages=0), "stages must be an int >= 1, got 0"),
    (dict(train_samples=-5), "train_samples must be an int >= 1, got -5"),
    (dict(val_samples=False), "val_samples must be an int >= 1, got False"),
    (dict(batch_size=0), "batch_size must be an int >= 1 or None (choose one that fits), got 0"),
    (dict(batch_size=True), "batch_size must be an int >= 1 or None (choose one that fits), got True"),
    (dict(batch_size=16.0), "batch_size must be an int >= 1 or None (choose one that fits), got 16.0"),
    (dict(min_size=4), "min_size must be an int >= 8, got 4"),
    (dict(min_size=64, max_size=32), "max_size must be an int >= min_size (64), got 32"),
    (dict(eval_size=7), "eval_size must be an int >= 8, got 7"),
    (dict(seed=-1), "seed must be an int >= 0, got -1"),
    (dict(lr=0), "lr must be a finite number > 0, got 0"),
    (dict(lr=-0.1), "lr must be a finite number > 0, got -0.1"),
    (dict(lr=NAN), "lr must be a finite number > 0, got nan"),
    (dict(lr=INF), "lr must be a finite number > 0, got inf"),
    (dict(lr=True), "lr must be a finite number > 0, got True"),
    (dict(lr="0.1"), "lr must be a finite number > 0, got '0.1'"),
    (dict(weight_decay=-1e-5), "weight_decay must be a finite number >= 0, got -1e-05"),
    (dict(weight_decay=NAN), "weight_decay must be a finite number >= 0, got nan"),
    (dict(warmup_epochs=-1), "warmup_epochs must be a finite number >= 0, got -1"),
    (dict(label_smoothing=1.0), "label_smoothing must be a finite number in [0, 1), got 1.0"),
    (dict(label_smoothing=-0.1), "label_smoothing must be a finite number in [0, 1), got -0.1"),
    (dict(drop_path_rate=1), "drop_path_rate must be a finite number in [0, 1), got 1"),
    (dict(ema_decay=1.0), "ema_decay must be a finite number in [0, 1), got 1.0"),
    (dict(ema_decay=NAN), "ema_decay must be a finite number in [0, 1), got nan"),
    (dict(val_fraction=0), "val_fraction must be a finite number in (0, 1), got 0"),
    (dict(val_fraction=1), "val_fraction must be a finite number in (0, 1), got 1"),
    (dict(dropout=(0.5, 1.5)), "dropout[1] must be a finite number in [0, 1), got 1.5"),
    (dict(dropout=(-0.1, 0.2)), "dropout[0] must be a finite number in [0, 1), got -0.1"),
    (dict(dropout=(0.1,)), "dropout must be a pair (first stage, last stage) of numbers in [0, 1), got (0.1,)"),
    (dict(dropout=(0.1, 0.2, 0.3)), "dropout must be a pair (first stage, last stage)"),
    (dict(dropout=0.1), "dropout must be a pair (first stage, last stage) of numbers in [0, 1), got 0.1"),
    (dict(randaug=(0, 31)), "randaug[1] must be a finite number in [0, 30], got 31"),
    (dict(randaug=(-1, 5)), "randaug[0] must be a finite number in [0, 30], got -1"),
    (dict(mixup=(0, NAN)), "mixup[1] must be a finite number >= 0, got nan"),
    (dict(mixup=(-0.2, 0)), "mixup[0] must be a finite number >= 0, got -0.2"),
    (dict(optimizer="lamb"), "optimizer must be adamw, rmsprop or sgd, got 'lamb'"),
    (dict(lr_schedule="step"), "lr_schedule must be cosine or exponential, got 'step'"),
    (dict(schedule="table6"), "schedule must be custom, paper or released, got 'table6'"),
    (dict(progressive=1), "progressive must be True or False, got 1"),
    (dict(out=3), "out must be a folder path (str) or None, got 3"),
    (dict(dataset="cifar"), "dataset must be clutter or shapes, got 'cifar'"),
    (dict(arch=3), "arch must be a file path (str) or None, got 3"),
    (dict(arch="no_such_arch.json"), "arch must be an existing stage-table JSON file, got 'no_such_arch.json': "
                                     "it does not exist"),
])
def test_every_config_field_is_checked_at_construction(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(**overrides)


def test_data_must_be_an_existing_folder(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(ValueError, match=re.escape(f"data must be an existing folder with one subfolder per "
                                                   f"class, got {str(missing)!r}: it does not exist")):
        TrainConfig(data=str(missing))
    a_file = tmp_path / "file.png"
    a_file.write_bytes(b"x")
    with pytest.raises(ValueError, match=re.escape(f"got {str(a_file)!r}: it is not a folder")):
        TrainConfig(data=a_file)


def test_dataset_chooses_the_built_in_data_and_its_default_folder(tmp_path, monkeypatch):
    from tinyeffnet.data import ClutterDataset, ShapesDataset
    from tinyeffnet.train import build_data, output_folder

    train_set, val_set = build_data(TrainConfig(dataset="clutter", train_samples=32, val_samples=16))
    assert isinstance(train_set, ClutterDataset) and isinstance(val_set, ClutterDataset)
    assert (len(train_set), val_set.split, train_set.num_classes) == (32, "val", 16)
    assert isinstance(build_data(TrainConfig(train_samples=32, val_samples=16))[0], ShapesDataset)
    assert output_folder(TrainConfig(dataset="clutter")) == Path("runs/clutter")
    assert output_folder(TrainConfig()) == Path("runs/shapes")                  # the main job's folder stays
    with pytest.raises(ValueError, match="dataset and data are exclusive"):
        TrainConfig(dataset="clutter", data=tmp_path)
    assert TrainConfig(data=tmp_path).dataset == "shapes"                       # the default is no conflict


def test_a_checkpoint_from_before_dataset_and_arch_existed_still_resumes(tmp_path):
    # Older checkpoints have no "dataset" or "arch" in their settings: they were made with the defaults.
    train(out=str(tmp_path), progress=False, log=lambda *a: None, until_epoch=1, **TINY)
    arrays = load_checkpoint(tmp_path / CHECKPOINT)
    settings = json.loads(str(arrays["config"]))
    del settings["dataset"], settings["arch"]
    arrays["config"] = np.array(json.dumps(settings, sort_keys=True))
    save_checkpoint(tmp_path / CHECKPOINT, arrays)
    rows = train(out=str(tmp_path), resume=True, progress=False, log=lambda *a: None, **TINY)
    assert [r["epoch"] for r in rows] == [2, 3, 4]
    with pytest.raises(ValueError, match="different settings: dataset='shapes' .now 'clutter'."):
        train(out=str(tmp_path), resume=True, progress=False, log=lambda *a: None, **{**TINY, "dataset": "clutter"})


def test_a_checkpoint_from_0_4_0_with_the_lr_schedule_named_schedule_still_resumes(tmp_path):
    # 0.4.0 recorded the learning-rate schedule as "schedule" and had no progressive preset.
    quiet = dict(progress=False, log=lambda *a: None)
    train(out=str(tmp_path), until_epoch=1, **quiet, **{**TINY, "lr_schedule": "exponential"})
    arrays = load_checkpoint(tmp_path / CHECKPOINT)
    settings = json.loads(str(arrays["config"]))
    assert (settings["schedule"], settings["lr_schedule"]) == ("custom", "exponential")
    del settings["schedule"]
    settings["schedule"] = settings.pop("lr_schedule")                       # the 0.4.0 layout
    arrays["config"] = np.array(json.dumps(settings, sort_keys=True))
    save_checkpoint(tmp_path / CHECKPOINT, arrays)
    with pytest.raises(ValueError, match=re.escape("different settings: lr_schedule='exponential' (now 'cosine')")):
        train(out=str(tmp_path), resume=True, **quiet, **TINY)
    with pytest.raises(ValueError, match=re.escape("schedule='custom' (now 'paper')")):
        train(out=str(tmp_path), resume=True, **quiet, **{**TINY, "lr_schedule": "exponential", "schedule": "paper"})
    rows = train(out=str(tmp_path), resume=True, **quiet, **{**TINY, "lr_schedule": "exponential"})
    assert [r["epoch"] for r in rows] == [2, 3, 4]
    settings = json.loads(str(load_checkpoint(tmp_path / CHECKPOINT)["config"]))
    assert (settings["schedule"], settings["lr_schedule"]) == ("custom", "exponential")   # rewritten in today's names


def test_upgrade_settings_renames_only_the_old_lr_schedule():
    from tinyeffnet.train import upgrade_settings

    old = {"schedule": "cosine", "epochs": 3}
    assert upgrade_settings(old) == {"lr_schedule": "cosine", "epochs": 3}
    assert old == {"schedule": "cosine", "epochs": 3}                                     # a new dict
    assert upgrade_settings({"schedule": "exponential"}) == {"lr_schedule": "exponential"}
    today = {"schedule": "paper", "lr_schedule": "cosine"}
    assert upgrade_settings(today) == today


def test_config_accepts_the_edges_and_stores_plain_types(tmp_path):
    cfg = TrainConfig(epochs=np.int64(3), label_smoothing=0, ema_decay=0.0, warmup_epochs=0, dropout=[0, 0.99],
                      randaug=np.array([30, 30]), mixup=(0, 2), data=tmp_path, out=tmp_path / "o")
    assert type(cfg.epochs) is int and cfg.dropout == (0.0, 0.99) and cfg.randaug == (30.0, 30.0)
    assert cfg.data == str(tmp_path) and cfg.out == str(tmp_path / "o")
    assert json.loads(cfg.to_json())["epochs"] == 3                  # np.int64 would not be JSON


def test_bad_dropout_fails_before_any_training(tmp_path):
    # Before the check, dropout=(0.5, 1.5) failed inside the Dropout layer after a whole stage.
    with pytest.raises(ValueError, match=re.escape("dropout[1] must be a finite number in [0, 1), got 1.5")):
        train(out=str(tmp_path), progress=False, log=lambda *a: None, **{**TINY, "dropout": (0.5, 1.5)})
    assert not (tmp_path / CHECKPOINT).exists()


# ------------------------------------------------------- defaults, small folders, where runs are written
def test_defaults_are_the_readme_main_job(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    messages = []
    trainer = Trainer(TrainConfig(), progress=False, log=messages.append)
    assert trainer.cfg.model == "efficientnetv2_tiny"
    assert trainer.batch_size == 64
    assert trainer.out == Path("runs/shapes")
    assert messages == []                                            # nothing chosen for the user to hear about


def write_image_folder(root, counts, size=8):
    rng = np.random.default_rng(0)
    from PIL import Image

    for cls, count in counts.items():
        (root / cls).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


SMALL = dict(epochs=1, stages=1, min_size=16, max_size=16, eval_size=16)


def test_a_small_folder_trains_with_a_batch_size_that_fits_and_its_own_out_folder(tmp_path, monkeypatch):
    # 50 images, 5 held out: 45 to train on. The default batch of 64 used to stop the run with
    # "batch_size 64 > num_samples 45 with drop_last=True"; and the run wrote into runs/shapes.
    data = write_image_folder(tmp_path / "my_photos", {"cat": 25, "dog": 25})
    monkeypatch.chdir(tmp_path)
    messages = []
    trainer = Trainer(TrainConfig(data=str(data), **SMALL), progress=False, log=messages.append)
    assert len(trainer.train_set) == 45
    assert trainer.batch_size == 32                                  # the largest power of two <= 45
    assert trainer.out == Path("runs/my_photos")
    assert any("writing to runs/my_photos/" in m for m in messages), messages
    assert any(m.startswith("batch size 32: the training set has 45 images") for m in messages), messages
    rows = trainer.run()
    assert rows[0]["step"] == 1                                      # one full batch of 32 per epoch
    assert (tmp_path / "runs" / "my_photos" / METRICS).exists()
    assert not (tmp_path / "runs" / "shapes").exists()


def test_an_explicit_batch_size_larger_than_the_training_set_says_what_to_do(tmp_path):
    data = write_image_folder(tmp_path / "data", {"a": 25, "b": 25})
    cfg = TrainConfig(data=str(data), batch_size=64, out=str(tmp_path / "out"), **SMALL)
    with pytest.raises(ValueError, match=re.escape("batch_size must be <= the number of training images (45), "
                                                   "got 64")) as caught:
        Trainer(cfg, progress=False, log=lambda *a: None)
    assert "leave it unset" in str(caught.value)


def test_built_in_data_smaller_than_64_images_also_fits(tmp_path):
    trainer = Trainer(TrainConfig(out=str(tmp_path), train_samples=40, **SMALL), progress=False, log=lambda *a: None)
    assert trainer.batch_size == 32


# -------------------------------------------------------------- what the user sees while it trains
class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_no_progress_bar_in_a_log_file_but_one_line_per_epoch(tmp_path, capsys):
    # stderr is not a terminal here (pytest captures it): a tqdm bar would write one redraw per step.
    messages = []
    rows = train(out=str(tmp_path), progress=True, log=messages.append, **TINY)
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "step/s" not in captured.err and "s/step" not in captured.err
    epoch_lines = [m for m in messages if m.startswith("epoch")]
    assert len(epoch_lines) == len(rows) == 4


def test_the_bar_is_drawn_on_a_terminal(tmp_path, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    train(out=str(tmp_path), progress=True, log=lambda *a: None, **{**TINY, "epochs": 2})
    drawn = terminal.getvalue()
    assert "\r" in drawn and "stage 1/2 epoch 1/2" in drawn and "stage 2/2 epoch 2/2" in drawn


def test_the_first_step_says_it_compiles_the_kernels(tmp_path):
    messages = []
    train(out=str(tmp_path), progress=False, log=messages.append, **{**TINY, "epochs": 1})
    assert messages[0].startswith("compiling the Numba kernels for the first step")
    assert re.fullmatch(r"first step done in \d+\.\d s", messages[1])
    assert sum("compiling" in m for m in messages) == 1


def test_stages_and_epochs_are_counted_from_1_everywhere(tmp_path):
    messages = []
    rows = train(out=str(tmp_path), progress=False, log=messages.append, **TINY)
    epoch_lines = [m for m in messages if m.startswith("epoch")]
    for row, line in zip(rows, epoch_lines):                        # the log line says what the row says
        assert line.startswith(f"epoch {row['epoch']:>3}/4 stage {row['stage']}/2 size {row['image_size']:>3}:")
    assert [(r["epoch"], r["stage"]) for r in rows] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    stages = progressive_schedule(TrainConfig(**TINY))
    assert [s.number for s in stages] == [1, 2] and [s.index for s in stages] == [0, 1]


def test_metrics_file_is_strict_json(tmp_path):
    train(out=str(tmp_path), progress=False, log=lambda *a: None, **{**TINY, "epochs": 1})

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    for line in (tmp_path / METRICS).read_text().splitlines():
        json.loads(line, parse_constant=refuse)


def test_plot_curves_leaves_the_matplotlib_backend_alone(tmp_path):
    # A notebook's inline backend must survive plot_curves (it used to call matplotlib.use("Agg")).
    import json
    import subprocess
    import sys

    rows = [{"epoch": e, "stage": 1, "image_size": 16, "seconds": float(e), "train_loss": 2.0 / e,
             "val_loss": 2.1 / e, "train_acc": 0.1 * e, "val_acc": 0.1 * e} for e in (1, 2)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    script = (
        "import sys, matplotlib; matplotlib.use('svg')\n"
        "from tinyeffnet.train import plot_curves\n"
        f"plot_curves({str(tmp_path / 'metrics.jsonl')!r}, {str(tmp_path / 'c.png')!r})\n"
        "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["svg", "False"], out
    assert (tmp_path / "c.png").stat().st_size > 0


def test_the_update_step_skips_the_images_gradient_and_gives_the_same_weights():
    # update_step runs EfficientNetV2.backward(..., input_gradient=False): the same parameter
    # gradients as the full backward (tests/nn/test_fast_paths.py), no dx for the images.
    from tinyeffnet.train.algorithm import update_step
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, 10, 4)
    models = [create_model("efficientnetv2_tiny", num_classes=10, drop_rate=0.0, drop_path_rate=0.0, seed=0)
              for _ in range(2)]
    seen = []
    original = type(models[0]).backward

    def recording(self, dlogits, input_gradient=True):
        seen.append(input_gradient)
        return original(self, dlogits, input_gradient)

    type(models[0]).backward = recording
    try:
        update_step(models[0], AdamW(models[0].parameters(), lr=1e-3), x, labels)
    finally:
        type(models[0]).backward = original
    assert seen == [False]
    models[1].zero_grad()
    logits = models[1](x)
    _, dlogits = ops.softmax_cross_entropy(logits, labels)
    models[1].backward(dlogits)
    for (name, p0), p1 in zip(models[0].named_parameters(), models[1].parameters()):
        np.testing.assert_array_equal(p0.grad, p1.grad, err_msg=name)
