"""`tinyeffnet bench train-vs-torch`: time-to-accuracy of the main job against PyTorch doing the same job.

The job is ``tinyeffnet train`` with its defaults (``train.TrainConfig``: efficientnetv2_tiny on the
built-in shapes data, 12 epochs, progressive learning 32 -> 48 px, AdamW, cosine lr, EMA, evaluated
at 48 px). The contenders:

    tinyeffnet   the main job itself: ``train.Trainer(cfg).run()``, checkpoints and metrics included
    torch        the same job in PyTorch eager, NCHW (``torch_job``)
    torch-cl     the same, channels_last memory format (model and input)

"The same job" means the same everything but the framework. The torch loop takes from a
``Trainer(cfg)`` built in its own process: the datasets, the stage schedule (sizes, dropout,
RandAugment, mixup per stage), the ``BatchIterator`` (the same batch order), the augmentation
generator (the same flips, RandAugment ops and mixup draws, in the same order), the lr schedule
(the same value at every step), and the freshly built model, which ``interop.torchvision_model``
turns into a torchvision ``EfficientNet`` with identical initial weights and the same drop-path
rates. Its optimizer is ``torch.optim.AdamW`` with the same hyperparameters and the same
parameters exempt from weight decay (tinyeffnet's ``Parameter.decay``); the loss is cross-entropy
with the same label smoothing on the same (mixup: soft) targets; the EMA has the same decay and
warmup, copies BatchNorm's statistics as ours does, and is evaluated at the eval size in eval mode.
Only the random draws inside the network (dropout, drop path) come from torch's generator.
``tests/test_bench_train_vs_torch.py`` checks the identical start, the same first batch and the
same lr at every step.

What is measured, per contender and epoch: the wall time since the job started (data generation,
model building, Numba's compilation or cache loading, training, evaluation, and for tinyeffnet its
per-epoch checkpoint and metrics writes: the user's experience, nothing excluded) and the
validation accuracy. From those: the wall time until the validation accuracy first reaches the
target (default 90%; None if never), the total wall time and the final accuracy, and the ratios
tinyeffnet / torch of both times (below 1: tinyeffnet is faster). The first step (for tinyeffnet:
Numba compiling the kernels, or loading them from its cache, plus one step) is reported apart, as
is the process start (imports) before the clock starts. Each contender runs in its own process
(torch never shares one with Numba's threads: docs/DESIGN.md, section 9.1), the contenders
alternate over the rounds (the order rotates each round), and the table gives medians over rounds.
The headline ratio is against the faster torch layout on this machine ("best torch").
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

_START = time.perf_counter()  # as early as possible: the imports count as start-up

import numpy as np  # noqa: E402

CONTENDERS = ("tinyeffnet", "torch", "torch-cl")
PEERS = CONTENDERS[1:]
TARGET = 0.90
EVAL_BATCH = 250                   # algorithm.evaluate's batch size
_RESULT = "result:"                # the worker's last stdout line: "result: {json}"


# ----------------------------------------------------------------------------------------- the job
def job_config(epochs: int | None = None, train_samples: int | None = None, val_samples: int | None = None,
               image_size: int | None = None, out: str | None = None, **overrides):
    """The main job's ``TrainConfig`` (its defaults), with the given overrides; ``image_size``
    sets the first and last training size and the eval size to one value (tiny test jobs)."""
    from tinyeffnet.train import TrainConfig

    named = {"epochs": epochs, "train_samples": train_samples, "val_samples": val_samples, "out": out}
    if image_size is not None:
        named.update(min_size=image_size, max_size=image_size, eval_size=image_size)
    return dataclasses.replace(TrainConfig(), **{k: v for k, v in named.items() if v is not None}, **overrides)


def tinyeffnet_job(cfg, log=print) -> dict:
    """The main job, ``Trainer(cfg).run()``, timed from the moment it starts building its data.

    Epoch ends and the first step are timed from the Trainer's own messages (it logs "compiling
    ...", "first step done ..." and one line per epoch after the epoch's checkpoint is written),
    so the run is exactly what ``tinyeffnet train`` does."""
    from tinyeffnet.train import Trainer

    start = time.perf_counter()
    stamps = {"compiling": [], "first step done": [], "epoch ": []}

    def timed_log(message: str) -> None:
        for prefix, times in stamps.items():
            if message.startswith(prefix):
                times.append(time.perf_counter() - start)
        log(message)

    rows = Trainer(cfg, progress=False, log=timed_log).run()
    total = time.perf_counter() - start
    if len(stamps["epoch "]) != len(rows) or not stamps["compiling"] or not stamps["first step done"]:
        raise RuntimeError(f"bench train-vs-torch: the Trainer's messages changed: {len(rows)} epochs ran, "
                           f"{len(stamps['epoch '])} epoch lines were logged; update tinyeffnet_job")
    curve = [_curve_point(row, wall) for row, wall in zip(rows, stamps["epoch "])]
    return {"curve": curve, "total_s": total,
            "first_step_s": stamps["first step done"][0] - stamps["compiling"][0]}


def _curve_point(row: dict, wall_s: float) -> dict:
    keys = ("epoch", "stage", "image_size", "train_loss", "val_loss", "val_acc")
    return {**{k: row[k] for k in keys}, "wall_s": wall_s}


def torch_model(recipe, channels_last: bool = False):
    """The torchvision twin of the Trainer's freshly built model: identical weights (the zeroed
    classifier included), BatchNorm settings and drop-path rates; NCHW or channels_last."""
    import torch

    from tinyeffnet.interop import torchvision_model

    net = torchvision_model(recipe.model).train()
    return net.to(memory_format=torch.channels_last) if channels_last else net


def torch_param_groups(recipe, net, weight_decay: float) -> list:
    """AdamW's two groups: with weight decay the parameters tinyeffnet decays (``Parameter.decay``:
    not BatchNorm's gamma/beta, not biases), the others without; each torchvision parameter is
    matched to ours by name (``interop.key_map``). A parameter with no match is an error."""
    from tinyeffnet.interop import key_map

    ours = dict(recipe.model.named_parameters())
    decays = {theirs: ours[mine].decay for mine, theirs, _ in key_map(recipe.model) if mine in ours}
    unmatched = [name for name, _ in net.named_parameters() if name not in decays]
    if unmatched:
        raise ValueError(f"bench train-vs-torch: torchvision parameters with no tinyeffnet twin: {unmatched[:3]}")
    groups = {True: [], False: []}
    for name, p in net.named_parameters():
        groups[decays[name]].append(p)
    return [{"params": groups[True], "weight_decay": weight_decay}, {"params": groups[False], "weight_decay": 0.0}]


def _to_torch(images: np.ndarray, channels_last: bool):
    """(N, S, S, 3) float32 -> (N, 3, S, S): a view whose memory is channels_last, or an NCHW copy."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    return x if channels_last else x.contiguous()


