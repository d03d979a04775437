"""`tinyeffnet bench gpu`: the one command to run on a real GPU. It proves and times the CUDA target:

1. the CUDA tests on the device: ``tests/cuda/sim`` (written for the simulator) run again on the
   real GPU (TINYEFFNET_CUDA_DEVICE_TESTS=1), when the source tree with its tests is present;
2. every CUDA op against the CPU op (tinyeffnet.ops) at moderate shapes, float32 and float64,
   forward and every gradient (``check_ops``);
3. per-op forward+backward time of tinyeffnet.cuda against PyTorch CUDA eager (autograd, NCHW, float32,
   TF32 off) at EfficientNetV2-S shapes, batch 32, 224 px: a table of medians and ratios
   (tinyeffnet / torch; below 1 means tinyeffnet is faster) from the same run (``time_ops``);
4. the whole-model training step (``model_training_step``): EfficientNetV2-S, forward, loss, backward
   and SGD all on the GPU (``tinyeffnet.train.update_step``, the CPU's own step), against the CPU at
   batch 2, 128 px, float64 and float32 (loss, logits, a few gradients, BN running statistics, updated weights:
   ``model_parity``), and its time against torchvision's efficientnet_v2_s in PyTorch CUDA eager,
   float32, TF32 off, batch 32, 224 px, as a ratio of medians from the same run (``time_model_step``);
5. kernel launches and host <-> device copies per training step of S (``count_step``).

Each section reports and the next one runs even if it failed; the report (``gpu.json`` and a Markdown
``gpu.md``) is rewritten after every section into the folder ``--out`` names (``$OUT`` on the GPU
machine), so a run cut short keeps what it measured. ``tinyeffnet bench gpu --rehearse`` runs every
section in the CUDA simulator at tiny sizes, or dry (kernels counted, not run), without PyTorch
CUDA: the rehearsal that ``tests/cuda/sim/test_bench_gpu_sim.py`` runs in CI.

Timing: each step is run once to compile (numba) / warm up (cuDNN autotuning is off: the default),
then ``repeats`` times, each timed with a device synchronisation before and after; the median is shown.
Dimension legend: N batch, H, W, C channels-last (torch gets the NCHW permutation of the same data).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import numpy as np

from .ops import Case

N = 32  # batch
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOLERANCE = {np.float32: dict(atol=1e-4, rtol=1e-3), np.float64: dict(atol=1e-9, rtol=1e-9)}


# ------------------------------------------------------------------------------------ 1. tests
def run_device_tests() -> int | None:
    """Run tests/cuda/sim on the real GPU (a subprocess); None when the tests are not installed."""
    folder = os.path.join(_REPO_ROOT, "tests", "cuda", "sim")
    if not os.path.isdir(folder):
        return None
    env = dict(os.environ, TINYEFFNET_CUDA_DEVICE_TESTS="1")
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    return subprocess.call([sys.executable, "-m", "pytest", folder, "-q", "-p", "no:cacheprovider"], cwd=_REPO_ROOT,
                           env=env)


# ---------------------------------------------------------------------------- 2. correctness
def _compare(name, ours, reference, dtype) -> tuple[str, bool, float]:
    from ..testing import compare

    row = compare(name, ours, reference, **TOLERANCE[dtype])
    return name, row.ok, row.error


def _check_pair(label, cpu_fwd, cpu_bwd, gpu_fwd, gpu_bwd, inputs, dtype, kwargs=None):
    import tinyeffnet.cuda as tc

    kwargs = kwargs or {}
    y_cpu, cache_cpu = cpu_fwd(*inputs, **kwargs)
    y_gpu, cache_gpu = gpu_fwd(*[tc.to_device(a) for a in inputs], **kwargs)
    rows = [_compare(f"{label} forward", tc.to_host(y_gpu), y_cpu, dtype)]
    dy = np.random.default_rng(1).standard_normal(y_cpu.shape).astype(dtype)
    for i, (ours, theirs) in enumerate(zip(gpu_bwd(tc.to_device(dy), cache_gpu), cpu_bwd(dy, cache_cpu))):
        if theirs is not None:
            rows.append(_compare(f"{label} grad {i}", tc.to_host(ours), theirs, dtype))
    return rows


def _normal(rng, dtype):
    """r(*shape): standard normal samples of that shape from ``rng``, in ``dtype``."""
    return lambda *shape: rng.standard_normal(shape).astype(dtype)


def _batchnorm_with(forward, running_mean, running_var, training, move):
    """forward(x, gamma, beta) on fresh copies of the running statistics (``move``d: copied or sent
    to the device) at each call, so the CPU and the GPU op start from the same ones."""
    return lambda x, g, b: forward(x, g, b, move(running_mean), move(running_var), training)


def check_ops(dtypes=(np.float32, np.float64), batch=4, size=30, channels=24, features=300) -> list:
    """Every CUDA op against the CPU op at moderate shapes. Returns rows (name, ok, error).

    x is (batch, size, size, channels); the linear layer has ``features`` inputs, the loss
    ``features // 3`` classes."""
    import tinyeffnet.cuda as tc
    from tinyeffnet import ops
    from tinyeffnet.cuda import conv2d as cuda_conv
    from tinyeffnet.cuda import depthwise as cuda_dw

    rows = []
    for dtype in dtypes:
        rng = np.random.default_rng(0)
        r = _normal(rng, dtype)
        t = np.dtype(dtype).name
        c = channels
        x = r(batch, size, size, c)
        for k, s, p in ((3, 2, "same"), (3, 1, 1), (1, 1, 0), (1, 2, 0)):
            w = r(k, k, c, c + 3)
            rows += _check_pair(f"conv2d k{k} s{s} p{p} {t}", ops.conv2d_forward, ops.conv2d_backward,
                                tc.conv2d_forward, tc.conv2d_backward, [x, w], dtype, dict(stride=s, padding=p))
        rows += _check_pair(f"conv2d direct {t}", ops.conv2d_forward, ops.conv2d_backward,
                            cuda_conv.conv2d_forward_direct, cuda_conv.conv2d_backward_direct,
                            [x[:2, :12, :12], r(3, 3, c, 5)], dtype, dict(stride=2, padding=1))
        for k, s in ((3, 1), (5, 2)):
            rows += _check_pair(f"depthwise k{k} s{s} {t}", ops.depthwise_conv2d_forward,
                                ops.depthwise_conv2d_backward, tc.depthwise_conv2d_forward,
                                tc.depthwise_conv2d_backward, [x, r(k, k, c)], dtype, dict(stride=s, padding="same"))
        rows += _check_pair(f"depthwise dw version 1 {t}", ops.depthwise_conv2d_forward, ops.depthwise_conv2d_backward,
                            tc.depthwise_conv2d_forward, cuda_dw.depthwise_conv2d_backward_simple, [x, r(3, 3, c)],
                            dtype, dict(stride=1, padding=1))
        for training in (True, False):
            gamma, beta, rm, rv = r(c), r(c), r(c), np.abs(r(c)) + dtype(0.5)
            rows += _check_pair(
                f"batchnorm training={training} {t}",
                _batchnorm_with(ops.batchnorm_forward, rm, rv, training, np.copy), ops.batchnorm_backward,
                _batchnorm_with(tc.batchnorm_forward, rm, rv, training, tc.to_device), tc.batchnorm_backward,
                [x, gamma, beta], dtype)
        for name in ("silu", "sigmoid"):
            rows += _check_pair(f"{name} {t}", getattr(ops, f"{name}_forward"), getattr(ops, f"{name}_backward"),
                                getattr(tc, f"{name}_forward"), getattr(tc, f"{name}_backward"), [x * dtype(4)], dtype)
        rows += _check_pair(f"global_avg_pool {t}", ops.global_avg_pool_forward, ops.global_avg_pool_backward,
                            tc.global_avg_pool_forward, tc.global_avg_pool_backward, [x], dtype)
        rows += _check_pair(f"linear {t}", ops.linear_forward, ops.linear_backward, tc.linear_forward,
                            tc.linear_backward, [r(batch, features), r(features, features // 3), r(features // 3)],
                            dtype)
        logits, labels = r(batch, features // 3), rng.integers(0, features // 3, batch)
        loss_cpu, dz_cpu = ops.softmax_cross_entropy(logits, labels, 0.1)
        loss_gpu, dz_gpu = tc.softmax_cross_entropy(tc.to_device(logits), labels, 0.1)
        rows += [_compare(f"softmax_cross_entropy loss {t}", tc.to_host(loss_gpu), np.asarray(loss_cpu), dtype),
                 _compare(f"softmax_cross_entropy dlogits {t}", tc.to_host(dz_gpu), dz_cpu, dtype)]
        for name in ("dropout", "drop_path"):
            def fwd(module, name=name):
                return lambda a: getattr(module, f"{name}_forward")(a, 0.3, np.random.default_rng(5), training=True)
            rows += _check_pair(f"{name} {t}", fwd(ops), getattr(ops, f"{name}_backward"), fwd(tc),
                                getattr(tc, f"{name}_backward"), [x], dtype)
    return rows


# --------------------------------------------------------------------------------- 3. timing
# One row of the table: bench ops' Case (name, op, shape, cout, k, stride), with op here one of
# conv | dw | bn | silu | sigmoid | pool | linear | xent | gate | add; shape NHWC (or (N, C)).
CASES = [  # EfficientNetV2-S at 224 px (stage resolutions 112, 112, 56, 28, 14, 14, 7)
    Case("stem conv 3x3 s2 3->24 @224", "conv", (N, 224, 224, 3), 24, 3, 2),
    Case("fused conv 3x3 24->24 @112 (st1)", "conv", (N, 112, 112, 24), 24, 3, 1),
    Case("fused expand 3x3 s2 24->96 @112 (st2)", "conv", (N, 112, 112, 24), 96, 3, 2),
    Case("project 1x1 96->48 @56 (st2)", "conv", (N, 56, 56, 96), 48, 1, 1),
    Case("expand 1x1 64->256 @28 (st4)", "conv", (N, 28, 28, 64), 256, 1, 1),
    Case("expand 1x1 160->960 @14 (st5)", "conv", (N, 14, 14, 160), 960, 1, 1),
    Case("head 1x1 256->1280 @7", "conv", (N, 7, 7, 256), 1280, 1, 1),
    Case("depthwise 3x3 s2 256 @28 (st4)", "dw", (N, 28, 28, 256), 256, 3, 2),
    Case("depthwise 3x3 960 @14 (st5)", "dw", (N, 14, 14, 960), 960, 3, 1),
    Case("depthwise 3x3 1536 @7 (st6)", "dw", (N, 7, 7, 1536), 1536, 3, 1),
    Case("batchnorm train 24 @112", "bn", (N, 112, 112, 24)),
    Case("batchnorm train 960 @14", "bn", (N, 14, 14, 960)),
    Case("silu 24 @112", "silu", (N, 112, 112, 24)),
    Case("sigmoid (SE gate) 960", "sigmoid", (N, 960)),
    Case("SE gate multiply 960 @14", "gate", (N, 14, 14, 960)),
    Case("residual add 160 @14", "add", (N, 14, 14, 160)),
    Case("global avg pool 1280 @7", "pool", (N, 7, 7, 1280)),
    Case("classifier linear 1280->1000", "linear", (N, 1280), 1000),
    Case("softmax cross-entropy 1000", "xent", (N, 1000)),
]


def _ours_step(case: Case, rng):
    """A closure running our forward + backward for the case (inputs already on the device)."""
    import tinyeffnet.cuda as tc

    dev = lambda *shape: tc.to_device(rng.standard_normal(shape).astype(np.float32))  # noqa: E731
    x = dev(*case.shape)
    if case.op in ("conv", "dw"):
        cin = case.shape[3]
        w = dev(case.k, case.k, cin, case.cout) if case.op == "conv" else dev(case.k, case.k, cin)
        fwd = tc.conv2d_forward if case.op == "conv" else tc.depthwise_conv2d_forward
        bwd = tc.conv2d_backward if case.op == "conv" else tc.depthwise_conv2d_backward
        y, _ = fwd(x, w, case.stride, "same")
        dy = dev(*y.shape)
        return lambda: bwd(dy, fwd(x, w, case.stride, "same")[1])
    if case.op == "bn":
        c = case.shape[-1]
        g, b, rm, rv = dev(c), dev(c), dev(c), tc.to_device(np.ones(c, np.float32))
        dy = dev(*case.shape)
        return lambda: tc.batchnorm_backward(dy, tc.batchnorm_forward(x, g, b, rm, rv, True)[1])
    if case.op in ("silu", "sigmoid"):
        fwd, bwd = getattr(tc, f"{case.op}_forward"), getattr(tc, f"{case.op}_backward")
        dy = dev(*case.shape)
        return lambda: bwd(dy, fwd(x)[1])
    if case.op == "gate":
        g, dy = dev(case.shape[0], case.shape[3]), dev(*case.shape)
        return lambda: tc.channel_gate_backward(dy, tc.channel_gate_forward(x, g)[1])
    if case.op == "add":
        other = dev(*case.shape)
        return lambda: tc.add(x, other)
    if case.op == "pool":
        dy = dev(case.shape[0], case.shape[3])
        return lambda: tc.global_avg_pool_backward(dy, tc.global_avg_pool_forward(x)[1])
    if case.op == "linear":
        w, b, dy = dev(case.shape[1], case.cout), dev(case.cout), dev(case.shape[0], case.cout)
        return lambda: tc.linear_backward(dy, tc.linear_forward(x, w, b)[1])
    labels = rng.integers(0, case.shape[1], case.shape[0])
    return lambda: tc.softmax_cross_entropy(x, labels, 0.1)


def _torch_step(case: Case, rng):
    """The same computation in PyTorch CUDA eager (NCHW, autograd)."""
    import torch
    import torch.nn.functional as F

    def dev(*shape, grad=True):
        return torch.tensor(rng.standard_normal(shape).astype(np.float32), device="cuda", requires_grad=grad)

    if case.op in ("conv", "dw", "bn", "silu", "gate", "add", "pool"):
        n, h, w_, c = case.shape
        x = dev(n, c, h, w_)
    else:
        x = dev(*case.shape)
    if case.op in ("conv", "dw"):
        c = case.shape[3]
        groups = 1 if case.op == "conv" else c
        w = dev(case.cout, c // groups, case.k, case.k)
        pad = case.k // 2  # the same output size as TF "same" for these odd kernels
        y = F.conv2d(x, w, stride=case.stride, padding=pad, groups=groups)
        dy = torch.randn_like(y)
        return lambda: F.conv2d(x, w, stride=case.stride, padding=pad, groups=groups).backward(dy)
    if case.op == "bn":
        c = case.shape[-1]
        g, b = dev(c), dev(c)
        rm, rv = torch.zeros(c, device="cuda"), torch.ones(c, device="cuda")
        dy = torch.randn_like(x)
        return lambda: F.batch_norm(x, rm, rv, g, b, True, 0.1, 1e-3).backward(dy)
    if case.op in ("silu", "sigmoid"):
        fn = F.silu if case.op == "silu" else torch.sigmoid
        dy = torch.randn_like(x)
        return lambda: fn(x).backward(dy)
    if case.op == "gate":
        g = dev(case.shape[0], case.shape[3], 1, 1)
        dy = torch.randn_like(x)
        return lambda: (x * g).backward(dy)
    if case.op == "add":
        other = dev(*x.shape, grad=False)
        return lambda: torch.add(x.detach(), other)
    if case.op == "pool":
        dy = torch.randn(case.shape[0], case.shape[3], device="cuda")
        return lambda: x.mean(dim=(2, 3)).backward(dy)
    if case.op == "linear":
        w, b = dev(case.cout, case.shape[1]), dev(case.cout)
        dy = torch.randn(case.shape[0], case.cout, device="cuda")
        return lambda: F.linear(x, w, b).backward(dy)
    labels = torch.tensor(rng.integers(0, case.shape[1], case.shape[0]), device="cuda")
    return lambda: F.cross_entropy(x, labels, label_smoothing=0.1).backward()


def _median_ms(step, synchronize, repeats: int) -> float:
    step()  # compile / warm up
    synchronize()
    times = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        step()
        synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def time_ops(repeats: int = 20, progress=print) -> list:
    """Rows (name, ours ms, torch ms, ratio), float32, TF32 off."""
    import torch
    from numba import cuda

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rows = []
    for case in CASES:
        ours = _median_ms(_ours_step(case, np.random.default_rng(0)), cuda.synchronize, repeats)
        theirs = _median_ms(_torch_step(case, np.random.default_rng(0)), torch.cuda.synchronize, repeats)
        rows.append((case.name, ours, theirs, ours / theirs))
        progress(f"  {case.name:<40s} {ours:9.3f} {theirs:9.3f} {ours / theirs:7.2f}")
    return rows


# ---------------------------------------------------------------------------- 4. whole model
MODEL = "efficientnetv2_s"
PARITY_GRADIENTS = ("stem.conv.weight", "stages.1.0.expand.conv.weight", "stages.3.0.depthwise.conv.weight",
                    "stages.3.0.se.reduce.weight", "stages.5.14.project.bn.weight", "head.conv.weight",
                    "classifier.weight", "classifier.bias")
PARITY_BUFFERS = ("stem.bn.running_mean", "stages.3.0.depthwise.bn.running_var", "head.bn.running_var")
SGD_OPTIONS = dict(lr=0.1, momentum=0.9, weight_decay=1e-5)
SMOOTHING = 0.1


def _batch(rng, batch: int, size: int, classes: int, dtype):
    images = rng.standard_normal((batch, size, size, 3)).astype(dtype)  # (N, H, W, 3)
    return images, rng.integers(0, classes, batch)                      # (N,)


def model_parity(name: str = MODEL, batch: int = 2, size: int = 128, dtypes=(np.float64, np.float32),
                 progress=print) -> list:
    """One training step of ``name`` on the CPU and on the GPU from the same weights, the same batch and
    the same dropout / drop-path coins: loss, logits, a few parameter gradients, BN running statistics
    and an updated parameter, per dtype. Returns rows (name, ok, error) (error <= 1 is ok, ``compare``).

    CPU: tinyeffnet.optim.SGD after forward, loss, backward, written out. GPU: tinyeffnet.train.update_step
    (the function the CPU trains with) with tinyeffnet.cuda.SGD. float64 shows that both compute the
    same function (only summation order differs); float32 shows the rounding that builds up through the whole network.
    """
    import copy

    import tinyeffnet.cuda as tc
    from tinyeffnet import ops
    from tinyeffnet.models import create_model
    from tinyeffnet.optim import SGD as HostSGD
    from tinyeffnet.testing import rel_error
    from tinyeffnet.train import update_step

    rows = []
    for dtype in dtypes:
        t = np.dtype(dtype).name
        cpu = create_model(name, dtype=dtype, seed=0)
        gpu = copy.deepcopy(cpu).to("cuda")
        cpu.set_rng(np.random.default_rng(7))
        gpu.set_rng(np.random.default_rng(7))
        x, labels = _batch(np.random.default_rng(0), batch, size, cpu.num_classes, dtype)
        start = time.perf_counter()
        opt_cpu = HostSGD(cpu.parameters(), **SGD_OPTIONS)
        opt_cpu.zero_grad()
        logits_cpu = cpu(x)
        loss_cpu, dlogits = ops.softmax_cross_entropy(logits_cpu, labels, SMOOTHING)
        cpu.backward(dlogits)
        opt_cpu.step()
        cpu_s = time.perf_counter() - start
        loss_gpu, logits_gpu = update_step(gpu, tc.SGD(gpu.parameters(), **SGD_OPTIONS), tc.to_device(x), labels,
                                           SMOOTHING, check_finite=False)
        progress(f"   {name} {t} batch {batch} at {size} px: CPU step {cpu_s:.1f} s (with compilation)")
        gpu_params, cpu_params = dict(gpu.named_parameters()), dict(cpu.named_parameters())
        gpu_buffers, cpu_buffers = dict(gpu.named_buffers()), dict(cpu.named_buffers())
        pairs = [("loss", tc.to_host(loss_gpu), np.asarray(loss_cpu, dtype=dtype)),
                 ("logits", tc.to_host(logits_gpu), logits_cpu)]
        pairs += [(f"grad {key}", tc.to_host(gpu_params[key].grad), cpu_params[key].grad) for key in PARITY_GRADIENTS]
        pairs += [(key, tc.to_host(gpu_buffers[key]), cpu_buffers[key]) for key in PARITY_BUFFERS]
        pairs += [(f"updated {key}", tc.to_host(gpu_params[key].data), cpu_params[key].data)
                  for key in ("stem.conv.weight", "classifier.weight")]
        for label, ours, theirs in pairs:
            row = _compare(f"model {label} {t}", ours, theirs, dtype)
            rows.append(row)
            progress(f"   {'ok  ' if row[1] else 'FAIL'} {row[0]:<55s} compare {row[2]:9.3g} (ok <= 1)   "
                     f"rel_error {rel_error(ours, theirs):.2g}")
        del gpu
    return rows


def _our_model_step(name: str, batch: int, size: int):
    """A closure running one tinyeffnet.train.update_step (float32) on a fixed batch already on the GPU."""
    import tinyeffnet.cuda as tc
    from tinyeffnet.models import create_model
    from tinyeffnet.train import update_step

    model = create_model(name).to("cuda").train()
    optimizer = tc.SGD(model.parameters(), **SGD_OPTIONS)
    images, labels = _batch(np.random.default_rng(0), batch, size, model.num_classes, np.float32)
    x = tc.to_device(images)                                     # (N, H, W, 3) on the GPU
    return lambda: update_step(model, optimizer, x, labels, SMOOTHING, check_finite=False)


def _torch_model_step(batch: int, size: int):
    """The same step in PyTorch CUDA eager: torchvision's efficientnet_v2_s, NCHW, float32, torch SGD."""
    import torch
    import torch.nn.functional as F
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.efficientnet_v2_s(weights=None).cuda().train()
    optimizer = torch.optim.SGD(model.parameters(), **SGD_OPTIONS)
    images, labels = _batch(np.random.default_rng(0), batch, size, 1000, np.float32)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().cuda()  # (N, 3, H, W)
    y = torch.from_numpy(labels).cuda()

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y, label_smoothing=SMOOTHING).backward()
        optimizer.step()

    return step


def time_model_step(name: str = MODEL, batch: int = N, size: int = 224, repeats: int = 5, progress=print) -> tuple:
    """Median ms of one training step (forward, loss, backward, SGD), ours vs PyTorch, same run.
    Returns (ours ms, torch ms, ratio ours / torch)."""
    import torch
    from numba import cuda

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    ours = _median_ms(_our_model_step(name, batch, size), cuda.synchronize, repeats)
    theirs = _median_ms(_torch_model_step(batch, size), torch.cuda.synchronize, repeats)
    progress(f"   {name} training step, batch {batch}, {size} px, float32, TF32 off, median of {repeats}:")
    progress(f"   tinyeffnet.cuda {ours:9.1f} ms   torch CUDA eager {theirs:9.1f} ms   ratio {ours / theirs:.2f}")
    return ours, theirs, ours / theirs


def model_training_step(progress=print, parity_batch: int = 2, parity_size: int = 128, batch: int = N,
                        size: int = 224, repeats: int = 5) -> dict:
    """EfficientNetV2-S training step (forward, loss, backward, SGD) on the GPU: against the CPU (parity,
    ``model_parity`` at a small batch) and against PyTorch CUDA eager (time, ``time_model_step``).
    Returns {"rows": parity rows, "ours_ms", "torch_ms", "ratio"}."""
    progress(f"   parity with the CPU, batch {parity_batch} at {parity_size} px")
    rows = model_parity(MODEL, parity_batch, parity_size, progress=progress)
    ours, theirs, ratio = time_model_step(MODEL, batch, size, repeats, progress)
    return dict(rows=rows, ours_ms=ours, torch_ms=theirs, ratio=ratio)


# ------------------------------------------------------------------------ 5. launches per step
def count_step(name: str = MODEL, batch: int = N, size: int = 224, dry: bool = False) -> dict:
    """Kernel launches and host <-> device copies in one training step of ``name`` on the device
    (``update_step``: forward, loss, backward, SGD; float32; no finiteness check, as in a timed
    step). dry=True counts without running the kernels (``cuda._runtime.counting``): in the
    simulator it takes seconds instead of hours. Returns ``Counts.as_dict()``."""
    import tinyeffnet.cuda as tc
    from tinyeffnet.cuda._runtime import counting
    from tinyeffnet.models import create_model
    from tinyeffnet.train import update_step

    model = create_model(name).to("cuda").train()
    optimizer = tc.SGD(model.parameters(), **SGD_OPTIONS)
    images, labels = _batch(np.random.default_rng(0), batch, size, model.num_classes, np.float32)
    x = tc.to_device(images)
    with counting(dry=dry) as counts:
        update_step(model, optimizer, x, labels, SMOOTHING, check_finite=False)
    return counts.as_dict()


# ----------------------------------------------------------------------------------------- run
SECTIONS = ("device_tests", "ops", "op_times", "launches", "model")


def _sections(repeats: int, tests: bool, rehearsal: bool, progress) -> dict:
    """name -> a callable returning (ok, data). A rehearsal runs every section's code in the CUDA
    simulator at tiny sizes, or dry (kernels counted, not run: numbers not checked), and leaves out
    what needs PyTorch CUDA, so that a typo shows before the first real GPU call."""
    from tinyeffnet.cuda._runtime import counting

    def device_tests():
        if not tests or rehearsal:
            return True, {"skipped": "rehearsal" if rehearsal else "--no-tests"}
        code = run_device_tests()
        progress("   tests not found (installed package): skipped" if code is None else f"   pytest exit code {code}")
        return not code, {"pytest_exit_code": code}

    def ops_section():
        rows = check_ops(batch=1, size=5, channels=3, features=6) if rehearsal else check_ops()
        bad = [row for row in rows if not row[1]]
        for name, _, error in bad:
            progress(f"   FAIL {name}: error {error:.3g}")
        progress(f"   {len(rows)} checks, {'all ok' if not bad else f'{len(bad)} failed'}")
        return not bad, {"rows": [{"name": n, "ok": bool(ok), "error": float(e)} for n, ok, e in rows]}

    def op_times():
        if rehearsal:                      # our side only, one case, dry (torch CUDA is not in the simulator)
            with counting(dry=True) as counts:
                _ours_step(CASES[1], np.random.default_rng(0))()
            return True, {"rehearsed": CASES[1].name, "launches": counts.total_launches}
        progress(f"  {'op':<40s} {'ours':>9s} {'torch':>9s} {'ratio':>7s}")
        rows = time_ops(repeats, progress)
        return True, {"rows": [{"name": n, "ours_ms": a, "torch_ms": b, "ratio": r} for n, a, b, r in rows]}

    def launches():
        counts = count_step(MODEL, 2, 64, dry=True) if rehearsal else count_step(MODEL, N, 224)
        progress(f"   {counts['launches']} kernel launches, {counts['to_device']} host->device and "
                 f"{counts['to_host']} device->host copies per training step")
        return True, counts

    def model():
        if rehearsal:                      # the parity code path, dry: numbers are garbage, not checked
            with counting(dry=True):
                rows = model_parity(MODEL, 2, 32, dtypes=(np.float32,), progress=lambda message: None)
            return True, {"rehearsed_rows": len(rows)}
        result = model_training_step(progress)
        rows = result.pop("rows")
        result["parity"] = [{"name": n, "ok": bool(ok), "error": float(e)} for n, ok, e in rows]
        return all(ok for _, ok, _ in rows), result

    return {"device_tests": device_tests, "ops": ops_section, "op_times": op_times, "launches": launches,
            "model": model}


def write_report(report: dict, out) -> None:
    """``report`` as ``gpu.json`` and a Markdown summary ``gpu.md`` in the folder ``out`` (atomic writes)."""
    import json
    from pathlib import Path

    from ..files import write_atomic

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=1, default=str)
    write_atomic(folder / "gpu.json", lambda f: f.write(text.encode()))
    lines = [f"# tinyeffnet bench gpu{' (rehearsal in the simulator)' if report['rehearsal'] else ''}", "",
             f"device: {report['device']}", "", "| section | ok | seconds | summary |", "|---|---|---:|---|"]
    for name, entry in report["sections"].items():
        summary = entry.get("error") or ", ".join(f"{k} {v}" for k, v in entry.get("data", {}).items()
                                                  if not isinstance(v, (list, dict)))
        lines.append(f"| {name} | {'yes' if entry['ok'] else 'NO'} | {entry['seconds']:.1f} | {summary} |")
    for name, entry in report["sections"].items():
        rows = entry.get("data", {}).get("rows")
        if rows and "ratio" in rows[0]:
            lines += ["", f"## {name}", "", "| op | tinyeffnet ms | torch ms | ratio |", "|---|---:|---:|---:|"]
            lines += [f"| {r['name']} | {r['ours_ms']:.3f} | {r['torch_ms']:.3f} | {r['ratio']:.2f} |" for r in rows]
    write_atomic(folder / "gpu.md", lambda f: f.write(("\n".join(lines) + "\n").encode()))


def run(repeats: int = 20, tests: bool = True, progress=print, out=None, rehearsal: bool = False) -> int:
    """All of the above in one call; every section reports and the next one runs even if it failed.
    The report is rewritten after each section (``write_report``, to ``out``, default runs/bench_gpu),
    so a run cut short keeps what it measured. rehearsal=True runs in the CUDA simulator (see
    ``_sections``). Returns a process exit code (0 = every section passed)."""
    import traceback

    import tinyeffnet.cuda as tc
    from numba import config

    if rehearsal != bool(config.ENABLE_CUDASIM) or not tc.is_available():
        need = "the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)" if rehearsal else "a real CUDA GPU"
        progress(f"tinyeffnet bench gpu{' --rehearse' if rehearsal else ''} needs {need}")
        return 2
    from numba import cuda

    out = out or os.path.join("runs", "bench_gpu")
    device = getattr(cuda.get_current_device(), "name", "numba's CUDA simulator")   # the simulator has no name
    report = {"device": device.decode() if isinstance(device, bytes) else str(device), "rehearsal": rehearsal,
              "sections": {}}
    progress(f"device: {report['device']}; writing {out}/gpu.json and gpu.md")
    for number, (name, section) in enumerate(_sections(repeats, tests, rehearsal, progress).items(), start=1):
        progress(f"{number}. {name}")
        start = time.perf_counter()
        try:
            ok, data = section()
            entry = {"ok": bool(ok), "data": data}
        except Exception as error:  # one scarce GPU run: record it and go on with the next section
            entry = {"ok": False, "error": f"{type(error).__name__}: {error}",
                     "traceback": traceback.format_exc()[-2000:]}
            progress(f"   FAIL: {entry['error']}")
        entry["seconds"] = time.perf_counter() - start
        report["sections"][name] = entry
        write_report(report, out)
    return 0 if all(entry["ok"] for entry in report["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(run())
