"""`tinyeffnet bench train-step` and `tinyeffnet bench profile`: a whole training step against PyTorch.

train-step: EfficientNetV2-S (random init, 1000 classes, train mode), one step = forward, softmax
cross-entropy, backward, float32, channels-last for tinyeffnet and PyTorch's default NCHW eager for
torchvision's efficientnet_v2_s. Each contender runs in its own process (torch never shares a process
with Numba's thread pool); the contenders alternate over several rounds; per round a process reports
the median of its timed steps, and the table gives the median, min and max over rounds and the ratio
of medians (tinyeffnet / torch: below 1 means tinyeffnet is faster). Each process also reports:
    cold start   seconds from process start to the end of the first step, with an EMPTY Numba cache
                 (a fresh temporary NUMBA_CACHE_DIR; for torch: its plain first step)
    warm start   the same with the cache filled (the normal case after the first run)
    peak RSS     the process's maximum resident memory (ru_maxrss) after the timed steps

profile: time per op family within one tinyeffnet training step (conv, depthwise, BN, activations, SE
and head linear/pool, loss, and "other": the Python and NumPy glue between kernels).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

_START = time.perf_counter()  # as early as possible: cold start counts from process start

import numpy as np  # noqa: E402

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = "efficientnetv2_s"


def _batch(size: int, batch: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, 3)).astype(np.float32)       # NHWC
    labels = rng.integers(0, 1000, batch)
    return x, labels


def _tinyeffnet_step_fn(size: int, batch: int):
    from tinyeffnet import create_model, ops

    model = create_model(MODEL, num_classes=1000, seed=0)
    model.train()
    x, labels = _batch(size, batch)

    def step():
        logits = model(x)
        loss, dlogits = ops.softmax_cross_entropy(logits, labels)
        model.zero_grad()
        model.backward(dlogits)
        return float(loss)

    return step


def _torch_step_fn(size: int, batch: int):
    import torch
    import torch.nn.functional as F
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.efficientnet_v2_s(num_classes=1000)
    model.train()
    x, labels = _batch(size, batch)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    yt = torch.from_numpy(labels)

    def step():
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        return loss.item()

    return step


def run_worker(contender: str, size: int, batch: int, steps: int) -> dict:
    step = (_tinyeffnet_step_fn if contender == "tinyeffnet" else _torch_step_fn)(size, batch)
    step()
    first_step_done = time.perf_counter() - _START
    step()  # one more warm-up: allocator, caches
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"median_s": float(np.median(times)), "start_s": first_step_done, "peak_rss_mib": peak_kib / 1024}


def _spawn(contender: str, size: int, batch: int, steps: int, cache_dir: str | None = None) -> dict:
    from tinyeffnet.process import worker_environment

    env = worker_environment(contender == "tinyeffnet", _PACKAGE_PARENT)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", contender, "--size", str(size),
           "--batch", str(batch), "--steps", str(steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(sizes=(128, 224), batch: int = 8, rounds: int = 3, steps: int = 5, progress=print) -> dict:
    """Alternate the two contenders; return {size: {contender: stats}, "start": {...}}."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="tinyeffnet-cold-") as cold_dir:
        progress("cold start (empty Numba cache) ...")
        cold = _spawn("tinyeffnet", sizes[0], batch, 1, cache_dir=cold_dir)
        for size in sizes:
            samples = {"tinyeffnet": [], "torch": []}
            for r in range(rounds):
                order = ("tinyeffnet", "torch") if r % 2 == 0 else ("torch", "tinyeffnet")
                for contender in order:
                    progress(f"{size}px round {r + 1}/{rounds}: {contender} ...")
                    samples[contender].append(_spawn(contender, size, batch, steps,
                                                     cache_dir=cold_dir if contender == "tinyeffnet" else None))
            row = {}
            for contender, runs in samples.items():
                t = np.array([s["median_s"] for s in runs]) * 1e3
                row[contender] = {"median_ms": float(np.median(t)), "min_ms": float(t.min()), "max_ms": float(t.max()),
                                  "peak_rss_mib": float(np.median([s["peak_rss_mib"] for s in runs])),
                                  "start_s": float(np.median([s["start_s"] for s in runs]))}
            row["ratio"] = row["tinyeffnet"]["median_ms"] / row["torch"]["median_ms"]
            results[str(size)] = row
        results["cold_start_s"] = cold["start_s"]
        results["batch"] = batch
    return results