def torch_job(cfg, channels_last: bool = False, log=print, on_step=None) -> dict:
    """Algorithm 1 in PyTorch, on the main job's own data, schedule, generators and initial weights
    (a ``Trainer(cfg)`` of this process supplies them; its model never runs). on_step(x, lr), if
    given, sees each step's input (N, 3, S, S) and lr."""
    import torch
    import torch.nn.functional as F

    from tinyeffnet.data import mixup_apply, mixup_params
    from tinyeffnet.train import Trainer, augment, normalize

    start = time.perf_counter()
    recipe = Trainer(cfg, progress=False, log=log)            # data, stages, batches, generators, model
    torch.manual_seed(cfg.seed)                               # dropout and drop path draw from torch
    net = torch_model(recipe, channels_last)
    optimizer = torch.optim.AdamW(torch_param_groups(recipe, net, cfg.weight_decay), lr=cfg.lr)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    shadow = [p.detach().clone() for p in params] if cfg.ema_decay > 0 else None   # the EMA weights
    steps, step, curve, first_step_s = len(recipe.batches), 0, [], None
    for stage in recipe.stages:                               # S_i, Phi_i
        net.classifier[0].p = stage.dropout                   # Phi_i's dropout before the classifier
        for epoch in stage.epochs:
            step_start, loss_sum = time.perf_counter(), 0.0
            for indices in recipe.batches:                    # position is past this batch now
                images, labels = recipe.train_set.batch(indices, stage.image_size)     # (B, S, S, 3)
                images, targets = augment(images, stage, recipe.aug_rng), labels       # flip + RandAugment
                if stage.mixup > 0:
                    lam, perm = mixup_params(len(labels), stage.mixup, recipe.aug_rng)
                    images, targets = mixup_apply(images, labels, recipe.model.num_classes, lam, perm)
                lr = recipe.lr_at(epoch + recipe.batches.position / (steps * recipe.batch_size))
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x = _to_torch(normalize(images), channels_last)                        # (B, 3, S, S)
                loss = F.cross_entropy(net(x), torch.from_numpy(targets), label_smoothing=cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if shadow is not None:                        # d = min(decay, (1 + n) / (10 + n)): EMA warmup
                    d = min(cfg.ema_decay, (1.0 + step) / (10.0 + step))
                    with torch.no_grad():
                        torch._foreach_mul_(shadow, d)
                        torch._foreach_add_(shadow, params, alpha=1.0 - d)
                loss_sum, step = loss_sum + loss.item(), step + 1
                if first_step_s is None:
                    first_step_s = time.perf_counter() - step_start
                if on_step is not None:
                    on_step(x, lr)
            val_loss, val_acc = _torch_evaluate(net, params, shadow, recipe.val_set, cfg.eval_size, channels_last)
            row = {"epoch": epoch + 1, "stage": stage.number, "image_size": stage.image_size,
                   "train_loss": loss_sum / steps, "val_loss": val_loss, "val_acc": val_acc}
            curve.append(_curve_point(row, time.perf_counter() - start))
            log(f"epoch {epoch + 1:>3}/{cfg.epochs} size {stage.image_size:>3}: val acc {val_acc:.3f}, "
                f"{curve[-1]['wall_s']:.0f} s")
    return {"curve": curve, "total_s": time.perf_counter() - start, "first_step_s": first_step_s}


def _torch_evaluate(net, params, shadow, dataset, image_size: int, channels_last: bool) -> tuple:
    """``algorithm.evaluate_with_ema`` in torch: (mean loss, accuracy) in eval mode at the eval size,
    with the EMA weights swapped in (BatchNorm's live statistics, as ours), restored after."""
    import torch
    import torch.nn.functional as F

    from tinyeffnet.train import normalize

    with torch.no_grad():
        saved = [p.detach().clone() for p in params] if shadow is not None else None
        if shadow is not None:
            torch._foreach_copy_(params, shadow)
        net.eval()
        total_loss, correct = 0.0, 0
        for first in range(0, len(dataset), EVAL_BATCH):
            images, labels = dataset.batch(np.arange(first, min(first + EVAL_BATCH, len(dataset))), image_size)
            logits = net(_to_torch(normalize(images), channels_last))                   # (b, classes)
            labels = torch.from_numpy(labels)
            total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += int((logits.argmax(dim=1) == labels).sum())
        net.train()
        if saved is not None:
            torch._foreach_copy_(params, saved)
    return total_loss / len(dataset), correct / len(dataset)


# ----------------------------------------------------------------------------------------- workers
def run_worker(contender: str, cfg, log=print) -> dict:
    """One contender's whole job in this process: its curve, times, start-up and code paths."""
    from tinyeffnet.bench.train_step import _paths

    startup_s = time.perf_counter() - _START
    if contender == "tinyeffnet":
        report = tinyeffnet_job(cfg, log)
    else:
        report = torch_job(cfg, channels_last=contender == "torch-cl", log=log)
    return {**report, "startup_s": startup_s, "paths": _paths(contender)}


def _spawn(contender: str, cfg, isa: str, cache_dir: str | None, progress) -> dict:
    """Run one contender in a process of its own; its messages go to ``progress`` as they come."""
    from tinyeffnet.bench.train_step import contender_environment

    cmd = [sys.executable, os.path.abspath(__file__), "--worker", contender, "--config", cfg.to_json()]
    result = None
    env = contender_environment(contender, isa, cache_dir)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) as proc:
        for line in proc.stdout:
            if line.startswith(_RESULT):
                result = json.loads(line[len(_RESULT):])
            else:
                progress(f"  {contender}: {line.rstrip()}")
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"bench train-vs-torch: the {contender} worker failed (exit code {proc.returncode}; "
                           f"its error is printed above)")
    return result


