"""`tinyeffnet bench claims`: the paper's claims about EfficientNetV2's design, measured on this CPU.

EfficientNetV2 (Tan & Le, ICML 2021, section 3.3) came out of a training-aware search whose reward
counts training step time and parameters as well as accuracy. The paper reads four design choices
out of the network it found, each against EfficientNet (V1):

    (a) Fused-MBConv in the early stages: a k x k conv replaces the 1x1 expand + k x k depthwise
        pair. More FLOPs, but dense convs use the hardware better than depthwise ones (Table 3:
        EfficientNet-B4 with stages 2-4 fused trains 1.38x faster on TPU, 1.39x on V100, with 1.7x
        the FLOPs).
    (b) Smaller expansion ratios (4 instead of 6) "since smaller expansion ratios tend to have less
        memory access overhead".
    (c) 3x3 kernels instead of 5x5, with more layers to make up for the smaller receptive field.
    (d) No last stride-1 stage (V1's stage 7), "perhaps due to its large parameter size and memory
        access overhead".

and, as a whole (Table 3's setting and Figure 1), EfficientNetV2-S trains faster than EfficientNet-B4
at a similar accuracy.

How each is measured here
-------------------------
Part 1, the ablation (``run_ablation``). A V1-style baseline at the size of efficientnetv2_tiny
(``BASELINE``: all MBConv with SE 0.25, expansion 6, 5x5 kernels in the stages where V1 has them,
V1's last stride-1 stage), then each claim switched on ALONE (``FUSED``, ``EXPAND4``, ``KERNEL3``,
``NO_LAST``), then all four together (``ALL_FOUR``, which is exactly ``models.V2_TINY``). For each
table, at one image size:

    params, MACs         ``analysis.totals`` (conv + linear multiply-adds, per image)
    activation memory    ``analysis.totals``: bytes of the tensors the forward keeps, per image
    bytes moved          an estimate (``traffic``): every layer of the forward reads its input(s) and
                         weights once and writes its output once, float32, nothing reused from a cache
                         (at batch 64 the tensors are MBs, far beyond L2); the backward reads the
                         upstream gradient, the cached tensor and the weights and writes the input and
                         weight gradients, about twice the forward's traffic; AdamW reads and writes
                         weights, gradient and two moments (7 passes over the parameters). So
                         train bytes = 3 x forward bytes + 7 x 4 x params. A lower bound: BN's two
                         passes, im2col's copies and the Winograd transforms move more.
    intensity            forward MACs / forward bytes: MACs per byte moved (the roofline's x-axis)
    step time            one training step (forward, loss, backward, AdamW) at the training batch and
                         size, each table in a process of its own, the tables alternating over rounds
                         (the order rotates), per round the median of its timed steps; median, min and
                         max over rounds
    accuracy at budget   the built-in task (``tinyeffnet train``'s data, one fixed image size, no
                         progressive learning, light regularization), trained for the same wall-time
                         budget by every table. The training API has no time limit, so the number of
                         epochs is planned from the measured step time:
                             epochs = max(1, floor(budget / (steps_per_epoch * step + eval)))
                         (eval = the validation forward, a third of a step per batch), so that each run
                         gets a whole cosine schedule. The seconds a run really took (the runner's own
                         train + eval clock, less the first step, which loads the compiled kernels) are
                         reported beside it. 3 seeds (data and init), mean, min and max.

Part 2, V1 against V2 (``run_v1_vs_v2``). Training step time and peak memory of efficientnet_b4 and
efficientnetv2_s at one resolution (default 128 px, batch 8, 1000 classes), in tinyeffnet and in
PyTorch eager (torchvision's own ``efficientnet_b4`` / ``efficientnet_v2_s`` builders), each in its
own process, alternating; peak memory is the worker's peak resident set (ru_maxrss) and its growth
over the resident set before the model was built. Ratios V2-S / B4 per framework. Then the tiny
pair (``BASELINE``, the V1-like tiny network, against ``V2_TINY``) trained on the built-in task for
the same number of epochs: time to a target validation accuracy, final accuracy, 3 seeds.

Results are JSON-ready dicts with ``machine.describe()`` in each; ``format_ablation`` and
``format_v1_vs_v2`` print them as Markdown tables. Nothing here is pass/fail: on a shared machine a
timing is a sample, read its range.
"""
from __future__ import annotations

import json
import math
import os
import resource
import tempfile
import time
from dataclasses import replace

_START = time.perf_counter()