def format_table(results: dict) -> str:
    batch = results["batch"]
    head = f"{'EfficientNetV2-S train step':<30} {'tinyeffnet ms':>24} {'torch ms':>24} {'ratio':>6}"
    lines = [head, "-" * len(head)]
    sizes = [k for k in results if k.isdigit()]
    for size in sizes:
        row = results[size]
        cells = []
        for c in ("tinyeffnet", "torch"):
            s = row[c]
            cells.append(f"{s['median_ms']:>8.0f} ({s['min_ms']:.0f}-{s['max_ms']:.0f})")
        lines.append(f"{f'{size}x{size}, batch {batch}':<30} {cells[0]:>24} {cells[1]:>24} {row['ratio']:>6.2f}")
    first = results[sizes[0]]
    lines.append("")
    lines.append(f"cold start, empty Numba cache, process start -> first step done: {results['cold_start_s']:.1f} s")
    lines.append(f"warm start (cache filled): tinyeffnet {first['tinyeffnet']['start_s']:.1f} s, "
                 f"torch {first['torch']['start_s']:.1f} s")
    for size in sizes:
        r = results[size]
        lines.append(f"peak RSS at {size}px: tinyeffnet {r['tinyeffnet']['peak_rss_mib']:.0f} MiB, "
                     f"torch {r['torch']['peak_rss_mib']:.0f} MiB")
    lines.append("ratio = tinyeffnet median / torch median (range over rounds); < 1: tinyeffnet is faster")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ profile
FAMILIES = {
    "conv2d": "dense conv (stem, Fused-MBConv, 1x1 expand/project, head)",
    "depthwise_conv2d": "depthwise conv",
    "batchnorm": "batchnorm",
    "silu": "SiLU", "sigmoid": "sigmoid (SE gate)",
    "global_avg_pool": "global avg pool (SE squeeze, head)", "linear": "linear (SE fc, classifier)",
    "softmax_cross_entropy": "loss",
}


def profile(size: int = 128, batch: int = 8, steps: int = 3) -> dict:
    """Seconds per op family in one training step (median over steps), plus the total and 'other'."""
    import importlib

    ops = importlib.import_module("tinyeffnet.ops")
    from tinyeffnet.nn import Conv2d

    spent = {}
    originals = {}

    def timed(fn, family):
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[family] = spent.get(family, 0.0) + time.perf_counter() - t0
        return run

    for name in dir(ops):
        fn = getattr(ops, name)
        family = next((f for f in FAMILIES if name.startswith(f)), None)
        if family is None or not callable(fn):
            continue
        originals[name] = fn
        setattr(ops, name, timed(fn, family))
    # A Conv2d holds the op pair it picked when built (im2col or Winograd): time the pairs themselves.
    conv_algorithms = Conv2d.ALGORITHMS
    Conv2d.ALGORITHMS = {algorithm: (timed(forward, "conv2d"), timed(backward, "conv2d"))
                         for algorithm, (forward, backward) in conv_algorithms.items()}
    try:
        step = _tinyeffnet_step_fn(size, batch)
        step()
        step()
        rows = []
        for _ in range(steps):
            spent.clear()
            t0 = time.perf_counter()
            step()
            total = time.perf_counter() - t0
            rows.append({**spent, "total": total})
    finally:
        for name, fn in originals.items():
            setattr(ops, name, fn)
        Conv2d.ALGORITHMS = conv_algorithms
    result = {key: float(np.median([r.get(key, 0.0) for r in rows])) for key in list(FAMILIES) + ["total"]}
    result["other"] = result["total"] - sum(result[f] for f in FAMILIES)
    return result


def format_profile(result: dict, size: int, batch: int) -> str:
    total = result["total"]
    lines = [f"where the time goes: one EfficientNetV2-S training step, {size}x{size}, batch {batch}",
             f"{'op family':<46} {'ms':>8} {'share':>7}"]
    for key in list(FAMILIES) + ["other"]:
        label = FAMILIES.get(key, "other (Python, NumPy glue: residual adds, SE product, reshapes)")
        lines.append(f"{label:<46} {result[key] * 1e3:>8.1f} {result[key] / total:>7.1%}")
    lines.append(f"{'total':<46} {total * 1e3:>8.1f}")
    return "\n".join(lines)


def _main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="tinyeffnet/bench/train_step.py")
    parser.add_argument("--worker", choices=["tinyeffnet", "torch"], required=True)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(run_worker(args.worker, args.size, args.batch, args.steps)))


if __name__ == "__main__":
    _main()
