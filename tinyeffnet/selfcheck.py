"""`tinyeffnet gradcheck`: gradient-check the ops on this machine and print one table.

The rows: conv2d, depthwise, batchnorm (train and eval), silu, sigmoid, global_avg_pool, linear,
softmax_cross_entropy, dropout and drop_path. Not in it: the fused batchnorm_silu speed path
(tests/ops/test_fused.py) and the SE channel gate (tests/test_tiers.py).

Each op's backward is compared with centred finite differences of its forward, in float64, with a
random upstream gradient (see tinyeffnet.testing.gradcheck). The tolerance is a relative error of
1e-6: the ops are smooth, so in float64 with h = 1e-6 the differences agree with the analytic
gradient to about 1e-9; 1e-6 leaves room for the longer sums of BatchNorm and the loss while still
catching any wrong term (a wrong term gives errors of 1e-2 and more).
"""
from __future__ import annotations

import numpy as np

from . import ops
from .ops._checks import check_int
from .testing import gradcheck

TOLERANCE = 1e-6


def _fresh_rng_forward(forward, seed=7):
    """dropout/drop_path draw a mask: every evaluation must draw the same one."""

    def wrapped(x, p, training=True):
        return forward(x, p, np.random.default_rng(seed), training=training)

    wrapped.__name__ = forward.__name__
    return wrapped


def _loss_pair(label_smoothing):
    """softmax_cross_entropy as a forward/backward pair: the scalar loss and dloss * dlogits."""

    def forward(logits, labels):
        loss, dlogits = ops.softmax_cross_entropy(logits, labels, label_smoothing=label_smoothing)
        return np.asarray(loss, dtype=logits.dtype), dlogits

    def backward(dloss, dlogits):
        return (dlogits * dloss,)

    forward.__name__ = "softmax_cross_entropy"
    return forward, backward


def cases():
    """(label, forward, backward, inputs, kwargs, names) for each op of the table, float64, tiny shapes."""
    r = np.random.default_rng(0)

    def randn(*shape):
        return r.standard_normal(shape)

    c = 5
    x = randn(2, 7, 6, c)
    loss_fwd, loss_bwd = _loss_pair(0.1)
    return [
        ("conv2d 3x3 s1 pad 1", ops.conv2d_forward, ops.conv2d_backward, [x, randn(3, 3, c, 4)],
         {"stride": 1, "padding": 1}, "x w"),
        ("conv2d 3x3 s2 same", ops.conv2d_forward, ops.conv2d_backward, [x, randn(3, 3, c, 4)],
         {"stride": 2, "padding": "same"}, "x w"),
        ("conv2d 1x1", ops.conv2d_forward, ops.conv2d_backward, [x, randn(1, 1, c, 3)], {}, "x w"),
        ("depthwise 3x3 s1 pad 1", ops.depthwise_conv2d_forward, ops.depthwise_conv2d_backward,
         [x, randn(3, 3, c)], {"stride": 1, "padding": 1}, "x w"),
        ("depthwise 5x5 s2 same", ops.depthwise_conv2d_forward, ops.depthwise_conv2d_backward,
         [x, randn(5, 5, c)], {"stride": 2, "padding": "same"}, "x w"),
        ("batchnorm train", ops.batchnorm_forward, ops.batchnorm_backward,
         [x, r.uniform(0.5, 1.5, c), randn(c), randn(c), r.uniform(0.5, 2, c)], {"training": True}, "x gamma beta"),
        ("batchnorm eval", ops.batchnorm_forward, ops.batchnorm_backward,
         [x, r.uniform(0.5, 1.5, c), randn(c), randn(c), r.uniform(0.5, 2, c)], {"training": False}, "x gamma beta"),
        ("silu", ops.silu_forward, ops.silu_backward, [x], {}, "x"),
        ("sigmoid", ops.sigmoid_forward, ops.sigmoid_backward, [x], {}, "x"),
        ("global_avg_pool", ops.global_avg_pool_forward, ops.global_avg_pool_backward, [x], {}, "x"),
        ("linear", ops.linear_forward, ops.linear_backward, [randn(4, 6), randn(6, 3), randn(3)], {}, "x w b"),
        ("softmax_cross_entropy ls=0.1", loss_fwd, loss_bwd, [randn(4, 6), r.integers(0, 6, 4)], {}, "logits"),
        ("dropout p=0.3", _fresh_rng_forward(ops.dropout_forward), ops.dropout_backward, [x, 0.3], {}, "x"),
        ("drop_path p=0.5", _fresh_rng_forward(ops.drop_path_forward), ops.drop_path_backward, [x, 0.5], {}, "x"),
    ]


def run(samples: int | None = 40, print_fn=print) -> bool:
    """Gradient-check the ops of the table; print it; return True when every row passes.

    samples: entries checked per gradient, an int >= 1 (0 would check nothing and still report
    "all gradients match"), or None for every entry.
    """
    if samples is not None:
        check_int("samples", samples, op="selfcheck.run")
    header = f"{'op':<30} {'gradient':<10} {'rel. error':>11} {'tolerance':>10}  result"
    print_fn(header)
    print_fn("-" * len(header))
    all_ok = True
    for label, forward, backward, inputs, kwargs, names in cases():
        report = gradcheck(forward, backward, inputs, kwargs=kwargs, names=names.split() + ["_"] * 5,
                           tol=TOLERANCE, samples=samples)
        for row in report.rows:
            all_ok &= row.ok
            verdict = "ok" if row.ok else "FAIL"
            print_fn(f"{label:<30} {row.name:<10} {row.error:>11.2e} {row.tolerance:>10.0e}  {verdict}")
    print_fn(f"\nall gradients {'match' if all_ok else 'DO NOT match'} finite differences "
             f"(float64, centred differences, random upstream gradient)")
    return all_ok