import numpy as np  # noqa: E402

from tinyeffnet.bench.workers import print_result, run_worker  # noqa: E402
from tinyeffnet.models.config import V2_TINY, Stage  # noqa: E402

HEAD = 320                     # efficientnetv2_tiny's head conv, for every table here
NUM_CLASSES = 10               # the built-in task
ADAMW = dict(lr=1e-3, weight_decay=0.05)


def _stages(*rows) -> tuple:
    return tuple(Stage(*row) for row in rows)


# ------------------------------------------------------------------------------------ the tables
# The V1-like baseline at efficientnetv2_tiny's size: EfficientNet-B0's stages 1-5 with tiny's
# channels (16, 24, 32, 64, 80), then V1's last stride-1 stage (B0's stage 7: r1, 192 -> 320, here
# 80 -> 128). Like V1: all MBConv with SE 0.25, expansion 6 except stage 1 (V1's MBConv1), 5x5
# depthwise kernels in stages 3 and 5 (where B0 has them), 3x3 elsewhere. The 5x5 stages have one
# layer each so that claim (c), two 3x3 layers for one 5x5, lands on V2_TINY's repeats.
#            block     r  k  s  e   in  out   se
BASELINE = _stages(
            ("mbconv", 1, 3, 1, 1,  16,  16, 0.25),
            ("mbconv", 2, 3, 2, 6,  16,  24, 0.25),
            ("mbconv", 1, 5, 2, 6,  24,  32, 0.25),
            ("mbconv", 2, 3, 2, 6,  32,  64, 0.25),
            ("mbconv", 1, 5, 1, 6,  64,  80, 0.25),
            ("mbconv", 1, 3, 1, 6,  80, 128, 0.25))


# Each claim as a change of a stage table, so that "all four" is literally the four in a row.
def fused_early(stages, count: int = 3) -> tuple:
    """(a) Fused-MBConv in the early stages (1-3, as V2): block "fused", the same kernel and
    expansion; no squeeze-excite there (V2's fused stages have none; Stage refuses se with "fused")."""
    return tuple(replace(s, block="fused", se=0.0) if i < count else s for i, s in enumerate(stages))


def expansion_4(stages) -> tuple:
    """(b) Expansion 6 -> 4 in every stage that had 6 (stage 1 keeps 1: V1's stage 1 already has it)."""
    return tuple(replace(s, expand=4) if s.expand == 6 else s for s in stages)


def kernel_3(stages) -> tuple:
    """(c) 5x5 -> 3x3, each 5x5 layer becoming two 3x3 layers: a 5x5 adds 4 to the receptive field,
    two 3x3 add 2 + 2 (``receptive_field`` checks it never shrinks)."""
    return tuple(replace(s, kernel=3, repeats=2 * s.repeats) if s.kernel == 5 else s for s in stages)


def without_last_stage(stages) -> tuple:
    """(d) The last stride-1 stage removed: the head reads the stage before it."""
    return tuple(stages[:-1]) if stages[-1].stride == 1 else tuple(stages)


FUSED = fused_early(BASELINE)            # stages 1-3: mbconv -> fused, se 0
EXPAND4 = expansion_4(BASELINE)          # stages 2-6: e6 -> e4
KERNEL3 = kernel_3(BASELINE)             # stages 3 and 5: k5 r1 -> k3 r2
NO_LAST = without_last_stage(BASELINE)   # stage 6 (80 -> 128, stride 1) gone
ALL_FOUR = without_last_stage(kernel_3(expansion_4(fused_early(BASELINE))))   # = V2_TINY exactly
assert ALL_FOUR == V2_TINY

TABLES = {"baseline": BASELINE, "fused": FUSED, "expand4": EXPAND4, "kernel3": KERNEL3, "no-last": NO_LAST,
          "all-four": ALL_FOUR}
CLAIMS = {
    "baseline": "V1-like baseline (MBConv6, 5x5 in stages 3, 5, last stride-1 stage)",
    "fused": "(a) Fused-MBConv in stages 1-3",
    "expand4": "(b) expansion 6 -> 4",
    "kernel3": "(c) 5x5 -> 3x3, more layers",
    "no-last": "(d) last stride-1 stage removed",
    "all-four": "(a)+(b)+(c)+(d) = V2_TINY",
}
# The Stage fields each claim may change (``changed_fields`` is the test's side of this).
CLAIM_FIELDS = {"fused": {"block", "se"}, "expand4": {"expand"}, "kernel3": {"kernel", "repeats"},
                "no-last": {"stages"}}


