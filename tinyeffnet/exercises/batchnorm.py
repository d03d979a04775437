"""Exercise 4: batch normalisation, training and eval, with PyTorch's running statistics
(``batchnorm_forward`` / ``batchnorm_backward``, the signatures of ``tinyeffnet.ops``).

    training: mean, var = per-channel mean and BIASED variance over every axis but the last (M values)
              y = gamma (x - mean) / sqrt(var + eps) + beta
              running_mean <- (1 - momentum) running_mean + momentum mean                  (in place)
              running_var  <- (1 - momentum) running_var  + momentum var M / (M - 1)      (UNBIASED)
    eval:     the same with the running statistics, which do not change
    backward: dbeta = sum dy, dgamma = sum dy xhat,
              training: dx = gamma inv_std / M (M dy - dbeta - xhat dgamma);  eval: dx = gamma inv_std dy

What the grid catches: the biased / unbiased swap (in the normalisation or in running_var), the
momentum the wrong way round, running statistics not updated in place or updated in eval, eval
normalising with the batch, eps or momentum hard-coded, the (N, C) input after a linear layer,
and a backward without the mean and variance terms (finite differences at every entry, with a
random dy: with dy all ones the training dx is zero and a wrong backward returning zeros passes).
"""
from __future__ import annotations

import numpy as np

from ..ops import reference
from .harness import (Exercise, Function, Test, as_grads, describe_shapes, expect_close, expect_op_gradients,
                      submitted, torch_module, unpack_pair)