# ----------------------------------------------------------------------------------------- results
def _check_run_options(peers, isa: str, rounds, target) -> tuple:
    peers = tuple(peers)
    if not peers or any(p not in PEERS for p in peers):
        raise ValueError(f"bench train-vs-torch: peers must be one or more of {', '.join(PEERS)}, got {list(peers)}")
    if isa not in ("native", "avx2"):
        raise ValueError(f'bench train-vs-torch: isa must be "native" or "avx2", got {isa!r}')
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"bench train-vs-torch: rounds must be an int >= 1, got {rounds!r}")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1:
        raise ValueError(f"bench train-vs-torch: target must be a validation accuracy in (0, 1], got {target!r}")
    return peers


def time_to_target(curve: list, target: float):
    """The wall time at the end of the first epoch whose validation accuracy reaches ``target``, or None."""
    return next((point["wall_s"] for point in curve if point["val_acc"] >= target), None)


def _median(values: list):
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def summarize(runs: list, target: float) -> dict:
    """One contender's rounds: medians (time to target over the rounds that reached it), the last curve."""
    reached = [time_to_target(run["curve"], target) for run in runs]
    return {"time_to_target_s": _median(reached), "reached": sum(t is not None for t in reached),
            "total_s": _median([run["total_s"] for run in runs]),
            "final_acc": _median([run["curve"][-1]["val_acc"] for run in runs]),
            "first_step_s": _median([run["first_step_s"] for run in runs]),
            "startup_s": _median([run["startup_s"] for run in runs]),
            "rounds": runs, "curve": runs[-1]["curve"], "paths": runs[-1]["paths"]}


