"""Faults a long run meets, and what each must leave behind: a clear one-line message, and a last good
checkpoint that is finite and loads.

    divergence        NaN/Inf in the loss mid-epoch, in a weight / BatchNorm statistic / optimizer
                      buffer / EMA average at the last step of an epoch, or in the evaluation
    damaged files     a truncated, bit-flipped, empty, random, foreign or other model's checkpoint
    SIGKILL           during the checkpoint write, and during the metrics write

Faults are injected (a NaN put into one tensor at step k) rather than provoked with a huge learning
rate, so that each test knows exactly where the fault happened and what the message must say.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinyeffnet import cli
from tinyeffnet.files import BadFileError
from tinyeffnet.train import CHECKPOINT, METRICS, TrainConfig, Trainer, TrainingDiverged, load_checkpoint

# 64 images in batches of 16: 4 steps per epoch, 2 epochs, one stage each, 16 px.
# warmup_epochs and the other unnamed settings stay at their defaults, which the CLI uses too.
FAULT = dict(train_samples=64, val_samples=16, batch_size=16, stages=2, min_size=16, max_size=16,
             eval_size=16, epochs=2)
CLI_ARGS = ["--train-samples", "64", "--val-samples", "16", "--batch-size", "16", "--stages", "2",
            "--min-size", "16", "--max-size", "16", "--eval-size", "16", "--epochs", "2", "--no-progress-bar"]
STEPS_PER_EPOCH = 4


def quiet(*args):
    pass


def trainer(out, **overrides) -> Trainer:
    return Trainer(TrainConfig(out=str(out), **{**FAULT, **overrides}), progress=False, log=quiet)


def metrics_rows(out) -> list:
    """metrics.jsonl as strict JSON: NaN or Infinity in the file fails here."""
    def refuse(constant):
        raise AssertionError(f"metrics.jsonl holds {constant}, which is not JSON")

    path = Path(out) / METRICS
    if not path.exists():
        return []
    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]


def assert_good_checkpoint(out, epochs_done: int, steps_done: int) -> None:
    """The checkpoint loads, every float in it is finite, and it is the one of that point of the run."""
    arrays = load_checkpoint(Path(out) / CHECKPOINT)
    for name, value in arrays.items():
        if np.issubdtype(value.dtype, np.inexact):
            assert np.all(np.isfinite(value)), f"{name} is not finite in the kept checkpoint"
    assert int(arrays["counters.epoch"]) == epochs_done
    assert int(arrays["counters.global_step"]) == steps_done


def poison_after_step(monkeypatch, run: Trainer, step: int, poison) -> None:
    """Call ``poison(run)`` right after training step number ``step`` (counted from 1)."""
    real_step = run.train_step

    def step_then_poison(indices, stage):
        result = real_step(indices, stage)
        if run.counters.global_step == step:
            poison(run)
        return result

    monkeypatch.setattr(run, "train_step", step_then_poison)


# ------------------------------------------------------------------------------------------ divergence
@pytest.mark.parametrize("step, stage_epoch, kept", [
    (2, "stage 1/2, epoch 1/2", (0, 0)),      # mid-epoch in the first epoch: the initial checkpoint
    (7, "stage 2/2, epoch 2/2", (1, 4)),      # mid-epoch in the second: the end of epoch 1
])
def test_nan_loss_mid_epoch_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, step, stage_epoch, kept):
    run = trainer(tmp_path)
    real_forward = run.model.forward

    def forward(x):
        if run.model.training and run.counters.global_step == step - 1:     # the forward of step `step`
            return np.full((x.shape[0], 10), np.nan, dtype=np.float32)
        return real_forward(x)

    monkeypatch.setattr(run.model, "forward", forward)
    with pytest.raises(TrainingDiverged, match=re.escape(f"loss became nan at step {step} ({stage_epoch})")):
        run.run()
    assert_good_checkpoint(tmp_path, *kept)
    assert [r["epoch"] for r in metrics_rows(tmp_path)] == list(range(1, kept[0] + 1))


def _first_key(run: Trainer, prefix: str, contains: str = "") -> str:
    return next(k for k in run.state_arrays() if k.startswith(prefix) and contains in k)


def _poison_weight(run):
    run.model.classifier.weight.data[0, 0] = np.nan


def _poison_running_var(run):
    module = next(m for m in run.model.modules() if hasattr(m, "running_var"))
    module.running_var[0] = np.inf


def _poison_optimizer(run):
    buffers = run.optimizer.state[0]
    buffers[sorted(buffers)[0]].flat[0] = np.nan


def _poison_ema(run):
    run.ema.shadow[next(iter(run.ema.shadow))].flat[0] = np.nan


@pytest.mark.parametrize("poison, key_pattern", [
    (_poison_weight, r"model\.classifier\.weight"),
    (_poison_running_var, r"model\.\S+\.running_var"),
    (_poison_optimizer, r"optim\.state\.0\.\S+"),
    (_poison_ema, r"ema\.shadow\.\S+"),
], ids=["weight", "bn_running_var", "optimizer_state", "ema"])
def test_non_finite_state_at_the_last_step_of_an_epoch_is_never_saved(tmp_path, monkeypatch, poison, key_pattern):
    # The loss of every step is finite; only the state after the epoch's last step is not. Before the
    # check, the end-of-epoch checkpoint was written with it, and metrics.jsonl got "val_loss": NaN.
    run = trainer(tmp_path)
    last_step = 2 * STEPS_PER_EPOCH
    poison_after_step(monkeypatch, run, last_step, poison)
    expected = (rf"^{key_pattern} became non-finite \(1 of \d+ values NaN or Inf\) by step {last_step} "
                rf"\(stage 2/2, epoch 2/2\); stopped without saving\. The last good checkpoint "
                rf"{re.escape(str(tmp_path / CHECKPOINT))} is kept\.$")
    with pytest.raises(TrainingDiverged, match=expected):
        run.run()
    assert_good_checkpoint(tmp_path, 1, STEPS_PER_EPOCH)
    assert [r["epoch"] for r in metrics_rows(tmp_path)] == [1]


def test_nan_in_the_evaluation_stops_without_writing_a_row(tmp_path, monkeypatch):
    run = trainer(tmp_path)
    real_forward = run.model.forward

    def forward(x):
        if not run.model.training and run.counters.epoch == 1:      # evaluating after epoch 2
            return np.full((x.shape[0], 10), np.nan, dtype=np.float32)
        return real_forward(x)

    monkeypatch.setattr(run.model, "forward", forward)
    with pytest.raises(TrainingDiverged, match=re.escape(
            "val_loss became nan in the evaluation after step 8 (stage 2/2, epoch 2/2); stopped without saving")):
        run.run()
    assert_good_checkpoint(tmp_path, 1, STEPS_PER_EPOCH)
    assert [r["epoch"] for r in metrics_rows(tmp_path)] == [1]


def test_ctrl_c_after_a_diverged_step_does_not_save_it(tmp_path, monkeypatch):
    # A Ctrl-C saves the state of that step, unless the state is not finite.
    run = trainer(tmp_path)
    step = STEPS_PER_EPOCH + 2

    def poison_and_interrupt(r):
        _poison_weight(r)
        os.kill(os.getpid(), signal.SIGINT)

    poison_after_step(monkeypatch, run, step, poison_and_interrupt)
    try:
        with pytest.raises(TrainingDiverged, match=rf"^model\.classifier\.weight became non-finite \(1 of \d+ "
                                                   rf"values NaN or Inf\) by step {step} \(stage 2/2, epoch 2/2\)"):
            run.run()
    except KeyboardInterrupt:       # (uncaught, it would stop the whole pytest session)
        pytest.fail("the Ctrl-C saved the non-finite state and raised KeyboardInterrupt")
    assert_good_checkpoint(tmp_path, 1, STEPS_PER_EPOCH)


def test_the_kept_checkpoint_resumes_to_the_end(tmp_path, monkeypatch):
    run = trainer(tmp_path)
    poison_after_step(monkeypatch, run, 2 * STEPS_PER_EPOCH, _poison_weight)
    with pytest.raises(TrainingDiverged):
        run.run()
    rows = trainer(tmp_path).run(resume=True)
    assert [r["epoch"] for r in rows] == [2]
    assert [r["epoch"] for r in metrics_rows(tmp_path)] == [1, 2]
    assert_good_checkpoint(tmp_path, 2, 2 * STEPS_PER_EPOCH)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_a_real_divergence_from_a_huge_learning_rate(tmp_path):
    # The reproduction (lr 1e6): whatever step it happens at, nothing non-finite is written.
    with pytest.raises(TrainingDiverged, match=r"(became non-finite|loss became (nan|inf)).*stopped"):
        trainer(tmp_path, lr=1e6, epochs=4).run()
    arrays = load_checkpoint(tmp_path / CHECKPOINT)
    assert all(np.all(np.isfinite(v)) for v in arrays.values() if np.issubdtype(v.dtype, np.inexact))
    metrics_rows(tmp_path)                                       # strict JSON, if anything was written


# ------------------------------------------------------------------------------ damaged checkpoints
@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """An out folder after one of two epochs: checkpoint.npz and metrics.jsonl."""
    out = tmp_path_factory.mktemp("good")
    trainer(out).run(until_epoch=1)
    return out


def snapshot(folder) -> dict:
    return {p.name: p.read_bytes() for p in Path(folder).iterdir()}


def _flip_bit(data: bytes, position: int) -> bytes:
    data = bytearray(data)
    data[position] ^= 0x10
    return bytes(data)


def _other_model_checkpoint(out) -> bytes:
    other = trainer(Path(out) / "other", model="efficientnetv2_b0")
    other.out.mkdir()
    other.save()
    return (other.out / CHECKPOINT).read_bytes()


def _with_arrays(data: bytes, out, change) -> bytes:
    path = Path(out) / "edited.npz"
    path.write_bytes(data)
    arrays = load_checkpoint(path)
    change(arrays)
    np.savez(path, **arrays)
    return path.read_bytes()


DAMAGE = {
    # name: (make the bad bytes from the good ones, exception type, what the message must say)
    "truncated": (lambda good, out: good[: len(good) // 2], BadFileError, "is damaged or not an .npz archive"),
    "tail_cut": (lambda good, out: good[:-30], BadFileError, "is damaged or not an .npz archive"),
    "bit_flip_in_data": (lambda good, out: _flip_bit(good, len(good) // 2), BadFileError, "is damaged"),
    "bit_flip_in_magic": (lambda good, out: _flip_bit(good, 1), BadFileError, "is not an .npz file"),
    "empty": (lambda good, out: b"", BadFileError, "is empty (0 bytes)"),
    "random_bytes": (lambda good, out: np.random.default_rng(0).bytes(5000), BadFileError, "is not an .npz file"),
    "other_model": (lambda good, out: _other_model_checkpoint(out), ValueError,
                    "different settings: model='efficientnetv2_b0' (now 'efficientnetv2_tiny')"),
    "other_settings": (lambda good, out: _with_arrays(good, out, lambda a: a.update(
        config=np.array(str(a["config"]).replace('"seed": 0', '"seed": 5')))), ValueError,
        "different settings: seed=5 (now 0)"),
    "weights_file_not_checkpoint": (lambda good, out: _with_arrays(good, out, lambda a: a.pop("config")),
                                    ValueError, "is not a tinyeffnet training checkpoint"),
    "arrays_of_another_shape": (lambda good, out: _with_arrays(good, out, lambda a: a.update(
        {"model.classifier.weight": np.zeros((3, 3), np.float32)})), ValueError, "its arrays do not fit this run"),
    "saved_with_nan": (lambda good, out: _with_arrays(good, out, lambda a: a["model.classifier.bias"].__setitem__(
        0, np.nan)), ValueError, "model.classifier.bias holds 1 NaN or Inf values"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_checkpoint_is_refused_in_one_line_and_the_folder_is_untouched(good_run, tmp_path, damage):
    make_bad, error_type, says = DAMAGE[damage]
    out = tmp_path / "run"
    shutil.copytree(good_run, out)
    (out / CHECKPOINT).write_bytes(make_bad((good_run / CHECKPOINT).read_bytes(), tmp_path))
    before = snapshot(out)
    with pytest.raises(error_type) as caught:
        trainer(out).run(resume=True)
    message = str(caught.value)
    assert str(out / CHECKPOINT) in message and says in message, message
    assert "\n" not in message
    assert snapshot(out) == before


def test_cli_exits_2_with_one_error_line_for_a_damaged_checkpoint(good_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(good_run, out)
    good = (out / CHECKPOINT).read_bytes()
    (out / CHECKPOINT).write_bytes(good[: len(good) // 3])
    before = snapshot(out)
    assert cli.main(["train", *CLI_ARGS, "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: checkpoint {out / CHECKPOINT} is damaged"), err
    assert snapshot(out) == before


# --------------------------------------------------------------------------------------------- SIGKILL
WRITER = r"""
import sys
import numpy as np
from tinyeffnet.train import save_checkpoint