def _inputs(rng, shape, dtype=np.float64):
    c = shape[-1]
    x = (rng.standard_normal(shape) * rng.uniform(0.5, 3) + rng.uniform(-2, 2)).astype(dtype)
    gamma = rng.uniform(0.5, 2.0, c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    running_mean = rng.standard_normal(c).astype(dtype)
    running_var = rng.uniform(0.5, 2.0, c).astype(dtype)
    return x, gamma, beta, running_mean, running_var


def _shape(rng, kind: str) -> tuple:
    if kind == "nc":
        return (int(rng.integers(3, 7)), int(rng.integers(2, 5)))
    if kind == "one":
        return (1, int(rng.integers(2, 4)), int(rng.integers(3, 5)), 1)
    return (int(rng.integers(2, 4)), int(rng.integers(2, 4)), int(rng.integers(2, 5)), int(rng.integers(2, 4)))




def forward_test(name: str, kind: str, training: bool, steps: int, hint: str, momentum=0.1, eps=1e-3) -> Test:
    """Row: y after ``steps`` forwards, and the running statistics, against the reference."""

    def run(sub, rng):
        x, gamma, beta, rm, rv = _inputs(rng, _shape(rng, kind))
        ours_rm, ours_rv, ref_rm, ref_rv = rm.copy(), rv.copy(), rm.copy(), rv.copy()
        for step in range(steps):
            xs = x if step == 0 else x * (1 + step) + step
            y, _ = unpack_pair("batchnorm_forward", submitted(sub, "batchnorm_forward")(
                xs.copy(), gamma.copy(), beta.copy(), ours_rm, ours_rv, training, momentum=momentum, eps=eps))
            y_ref, _ = reference.batchnorm_forward(xs, gamma, beta, ref_rm, ref_rv, training, momentum=momentum,
                                                   eps=eps)
            expect_close(f"y (forward {step + 1})", y, y_ref)
            expect_close(f"running_mean (after forward {step + 1}, updated in place)", ours_rm, ref_rm)
            expect_close(f"running_var (after forward {step + 1}, updated in place)", ours_rv, ref_rv)
        return describe_shapes(x=x, training=training, momentum=momentum, eps=eps) + f", {steps} forward(s)"

    return Test(name, run, hint)


def backward_test(name: str, kind: str, training: bool, hint: str, points: int = 2) -> Test:
    """Row: dx, dgamma, dbeta against the reference, then finite differences at every entry."""

    def run(sub, rng):
        x, gamma, beta, rm, rv = _inputs(rng, _shape(rng, kind))
        forward, backward = submitted(sub, "batchnorm_forward"), submitted(sub, "batchnorm_backward")
        y, cache = unpack_pair("batchnorm_forward", forward(x.copy(), gamma.copy(), beta.copy(), rm.copy(),
                                                            rv.copy(), training))
        y_ref, cache_ref = reference.batchnorm_forward(x, gamma, beta, rm.copy(), rv.copy(), training)
        expect_close("y", y, y_ref)
        dy = rng.standard_normal(x.shape)
        grads = as_grads("batchnorm_backward", backward(dy.copy(), cache), 3)
        for what, ours, ref in zip(("dx", "dgamma", "dbeta"), grads, reference.batchnorm_backward(dy, cache_ref)):
            expect_close(what, ours, ref)
        expect_op_gradients(forward, backward, [x, gamma, beta, rm, rv, training], ["x", "gamma", "beta"], rng)
        return describe_shapes(x=x, training=training) + "; every entry of dx, dgamma, dbeta by finite differences"

    return Test(name, run, hint, points)


def float32_test() -> Test:
    def run(sub, rng):
        x, gamma, beta, rm, rv = _inputs(rng, _shape(rng, "nhwc"), np.float32)
        y, cache = unpack_pair("batchnorm_forward", submitted(sub, "batchnorm_forward")(x, gamma, beta, rm.copy(),
                                                                                   rv.copy(), True))
        y_ref, cache_ref = reference.batchnorm_forward(x, gamma, beta, rm.copy(), rv.copy(), True)
        expect_close("y", y, y_ref, tol=1e-5)
        dy = rng.standard_normal(x.shape).astype(np.float32)
        for what, ours, ref in zip(("dx", "dgamma", "dbeta"),
                                   as_grads("batchnorm_backward", submitted(sub, "batchnorm_backward")(dy, cache), 3),
                                   reference.batchnorm_backward(dy, cache_ref)):
            expect_close(what, ours, ref, tol=1e-4)
        return describe_shapes(x=x) + ", float32"

    return Test("float32 in, float32 out", run, "keep the input's dtype (no float64 constants or temporaries)")


def torch_test() -> Test:
    """Row: torch.nn.functional.batch_norm in training mode: y, dx, dgamma, dbeta, running stats."""

    def run(sub, rng):
        torch = torch_module()
        x, gamma, beta, rm, rv = _inputs(rng, _shape(rng, "nhwc"))
        ours_rm, ours_rv = rm.copy(), rv.copy()
        y, cache = unpack_pair("batchnorm_forward", submitted(sub, "batchnorm_forward")(
            x.copy(), gamma.copy(), beta.copy(), ours_rm, ours_rv, True, momentum=0.1, eps=1e-3))
        xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
        gt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
        rmt, rvt = torch.tensor(rm), torch.tensor(rv)
        yt = torch.nn.functional.batch_norm(xt, rmt, rvt, gt, bt, training=True, momentum=0.1, eps=1e-3)
        expect_close("y (torch)", y, yt.detach().numpy().transpose(0, 2, 3, 1))
        expect_close("running_mean (torch)", ours_rm, rmt.numpy())
        expect_close("running_var (torch)", ours_rv, rvt.numpy())
        dy = rng.standard_normal(x.shape)
        dx, dgamma, dbeta = as_grads("batchnorm_backward", submitted(sub, "batchnorm_backward")(dy.copy(), cache), 3)
        yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2).copy()))
        expect_close("dx (torch)", dx, xt.grad.numpy().transpose(0, 2, 3, 1))
        expect_close("dgamma (torch)", dgamma, gt.grad.numpy())
        expect_close("dbeta (torch)", dbeta, bt.grad.numpy())
        return describe_shapes(x=x) + ": torch.nn.functional.batch_norm, training, running statistics"

    return Test("parity with PyTorch", run, "PyTorch disagrees: check the biased/unbiased variances and the momentum")


HINT_VAR = ("normalise with the BIASED variance (divide by M); store the UNBIASED one in running_var "
            "(var * M / (M - 1)), as PyTorch does")
HINT_MOMENTUM = "running = (1 - momentum) * running + momentum * batch statistic, updated IN PLACE (running[...] = ...)"
HINT_EVAL = "eval normalises with running_mean and running_var and leaves them unchanged"
HINT_BACK = ("in training the mean and the variance depend on every x of the channel: "
             "dx = gamma inv_std / M (M dy - sum dy - xhat sum(dy xhat))")