def _ratio(ours, theirs):
    return None if ours is None or theirs is None else ours / theirs


def ratios(contenders: dict, peers: tuple) -> tuple:
    """({peer or "best torch": {"time_to_target": r, "total": r}}, the best torch layout by total time)."""
    best = min(peers, key=lambda p: contenders[p]["total_s"])
    ours = contenders["tinyeffnet"]
    out = {}
    for name, peer in [(p, p) for p in peers] + [("best torch", best)]:
        out[name] = {"time_to_target": _ratio(ours["time_to_target_s"], contenders[peer]["time_to_target_s"]),
                     "total": _ratio(ours["total_s"], contenders[peer]["total_s"])}
    return out, best


def run(rounds: int = 1, target: float = TARGET, peers=PEERS, isa: str = "native", progress=print,
        cold_cache: bool = False, epochs: int | None = None, train_samples: int | None = None,
        val_samples: int | None = None, image_size: int | None = None, **overrides) -> dict:
    """Alternate tinyeffnet and the torch peers on the main job (with overrides), ``rounds`` times.

    cold_cache: give tinyeffnet an empty Numba cache (its first step then compiles every kernel, as
    on a first run); by default it uses the cache a previous run left. The job writes its
    checkpoints into a temporary folder, never over runs/shapes."""
    from tinyeffnet.bench.timing import machine_line

    peers = _check_run_options(peers, isa, rounds, target)
    contenders = ("tinyeffnet",) + peers
    samples = {c: [] for c in contenders}
    with tempfile.TemporaryDirectory(prefix="tinyeffnet-vs-torch-") as scratch:
        cfg = job_config(epochs, train_samples, val_samples, image_size, out=os.path.join(scratch, "run"), **overrides)
        for r in range(rounds):
            for contender in contenders[r % len(contenders):] + contenders[:r % len(contenders)]:
                progress(f"round {r + 1}/{rounds}: {contender} ...")
                cache = os.path.join(scratch, f"numba-{r}") if cold_cache and contender == "tinyeffnet" else None
                samples[contender].append(_spawn(contender, cfg, isa, cache, progress))
    summary = {c: summarize(runs, target) for c, runs in samples.items()}
    ratio, best = ratios(summary, peers)
    job = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "out"}
    return {"job": job, "target": target, "rounds": rounds, "isa": isa, "cold_cache": cold_cache,
            "machine": machine_line(), "contenders": summary, "ratio": ratio, "best_torch": best}


