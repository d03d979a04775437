"""Bad input, every public entry point: a TypeError or ValueError that names the argument, before any work.

One table for the Python API (ops of both CPU tiers, forward and backward; layers; models;
optimizers and schedules; Module.load_state_dict; datasets and augmentation; analysis; selfcheck)
and one for the command line. Each API row says which exception must come and which words its
message must hold: the op or class, and the argument. A Numba typing error, an IndexError, an
OverflowError or an AttributeError from deep inside counts as a failure: ``pytest.raises`` only
accepts the stated type.

CLI rows run ``tinyeffnet.cli.main(argv)`` in-process from an empty folder: exit code 2 (returned,
or argparse's SystemExit(2)), stderr one
line "error: ..." (or argparse's usage error, whose last line is "tinyeffnet ...: error: ..."), no
traceback, and the folder still empty afterwards. The commands' heavy work (training, benchmarks,
the gradient check) is replaced by a stub that fails the test if it is reached: refusing bad input
must happen before anything runs.
"""
import numpy as np
import pytest

from tinyeffnet import cli, nn, ops, optim, selfcheck
from tinyeffnet.analysis import summary
from tinyeffnet.data import (ShapesDataset, apply_op, horizontal_flip, mixup, mixup_apply, one_hot, rand_augment,
                             random_resized_crop, resize)
from tinyeffnet.models import EfficientNetV2, Stage, create_model
from tinyeffnet.ops import reference

F32, F64 = np.float32, np.float64


def z(*shape, dtype=F32):
    return np.zeros(shape, dtype)


def rng():
    return np.random.default_rng(0)


# ------------------------------------------------------------------------------------------- the ops
# Good arguments for each op's forward, then bad variants of each argument.
X4 = z(2, 5, 5, 3)
GOOD = {
    "conv2d_forward": lambda: dict(x=z(2, 5, 5, 3), w=z(3, 3, 3, 4), stride=1, padding=1),
    "depthwise_conv2d_forward": lambda: dict(x=z(2, 5, 5, 3), w=z(3, 3, 3), stride=1, padding=1),
    "batchnorm_forward": lambda: dict(x=z(2, 3, 3, 4), gamma=z(4), beta=z(4), running_mean=z(4),
                                      running_var=np.ones(4, F32), training=True, momentum=0.1, eps=1e-3),
    "batchnorm_silu_forward": lambda: dict(x=z(2, 3, 3, 4), gamma=z(4), beta=z(4), running_mean=z(4),
                                           running_var=np.ones(4, F32), training=True, momentum=0.1, eps=1e-3),
    "silu_forward": lambda: dict(x=z(2, 3)),
    "sigmoid_forward": lambda: dict(x=z(2, 3)),
    "global_avg_pool_forward": lambda: dict(x=z(2, 3, 3, 4)),
    "linear_forward": lambda: dict(x=z(3, 4), w=z(4, 2), b=z(2)),
    "softmax_cross_entropy": lambda: dict(logits=z(4, 5), labels=np.arange(4), label_smoothing=0.0),
    "dropout_forward": lambda: dict(x=z(4, 3), p=0.5, rng=rng(), training=True),
    "drop_path_forward": lambda: dict(x=z(4, 3, 3, 2), p=0.5, rng=rng(), training=True),
}
BACKWARD = {"conv2d_forward": "conv2d_backward", "depthwise_conv2d_forward": "depthwise_conv2d_backward",
            "batchnorm_forward": "batchnorm_backward", "batchnorm_silu_forward": "batchnorm_silu_backward",
            "silu_forward": "silu_backward", "sigmoid_forward": "sigmoid_backward",
            "global_avg_pool_forward": "global_avg_pool_backward", "linear_forward": "linear_backward",
            "dropout_forward": "dropout_backward", "drop_path_forward": "drop_path_backward"}
TIERS = {"numba": ops, "reference": reference}