path, i = sys.argv[1], 0
save_checkpoint(path, {"version": np.array(i), "weights": np.full(6_000_000, i, np.float32)})
print("ready", flush=True)
while True:                          # 24 MB per write: a SIGKILL lands mid-write most of the time
    i += 1
    save_checkpoint(path, {"version": np.array(i), "weights": np.full(6_000_000, i, np.float32)})
"""


def test_sigkill_during_the_checkpoint_write_leaves_the_old_or_the_new_one(tmp_path):
    path = tmp_path / CHECKPOINT
    tmp = tmp_path / (CHECKPOINT + ".tmp")
    killed_mid_write = 0
    for threshold in (1 << 20, 8 << 20, 16 << 20):       # kill at three depths into the write
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        try:
            assert writer.stdout.readline().strip() == "ready"
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    if tmp.stat().st_size >= threshold:
                        break
                except FileNotFoundError:
                    pass
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
        killed_mid_write += tmp.exists()
        arrays = load_checkpoint(path)                    # never torn: the old file or the new one
        assert np.all(arrays["weights"] == int(arrays["version"]))
        assert arrays["weights"].size == 6_000_000
    assert killed_mid_write >= 1, "no kill landed during a write: the test proved nothing"


def test_a_leftover_tmp_file_is_ignored_on_resume(good_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(good_run, out)
    good = (out / CHECKPOINT).read_bytes()
    (out / (CHECKPOINT + ".tmp")).write_bytes(good[: len(good) // 2])     # what a SIGKILL leaves
    rows = trainer(out).run(resume=True)
    assert [r["epoch"] for r in rows] == [2]
    assert_good_checkpoint(out, 2, 2 * STEPS_PER_EPOCH)
    assert not (out / (CHECKPOINT + ".tmp")).exists()


def test_a_torn_metrics_line_is_dropped_on_resume(good_run, tmp_path):
    # A SIGKILL in the middle of appending a metrics line leaves half a line; resume must not choke on it.
    out = tmp_path / "run"
    shutil.copytree(good_run, out)
    with open(out / METRICS, "a") as f:
        f.write('{"epoch": 2, "stage": 2, "image_si')
    trainer(out).run(resume=True)
    assert [r["epoch"] for r in metrics_rows(out)] == [1, 2]