FORWARD_DOC = """Batch normalisation, per channel (the last axis), PyTorch conventions.

    training:  mean_c = 1/M sum_m x_mc,   var_c = 1/M sum_m (x_mc - mean_c)^2     (biased; M = x.size / C)
               running_mean <- (1 - momentum) running_mean + momentum mean          (IN PLACE)
               running_var  <- (1 - momentum) running_var  + momentum var M / (M - 1)   (unbiased)
    eval:      mean, var = running_mean, running_var (left unchanged)
    both:      xhat = (x - mean) / sqrt(var + eps);   y = gamma xhat + beta

    x: (N, H, W, C) or (N, C); gamma, beta, running_mean, running_var: (C,); training: bool.
    Returns (y, cache): y like x; cache: what backward needs (x, mean, 1/std, gamma, training).

    Hints: the axes are tuple(range(x.ndim - 1)). Update the running arrays in place
    (running_mean[...] = ...), never rebind the name. Copy mean and var in eval: a later update
    of the running arrays must not change what your backward uses."""

BACKWARD_DOC = """Gradients of batchnorm_forward, given dy (like y).

    dbeta_c  = sum_m dy_mc,        dgamma_c = sum_m dy_mc xhat_mc
    training:  dx_mc = gamma_c inv_std_c / M (M dy_mc - dbeta_c - xhat_mc dgamma_c)
    eval:      dx_mc = gamma_c inv_std_c dy_mc

    Returns (dx, dgamma, dbeta): x's shape, (C,), (C,).
    Hint: the two extra training terms come from d mean / dx and d var / dx (derive them once)."""

INTRO = """Batch normalisation: two different functions, one for training and one for evaluation.

Training normalises with the batch's statistics and updates running averages in place (biased
variance to normalise, unbiased to store, momentum 0.1 as in PyTorch); evaluation uses the running
averages, so it is a fixed affine map. Read after notebooks/03_batchnorm.ipynb; the library's
version: tinyeffnet/ops/reference/batchnorm.py."""

TRY_IT = """rng = np.random.default_rng(0)
x, gamma, beta = rng.standard_normal((4, 3, 3, 2)), np.ones(2), np.zeros(2)
running_mean, running_var = np.zeros(2), np.ones(2)
y, cache = solution.batchnorm_forward(x, gamma, beta, running_mean, running_var, True)
print(y.mean(axis=(0, 1, 2)), running_var)   # about 0; 0.9 + 0.1 * unbiased variance"""


def exercises() -> list:
    tests = [
        forward_test("training forward, (N, H, W, C)", "nhwc", True, 1, HINT_VAR),
        forward_test("training forward, (N, C) after a linear layer", "nc", True, 1,
                     "the statistics are over every axis but the LAST: tuple(range(x.ndim - 1))"),
        forward_test("running statistics over three steps", "nhwc", True, 3, HINT_MOMENTUM),
        forward_test("momentum 0.3 and eps 0.01 are used", "nhwc", True, 2,
                     "use the momentum and eps arguments, do not hard-code 0.1 and 1e-3", momentum=0.3, eps=1e-2),
        forward_test("eval forward: running statistics, unchanged", "nhwc", False, 2, HINT_EVAL),
        forward_test("batch 1, one channel", "one", True, 1, HINT_VAR),
        backward_test("training backward", "nhwc", True, HINT_BACK),
        backward_test("training backward, (N, C)", "nc", True, HINT_BACK),
        backward_test("eval backward", "nhwc", False,
                      "in eval the statistics are constants: dx = gamma inv_std dy (no mean or variance terms)"),
        backward_test("backward, batch 1, one channel", "one", True, HINT_BACK, points=1),
        float32_test(),
        torch_test(),
    ]
    return [Exercise(
        name="batchnorm", title="BatchNorm: training, eval and running statistics", intro=INTRO,
        functions=[Function("batchnorm_forward",
                            "x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-3",
                            FORWARD_DOC),
                   Function("batchnorm_backward", "dy, cache", BACKWARD_DOC)],
        tests=tests, try_it=TRY_IT, notebook="03_batchnorm.ipynb")]