# (op, argument, bad value, exception): every op's arrays get a wrong rank, ints, float16 and a
# mixed dtype; options get out-of-range, NaN and wrongly typed values.
BAD_FORWARD = [
    ("conv2d_forward", "x", z(5, 5, 3), ValueError),
    ("conv2d_forward", "x", np.zeros((2, 5, 5, 3), np.int64), TypeError),
    ("conv2d_forward", "x", z(2, 5, 5, 3, dtype=np.float16), TypeError),
    ("conv2d_forward", "x", [[1.0]], TypeError),
    ("conv2d_forward", "w", z(3, 3, 3), ValueError),
    ("conv2d_forward", "w", z(3, 3, 3, 4, dtype=F64), TypeError),
    ("conv2d_forward", "w", z(3, 3, 2, 4), ValueError),          # channel mismatch
    ("conv2d_forward", "w", z(0, 3, 3, 4), ValueError),          # empty kernel
    ("conv2d_forward", "stride", 0, ValueError),
    ("conv2d_forward", "stride", 1.5, TypeError),
    ("conv2d_forward", "stride", True, TypeError),
    ("conv2d_forward", "padding", -1, ValueError),
    ("conv2d_forward", "padding", "valid", ValueError),
    ("conv2d_forward", "padding", None, TypeError),
    ("conv2d_forward", "padding", 0.5, TypeError),
    ("depthwise_conv2d_forward", "x", z(2, 5, 5), ValueError),
    ("depthwise_conv2d_forward", "x", np.zeros((2, 5, 5, 3), bool), TypeError),
    ("depthwise_conv2d_forward", "w", z(3, 3, 3, 1), ValueError),
    ("depthwise_conv2d_forward", "w", z(3, 3, 4), ValueError),
    ("depthwise_conv2d_forward", "w", z(3, 3, 3, dtype=F64), TypeError),
    ("depthwise_conv2d_forward", "w", z(9, 9, 3), ValueError),   # kernel larger than the padded input
    ("depthwise_conv2d_forward", "stride", -1, ValueError),
    ("depthwise_conv2d_forward", "padding", "SAME", ValueError),
    ("batchnorm_forward", "x", z(2, 3, 4), ValueError),
    ("batchnorm_forward", "x", np.zeros((2, 3, 3, 4), np.int32), TypeError),
    ("batchnorm_forward", "x", z(2, 3, 3, 4, dtype=np.float16), TypeError),
    ("batchnorm_forward", "x", z(1, 1, 1, 4), ValueError),       # one value per channel in training
    ("batchnorm_forward", "gamma", z(5), ValueError),
    ("batchnorm_forward", "gamma", z(4, 1), ValueError),
    ("batchnorm_forward", "beta", z(4, dtype=F64), TypeError),
    ("batchnorm_forward", "running_mean", None, TypeError),
    ("batchnorm_forward", "running_var", z(3), ValueError),
    ("batchnorm_forward", "training", 1, TypeError),
    ("batchnorm_forward", "momentum", 1.5, ValueError),
    ("batchnorm_forward", "momentum", float("nan"), ValueError),
    ("batchnorm_forward", "momentum", None, TypeError),
    ("batchnorm_forward", "eps", 0.0, ValueError),
    ("batchnorm_forward", "eps", float("inf"), ValueError),
    ("batchnorm_forward", "eps", float("nan"), ValueError),
    ("batchnorm_forward", "eps", "1e-3", TypeError),
    ("batchnorm_silu_forward", "x", z(2, 3, 3, 4, 1), ValueError),
    ("batchnorm_silu_forward", "gamma", z(3), ValueError),
    ("batchnorm_silu_forward", "eps", -1.0, ValueError),
    ("batchnorm_silu_forward", "momentum", -0.1, ValueError),
    ("silu_forward", "x", np.zeros((2, 3), np.int64), TypeError),
    ("silu_forward", "x", z(2, 3, dtype=np.float16), TypeError),
    ("silu_forward", "x", np.zeros((2, 3), np.complex64), TypeError),
    ("silu_forward", "x", 1.0, TypeError),
    ("sigmoid_forward", "x", np.zeros(3, bool), TypeError),
    ("sigmoid_forward", "x", [1.0, 2.0], TypeError),
    ("global_avg_pool_forward", "x", z(2, 3, 4), ValueError),
    ("global_avg_pool_forward", "x", z(2, 0, 3, 4), ValueError),
    ("global_avg_pool_forward", "x", np.zeros((2, 3, 3, 4), np.uint8), TypeError),
    ("linear_forward", "x", z(3, 4, 1), ValueError),
    ("linear_forward", "x", np.zeros((3, 4), np.int16), TypeError),
    ("linear_forward", "w", z(5, 2), ValueError),
    ("linear_forward", "w", z(4), ValueError),
    ("linear_forward", "w", z(4, 2, dtype=F64), TypeError),
    ("linear_forward", "b", z(3), ValueError),
    ("linear_forward", "b", z(2, dtype=np.float16), TypeError),
    ("softmax_cross_entropy", "logits", z(5), ValueError),
    ("softmax_cross_entropy", "logits", z(0, 5), ValueError),
    ("softmax_cross_entropy", "logits", np.zeros((4, 5), np.int64), TypeError),
    ("softmax_cross_entropy", "labels", np.arange(5), ValueError),
    ("softmax_cross_entropy", "labels", np.array([0, 1, 2, 9]), ValueError),
    ("softmax_cross_entropy", "labels", np.zeros(4, F32), TypeError),
    ("softmax_cross_entropy", "labels", [0, 1, 2, 3], TypeError),
    ("softmax_cross_entropy", "labels", z(4, 5, dtype=F64), TypeError),
    ("softmax_cross_entropy", "label_smoothing", 1.0, ValueError),
    ("softmax_cross_entropy", "label_smoothing", float("nan"), ValueError),
    ("softmax_cross_entropy", "label_smoothing", None, TypeError),
    ("dropout_forward", "x", np.float32(1.0), TypeError),
    ("dropout_forward", "x", np.zeros(()), ValueError),
    ("dropout_forward", "x", np.zeros((4, 3), np.int64), TypeError),
    ("dropout_forward", "p", 1.0, ValueError),
    ("dropout_forward", "p", float("nan"), ValueError),
    ("dropout_forward", "p", "0.5", TypeError),
    ("dropout_forward", "rng", None, TypeError),
    ("dropout_forward", "rng", np.random.RandomState(0), TypeError),
    ("dropout_forward", "training", "yes", TypeError),
    ("drop_path_forward", "x", z(2, 3, dtype=np.float16), TypeError),
    ("drop_path_forward", "p", -0.1, ValueError),
    ("drop_path_forward", "rng", 0, TypeError),
]