def _seconds(value) -> str:
    return "never" if value is None else f"{value:.1f} s"


def _times(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_table(results: dict) -> str:
    """The summary as Markdown: one row per contender, then the per-epoch curves side by side."""
    target, names = results["target"], list(results["contenders"])
    job = results["job"]
    lines = [f"**Time to accuracy**: `tinyeffnet train` ({job['model']}, {job['train_samples']} images, "
             f"{job['epochs']} epochs, {job['min_size']}->{job['max_size']} px, eval {job['eval_size']} px) "
             f"against PyTorch doing the same job; {results['isa']} ISA, {results['rounds']} round(s)",
             f"on {results['machine']}", "",
             f"| contender | time to {target:.0%} val acc | total | final val acc | first step | start-up "
             f"| tinyeffnet / it: to {target:.0%} | tinyeffnet / it: total |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in names:
        c, r = results["contenders"][name], results["ratio"].get(name, {})
        lines.append(f"| {name} | {_seconds(c['time_to_target_s'])} | {_seconds(c['total_s'])} | "
                     f"{c['final_acc']:.3f} | {_seconds(c['first_step_s'])} | {_seconds(c['startup_s'])} | "
                     f"{_times(r.get('time_to_target'))} | {_times(r.get('total'))} |")
    best = results["ratio"]["best torch"]
    lines += ["", f"headline, against the faster torch layout here ({results['best_torch']}): tinyeffnet / torch = "
              f"{_times(best['time_to_target'])} to {target:.0%}, {_times(best['total'])} in total "
              f"(below 1: tinyeffnet is faster)", "",
              "| epoch | size | " + " | ".join(f"{n} s | {n} acc" for n in names) + " |",
              "|---:|---:|" + "---:|---:|" * len(names)]
    for i, point in enumerate(results["contenders"][names[0]]["curve"]):
        cells = [f"{results['contenders'][n]['curve'][i]['wall_s']:.1f} | "
                 f"{results['contenders'][n]['curve'][i]['val_acc']:.3f}" for n in names]
        lines.append(f"| {point['epoch']} | {point['image_size']} | " + " | ".join(cells) + " |")
    cache = "empty (cold)" if results["cold_cache"] else "as left by earlier runs"
    lines += ["", "wall time since the job started (data, model, compile, train, eval, tinyeffnet's checkpoints); "
              "first step: compile or cache load + one step; start-up: process start and imports, before the clock; "
              f"medians over rounds; Numba cache {cache}",
              "paths taken: " + "; ".join(f"{n}: {results['contenders'][n]['paths']}" for n in names)]
    return "\n".join(lines)


def _main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="tinyeffnet/bench/train_vs_torch.py")
    parser.add_argument("--worker", choices=list(CONTENDERS), required=True)
    parser.add_argument("--config", required=True, help="the TrainConfig as JSON (TrainConfig.to_json)")
    args = parser.parse_args(argv)
    from tinyeffnet.train import TrainConfig

    cfg = TrainConfig(**json.loads(args.config))
    report = run_worker(args.worker, cfg, log=lambda message: print(message, flush=True))
    print(_RESULT + json.dumps(report), flush=True)


if __name__ == "__main__":
    _main()
