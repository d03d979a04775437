"""`tinyeffnet bench train-step` and `tinyeffnet bench profile`: a whole training step against PyTorch.

train-step: one training step = forward, softmax cross-entropy, backward and an AdamW update, float32,
train mode, the same network on every side (default EfficientNetV2-S with 1000 classes; ``--model
efficientnetv2_tiny`` is the main job's model, 10 classes). The contenders:

    tinyeffnet      channels-last (N, H, W, C), the Numba kernels, tinyeffnet.optim.AdamW
    torch           PyTorch eager, NCHW (its default), torch.optim.AdamW
    torch-cl        PyTorch eager, channels_last memory format (model and input)
    torch-compile   torch.compile of the NCHW model: steady-state step; its compile time apart

PyTorch runs torchvision's ``EfficientNet`` built by ``interop.torchvision_model`` from our model
(the identical network, weights copied). Each contender runs in its own process (torch never shares
a process with Numba's thread pool); the contenders alternate over the rounds (the order rotates
each round); per round a process reports the median of its timed steps, and the table gives the
median, min and max over rounds and, per peer, the ratio of medians tinyeffnet / peer (below 1:
tinyeffnet is faster). ``isa="avx2"`` gives every process ``machine.AVX2_ENVIRONMENT`` (numpy,
OpenBLAS, Numba and torch on their AVX2 paths) and each worker reports the paths it really took.
Each process also reports:
    start        seconds from process start to the end of the first step (warm Numba cache; for
                 torch-compile: the compile)
    cold start   tinyeffnet's start with an EMPTY Numba cache (a fresh temporary NUMBA_CACHE_DIR)
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
CONTENDERS = ("tinyeffnet", "torch", "torch-cl", "torch-compile")
PEERS = CONTENDERS[1:]
ADAMW = dict(lr=1e-3, weight_decay=0.05)


def _num_classes(model: str) -> int:
    return 10 if model == "efficientnetv2_tiny" else 1000


def _batch(size: int, batch: int, classes: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, 3)).astype(np.float32)       # NHWC
    labels = rng.integers(0, classes, batch)
    return x, labels


def _our_model(model: str):
    from tinyeffnet import create_model

    return create_model(model, num_classes=_num_classes(model), seed=0).train()


def _tinyeffnet_step_fn(size: int, batch: int, model: str = MODEL):
    return tinyeffnet_step(_our_model(model), size, batch)


def tinyeffnet_step(net, size: int, batch: int):
    """A closure running one training step of the tinyeffnet network ``net`` on a fixed random batch
    (N, size, size, 3): forward, softmax cross-entropy, backward, AdamW. Returns the loss."""
    from tinyeffnet import ops
    from tinyeffnet.optim import AdamW

    optimizer = AdamW(net.parameters(), **ADAMW)
    x, labels = _batch(size, batch, net.num_classes)

    def step():
        logits = net(x)
        loss, dlogits = ops.softmax_cross_entropy(logits, labels)
        net.zero_grad()
        net.backward(dlogits, input_gradient=False)   # PyTorch's input has no requires_grad either
        optimizer.step()
        return float(loss)

    return step


def _torch_step_fn(size: int, batch: int, model: str = MODEL, contender: str = "torch"):
    import torch
    import torch.nn.functional as F

    from tinyeffnet.interop import torchvision_model

    torch.manual_seed(0)
    net = torchvision_model(_our_model(model)).train()
    x, labels = _batch(size, batch, _num_classes(model))
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))          # NCHW
    yt = torch.from_numpy(labels)
    if contender == "torch-cl":
        net = net.to(memory_format=torch.channels_last)
        xt = xt.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(net.parameters(), **ADAMW)
    forward = torch.compile(net) if contender == "torch-compile" else net

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(xt), yt)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def _paths(contender: str) -> str:
    """The SIMD paths this process really takes (the proof that ``--isa avx2`` took effect)."""
    if contender == "tinyeffnet":
        from tinyeffnet.machine import cpu_paths

        p = cpu_paths()
        numpy_isa = "AVX-512" if p["numpy_avx512"] else "AVX2"
        from tinyeffnet.ops import blas

        return f"numpy {numpy_isa}, OpenBLAS {p['openblas_core']}, Numba {p['numba_cpu']}, GEMM {blas.describe()}"
    import torch

    return f"torch {torch.backends.cpu.get_cpu_capability()}"


def run_worker(contender: str, size: int, batch: int, steps: int, model: str = MODEL) -> dict:
    if contender == "tinyeffnet":
        step = _tinyeffnet_step_fn(size, batch, model)
    else:
        step = _torch_step_fn(size, batch, model, contender)
    from tinyeffnet.bench.timing import median_seconds

    step()
    first_step_done = time.perf_counter() - _START
    # one more warm-up: allocator, caches (torch.compile: a recompile for the second call)
    median = median_seconds(step, steps, warmups=1)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"median_s": median, "start_s": first_step_done, "peak_rss_mib": peak_kib / 1024,
            "paths": _paths(contender)}


def contender_environment(contender: str, isa: str, cache_dir: str | None) -> dict:
    """The environment of a contender's process: ours or the user's settings, AVX2 forced if asked,
    a kernel cache folder of its own if given."""
    from tinyeffnet.machine import AVX2_ENVIRONMENT
    from tinyeffnet.process import worker_environment

    env = worker_environment(contender == "tinyeffnet", _PACKAGE_PARENT)
    if isa == "avx2":
        env.update(AVX2_ENVIRONMENT)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    return env


def _spawn(contender: str, size: int, batch: int, steps: int, model: str = MODEL, isa: str = "native",
           cache_dir: str | None = None) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", contender, "--size", str(size),
           "--batch", str(batch), "--steps", str(steps), "--model", model]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env=contender_environment(contender, isa, cache_dir))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _check_run_options(model: str, peers, isa: str) -> tuple:
    from tinyeffnet.models import list_models

    if model not in list_models():
        raise ValueError(f"bench train-step: unknown model {model!r}; known: {', '.join(list_models())}")
    peers = tuple(peers)
    unknown = [p for p in peers if p not in PEERS]
    if unknown or not peers:
        raise ValueError(f"bench train-step: peers must be one or more of {', '.join(PEERS)}, got {list(peers)}")
    if isa not in ("native", "avx2"):
        raise ValueError(f'bench train-step: isa must be "native" or "avx2", got {isa!r}')
    return peers


def _stats(runs: list) -> dict:
    t = np.array([r["median_s"] for r in runs]) * 1e3
    return {"median_ms": float(np.median(t)), "min_ms": float(t.min()), "max_ms": float(t.max()),
            "rounds_ms": [float(v) for v in t],
            "peak_rss_mib": float(np.median([r["peak_rss_mib"] for r in runs])),
            "start_s": float(np.median([r["start_s"] for r in runs])), "paths": runs[-1]["paths"]}


def run(sizes=(128, 224), batch: int = 8, rounds: int = 3, steps: int = 5, progress=print, model: str = MODEL,
        peers=("torch", "torch-cl"), isa: str = "native") -> dict:
    """Alternate tinyeffnet and the peers; return {size: {contender: stats, "ratio": {peer: r}}, ...}."""
    from tinyeffnet.bench.timing import machine_line

    peers = _check_run_options(model, peers, isa)
    contenders = ("tinyeffnet",) + peers
    results = {"model": model, "batch": batch, "isa": isa, "rounds": rounds, "machine": machine_line()}
    with tempfile.TemporaryDirectory(prefix="tinyeffnet-cold-") as cold_dir:
        progress("cold start (empty Numba cache) ...")
        cold = _spawn("tinyeffnet", sizes[0], batch, 1, model, isa, cache_dir=cold_dir)
        for size in sizes:
            samples = {c: [] for c in contenders}
            for r in range(rounds):
                order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
                for contender in order:
                    progress(f"{size}px round {r + 1}/{rounds}: {contender} ...")
                    samples[contender].append(_spawn(contender, size, batch, steps, model, isa,
                                                     cache_dir=cold_dir if contender == "tinyeffnet" else None))
            row = {c: _stats(runs) for c, runs in samples.items()}
            ours = row["tinyeffnet"]["median_ms"]
            row["ratio"] = {peer: ours / row[peer]["median_ms"] for peer in peers}
            eager = [p for p in peers if p != "torch-compile"]
            if eager:
                row["ratio"]["best eager"] = ours / min(row[p]["median_ms"] for p in eager)
            results[str(size)] = row
        results["cold_start_s"] = cold["start_s"]
    return results


def format_table(results: dict) -> str:
    sizes = [k for k in results if k.isdigit()]
    first = results[sizes[0]]
    contenders = [c for c in CONTENDERS if c in first]
    title = f"{results['model']} train step (fwd+loss+bwd+AdamW), batch {results['batch']}, {results['isa']} ISA"
    head = f"{'size':<8}" + "".join(f"{c + ' ms':>22}" for c in contenders)
    lines = [title, f"on {results['machine']}", head, "-" * len(head)]
    for size in sizes:
        row = results[size]
        cells = [f"{row[c]['median_ms']:>9.1f} ({row[c]['min_ms']:.0f}-{row[c]['max_ms']:.0f})" for c in contenders]
        lines.append(f"{size + 'px':<8}" + "".join(cell.rjust(22) for cell in cells))
        lines.append(f"{'':<8}ratio tinyeffnet / " + ", ".join(f"{k} {v:.2f}" for k, v in row["ratio"].items()))
    lines.append("")
    lines.append(f"medians (min-max) over {results['rounds']} alternating rounds; ratio < 1: tinyeffnet is faster")
    lines.append(f"cold start, empty Numba cache, process start -> first step done: {results['cold_start_s']:.1f} s")
    lines.append("start (process start -> first step; torch-compile: includes compiling): " + ", ".join(
        f"{c} {first[c]['start_s']:.1f} s" for c in contenders))
    for size in sizes:
        r = results[size]
        lines.append(f"peak RSS at {size}px: " + ", ".join(f"{c} {r[c]['peak_rss_mib']:.0f} MiB" for c in contenders))
    lines.append("paths taken: " + "; ".join(f"{c}: {first[c]['paths']}" for c in contenders))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ profile
FAMILIES = {
    "conv2d": "dense conv (stem, Fused-MBConv, 1x1 expand/project, head)",
    "depthwise_conv2d": "depthwise conv",
    "batchnorm": "batchnorm",
    "silu": "SiLU", "sigmoid": "sigmoid (SE gate)",
    "global_avg_pool": "global avg pool (SE squeeze, head)", "linear": "linear (SE fc, classifier)",
    "softmax_cross_entropy": "loss",
    "optimizer": "AdamW update",
}


def profile(size: int = 128, batch: int = 8, steps: int = 3, model: str = MODEL) -> dict:
    """Seconds per op family in one training step (median over steps), plus the total and 'other'."""
    import importlib

    ops = importlib.import_module("tinyeffnet.ops")
    from tinyeffnet.nn import Conv2d
    from tinyeffnet.optim import AdamW

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
    weight_gradient_ops = Conv2d.WEIGHT_GRADIENT_OPS     # the stem's backward (no input gradient)
    Conv2d.WEIGHT_GRADIENT_OPS = {algorithm: timed(op, "conv2d") for algorithm, op in weight_gradient_ops.items()}
    adamw_step = AdamW.step
    AdamW.step = timed(adamw_step, "optimizer")
    try:
        step = _tinyeffnet_step_fn(size, batch, model)
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
        Conv2d.WEIGHT_GRADIENT_OPS = weight_gradient_ops
        AdamW.step = adamw_step
    result = {key: float(np.median([r.get(key, 0.0) for r in rows])) for key in list(FAMILIES) + ["total"]}
    result["other"] = result["total"] - sum(result[f] for f in FAMILIES)
    result["model"] = model
    return result


def format_profile(result: dict, size: int, batch: int) -> str:
    total = result["total"]
    lines = [f"where the time goes: one {result.get('model', MODEL)} training step, {size}x{size}, batch {batch}",
             f"{'op family':<46} {'ms':>8} {'share':>7}"]
    for key in list(FAMILIES) + ["other"]:
        label = FAMILIES.get(key, "other (Python, NumPy glue: residual adds, SE product, reshapes)")
        lines.append(f"{label:<46} {result[key] * 1e3:>8.1f} {result[key] / total:>7.1%}")
    lines.append(f"{'total':<46} {total * 1e3:>8.1f}")
    return "\n".join(lines)


def _main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="tinyeffnet/bench/train_step.py")
    parser.add_argument("--worker", choices=list(CONTENDERS), required=True)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(run_worker(args.worker, args.size, args.batch, args.steps, args.model)))


if __name__ == "__main__":
    _main()