def _forward_case(tier, op, arg, value, error):
    def call():
        kwargs = {**GOOD[op](), arg: value}
        getattr(TIERS[tier], op)(**kwargs)
    return pytest.param(call, error, [op, arg], id=f"{tier}-{op}-{arg}-{type(value).__name__}")


def _cache_of(op):
    """A real cache of another op (what a mixed-up backward call receives)."""
    return ops.__dict__[op](**GOOD[op]())[1]


# (the backward's forward, the argument, a label, how to spoil (dy, cache), exception)
def _bad_backward_rows():
    rows = []
    other = {"conv2d_forward": "depthwise_conv2d_forward", "depthwise_conv2d_forward": "conv2d_forward"}
    for forward in BACKWARD:
        wrong_cache_op = other.get(forward, "linear_forward" if forward != "linear_forward" else "silu_forward")
        rows += [
            (forward, "cache", "None", lambda y, c: (y, None), TypeError),
            (forward, "cache", wrong_cache_op, lambda y, c, o=wrong_cache_op: (y, _cache_of(o)),
             (TypeError, ValueError)),
            (forward, "cache", "str", lambda y, c: (y, "cache"), TypeError),
            (forward, "dy", "shape", lambda y, c: (np.zeros(y.shape + (2,), y.dtype), c), ValueError),
            (forward, "dy", "float64", lambda y, c: (y.astype(F64), c), TypeError),
            (forward, "dy", "int64", lambda y, c: (y.astype(np.int64), c), TypeError),
            (forward, "dy", "None", lambda y, c: (None, c), TypeError),
        ]
    return rows


def _backward_case(tier, forward, arg, label, make, error):
    backward = BACKWARD[forward]

    def call():
        y, cache = getattr(TIERS[tier], forward)(**GOOD[forward]())
        dy, cache = make(np.ones_like(y), cache)
        getattr(TIERS[tier], backward)(dy, cache)
    return pytest.param(call, error, [backward, arg], id=f"{tier}-{backward}-{arg}-{label}")


def _op_cases():
    cases = []
    for tier in TIERS:
        for op, arg, value, error in BAD_FORWARD:
            if op == "batchnorm_silu_forward" and tier == "reference":
                continue  # the fused op is a speed path: it has no reference twin
            cases.append(_forward_case(tier, op, arg, value, error))
        for forward, arg, label, make, error in _bad_backward_rows():
            if forward == "batchnorm_silu_forward" and tier == "reference":
                continue
            cases.append(_backward_case(tier, forward, arg, label, make, error))
    return cases


# --------------------------------------------------------------------------- layers, models, the rest
def case(call, error, *words, id):
    return pytest.param(call, error, list(words), id=id)


def _sgd_param():
    return [nn.Parameter(z(3))]


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 3)


IMAGES = np.full((2, 8, 8, 3), 0.5, F32)

