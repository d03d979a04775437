"""`tinyeffnet bench ops`: forward+backward time of each op, tinyeffnet (Numba) against PyTorch CPU.

Shapes are those of EfficientNetV2-S at batch 8 and 128x128 input (stem 64x64, stage 2 32x32,
stage 4 8x8, stage 6 4x4), float32. Each contender runs in its own process (torch and Numba thread
pools interfere when they share a process: docs/DESIGN.md, section 9.1), the
two alternate over several rounds, and the table shows the median over rounds of each process's
median time, the range over rounds, and the ratio of medians (tinyeffnet / torch; below 1 means
tinyeffnet is faster).

PyTorch runs in its usual NCHW layout with autograd; tinyeffnet in NHWC with its own backward.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np

N = 8  # batch
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(frozen=True)
class Case:
    name: str  # what the row measures
    op: str  # conv | dw | bn | bn_silu | silu | sigmoid | pool | linear | xent
    shape: tuple  # NHWC input shape (or (N, C) for linear / xent)
    cout: int = 0  # conv output channels (linear: output features)
    k: int = 1  # kernel size
    stride: int = 1


CASES = [
    Case("stem conv 3x3 s2 3->24 @128", "conv", (N, 128, 128, 3), 24, 3, 2),
    Case("fused conv 3x3 24->24 @64 (st1)", "conv", (N, 64, 64, 24), 24, 3, 1),
    Case("fused conv 3x3 48->192 @32 (st2)", "conv", (N, 32, 32, 48), 192, 3, 1),
    Case("fused conv 3x3 64->256 @16 (st3)", "conv", (N, 16, 16, 64), 256, 3, 1),
    Case("1x1 expand 128->512 @8 (st4)", "conv", (N, 8, 8, 128), 512, 1, 1),
    Case("1x1 project 512->128 @8 (st4)", "conv", (N, 8, 8, 512), 128, 1, 1),
    Case("1x1 expand 256->1536 @4 (st6)", "conv", (N, 4, 4, 256), 1536, 1, 1),
    Case("1x1 project 1536->256 @4 (st6)", "conv", (N, 4, 4, 1536), 256, 1, 1),
    Case("depthwise 3x3 C512 @8 (st4)", "dw", (N, 8, 8, 512), 0, 3, 1),
    Case("depthwise 3x3 s2 C512 @16 (st4 b0)", "dw", (N, 16, 16, 256), 0, 3, 2),
    Case("depthwise 3x3 C1536 @4 (st6)", "dw", (N, 4, 4, 1536), 0, 3, 1),
    Case("batchnorm C24 @64 (st1)", "bn", (N, 64, 64, 24)),
    Case("batchnorm C192 @32 (st2)", "bn", (N, 32, 32, 192)),
    Case("batchnorm C512 @8 (st4)", "bn", (N, 8, 8, 512)),
    Case("batchnorm C1536 @4 (st6)", "bn", (N, 4, 4, 1536)),
    Case("BN+SiLU C24 @64 (st1)", "bn_silu", (N, 64, 64, 24)),
    Case("BN+SiLU C192 @32 (st2)", "bn_silu", (N, 32, 32, 192)),
    Case("BN+SiLU C1536 @4 (st6)", "bn_silu", (N, 4, 4, 1536)),
    Case("silu C24 @64 (st1)", "silu", (N, 64, 64, 24)),
    Case("silu C192 @32 (st2)", "silu", (N, 32, 32, 192)),
    Case("silu C1536 @4 (st6)", "silu", (N, 4, 4, 1536)),
    Case("sigmoid (SE gate) C1536", "sigmoid", (N, 1536)),
    Case("global avg pool C1280 @4", "pool", (N, 4, 4, 1280)),
    Case("linear 1280->1000", "linear", (N, 1280), 1000),
    Case("softmax xent 1000 classes", "xent", (N, 1000)),
]


def _inputs(case: Case, rng: np.random.Generator) -> dict:
    """The same float32 NHWC inputs for both contenders (torch permutes them to NCHW itself)."""
    x = rng.standard_normal(case.shape).astype(np.float32)
    arrays = {"x": x}
    if case.op == "conv":
        fan_in = case.k * case.k * case.shape[-1]
        w = rng.standard_normal((case.k, case.k, case.shape[-1], case.cout)) / np.sqrt(fan_in)
        arrays["w"] = w.astype(np.float32)
    elif case.op == "dw":
        arrays["w"] = (rng.standard_normal((case.k, case.k, case.shape[-1])) / case.k).astype(np.float32)
    elif case.op in ("bn", "bn_silu"):
        c = case.shape[-1]
        arrays["gamma"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        arrays["beta"] = rng.standard_normal(c).astype(np.float32)
    elif case.op == "linear":
        arrays["w"] = (rng.standard_normal((case.shape[1], case.cout)) / np.sqrt(case.shape[1])).astype(np.float32)
        arrays["b"] = np.zeros(case.cout, np.float32)
    elif case.op == "xent":
        arrays["labels"] = rng.integers(0, case.shape[1], case.shape[0])
    return arrays


# ---------------------------------------------------------------- tinyeffnet (Numba) contender
def _numba_step(case: Case, a: dict):
    """Return a no-argument function doing one forward and one backward of the op."""
    from tinyeffnet import ops

    if case.op == "conv":
        from tinyeffnet import nn

        pad = (case.k - 1) // 2
        # the op pair the model's layer picks when built (fast=True: Winograd for the 3x3 stride-1 convs)
        layer = nn.Conv2d(case.shape[-1], case.cout, case.k, case.stride, pad)
        conv_forward, conv_backward = layer.forward_op, layer.backward_op

        def step():
            y, cache = conv_forward(a["x"], a["w"], stride=case.stride, padding=pad)
            conv_backward(a["dy"], cache)
    elif case.op == "dw":
        pad = (case.k - 1) // 2

        def step():
            y, cache = ops.depthwise_conv2d_forward(a["x"], a["w"], stride=case.stride, padding=pad)
            ops.depthwise_conv2d_backward(a["dy"], cache)
    elif case.op == "bn":
        c = case.shape[-1]
        rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)

        def step():
            y, cache = ops.batchnorm_forward(a["x"], a["gamma"], a["beta"], rm, rv, True)
            ops.batchnorm_backward(a["dy"], cache)
    elif case.op == "bn_silu":  # the fused op every conv-BN-SiLU unit of the model runs
        c = case.shape[-1]
        rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)

        def step():
            y, cache = ops.batchnorm_silu_forward(a["x"], a["gamma"], a["beta"], rm, rv, True)
            ops.batchnorm_silu_backward(a["dy"], cache)
    elif case.op in ("silu", "sigmoid", "pool"):
        fwd, bwd = {
            "silu": (ops.silu_forward, ops.silu_backward),
            "sigmoid": (ops.sigmoid_forward, ops.sigmoid_backward),
            "pool": (ops.global_avg_pool_forward, ops.global_avg_pool_backward),
        }[case.op]

        def step():
            y, cache = fwd(a["x"])
            bwd(a["dy"], cache)
    elif case.op == "linear":

        def step():
            y, cache = ops.linear_forward(a["x"], a["w"], a["b"])
            ops.linear_backward(a["dy"], cache)
    elif case.op == "xent":

        def step():
            ops.softmax_cross_entropy(a["x"], a["labels"], 0.1)
    else:
        raise ValueError(case.op)
    return step


def _numba_output_shape(case: Case, a: dict):
    from tinyeffnet import ops

    if case.op == "conv":
        return ops.conv2d_forward(a["x"], a["w"], case.stride, (case.k - 1) // 2)[0].shape
    if case.op == "dw":
        return ops.depthwise_conv2d_forward(a["x"], a["w"], case.stride, (case.k - 1) // 2)[0].shape
    if case.op == "pool":
        return (case.shape[0], case.shape[-1])
    if case.op == "linear":
        return (case.shape[0], case.cout)
    return case.shape


# ---------------------------------------------------------------- PyTorch contender
def _torch_step(case: Case, a: dict):
    import torch
    import torch.nn.functional as F

    def nchw(v):
        return torch.from_numpy(np.ascontiguousarray(v.transpose(0, 3, 1, 2)))

    pad = (case.k - 1) // 2
    if case.op in ("conv", "dw", "bn", "bn_silu", "silu", "pool"):
        x = nchw(a["x"]).requires_grad_(True)
    else:
        x = torch.from_numpy(a["x"]).requires_grad_(True)
    if case.op == "conv":
        w = torch.from_numpy(np.ascontiguousarray(a["w"].transpose(3, 2, 0, 1))).requires_grad_(True)

        def f():
            return F.conv2d(x, w, stride=case.stride, padding=pad), (x, w)
    elif case.op == "dw":
        w = torch.from_numpy(np.ascontiguousarray(a["w"].transpose(2, 0, 1)[:, None])).requires_grad_(True)

        def f():
            return F.conv2d(x, w, stride=case.stride, padding=pad, groups=x.shape[1]), (x, w)
    elif case.op in ("bn", "bn_silu"):
        g = torch.from_numpy(a["gamma"]).requires_grad_(True)
        b = torch.from_numpy(a["beta"]).requires_grad_(True)
        rm, rv = torch.zeros(x.shape[1]), torch.ones(x.shape[1])
        act = F.silu if case.op == "bn_silu" else (lambda h: h)

        def f():
            return act(F.batch_norm(x, rm, rv, g, b, True, 0.1, 1e-3)), (x, g, b)
    elif case.op == "silu":

        def f():
            return F.silu(x), (x,)
    elif case.op == "sigmoid":

        def f():
            return torch.sigmoid(x), (x,)
    elif case.op == "pool":

        def f():
            return x.mean((2, 3)), (x,)
    elif case.op == "linear":
        w = torch.from_numpy(np.ascontiguousarray(a["w"].T)).requires_grad_(True)
        b = torch.from_numpy(a["b"]).requires_grad_(True)

        def f():
            return F.linear(x, w, b), (x, w, b)
    elif case.op == "xent":
        labels = torch.from_numpy(a["labels"])

        def f():
            return F.cross_entropy(x, labels, label_smoothing=0.1), (x,)
    else:
        raise ValueError(case.op)

    dy_cache = {}

    def step():
        y, leaves = f()
        if y.ndim == 0:
            torch.autograd.grad(y, leaves)
            return
        if "dy" not in dy_cache:
            dy_cache["dy"] = torch.randn(y.shape)
        torch.autograd.grad(y, leaves, dy_cache["dy"])

    return step


# ---------------------------------------------------------------- worker and driver
def _time(step, repeats: int) -> float:
    from tinyeffnet.bench.timing import median_seconds

    return median_seconds(step, repeats, warmups=2)  # warm-up: JIT compile, allocator


def run_worker(contender: str, repeats: int) -> dict:
    """Time every case in this process; return {case name: median seconds}."""
    rng = np.random.default_rng(0)
    results = {}
    for case in CASES:
        a = _inputs(case, rng)
        if contender == "numba":
            a["dy"] = np.random.default_rng(1).standard_normal(_numba_output_shape(case, a)).astype(np.float32)
            step = _numba_step(case, a)
        else:
            step = _torch_step(case, a)
        results[case.name] = _time(step, repeats)
    return results


def _spawn(contender: str, repeats: int) -> dict:
    """Run one worker. The file runs as a script so that the torch process never imports tinyeffnet
    (nor Numba), and it gets the user's environment without tinyeffnet's thread-pool defaults."""
    from tinyeffnet.process import worker_environment

    env = worker_environment(contender == "numba", _PACKAGE_PARENT)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", contender, "--repeats", str(repeats)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(rounds: int = 3, repeats: int = 20, as_json: bool = False, progress=print) -> dict:
    """Alternate numba and torch worker processes for ``rounds`` rounds; summarise per case."""
    samples = {"numba": [], "torch": []}
    for r in range(rounds):
        for contender in ("numba", "torch") if r % 2 == 0 else ("torch", "numba"):
            progress(f"round {r + 1}/{rounds}: {contender} ...")
            samples[contender].append(_spawn(contender, repeats))
    summary = {}
    for case in CASES:
        row = {}
        for contender, runs in samples.items():
            t = np.array([run_[case.name] for run_ in runs]) * 1e3
            row[contender] = {"median_ms": float(np.median(t)), "min_ms": float(t.min()), "max_ms": float(t.max())}
        row["ratio"] = row["numba"]["median_ms"] / row["torch"]["median_ms"]
        summary[case.name] = row
    return summary


def format_table(summary: dict) -> str:
    head = f"{'op (fwd+bwd, float32, batch 8)':<38} {'tinyeffnet ms':>20} {'torch ms':>20} {'ratio':>7}"
    lines = [head, "-" * len(head)]
    for name, row in summary.items():
        ours, theirs = row["numba"], row["torch"]
        lines.append(
            f"{name:<38} {ours['median_ms']:>7.3f} ({ours['min_ms']:.2f}-{ours['max_ms']:.2f})"
            f" {theirs['median_ms']:>7.3f} ({theirs['min_ms']:.2f}-{theirs['max_ms']:.2f}) {row['ratio']:>7.2f}"
        )
    lines.append("ratio = tinyeffnet median / torch median; < 1 means tinyeffnet is faster. (range over rounds)")
    return "\n".join(lines)


def _main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="tinyeffnet/bench/ops.py")
    parser.add_argument("--worker", choices=["numba", "torch"], required=True)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    print(json.dumps(run_worker(args.worker, args.repeats)))


if __name__ == "__main__":
    _main()