def table(name_or_stages) -> tuple:
    """The stage table called ``name`` (a key of TABLES), or the given rows as Stages."""
    if isinstance(name_or_stages, str):
        if name_or_stages not in TABLES:
            raise ValueError(f"bench claims: unknown table {name_or_stages!r}; known: {', '.join(TABLES)}")
        return TABLES[name_or_stages]
    return tuple(s if isinstance(s, Stage) else Stage(*s) for s in name_or_stages)


def build(name_or_stages, num_classes: int = NUM_CLASSES, seed: int = 0, **options):
    """The network of a table (head 320, like efficientnetv2_tiny), freshly initialised."""
    from tinyeffnet.models import EfficientNetV2

    return EfficientNetV2(table(name_or_stages), num_classes, head_channels=HEAD, seed=seed, **options)


def changed_fields(stages, reference=BASELINE) -> set:
    """The Stage fields in which ``stages`` differs from ``reference`` ("stages" if the count differs)."""
    changed = set() if len(stages) == len(reference) else {"stages"}
    for mine, theirs in zip(stages, reference):
        changed |= {f for f in Stage.__dataclass_fields__ if getattr(mine, f) != getattr(theirs, f)}
    return changed


def receptive_field(stages) -> int:
    """Receptive field in input pixels of the last feature map: the stem (3x3, stride 2), then per
    block its one k x k conv (the depthwise in MBConv, the fused conv in Fused-MBConv; 1x1s add
    nothing): rf += (k - 1) * jump; jump *= stride."""
    rf, jump = 3, 2
    for stage in table(stages):
        for repeat in range(stage.repeats):
            rf += (stage.kernel - 1) * jump
            jump *= stage.stride if repeat == 0 else 1
    return rf


# ------------------------------------------------------------------------ costs from shapes alone
def _layers(module, shape: tuple, out: list) -> tuple:
    """Append (kind, elements read, elements written, params, MACs) per layer that runs, in forward
    order; return the output shape. Walks the same structure as ``analysis.cost``."""
    from tinyeffnet import analysis
    from tinyeffnet.nn import (BatchNorm2d, Conv2d, ConvBNAct, DepthwiseConv2d, Dropout, FusedMBConv,
                               GlobalAvgPool, Identity, Linear, MBConv, Sequential, Sigmoid, SiLU, SqueezeExcite)
    from tinyeffnet.nn_walk import branch_units

    size = int(np.prod(shape))
    if isinstance(module, (Conv2d, DepthwiseConv2d, BatchNorm2d, SiLU, Sigmoid, GlobalAvgPool, Linear)):
        c = analysis.cost(module, shape)     # BatchNormSiLU is a BatchNorm2d: one pass, read x, write y
        kind = {Conv2d: "dense conv", DepthwiseConv2d: "depthwise", Linear: "linear",
                GlobalAvgPool: "pool"}.get(type(module), "elementwise")
        out.append((kind, size, int(np.prod(c.shape)), c.params, c.macs))
        return c.shape
    if isinstance(module, (Dropout, Identity)):
        return shape
    if isinstance(module, (ConvBNAct, Sequential)):
        for child in module.children():
            shape = _layers(child, shape, out)
        return shape
    if isinstance(module, SqueezeExcite):
        gate = shape
        for child in module.children():      # pool, reduce, act, expand, gate
            gate = _layers(child, gate, out)
        out.append(("elementwise", size + int(np.prod(gate)), size, 0, 0))      # x * gate
        return shape
    if isinstance(module, (MBConv, FusedMBConv)):
        branch = shape
        for _, unit in branch_units(module, "claims"):
            branch = _layers(unit, branch, out)
        if module.use_residual:
            out.append(("elementwise", 2 * size, size, 0, 0))                   # x + branch
        return branch
    raise TypeError(f"bench claims: no traffic rule for {type(module).__name__}")