OTHER_CASES = [
    # layers
    case(lambda: nn.Conv2d(0, 4, 3), ValueError, "Conv2d", "in_channels", id="Conv2d-in_channels-0"),
    case(lambda: nn.Conv2d(3.0, 4, 3), TypeError, "Conv2d", "in_channels", id="Conv2d-in_channels-float"),
    case(lambda: nn.Conv2d(3, -1, 3), ValueError, "Conv2d", "out_channels", id="Conv2d-out_channels"),
    case(lambda: nn.Conv2d(3, 4, 0), ValueError, "Conv2d", "kernel_size", id="Conv2d-kernel_size"),
    case(lambda: nn.Conv2d(3, 4, 3, stride=0), ValueError, "Conv2d", "stride", id="Conv2d-stride"),
    case(lambda: nn.Conv2d(3, 4, 3, padding=-1), ValueError, "Conv2d", "padding", id="Conv2d-padding"),
    case(lambda: nn.Conv2d(3, 4, 2, padding="same"), ValueError, "Conv2d", "padding", id="Conv2d-same-even"),
    case(lambda: nn.Conv2d(3, 4, 3, dtype=np.int32), TypeError, "Conv2d", "dtype", id="Conv2d-dtype"),
    case(lambda: nn.Conv2d(3, 4, 3, rng=42), TypeError, "Conv2d", "rng", id="Conv2d-rng"),
    case(lambda: nn.DepthwiseConv2d(0, 3), ValueError, "DepthwiseConv2d", "channels", id="Depthwise-channels"),
    case(lambda: nn.DepthwiseConv2d(4, 3, stride=1.0), TypeError, "DepthwiseConv2d", "stride", id="Depthwise-stride"),
    case(lambda: nn.BatchNorm2d(0), ValueError, "BatchNorm2d", "channels", id="BatchNorm2d-channels"),
    case(lambda: nn.BatchNorm2d(4, eps=0), ValueError, "BatchNorm2d", "eps", id="BatchNorm2d-eps-0"),
    case(lambda: nn.BatchNorm2d(4, eps=None), TypeError, "BatchNorm2d", "eps", id="BatchNorm2d-eps-None"),
    case(lambda: nn.BatchNorm2d(4, momentum=1.5), ValueError, "BatchNorm2d", "momentum", id="BatchNorm2d-momentum"),
    case(lambda: nn.BatchNorm2d(4, dtype="int8"), TypeError, "BatchNorm2d", "dtype", id="BatchNorm2d-dtype"),
    case(lambda: nn.Linear(0, 3), ValueError, "Linear", "in_features", id="Linear-in_features"),
    case(lambda: nn.Linear(3, 0), ValueError, "Linear", "out_features", id="Linear-out_features"),
    case(lambda: nn.Linear(3, 2, bias="yes"), TypeError, "Linear", "bias", id="Linear-bias"),
    case(lambda: nn.Linear(3, 2, init="xavier"), ValueError, "Linear", "init", id="Linear-init"),
    case(lambda: nn.Dropout(1.0), ValueError, "Dropout", "p", id="Dropout-p-1"),
    case(lambda: nn.Dropout(-0.1), ValueError, "Dropout", "p", id="Dropout-p-negative"),
    case(lambda: nn.Dropout(None), TypeError, "Dropout", "p", id="Dropout-p-None"),
    case(lambda: nn.DropPath(1.5), ValueError, "DropPath", "p", id="DropPath-p"),
    case(lambda: nn.DropPath(0.1, rng=1), TypeError, "DropPath", "rng", id="DropPath-rng"),
    case(lambda: nn.SqueezeExcite(0, 1), ValueError, "SqueezeExcite", "channels", id="SE-channels"),
    case(lambda: nn.SqueezeExcite(4, 0), ValueError, "SqueezeExcite", "squeeze", id="SE-squeeze"),
    case(lambda: nn.ConvBNAct(3, 4, 3, depthwise="no"), TypeError, "ConvBNAct", "depthwise", id="ConvBNAct-depthwise"),
    case(lambda: nn.ConvBNAct(0, 4, 3), ValueError, "ConvBNAct", "in_channels", id="ConvBNAct-in_channels"),
    case(lambda: nn.MBConv(0, 8), ValueError, "MBConv", "in_channels", id="MBConv-in_channels"),
    case(lambda: nn.MBConv(8, 8, stride=0), ValueError, "MBConv", "stride", id="MBConv-stride"),
    case(lambda: nn.MBConv(8, 8, kernel_size=-3), ValueError, "MBConv", "kernel_size", id="MBConv-kernel"),
    case(lambda: nn.MBConv(8, 8, expand_ratio=0), ValueError, "MBConv", "expand_ratio", id="MBConv-expand-0"),
    case(lambda: nn.MBConv(8, 8, expand_ratio=0.01), ValueError, "MBConv", "expand_ratio", id="MBConv-expand-tiny"),
    case(lambda: nn.MBConv(8, 8, se_ratio=2), ValueError, "MBConv", "se_ratio", id="MBConv-se"),
    case(lambda: nn.MBConv(8, 8, drop_path_rate=1.0), ValueError, "MBConv", "drop_path_rate", id="MBConv-dpr"),
    case(lambda: nn.MBConv(8, 8, bn_eps=0), ValueError, "MBConv", "eps", id="MBConv-bn_eps"),
    case(lambda: nn.FusedMBConv(8, 0), ValueError, "FusedMBConv", "out_channels", id="Fused-out_channels"),
    case(lambda: nn.FusedMBConv(8, 8, expand_ratio="4"), TypeError, "FusedMBConv", "expand_ratio", id="Fused-expand"),
    case(lambda: nn.FusedMBConv(8, 8, drop_path_rate=-0.5), ValueError, "FusedMBConv", "drop_path_rate",
         id="Fused-dpr"),
    # models
    case(lambda: create_model("efficientnetv2_tiny", num_classes=0), ValueError, "create_model", "num_classes",
         id="create_model-num_classes-0"),
    case(lambda: create_model("efficientnetv2_tiny", num_classes=2.5), TypeError, "create_model", "num_classes",
         id="create_model-num_classes-float"),
    case(lambda: create_model("efficientnetv2_tiny", drop_rate=1.5), ValueError, "create_model", "drop_rate",
         id="create_model-drop_rate"),
    case(lambda: create_model("efficientnetv2_tiny", drop_path_rate=-0.5), ValueError, "create_model",
         "drop_path_rate", id="create_model-drop_path_rate"),
    case(lambda: create_model("efficientnetv2_tiny", bn_eps=0), ValueError, "create_model", "eps",
         id="create_model-bn_eps"),
    case(lambda: create_model("efficientnetv2_tiny", in_channels=0), ValueError, "create_model", "in_channels",
         id="create_model-in_channels"),
    case(lambda: create_model("efficientnetv2_tiny", dtype=np.int64), TypeError, "create_model", "dtype",
         id="create_model-dtype"),
    case(lambda: create_model("efficientnetv2_tiny", seed=-1), ValueError, "create_model", "seed",
         id="create_model-seed"),
    case(lambda: create_model("efficientnetv2_tiny", padding="valid"), ValueError, "padding",
         id="create_model-padding"),
    case(lambda: create_model("efficientnetv2_q"), ValueError, "create_model", "unknown model", id="create_model-name"),
    case(lambda: create_model(None), TypeError, "create_model", "name", id="create_model-name-None"),
    case(lambda: EfficientNetV2([Stage("fused", 1, 3, 1, 1, 8, 8)], width=0), ValueError, "EfficientNetV2", "width",
         id="EfficientNetV2-width"),
    case(lambda: EfficientNetV2([Stage("fused", 1, 3, 1, 1, 8, 8)], head_channels=0), ValueError, "EfficientNetV2",
         "head_channels", id="EfficientNetV2-head"),
    # optimizers and schedules
    case(lambda: optim.SGD(_sgd_param(), lr=None), TypeError, "SGD", "lr must be a number >= 0, got None",
         id="SGD-lr-None"),
    case(lambda: optim.SGD(_sgd_param(), lr=-1), ValueError, "SGD", "lr", id="SGD-lr-negative"),
    case(lambda: optim.SGD(_sgd_param(), lr=float("nan")), ValueError, "SGD", "lr", id="SGD-lr-nan"),
    case(lambda: optim.SGD(_sgd_param(), lr=0.1, momentum=-0.1), ValueError, "SGD", "momentum", id="SGD-momentum"),
    case(lambda: optim.SGD(_sgd_param(), lr=0.1, momentum=0.9, nesterov="no"), TypeError, "SGD", "nesterov",
         id="SGD-nesterov"),
    case(lambda: optim.SGD(_sgd_param(), lr=0.1, weight_decay="0"), TypeError, "SGD", "weight_decay", id="SGD-wd"),
    case(lambda: optim.SGD(None, lr=0.1), TypeError, "SGD", "params", id="SGD-params-None"),
    case(lambda: optim.SGD([{"lr": 0.1}], lr=0.1), ValueError, "SGD", "params", id="SGD-group-without-params"),
    case(lambda: optim.RMSProp(_sgd_param(), lr=0.1, rho=1.0), ValueError, "RMSProp", "rho", id="RMSProp-rho"),
    case(lambda: optim.RMSProp(_sgd_param(), lr=0.1, eps=-1), ValueError, "RMSProp", "eps", id="RMSProp-eps"),
    case(lambda: optim.RMSProp(_sgd_param(), lr=0.1, momentum=None), TypeError, "RMSProp", "momentum",
         id="RMSProp-momentum"),
    case(lambda: optim.RMSProp(_sgd_param(), lr=0.1, initial_ms=-1), ValueError, "RMSProp", "initial_ms",
         id="RMSProp-initial_ms"),
    case(lambda: optim.AdamW(_sgd_param(), betas=0.9), TypeError, "AdamW", "betas", id="AdamW-betas-scalar"),
    case(lambda: optim.AdamW(_sgd_param(), betas=(0.9, 1.0)), ValueError, "AdamW", "beta2", id="AdamW-beta2"),
    case(lambda: optim.AdamW(_sgd_param(), eps=None), TypeError, "AdamW", "eps", id="AdamW-eps"),
    case(lambda: optim.AdamW(_sgd_param(), lr=float("inf")), ValueError, "AdamW", "lr", id="AdamW-lr-inf"),
    case(lambda: optim.EMA(_Model(), decay=1.5), ValueError, "EMA", "decay", id="EMA-decay"),
    case(lambda: optim.EMA(_Model(), decay=None), TypeError, "EMA", "decay", id="EMA-decay-None"),
    case(lambda: optim.EMA(_Model(), warmup="yes"), TypeError, "EMA", "warmup", id="EMA-warmup"),
    case(lambda: optim.EMA(None), TypeError, "EMA", "model", id="EMA-model-None"),
    case(lambda: optim.ExponentialDecayWarmup(None), TypeError, "ExponentialDecayWarmup", "base_lr",
         id="ExpDecay-base_lr"),
    case(lambda: optim.ExponentialDecayWarmup(0.1, every=0), ValueError, "ExponentialDecayWarmup", "every",
         id="ExpDecay-every"),
    case(lambda: optim.ExponentialDecayWarmup(0.1, rate=2), ValueError, "ExponentialDecayWarmup", "rate",
         id="ExpDecay-rate"),
    case(lambda: optim.ExponentialDecayWarmup(0.1, staircase="yes"), TypeError, "ExponentialDecayWarmup",
         "staircase", id="ExpDecay-staircase"),
    case(lambda: optim.CosineWarmup(0.1, total=None), TypeError, "CosineWarmup", "total", id="Cosine-total"),
    case(lambda: optim.CosineWarmup(0.1, total=5, warmup=5), ValueError, "CosineWarmup", "total", id="Cosine-warmup"),
    case(lambda: optim.CosineWarmup(0.1, total=5, min_lr=-1), ValueError, "CosineWarmup", "min_lr", id="Cosine-min"),
    case(lambda: optim.set_lr(optim.SGD(_sgd_param(), lr=0.1), -1), ValueError, "set_lr", "lr", id="set_lr-lr"),
    case(lambda: optim.set_lr(None, 0.1), TypeError, "set_lr", "optimizer", id="set_lr-optimizer"),
    # Module.load_state_dict
    case(lambda: _Model().load_state_dict(None), TypeError, "load_state_dict", "mapping of name -> array",
         id="load_state_dict-None"),
    case(lambda: _Model().load_state_dict([1, 2]), TypeError, "load_state_dict", "mapping", id="load_state_dict-list"),
    case(lambda: _Model().load_state_dict({}), ValueError, "missing keys", "fc.weight", id="load_state_dict-empty"),
    case(lambda: _Model().load_state_dict({"fc.weight": None, "fc.bias": z(3)}), ValueError, "fc.weight",
         "numeric array", id="load_state_dict-value-None"),
    case(lambda: _Model().load_state_dict({"fc.weight": np.array([["a"] * 3] * 2), "fc.bias": z(3)}), ValueError,
         "fc.weight", "numeric", id="load_state_dict-value-str"),
    case(lambda: _Model().load_state_dict(_Model().state_dict(), strict="yes"), TypeError, "strict",
         id="load_state_dict-strict"),
    # datasets and augmentation
    case(lambda: ShapesDataset(0), ValueError, "ShapesDataset", "num_samples", id="Shapes-num_samples"),
    case(lambda: ShapesDataset(10.0), TypeError, "ShapesDataset", "num_samples", id="Shapes-num_samples-float"),
    case(lambda: ShapesDataset(10, image_size=2), ValueError, "ShapesDataset", "image_size", id="Shapes-size"),
    case(lambda: ShapesDataset(10, image_size=None), TypeError, "ShapesDataset", "image_size", id="Shapes-size-None"),
    case(lambda: ShapesDataset(10, seed=-1), ValueError, "ShapesDataset", "seed", id="Shapes-seed"),
    case(lambda: ShapesDataset(10, split="dev"), ValueError, "ShapesDataset", "split", id="Shapes-split"),
    case(lambda: ShapesDataset(10, split=["train"]), ValueError, "ShapesDataset", "split", id="Shapes-split-list"),
    case(lambda: ShapesDataset(10, noise=1.0), ValueError, "ShapesDataset", "noise", id="Shapes-noise"),
    case(lambda: ShapesDataset(10, noise=None), TypeError, "ShapesDataset", "noise", id="Shapes-noise-None"),
    case(lambda: ShapesDataset(10).batch([0.5]), TypeError, "indices", id="Shapes-batch-indices"),
    case(lambda: ShapesDataset(10).batch([0], image_size=0), ValueError, "image_size", id="Shapes-batch-size"),
    case(lambda: resize(IMAGES, 0), ValueError, "resize", "size", id="resize-size"),
    case(lambda: resize(IMAGES.tolist(), 4), TypeError, "resize", "images", id="resize-images"),
    case(lambda: resize(IMAGES[0], 4), ValueError, "resize", "images", id="resize-rank"),
    case(lambda: random_resized_crop(IMAGES, 4, rng(), scale=(0.5, 0.1)), ValueError, "random_resized_crop",
         "scale", id="rrc-scale"),
    case(lambda: random_resized_crop(IMAGES, 4, rng(), scale=None), TypeError, "random_resized_crop", "scale",
         id="rrc-scale-None"),
    case(lambda: random_resized_crop(IMAGES, 4, rng(), ratio=(float("nan"), 1.0)), ValueError,
         "random_resized_crop", "ratio", id="rrc-ratio-nan"),
    case(lambda: random_resized_crop(IMAGES, 4, None), TypeError, "random_resized_crop", "rng", id="rrc-rng"),
    case(lambda: horizontal_flip(IMAGES, rng(), p=1.5), ValueError, "horizontal_flip", "p", id="flip-p"),
    case(lambda: horizontal_flip(IMAGES, rng(), p=None), TypeError, "horizontal_flip", "p", id="flip-p-None"),
    case(lambda: apply_op(IMAGES[0], "rotate", 31), ValueError, "apply_op", "magnitude", id="apply_op-magnitude"),
    case(lambda: apply_op(IMAGES[0], "rotate", None), TypeError, "apply_op", "magnitude", id="apply_op-mag-None"),
    case(lambda: apply_op(IMAGES[0], "rotate", 5, sign=None), TypeError, "apply_op", "sign", id="apply_op-sign"),
    case(lambda: apply_op(IMAGES[0], "blur", 5), ValueError, "apply_op", "unknown op", id="apply_op-name"),
    case(lambda: rand_augment(IMAGES, rng(), num_layers=-1), ValueError, "rand_augment", "num_layers",
         id="randaug-layers"),
    case(lambda: rand_augment(IMAGES, rng(), magnitude=float("nan")), ValueError, "rand_augment", "magnitude",
         id="randaug-magnitude-nan"),
    case(lambda: rand_augment(IMAGES, rng(), ops="rotate"), TypeError, "rand_augment", "ops", id="randaug-ops-str"),
    case(lambda: rand_augment(IMAGES, None), TypeError, "rand_augment", "rng", id="randaug-rng"),
    case(lambda: mixup(IMAGES, np.array([0, 1]), 3, alpha=-1, rng=rng()), ValueError, "mixup", "alpha",
         id="mixup-alpha"),
    case(lambda: mixup(IMAGES, np.array([0, 1]), 3, alpha=None, rng=rng()), TypeError, "mixup", "alpha",
         id="mixup-alpha-None"),
    case(lambda: mixup_apply(IMAGES, np.array([0, 1]), 3, lam=1.5, perm=np.array([1, 0])), ValueError,
         "mixup_apply", "lam", id="mixup_apply-lam"),
    case(lambda: mixup_apply(IMAGES, np.array([0, 1]), 3, lam=0.5, perm=np.array([0, 5])), ValueError,
         "mixup_apply", "perm", id="mixup_apply-perm"),
    case(lambda: mixup_apply(IMAGES, np.array([0, 1]), 0, lam=0.5, perm=np.array([1, 0])), ValueError,
         "mixup_apply", "num_classes", id="mixup_apply-classes"),
    case(lambda: one_hot(np.array([0, 1]), 0), ValueError, "one_hot", "num_classes", id="one_hot-classes"),
    case(lambda: one_hot(np.array([0, 1]), 3, dtype=np.int8), TypeError, "one_hot", "dtype", id="one_hot-dtype"),
    # analysis and the self-check
    case(lambda: summary("efficientnetv2_tiny", image_size=0), ValueError, "summary", "image_size",
         id="summary-image_size-0"),
    case(lambda: summary("efficientnetv2_tiny", image_size="big"), TypeError, "summary", "image_size",
         id="summary-image_size-str"),
    case(lambda: summary("efficientnetv2_tiny", image_size=32, batch_size=0), ValueError, "summary", "batch_size",
         id="summary-batch_size"),
    case(lambda: summary(3), TypeError, "summary", "model_or_name", id="summary-model"),
    case(lambda: summary("nope"), ValueError, "unknown model", id="summary-name"),
    case(lambda: selfcheck.run(samples=0), ValueError, "selfcheck", "samples", id="selfcheck-samples-0"),
]


@pytest.mark.parametrize("call, error, words", _op_cases() + OTHER_CASES)
def test_bad_input_raises_a_named_error(call, error, words):
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    missing = [word for word in words if word not in message]
    assert not missing, f"{type(caught.value).__name__}: {message!r} does not mention {missing}"


# --------------------------------------------------------------------------- host data, device model
class FakeDeviceArray:
    """Stands in for a numba / cupy / torch CUDA array: what the checks look at is the interface."""

    __cuda_array_interface__ = {"shape": (3, 3, 3, 4), "typestr": "<f4", "data": (0, False), "version": 3}
    shape, ndim, dtype = (3, 3, 3, 4), 4, np.dtype(np.float32)


@pytest.mark.parametrize("tier", [ops, reference], ids=["numba", "reference"])
def test_host_input_with_device_weights_blames_the_input_not_the_weight(tier):
    with pytest.raises(TypeError) as caught:
        tier.conv2d_forward(X4, FakeDeviceArray(), 1, 1)
    message = str(caught.value)
    assert "conv2d_forward: the input x is a numpy array on the host while w is a CUDA device array" in message
    assert "tinyeffnet.cuda.to_device(x)" in message and 'model.to("cpu")' in message


def test_a_layer_whose_weight_is_on_the_device_refuses_a_host_batch_naming_x():
    layer = nn.Conv2d(3, 4, 3)
    layer.weight.data = FakeDeviceArray()          # what model.to("cuda") leaves in the parameter
    with pytest.raises(TypeError, match="the input x is a numpy array on the host while w is a CUDA device array"):
        layer(X4)