def traffic(model, image_size: int, batch: int = 1, itemsize: int = 4) -> dict:
    """Bytes moved by one forward and one training step (see the module docstring), and per kind of
    layer (dense conv, depthwise, elementwise = BN / SiLU / sigmoid / SE product / residual add,
    pool, linear): its share of the forward's bytes and MACs."""
    rows: list = []
    shape = (image_size, image_size, model.stem.conv.in_channels)
    for part in [model.stem, *model.stages, model.head, model.pool, model.dropout, model.classifier]:
        shape = _layers(part, shape, rows)
    by_kind: dict = {}
    forward = 0
    macs = 0
    params = model.num_parameters()
    for kind, read, written, weights, layer_macs in rows:
        moved = itemsize * ((read + written) * batch + weights)
        forward += moved
        macs += layer_macs * batch
        entry = by_kind.setdefault(kind, {"bytes": 0, "macs": 0})
        entry["bytes"] += moved
        entry["macs"] += layer_macs * batch
    for entry in by_kind.values():
        entry["bytes_share"] = entry["bytes"] / forward
        entry["macs_share"] = entry["macs"] / macs if macs else 0.0
    return {"forward_bytes": forward, "train_bytes": 3 * forward + 7 * itemsize * params,
            "intensity_macs_per_byte": macs / forward, "by_kind": by_kind, "batch": batch}


def static_costs(name_or_stages, image_size: int = 32, batch: int = 64) -> dict:
    """Parameters, MACs and activation memory per image (``analysis.totals``), receptive field, and
    the bytes-moved estimate at ``batch``."""
    from tinyeffnet import analysis

    model = build(name_or_stages)
    total = analysis.totals(model, image_size)
    return {"params": total.params, "macs": total.macs, "activation_bytes": total.activations * 4,
            "receptive_field": receptive_field(name_or_stages), "traffic": traffic(model, image_size, batch),
            "blocks": sum(s.repeats for s in model.config)}


# ------------------------------------------------------------------------- step time, in workers
def _rss_mib() -> float:
    """The current resident set (VmRSS), MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _tinyeffnet_step(spec: dict, size: int, batch: int):
    from tinyeffnet.bench.train_step import tinyeffnet_step
    from tinyeffnet.models import create_model

    if spec.get("table") is not None:
        net = build(spec["table"]).train()
    else:
        net = create_model(spec["model"], num_classes=spec["classes"], seed=0).train()
    return tinyeffnet_step(net, size, batch)        # the same step as bench train-step's


def _torch_step(spec: dict, size: int, batch: int):
    import torch
    import torch.nn.functional as F
    import torchvision

    torch.manual_seed(0)
    name = spec["model"].replace("efficientnetv2_", "efficientnet_v2_")      # torchvision's spelling
    net = getattr(torchvision.models, name)(weights=None, num_classes=spec["classes"]).train()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((batch, 3, size, size)).astype(np.float32))   # NCHW
    y = torch.from_numpy(rng.integers(0, spec["classes"], batch))
    optimizer = torch.optim.AdamW(net.parameters(), **ADAMW)

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        optimizer.step()
    return step


def step_worker(spec: dict, size: int, batch: int, steps: int) -> dict:
    """In this process: build, two warm-up steps (compile or cache load, allocator), ``steps`` timed
    steps. spec: {"table": name} (tinyeffnet) or {"model": name, "classes": n, "framework":
    "tinyeffnet" | "torch"}."""
    if spec.get("framework") == "torch":     # the framework imported before the resident set is read
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    else:
        import tinyeffnet.optim  # noqa: F401
    rss_before = _rss_mib()     # after the imports: the growth is the model's and the step's
    step = _torch_step(spec, size, batch) if spec.get("framework") == "torch" else _tinyeffnet_step(spec, size, batch)
    from tinyeffnet.bench.timing import median_seconds

    step()
    first_done = time.perf_counter() - _START
    median = median_seconds(step, steps, warmups=1)
    # The kernel's peak counter (ru_maxrss) and VmRSS are kept separately and synced lazily, so a step
    # that fits in memory the process already holds can read a few pages below rss_before: a peak is
    # at least every resident set seen.
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rss_before, _rss_mib())
    return {"median_s": median, "start_s": first_done, "peak_rss_mib": peak,
            "rss_before_mib": rss_before}


def _spawn(mode: str, payload: dict, ours: bool = True) -> dict:
    """Run a worker (``--worker step`` or ``--worker train``) in a process of its own."""
    return run_worker([os.path.abspath(__file__), "--worker", mode, "--payload", json.dumps(payload)],
                      f"bench claims: the {mode} worker", ours)


def _spread(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"median": float(np.median(v)), "mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()),
            "values": [float(x) for x in v]}


def measure_step_times(specs: dict, size: int, batch: int, rounds: int = 5, steps: int = 3,
                       progress=print) -> dict:
    """{label: spec} -> {label: {"ms": spread over rounds of the per-round median step (ms),
    "peak_rss_mib", "rss_growth_mib", "start_s"}}: each label in its own process per round, the
    labels alternating (the order rotates each round)."""
    labels = list(specs)
    samples = {label: [] for label in labels}
    for r in range(rounds):
        order = labels[r % len(labels):] + labels[:r % len(labels)]
        for label in order:
            progress(f"step time {size}px batch {batch}, round {r + 1}/{rounds}: {label} ...")
            spec = specs[label]
            payload = {"spec": spec, "size": size, "batch": batch, "steps": steps}
            samples[label].append(_spawn("step", payload, ours=spec.get("framework") != "torch"))
    result = {}
    for label, runs in samples.items():
        result[label] = {"ms": _spread([run["median_s"] * 1e3 for run in runs]),
                         "peak_rss_mib": float(np.median([run["peak_rss_mib"] for run in runs])),
                         "rss_growth_mib": float(np.median([run["peak_rss_mib"] - run["rss_before_mib"]
                                                            for run in runs])),
                         "start_s": float(np.median([run["start_s"] for run in runs]))}
    return result


# --------------------------------------------------------------------------- training, in workers
def train_config(arch_path: str, out: str, epochs: int, seed: int, image_size: int, train_samples: int,
                 val_samples: int, batch: int, dataset: str = "shapes", **overrides):
    """The run every table gets: ``tinyeffnet train`` with the table as its arch, one fixed image
    size (no progressive learning: the claims are about the network), no RandAugment or mixup
    (short runs), the rest TrainConfig's defaults."""
    from tinyeffnet.train import TrainConfig

    settings = dict(arch=arch_path, out=out, epochs=epochs, seed=seed, progressive=False, min_size=image_size,
                    max_size=image_size, eval_size=image_size, train_samples=train_samples,
                    val_samples=val_samples, batch_size=batch, randaug=(0.0, 0.0), mixup=(0.0, 0.0))
    if dataset != "shapes":
        settings["dataset"] = dataset
    settings.update(overrides)
    return TrainConfig(**settings)


def train_worker(payload: dict) -> dict:
    """One training run of a table in this process: ``train.Trainer(cfg).run()`` with the table
    written as an arch file. Returns the curve (per epoch: seconds on the runner's clock, val_acc),
    the first step's seconds (the kernels loading) and the wall time of the whole run."""
    from tinyeffnet.search.arch import Arch, write_arch
    from tinyeffnet.train import Trainer

    with tempfile.TemporaryDirectory(prefix="tinyeffnet-claims-") as folder:
        arch_path = os.path.join(folder, "arch.json")
        write_arch(arch_path, Arch(table(payload["table"]), HEAD))
        cfg = train_config(arch_path, os.path.join(folder, "run"), **payload["config"])
        start = time.perf_counter()
        trainer = Trainer(cfg, progress=False, log=lambda message: None)
        rows = trainer.run()
        wall = time.perf_counter() - start
    first_step = trainer.first_step_seconds or 0.0     # exact, not the log line's rounded figure
    curve = [{"epoch": row["epoch"], "seconds": row["seconds"] - first_step, "val_acc": row["val_acc"],
              "train_loss": row["train_loss"]} for row in rows]
    return {"curve": curve, "first_step_s": first_step, "wall_s": wall}


def plan_epochs(step_s: float, budget_s: float, train_samples: int, val_samples: int, batch: int) -> int:
    """Epochs that fit ``budget_s``: steps per epoch times the step time, plus the validation forward
    (a third of a step per batch of 250, ``algorithm.evaluate``'s batch)."""
    steps = train_samples // batch
    evaluate = math.ceil(val_samples / 250) * step_s * (250 / batch) / 3
    return max(1, int(budget_s // (steps * step_s + evaluate)))


def time_to_target(curve: list, target: float):
    """Seconds (runner's clock, first step excluded) at the end of the first epoch reaching ``target``."""
    return next((point["seconds"] for point in curve if point["val_acc"] >= target), None)


def _train_runs(tables, epochs: dict, seeds, config: dict, progress) -> dict:
    """{table: [run per seed]}: seed-major, the tables' order rotating from seed to seed."""
    names = list(tables)
    runs = {name: [] for name in names}
    for i, seed in enumerate(seeds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            progress(f"train {name}: seed {seed}, {epochs[name]} epochs ...")
            payload = {"table": name, "config": {**config, "epochs": epochs[name], "seed": seed}}
            run = _spawn("train", payload)
            run["seed"] = seed
            runs[name].append(run)
    return runs


def _check(name: str, value, low) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise ValueError(f"bench claims: {name} must be a number >= {low}, got {value!r}")


# ------------------------------------------------------------------------------------- part 1
ABLATION = ("baseline", "fused", "expand4", "kernel3", "no-last", "all-four")


def run_ablation(tables=ABLATION, image_size: int = 32, batch: int = 32, rounds: int = 5, steps: int = 8,
                 budget_s: float = 60.0, seeds=(0, 1, 2), train_samples: int = 2000, val_samples: int = 500,
                 dataset: str = "shapes", progress=print) -> dict:
    """Part 1 (see the module docstring): static costs, step times, accuracy at a wall-time budget."""
    from tinyeffnet.bench.timing import machine_line

    tables = tuple(tables)
    for name in tables:
        table(name)
    for name, value, low in (("image_size", image_size, 8), ("batch", batch, 1), ("rounds", rounds, 1),
                             ("steps", steps, 1), ("budget_s", budget_s, 0), ("train_samples", train_samples, batch),
                             ("val_samples", val_samples, 1)):
        _check(name, value, low)
    seeds = tuple(seeds)
    result = {"part": "ablation", "machine": machine_line(), "image_size": image_size, "batch": batch,
              "rounds": rounds, "steps": steps, "budget_s": budget_s, "seeds": list(seeds),
              "train_samples": train_samples, "val_samples": val_samples, "dataset": dataset, "tables": {}}
    for name in tables:
        result["tables"][name] = {"claim": CLAIMS[name], **static_costs(name, image_size, batch)}
    times = measure_step_times({name: {"table": name} for name in tables}, image_size, batch, rounds, steps, progress)
    epochs = {}
    for name in tables:
        entry = result["tables"][name]
        entry["step"] = times[name]
        epochs[name] = plan_epochs(times[name]["ms"]["median"] / 1e3, budget_s, train_samples, val_samples, batch)
        entry["epochs"] = epochs[name]
    if seeds:
        config = dict(image_size=image_size, train_samples=train_samples, val_samples=val_samples, batch=batch,
                      dataset=dataset)
        runs = _train_runs(tables, epochs, seeds, config, progress)
        for name in tables:
            entry = result["tables"][name]
            entry["runs"] = runs[name]
            entry["accuracy"] = _spread([run["curve"][-1]["val_acc"] for run in runs[name]])
            entry["train_s"] = _spread([run["curve"][-1]["seconds"] for run in runs[name]])
    return result


def format_ablation(results: dict) -> str:
    """Part 1 as Markdown: costs, then step time and accuracy at the budget."""
    rows = results["tables"]
    base = rows.get("baseline")
    lines = [f"**Ablation from a V1-like tiny baseline**, {results['image_size']} px, batch {results['batch']}, "
             f"float32; on {results['machine']}", "",
             "| table | params | MACs/img | act. mem/img | train MB moved/step | MACs/byte | dw share of bytes / MACs "
             "| RF | step ms (min-max) | x baseline (median / min) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows.values():
        t = r["traffic"]
        dw = t["by_kind"].get("depthwise", {"bytes_share": 0.0, "macs_share": 0.0})
        step = r.get("step", {}).get("ms")
        step_text = f"{step['median']:.0f} ({step['min']:.0f}-{step['max']:.0f})" if step else "-"
        ratio = (f"{step['median'] / base['step']['ms']['median']:.2f} / {step['min'] / base['step']['ms']['min']:.2f}"
                 if step and base is not None and "step" in base else "-")
        lines.append(f"| {r['claim']} | {r['params'] / 1e3:.0f} K | {r['macs'] / 1e6:.2f} M | "
                     f"{r['activation_bytes'] / 2**20:.2f} MiB | {t['train_bytes'] / 1e6:.0f} | "
                     f"{t['intensity_macs_per_byte']:.2f} | {dw['bytes_share']:.0%} / {dw['macs_share']:.0%} | "
                     f"{r['receptive_field']} | {step_text} | {ratio} |")
    if any("accuracy" in r for r in rows.values()):
        lines += ["", f"**Accuracy at a {results['budget_s']:.0f} s budget** ({results['dataset']}, "
                      f"{results['train_samples']} train / {results['val_samples']} val images, seeds "
                      f"{', '.join(map(str, results['seeds']))}; epochs planned from the step time)", "",
                  "| table | epochs | seconds used, mean (min-max) | val acc, mean (min-max) |", "|---|---|---|---|"]
        for r in rows.values():
            if "accuracy" not in r:
                continue
            a, s = r["accuracy"], r["train_s"]
            lines.append(f"| {r['claim']} | {r['epochs']} | {s['mean']:.0f} ({s['min']:.0f}-{s['max']:.0f}) | "
                         f"{a['mean']:.1%} ({a['min']:.1%}-{a['max']:.1%}) |")
    lines += ["", f"Step time: median of {results['steps']} steps per process, median (min-max) over "
                  f"{results['rounds']} alternating rounds; on a shared machine the min is the least disturbed "
                  "sample. Bytes moved: the estimate of the module docstring. RF: receptive field in pixels."]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- part 2
BIG = ("efficientnet_b4", "efficientnetv2_s")


def run_v1_vs_v2(big=BIG, frameworks=("tinyeffnet", "torch"), size: int = 128, batch: int = 8, rounds: int = 5,
                 steps: int = 3, tiny=("baseline", "all-four"), tiny_epochs: int = 6, seeds=(0, 1, 2),
                 target: float = 0.9, image_size: int = 32, tiny_batch: int = 32, train_samples: int = 2000,
                 val_samples: int = 500, dataset: str = "shapes", ablation: dict | None = None,
                 progress=print) -> dict:
    """Part 2 (see the module docstring). ``big``: (V1 name, V2 name), both timed in each framework;
    ``tiny``: (V1-like table, V2 table) trained ``tiny_epochs`` epochs each over ``seeds``, or, given
    ``ablation`` (a ``run_ablation`` result holding both tables' runs), its runs at the same wall-time
    budget are read instead of training again (the training settings then are the ablation's)."""
    from tinyeffnet.bench.timing import machine_line
    from tinyeffnet.models import list_models

    big = tuple(big)
    if len(big) != 2 or any(name not in list_models() for name in big):
        raise ValueError(f"bench claims: big must be two model names (V1, V2), got {big!r}")
    frameworks = tuple(frameworks)
    if not frameworks or any(f not in ("tinyeffnet", "torch") for f in frameworks):
        raise ValueError(f"bench claims: frameworks must be tinyeffnet and/or torch, got {frameworks!r}")
    for name in tiny:
        table(name)
    for name, value, low in (("size", size, 8), ("batch", batch, 1), ("rounds", rounds, 1), ("steps", steps, 1),
                             ("tiny_epochs", tiny_epochs, 1), ("target", target, 0)):
        _check(name, value, low)
    seeds = tuple(seeds)
    result = {"part": "v1_vs_v2", "machine": machine_line(), "big": list(big), "size": size, "batch": batch,
              "rounds": rounds, "steps": steps, "frameworks": list(frameworks)}
    specs = {f"{model} {framework}": {"model": model, "classes": 1000, "framework": framework}
             for framework in frameworks for model in big}
    times = measure_step_times(specs, size, batch, rounds, steps, progress)
    result["step"] = times
    result["ratio"] = {framework: {
        "step": times[f"{big[1]} {framework}"]["ms"]["median"] / times[f"{big[0]} {framework}"]["ms"]["median"],
        "peak_rss": times[f"{big[1]} {framework}"]["peak_rss_mib"] / times[f"{big[0]} {framework}"]["peak_rss_mib"],
        "rss_growth": (times[f"{big[1]} {framework}"]["rss_growth_mib"]
                       / max(1e-9, times[f"{big[0]} {framework}"]["rss_growth_mib"]))}
        for framework in frameworks}
    if ablation is not None:
        missing = [name for name in tiny if "runs" not in ablation["tables"].get(name, {})]
        if missing:
            raise ValueError(f"bench claims: the ablation result has no training runs of {', '.join(missing)}")
        runs = {name: ablation["tables"][name]["runs"] for name in tiny}
        epochs = {name: ablation["tables"][name]["epochs"] for name in tiny}
        image_size, tiny_batch, dataset = ablation["image_size"], ablation["batch"], ablation["dataset"]
        train_samples, val_samples, seeds = ablation["train_samples"], ablation["val_samples"], ablation["seeds"]
        how = f"the ablation's runs, {ablation['budget_s']:.0f} s budget each"
    elif seeds and tiny:
        epochs = {name: tiny_epochs for name in tiny}
        config = dict(image_size=image_size, train_samples=train_samples, val_samples=val_samples, batch=tiny_batch,
                      dataset=dataset)
        runs = _train_runs(tuple(tiny), epochs, seeds, config, progress)
        how = f"{tiny_epochs} epochs each"
    if ablation is not None or (seeds and tiny):
        result["tiny"] = {"tables": list(tiny), "epochs": epochs, "how": how, "target": target,
                          "image_size": image_size, "batch": tiny_batch, "train_samples": train_samples,
                          "val_samples": val_samples, "dataset": dataset, "seeds": list(seeds), "runs": {}}
        for name in tiny:
            reached = [time_to_target(run["curve"], target) for run in runs[name]]
            hit = [t for t in reached if t is not None]
            result["tiny"]["runs"][name] = {
                "claim": CLAIMS[name], "params": static_costs(name, image_size, tiny_batch)["params"],
                "epochs": epochs[name],
                "runs": runs[name], "final_acc": _spread([run["curve"][-1]["val_acc"] for run in runs[name]]),
                "total_s": _spread([run["curve"][-1]["seconds"] for run in runs[name]]),
                "time_to_target_s": _spread(hit) if hit else None, "reached": len(hit)}
    return result


def format_v1_vs_v2(results: dict) -> str:
    """Part 2 as Markdown: the step-time and memory table with ratios, then the tiny pair."""
    v1, v2 = results["big"]
    lines = [f"**{v1} vs {v2}**, training step (fwd + loss + bwd + AdamW), {results['size']} px, batch "
             f"{results['batch']}, 1000 classes, float32; on {results['machine']}", "",
             "| framework | model | step ms, median (min-max) | peak RSS MiB | RSS growth MiB |",
             "|---|---|---|---|---|"]
    for framework in results["frameworks"]:
        for model in (v1, v2):
            t = results["step"][f"{model} {framework}"]
            ms = t["ms"]
            lines.append(f"| {framework} | {model} | {ms['median']:.0f} ({ms['min']:.0f}-{ms['max']:.0f}) | "
                         f"{t['peak_rss_mib']:.0f} | {t['rss_growth_mib']:.0f} |")
    lines += ["", "| framework | step time V2 / V1 | peak RSS V2 / V1 | RSS growth V2 / V1 |", "|---|---|---|---|"]
    for framework, r in results["ratio"].items():
        lines.append(f"| {framework} | {r['step']:.2f} | {r['peak_rss']:.2f} | {r['rss_growth']:.2f} |")
    lines += ["", f"Medians over {results['rounds']} alternating rounds, each a process of its own ({results['steps']} "
                  "timed steps after 2 warm-up ones). RSS growth: peak resident set less the resident set before "
                  "the model was built."]
    tiny = results.get("tiny")
    if tiny:
        lines += ["", f"**Tiny pair on the built-in task** ({tiny['dataset']}, {tiny['image_size']} px, batch "
                      f"{tiny['batch']}, {tiny['how']}, seeds {', '.join(map(str, tiny['seeds']))}; "
                      f"seconds on the runner's clock, first step excluded)", "",
                  f"| network | params | epochs | time to {tiny['target']:.0%} s, mean (min-max) [runs reaching it] | "
                  "total s, mean (min-max) | final val acc, mean (min-max) |", "|---|---|---|---|---|---|"]
        for r in tiny["runs"].values():
            t, s, a = r["time_to_target_s"], r["total_s"], r["final_acc"]
            ttt = f"{t['mean']:.0f} ({t['min']:.0f}-{t['max']:.0f}) [{r['reached']}/{len(r['runs'])}]" if t else \
                f"not reached [0/{len(r['runs'])}]"
            lines.append(f"| {r['claim']} | {r['params'] / 1e3:.0f} K | {r['epochs']} | {ttt} | "
                         f"{s['mean']:.0f} ({s['min']:.0f}-{s['max']:.0f}) | "
                         f"{a['mean']:.1%} ({a['min']:.1%}-{a['max']:.1%}) |")
    return "\n".join(lines)


def _main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="tinyeffnet/bench/claims.py")
    parser.add_argument("--worker", choices=("step", "train"), required=True)
    parser.add_argument("--payload", required=True, help="JSON: the worker's arguments")
    args = parser.parse_args(argv)
    payload = json.loads(args.payload)
    if args.worker == "step":
        report = step_worker(payload["spec"], payload["size"], payload["batch"], payload["steps"])
    else:
        report = train_worker(payload)
    print_result(report)


if __name__ == "__main__":
    _main()