def test_a_device_input_to_a_cpu_op_says_which_op_to_use():
    with pytest.raises(TypeError, match="conv2d_forward: x is a CUDA device array, but this is the CPU op"):
        ops.conv2d_forward(FakeDeviceArray(), z(3, 3, 4, 4))


# ---------------------------------------------------------------------------------------- the CLI
@pytest.fixture
def nothing_runs(monkeypatch, tmp_path):
    """Run from an empty folder; every heavy callee fails the test if it is reached."""
    import tinyeffnet.bench.ops
    import tinyeffnet.bench.progressive
    import tinyeffnet.bench.train_step
    import tinyeffnet.train

    def reached(*args, **kwargs):
        raise AssertionError("bad input reached the work it should have prevented")

    for module, name in [(tinyeffnet.train, "Trainer"), (selfcheck, "run"), (tinyeffnet.bench.ops, "run"),
                         (tinyeffnet.bench.train_step, "run"), (tinyeffnet.bench.train_step, "profile"),
                         (tinyeffnet.bench.progressive, "run")]:
        monkeypatch.setattr(module, name, reached)
    monkeypatch.chdir(tmp_path)
    return tmp_path


CLI_CASES = [
    [],                                                     # no command
    ["fly"],                                                # unknown command
    ["--verbose"],
    ["train", "--lr", "-1"],
    ["train", "--lr", "0"],
    ["train", "--lr", "nan"],
    ["train", "--lr", "fast"],
    ["train", "--epochs", "0"],
    ["train", "--epochs", "2.5"],
    ["train", "--batch-size", "-1"],
    ["train", "--weight-decay", "-0.1"],
    ["train", "--weight-decay", "inf"],
    ["train", "--stages", "0"],
    ["train", "--min-size", "0"],
    ["train", "--max-size", "-8"],
    ["train", "--eval-size", "0"],
    ["train", "--min-size", "64", "--max-size", "32"],      # each fine alone: TrainConfig refuses the pair
    ["train", "--train-samples", "0"],
    ["train", "--val-samples", "-5"],
    ["train", "--seed", "-1"],
    ["train", "--optimizer", "lamb"],
    ["train", "--model", "efficientnetv2_q"],
    ["train", "--data", "no/such/folder"],
    ["train", "--resume", "--nonsense"],
    ["summary"],
    ["summary", "efficientnetv2_q"],
    ["summary", "efficientnetv2_s", "--image-size", "0"],
    ["summary", "efficientnetv2_s", "--image-size", "-224"],
    ["summary", "efficientnetv2_s", "--image-size", "big"],
    ["gradcheck", "--samples", "0"],
    ["gradcheck", "--samples", "-1"],
    ["gradcheck", "--samples", "all"],
    ["bench"],
    ["bench", "speed"],
    ["bench", "ops", "--rounds", "0"],
    ["bench", "ops", "--repeats", "-1"],
    ["bench", "train-step", "--sizes", "0"],
    ["bench", "train-step", "--sizes", "128", "x"],
    ["bench", "train-step", "--batch", "0"],
    ["bench", "profile", "--batch", "-2"],
    ["bench", "progressive", "--epochs", "0"],
    ["export", "efficientnetv2_tiny"],                      # the required flags missing
    ["export", "efficientnetv2_tiny", "--weights", "missing.npz", "--format", "torchvision", "--out", "out.pth"],
]


def exit_code(argv) -> int:
    """cli.main's return value, or the code of the SystemExit argparse ends a usage error with."""
    try:
        return cli.main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("argv", CLI_CASES, ids=[" ".join(argv) or "(nothing)" for argv in CLI_CASES])
def test_cli_bad_input_exits_2_with_one_error_line_and_writes_nothing(argv, nothing_runs, capsys):
    code = exit_code(argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    if lines[0].startswith("usage:"):                       # argparse's own usage error
        assert lines[-1].startswith("tinyeffnet") and ": error: " in lines[-1], err
    else:
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert list(nothing_runs.iterdir()) == [], "a refused command wrote files"
