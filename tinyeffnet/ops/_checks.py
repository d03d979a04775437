"""The contract of every op: input checks, run before any kernel, shared by all tiers.

A Numba typing error reaching a user is a bug: every public op calls these first, so that bad input
gets a ``TypeError`` (wrong kind of thing: a list, an int array, None) or a ``ValueError`` (right kind,
wrong value: a shape, a range) that names the op, the argument, what was expected and what came::

    conv2d_forward: x must be 4-D, got 2-D array of shape (3, 4) and dtype float32 (expected (N, H, W, Cin))

The same functions check the options of layers, models and datasets (``op`` is then the class or
function name), so one rule has one message everywhere.

Sections: numbers and flags; arrays; conv geometry (including the one padding rule used by both conv
families, ``resolve_padding``: TensorFlow's "same" and PyTorch's symmetric int must agree everywhere);
the inputs of each op family; the caches each backward receives (``check_*_cache``: a backward given
None, or the cache of another op, says so instead of crashing inside a kernel).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _where(op) -> str:
    """The message prefix naming the op ("conv2d_forward: "), or nothing."""
    return f"{op}: " if op else ""


def is_device_array(x) -> bool:
    """True for a CUDA array (numba's, the simulator's, or anything with ``__cuda_array_interface__``),
    recognised without importing numba.cuda."""
    if hasattr(x, "__cuda_array_interface__"):
        return True
    module = type(x).__module__
    return "numba" in module and "cuda" in module and hasattr(x, "shape") and hasattr(x, "dtype")


def describe(value) -> str:
    """What an error message shows of a value: shape and dtype of an array, else its repr (short)."""
    if isinstance(value, np.ndarray) or is_device_array(value):
        return f"array of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__}"


# ---------------------------------------------------------------------------------- numbers and flags
def is_number(value) -> bool:
    """A real number: int, float or a numpy scalar of those (not bool, not complex, not a str)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def is_int(value) -> bool:
    """An integer: int or a numpy integer scalar (not bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def interval(low, high, low_open: bool = False, high_open: bool = False) -> str:
    """Words for a range: ">= 0", "> 0", "in [0, 1)"."""
    if high == math.inf:
        return f"{'>' if low_open else '>='} {low:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_number(name: str, value, low=-math.inf, high=math.inf, low_open=False, high_open=False, *, op=None) -> float:
    """A finite real number in the range; returned as a Python float.

    Not a number (None, a str, a bool, an array) -> TypeError; NaN, inf or out of range -> ValueError.
    """
    words = interval(low, high, low_open, high_open)
    if not is_number(value):
        raise TypeError(f"{_where(op)}{name} must be a number {words}, got {describe(value)}")
    v = float(value)
    inside = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not (math.isfinite(v) and inside):
        raise ValueError(f"{_where(op)}{name} must be a finite number {words}, got {value!r}")
    return v


def check_int(name: str, value, minimum: int = 1, *, op=None) -> int:
    """An int >= minimum (channels, sizes, counts); returned as a Python int. Bools and floats are refused."""
    if not is_int(value):
        raise TypeError(f"{_where(op)}{name} must be an int >= {minimum}, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{_where(op)}{name} must be an int >= {minimum}, got {value}")
    return int(value)


def check_bool(name: str, value, *, op=None) -> bool:
    """True or False (numpy's bool too); 1, "yes" and None are refused."""
    if value is True or value is False:          # the common case, answered without another call
        return value
    if not isinstance(value, np.bool_):
        raise TypeError(f"{_where(op)}{name} must be True or False, got {value!r}")
    return bool(value)


def check_probability(name: str, p, *, op=None) -> float:
    """A drop probability or a smoothing: a float in [0, 1) (1 would drop everything)."""
    if not is_number(p):
        raise TypeError(f"{_where(op)}{name} must be a float in [0, 1), got {describe(p)}")
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{_where(op)}{name} must be a float in [0, 1), got {p!r}")
    return float(p)


def check_momentum(momentum, *, op=None) -> float:
    """BatchNorm's momentum: a float in [0, 1] (0 freezes the running statistics, 1 keeps the last batch)."""
    if type(momentum) is float and 0 <= momentum <= 1:     # the common case, without another call
        return momentum
    if not is_number(momentum) or not 0 <= momentum <= 1:
        error = ValueError if is_number(momentum) else TypeError
        raise error(f"{_where(op)}momentum must be a float in [0, 1], got {momentum!r}")
    return float(momentum)


def check_eps(eps, *, op=None) -> float:
    """BatchNorm's epsilon: a finite float > 0 (it keeps 1 / sqrt(var + eps) finite)."""
    if type(eps) is float and 0 < eps < math.inf:          # the common case, without another call
        return eps
    if not is_number(eps) or not (eps > 0 and math.isfinite(eps)):
        error = ValueError if is_number(eps) else TypeError
        raise error(f"{_where(op)}eps must be a float > 0 (and finite), got {eps!r}")
    return float(eps)


def check_dtype(name: str, dtype, *, op=None) -> np.dtype:
    """A parameter dtype: float32 or float64 (np.float32, "float64", np.dtype(...))."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if dtype is None or resolved not in FLOAT_DTYPES:
        raise TypeError(f"{_where(op)}{name} must be float32 or float64, got {dtype!r}")
    return resolved


def check_rng(name: str, rng, *, op=None):
    """None (a fresh generator is made) or a numpy Generator (np.random.default_rng(seed))."""
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"{_where(op)}{name} must be None or a numpy.random.Generator, got {type(rng).__name__}")
    return rng


# ------------------------------------------------------------------------------------------- arrays
def _refuse_device_array(name: str, x, dtype, op) -> None:
    """The CPU ops take numpy arrays. A device array here means the tiers were mixed: say which way."""
    if dtype is None:  # the op's main input is on the device
        raise TypeError(f"{_where(op)}{name} is a CUDA device array, but this is the CPU op (tinyeffnet.ops): "
                        f"use the same op from tinyeffnet.cuda, or move {name} with tinyeffnet.cuda.to_host({name})")
    raise TypeError(
        f"{_where(op)}the input x is a numpy array on the host while {name} is a CUDA device array: the model "
        f"is on the device. Move the input with tinyeffnet.cuda.to_device(x), or the model with model.to(\"cpu\") "
        f"({name} must be a numpy.ndarray like x)"
    )


def as_float_array(name: str, x, ndim: int | None = None, dtype=None, *, op=None, layout=None) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32/float64 array, or raise a clear error.

    - not a numpy array (a list, a scalar, a CUDA array) -> TypeError
    - dtype not float32/float64 (ints, bools, float16, complex) -> TypeError
    - wrong number of dimensions -> ValueError (``layout``, e.g. "(N, H, W, C)", is quoted)
    - ``dtype`` given (the op's input dtype) and different -> TypeError ("mixed dtypes")
    Non-contiguous input (a transposed view, a slice with a step) is copied once into C order: it is
    accepted, and kernels then always walk memory in order. A 0-d array stays 0-d
    (``np.ascontiguousarray`` would turn it into shape (1,)).
    """
    if not isinstance(x, np.ndarray):
        if is_device_array(x):
            _refuse_device_array(name, x, dtype, op)
        raise TypeError(f"{_where(op)}{name} must be a numpy.ndarray of float32 or float64, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{_where(op)}{name} must have dtype float32 or float64, got {x.dtype} (shape {x.shape})")
    if ndim is not None and x.ndim != ndim:
        expected = f" (expected {layout})" if layout else ""
        raise ValueError(f"{_where(op)}{name} must be {ndim}-D, got {x.ndim}-D array of shape {x.shape} "
                         f"and dtype {x.dtype}{expected}")
    if dtype is not None and x.dtype != np.dtype(dtype):
        raise TypeError(f"{_where(op)}mixed dtypes: {name} has dtype {x.dtype} but the input has dtype "
                        f"{np.dtype(dtype)}")
    return np.asarray(x, order="C")


def check_shape(name: str, x: np.ndarray, expected: tuple, *, op=None) -> None:
    """Raise ValueError unless ``x.shape == expected`` (used for gradients against their cache)."""
    if tuple(x.shape) != tuple(expected):
        raise ValueError(f"{_where(op)}{name} must have shape {tuple(expected)}, got {tuple(x.shape)}")


def check_gradient(dy, shape: tuple, dtype, *, op=None, ndim: int | None = None) -> np.ndarray:
    """An upstream gradient: a float array with the forward output's shape and dtype."""
    dy = as_float_array("dy", dy, ndim=ndim, dtype=dtype, op=op)
    check_shape("dy", dy, shape, op=op)
    return dy


# ------------------------------------------------------------------------------------ conv geometry
def check_stride(stride, *, op=None) -> int:
    if type(stride) is int and stride >= 1:                # the common case, without another call
        return stride
    if not is_int(stride):
        raise TypeError(f"{_where(op)}stride must be an int >= 1, got {stride!r}")
    if stride < 1:
        raise ValueError(f"{_where(op)}stride must be >= 1, got {stride}")
    return int(stride)


def check_padding_option(padding, *, op=None, allow_none: bool = False):
    """A padding option before any input is seen: an int >= 0 or "same" (or None: the layer default)."""
    if padding is None and allow_none:
        return None
    if type(padding) is int and padding >= 0:              # the common case, without another call
        return padding
    if isinstance(padding, str):
        if padding != "same":
            raise ValueError(f'{_where(op)}padding must be an int >= 0 or "same", got {padding!r}')
        return padding
    if not is_int(padding):
        raise TypeError(f'{_where(op)}padding must be an int >= 0 or "same", got {padding!r}')
    if padding < 0:
        raise ValueError(f'{_where(op)}padding must be an int >= 0 or "same", got {padding}')
    return int(padding)


def _same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME": output = ceil(size / stride); the smaller half of the padding goes first.

        total = max((ceil(size / stride) - 1) * stride + k - size, 0)
        before = total // 2,  after = total - before
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, height: int, width: int, kh: int, kw: int, stride: int, *,
                    op=None) -> tuple[int, int, int, int]:
    """Turn ``padding`` (an int, PyTorch style, or "same", TensorFlow style) into (top, bottom, left, right).

    Also checks that the kernel fits in the padded input and that "same" gets an odd kernel.
    """
    padding = check_padding_option(padding, op=op)
    if padding == "same":
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f'{_where(op)}padding="same" needs an odd kernel size, got kernel {kh}x{kw}')
        top, bottom = _same_pads(height, kh, stride)
        left, right = _same_pads(width, kw, stride)
    else:
        top = bottom = left = right = padding
    if kh > height + top + bottom or kw > width + left + right:
        raise ValueError(
            f"{_where(op)}kernel {kh}x{kw} is larger than the padded input {height + top + bottom}x"
            f"{width + left + right} (input {height}x{width}, padding {padding!r})"
        )
    return top, bottom, left, right


def conv_output_size(size: int, k: int, stride: int, pad_before: int, pad_after: int) -> int:
    """floor((size + pads - k) / stride) + 1, the output length of a convolution along one axis."""
    return (size + pad_before + pad_after - k) // stride + 1


# ---------------------------------------------------------------------------------------- conv ops
class ConvCache(NamedTuple):
    """What a conv backward needs, for both CPU tiers and both conv kinds.

    x:      (N, H, W, Cin) the input, C-contiguous (needed for dw)
    w:      (KH, KW, Cin, Cout) or (KH, KW, C) the weight (needed for dx)
    stride: S
    pads:   (top, bottom, left, right) the resolved zero padding
    The output shape (N, Ho, Wo, Cout) follows from these; it is used to check dy.
    """

    x: np.ndarray
    w: np.ndarray
    stride: int
    pads: tuple

    @property
    def output_shape(self) -> tuple:
        n, h, width, _ = self.x.shape
        kh, kw = self.w.shape[:2]
        top, bottom, left, right = self.pads
        ho = conv_output_size(h, kh, self.stride, top, bottom)
        wo = conv_output_size(width, kw, self.stride, left, right)
        return (n, ho, wo, tuple(self.w.shape)[-1])   # tuple(): a simulator device array's shape takes no -1


_CONV_OPS = {(False, "forward"): "conv2d_forward", (False, "backward"): "conv2d_backward",
             (True, "forward"): "depthwise_conv2d_forward", (True, "backward"): "depthwise_conv2d_backward"}


def _conv_op(depthwise: bool, direction: str) -> str:
    return _CONV_OPS[(bool(depthwise), direction)]


def check_conv_inputs(x, w, stride, padding, depthwise: bool):
    """Validate a conv's inputs before any kernel runs; return (x, w, stride, pads).

    x must be a 4-D float32/float64 array, w 4-D (dense) or 3-D (depthwise) of the same dtype, with
    w's channel axis (axis 2) equal to x's C. stride is an int >= 1, padding an int >= 0 or "same"
    (odd kernel only). The kernel must fit in the padded input. x and w come back C-contiguous.
    """
    op = _conv_op(depthwise, "forward")
    x = as_float_array("x", x, ndim=4, op=op, layout="(N, H, W, C)" if depthwise else "(N, H, W, Cin)")
    w = as_float_array("w", w, ndim=3 if depthwise else 4, dtype=x.dtype, op=op,
                       layout="(KH, KW, C)" if depthwise else "(KH, KW, Cin, Cout)")
    stride, pads = check_conv_geometry(x.shape, w.shape, stride, padding, depthwise)
    return x, w, stride, pads


def check_conv_geometry(x_shape, w_shape, stride, padding, depthwise: bool):
    """The shape rules shared by every tier (CPU and CUDA): w's channel axis (axis 2) equals x's C,
    the kernel is at least 1x1, stride is an int >= 1, and the padding resolves with the kernel
    fitting the padded input. Returns (stride, (top, bottom, left, right))."""
    op = _CONV_OPS[(depthwise, "forward")]
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    kh, kw, w_channels = w_shape[:3]
    if w_channels != x_shape[3]:
        what = "channels" if depthwise else "input channels"
        raise ValueError(
            f"{op}: channel mismatch: x of shape {x_shape} has {x_shape[3]} channels but w of shape {w_shape} "
            f"has {w_channels} {what} (axis 2)"
        )
    if kh < 1 or kw < 1:
        raise ValueError(f"{op}: w must have a kernel of at least 1x1, got shape {w_shape}")
    if x_shape[3] < 1 or w_shape[-1] < 1:
        raise ValueError(f"{op}: x and w must have at least one channel (in and out), got x of shape {x_shape} "
                         f"and w of shape {w_shape}")
    stride = check_stride(stride, op=op)
    return stride, resolve_padding(padding, x_shape[1], x_shape[2], kh, kw, stride, op=op)


def check_conv_cache(cache, depthwise: bool) -> ConvCache:
    """The cache of (depthwise_)conv2d_forward: a ConvCache whose w has the right rank."""
    op, made_by = _conv_op(depthwise, "backward"), _conv_op(depthwise, "forward")
    if not isinstance(cache, ConvCache):
        raise TypeError(f"{op}: cache must be the ConvCache returned by {made_by}, got {type(cache).__name__}")
    wanted = 3 if depthwise else 4
    if not isinstance(cache.w, np.ndarray) or cache.w.ndim != wanted:
        other = _conv_op(not depthwise, "forward")
        raise ValueError(f"{op}: cache must come from {made_by}, got one with a w of "
                         f"{describe(cache.w)} (a cache of {other}?)")
    return cache


def check_upstream_gradient(dy, cache: ConvCache, depthwise: bool = False) -> np.ndarray:
    """The conv backward's inputs: its cache (checked first), then dy, 4-D, of the forward output's
    shape and dtype; dy returned C-contiguous."""
    cache = check_conv_cache(cache, depthwise)
    return check_gradient(dy, cache.output_shape, cache.x.dtype, op=_conv_op(depthwise, "backward"), ndim=4)


# ----------------------------------------------------------------------------------- elementwise ops
def check_elementwise_cache(op: str, cache, made_by: str, name: str) -> np.ndarray:
    """The cache of silu_forward (x,) or sigmoid_forward (y,): a 1-tuple holding a float array."""
    if not (isinstance(cache, tuple) and len(cache) == 1 and isinstance(cache[0], np.ndarray)
            and cache[0].dtype in FLOAT_DTYPES):
        raise TypeError(f"{op}: cache must be the tuple ({name},) returned by {made_by}, got {describe(cache)}")
    return cache[0]


# -------------------------------------------------------------------------------------- batchnorm
def check_channel_vector(name: str, v, channels: int, dtype, *, op=None) -> np.ndarray:
    """A per-channel parameter or statistic: float array of shape (C,) and the input's dtype."""
    if type(v) is np.ndarray and v.shape == (channels,) and v.dtype == dtype and v.flags.c_contiguous:
        return v                                           # the common case, without another call
    v = as_float_array(name, v, ndim=1, dtype=dtype, op=op, layout="(C,)")
    if v.shape[0] != channels:
        raise ValueError(
            f"{_where(op)}{name} must have shape ({channels},) to match the {channels} channels of x "
            f"(its last axis), got shape {v.shape}"
        )
    return v


def validate_batchnorm_inputs(x, gamma, beta, running_mean, running_var, training, momentum, eps,
                              op="batchnorm_forward"):
    """Check every argument of batchnorm_forward (and of the fused BN+SiLU); return (x, momentum, eps).

    x comes back C-contiguous; momentum and eps as Python floats, so that they never promote a
    float32 computation to float64 (a numpy float64 scalar would).

    running_mean and running_var are only checked here: they are updated in place by the caller, so
    the caller keeps the original objects (they must be writeable numpy arrays).
    """
    x = as_float_array("x", x, op=op)
    if x.ndim not in (2, 4):
        raise ValueError(f"{op}: x must be 4-D (N, H, W, C) or 2-D (N, C), got {x.ndim}-D array of shape {x.shape}")
    channels = x.shape[-1]
    if channels == 0 or x.size == 0:
        raise ValueError(f"{op}: x must have at least one value per channel and one channel, got shape {x.shape}")
    for name, v in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)):
        check_channel_vector(name, v, channels, x.dtype, op=op)
    training = check_bool("training", training, op=op)
    if training:
        for name, v in (("running_mean", running_mean), ("running_var", running_var)):
            if not v.flags.writeable:
                raise ValueError(f"{op}: {name} must be writeable: training updates it in place")
        if x.size // channels < 2:
            raise ValueError(
                f"{op}: training needs more than 1 value per channel to estimate a variance, got x of shape {x.shape}"
            )
    return x, check_momentum(momentum, op=op), check_eps(eps, op=op)


def check_batchnorm_cache(cache, fused: bool = False) -> tuple:
    """The cache of batchnorm_forward, (x, mean, inv_std, gamma, training), or of the fused
    batchnorm_silu_forward, (x, mean, inv_std, gamma, beta, training): float arrays of one dtype,
    the vectors (C,), a bool last."""
    op = "batchnorm_silu_backward" if fused else "batchnorm_backward"
    names = ("x", "mean", "inv_std", "gamma") + (("beta",) if fused else ()) + ("training",)
    made_by = f"{op[:-len('backward')]}forward"
    wrong = TypeError(f"{op}: cache must be the tuple ({', '.join(names)}) returned by {made_by}, "
                      f"got {describe(cache) if not isinstance(cache, tuple) else f'a tuple of {len(cache)}'}")
    if not isinstance(cache, tuple) or len(cache) != len(names):
        raise wrong
    x, vectors, training = cache[0], cache[1:-1], cache[-1]
    if not (isinstance(x, np.ndarray) and x.dtype in FLOAT_DTYPES and x.ndim in (2, 4)
            and isinstance(training, (bool, np.bool_))
            and all(isinstance(v, np.ndarray) and v.dtype == x.dtype and v.shape == x.shape[-1:] for v in vectors)):
        raise wrong
    return cache


# ------------------------------------------------------------------------------------------ pooling
def validate_pool_input(x, op="global_avg_pool_forward") -> np.ndarray:
    x = as_float_array("x", x, ndim=4, op=op, layout="(N, H, W, C)")
    if x.shape[1] * x.shape[2] == 0:
        raise ValueError(f"{op}: x must have H, W >= 1 to be averaged, got shape {x.shape}")
    return x


def check_pool_cache(cache) -> tuple:
    """The cache of global_avg_pool_forward: (shape, dtype) of x, shape (N, H, W, C) with H, W >= 1."""
    op = "global_avg_pool_backward"
    ok = (isinstance(cache, tuple) and len(cache) == 2 and isinstance(cache[0], tuple) and len(cache[0]) == 4
          and all(is_int(s) and s >= 0 for s in cache[0]) and cache[0][1] * cache[0][2] > 0
          and isinstance(cache[1], np.dtype) and cache[1] in FLOAT_DTYPES)
    if not ok:
        raise TypeError(f"{op}: cache must be the tuple (shape, dtype) returned by global_avg_pool_forward, "
                        f"got {describe(cache)}")
    return cache


def check_pool_gradient(dy, x_shape, dtype) -> np.ndarray:
    return check_gradient(dy, (x_shape[0], x_shape[3]), dtype, op="global_avg_pool_backward", ndim=2)


# ------------------------------------------------------------------------------------------- linear
def validate_linear_inputs(x, w, b, op="linear_forward"):
    """Return (x, w, b) as C-contiguous float arrays of one dtype (b may be None)."""
    x = as_float_array("x", x, ndim=2, op=op, layout="(N, Cin)")
    w = as_float_array("w", w, ndim=2, dtype=x.dtype, op=op, layout="(Cin, Cout)")
    if w.shape[0] != x.shape[1]:
        raise ValueError(
            f"{op}: w must have shape (Cin, Cout) with Cin = {x.shape[1]} (the features of x), got shape {w.shape}"
        )
    if b is not None:
        b = as_float_array("b", b, ndim=1, dtype=x.dtype, op=op, layout="(Cout,)")
        if b.shape[0] != w.shape[1]:
            raise ValueError(f"{op}: b must have shape (Cout,) = ({w.shape[1]},) to match w, got shape {b.shape}")
    return x, w, b


def check_linear_cache(cache) -> tuple:
    """The cache of linear_forward: (x (N, Cin), w (Cin, Cout), has_bias)."""
    ok = (isinstance(cache, tuple) and len(cache) == 3
          and all(isinstance(a, np.ndarray) and a.ndim == 2 and a.dtype in FLOAT_DTYPES for a in cache[:2])
          and cache[0].dtype == cache[1].dtype and cache[0].shape[1] == cache[1].shape[0]
          and isinstance(cache[2], (bool, np.bool_)))
    if not ok:
        raise TypeError(f"linear_backward: cache must be the tuple (x, w, has_bias) returned by linear_forward, "
                        f"got {describe(cache)}")
    return cache


def check_linear_gradient(dy, x, w) -> np.ndarray:
    return check_gradient(dy, (x.shape[0], w.shape[1]), x.dtype, op="linear_backward", ndim=2)


# ------------------------------------------------------------------------------------------- losses
def validate_loss_inputs(logits, labels, label_smoothing, op="softmax_cross_entropy"):
    """Return (logits, labels, label_smoothing) checked: labels as int64 (N,) or logits-dtype (N, K)."""
    logits = as_float_array("logits", logits, ndim=2, op=op, layout="(N, K)")
    n, k = logits.shape
    if n == 0 or k == 0:
        raise ValueError(f"{op}: logits must have at least one row and one class, got shape {logits.shape}")
    label_smoothing = check_probability("label_smoothing", label_smoothing, op=op)
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{op}: labels must be a numpy.ndarray of class indices, got {type(labels).__name__}")
    if labels.ndim == 2 and labels.dtype in FLOAT_DTYPES:
        labels = as_float_array("labels", labels, dtype=logits.dtype, op=op)
        if labels.shape != logits.shape:
            raise ValueError(f"{op}: probability targets must have the shape of logits {logits.shape}, "
                             f"got {labels.shape}")
        return logits, labels, label_smoothing
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(
            f"{op}: labels must have an integer dtype (class indices), or be a float (N, K) matrix of "
            f"probabilities, got dtype {labels.dtype} and shape {labels.shape}"
        )
    if labels.ndim != 1:
        raise ValueError(f"{op}: labels must be 1-D (N,), got {labels.ndim}-D array of shape {labels.shape}")
    if labels.shape[0] != n:
        raise ValueError(f"{op}: labels has length {labels.shape[0]} but logits has {n} rows")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= k:
        raise ValueError(f"{op}: labels must be in [0, {k}), got {low if low < 0 else high}")
    return logits, labels.astype(np.int64), label_smoothing


# ----------------------------------------------------------------------------------- regularization
def validate_drop_inputs(x, p, rng, training, op="dropout_forward"):
    """Return (x, p) checked. rng must be a numpy Generator when coins are actually drawn."""
    x = as_float_array("x", x, op=op)
    if x.ndim < 1:
        raise ValueError(f"{op}: x must have a batch axis (at least 1-D), got shape {x.shape}")
    p = check_probability("p", p, op=op)
    training = check_bool("training", training, op=op)
    if training and p > 0 and not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{op}: rng must be a numpy.random.Generator (np.random.default_rng(seed)) when training with p > 0, "
            f"got {type(rng).__name__}"
        )
    return x, p


def check_drop_cache(cache, per_sample: bool) -> tuple:
    """The cache of dropout_forward / drop_path_forward: (keep, scale, shape, dtype); keep is None
    (the identity) or a bool mask of x's shape (dropout) or (N, 1, ..., 1) (drop path)."""
    op = "drop_path_backward" if per_sample else "dropout_backward"
    ok = (isinstance(cache, tuple) and len(cache) == 4 and isinstance(cache[2], tuple)
          and len(cache[2]) >= 1 and all(is_int(s) and s >= 0 for s in cache[2])
          and isinstance(cache[3], np.dtype) and cache[3] in FLOAT_DTYPES)
    if ok and cache[0] is not None:
        keep, shape = cache[0], cache[2]
        wanted = (shape[0],) + (1,) * (len(shape) - 1) if per_sample else shape
        ok = isinstance(keep, np.ndarray) and keep.dtype == np.bool_ and keep.shape == wanted and is_number(cache[1])
    if not ok:
        made_by = op.replace("backward", "forward")
        raise TypeError(f"{op}: cache must be the tuple (keep, scale, shape, dtype) returned by {made_by}, "
                        f"got {describe(cache)}")
    return cache


def check_drop_gradient(dy, shape, dtype, op="dropout_backward") -> np.ndarray:
    return check_gradient(dy, shape, dtype, op=op)


# ------------------------------------------------------------------- residual add, gate, gradients
def check_like(name: str, b, like: np.ndarray, *, op=None) -> np.ndarray:
    """A second operand of an elementwise op (add, axpy): a float array of ``like``'s dtype and shape,
    no broadcasting (a broadcast would hide a wrong shape)."""
    b = as_float_array(name, b, dtype=like.dtype, op=op)
    check_shape(name, b, like.shape, op=op)
    return b


def check_writable(name: str, a, *, op=None) -> np.ndarray:
    """An array written in place (fill, axpy's y): a writeable, C-contiguous float numpy array.
    Returned as it is (a copy would be written instead of the caller's array)."""
    checked = as_float_array(name, a, op=op)
    if checked is not a or not a.flags.writeable:
        raise ValueError(f"{_where(op)}{name} must be a writeable C-contiguous array: it is updated in place")
    return a


def validate_channel_gate_inputs(x, gate, op="channel_gate_forward"):
    """Squeeze-Excite's product: x (N, H, W, C) and gate (N, C) of x's dtype; both returned C-contiguous."""
    x = as_float_array("x", x, ndim=4, op=op, layout="(N, H, W, C)")
    gate = as_float_array("gate", gate, ndim=2, dtype=x.dtype, op=op, layout="(N, C)")
    expected = (x.shape[0], x.shape[3])
    if gate.shape != expected:
        raise ValueError(f"{op}: gate must have shape (N, C) = {expected} to match x of shape {x.shape}, "
                         f"got shape {gate.shape}")
    return x, gate


def check_channel_gate_cache(cache) -> tuple:
    """The cache of channel_gate_forward: (x (N, H, W, C), gate (N, C)), float arrays of one dtype."""
    op = "channel_gate_backward"
    ok = (isinstance(cache, tuple) and len(cache) == 2
          and all(isinstance(a, np.ndarray) and a.dtype in FLOAT_DTYPES for a in cache)
          and cache[0].ndim == 4 and cache[1].ndim == 2 and cache[0].dtype == cache[1].dtype
          and cache[1].shape == (cache[0].shape[0], cache[0].shape[3]))
    if not ok:
        raise TypeError(f"{op}: cache must be the tuple (x, gate) returned by channel_gate_forward, "
                        f"got {describe(cache) if not isinstance(cache, tuple) else f'a tuple of {len(cache)}'}")
    return cache


def check_gradient_for(g, data, *, op="Parameter.accumulate") -> None:
    """A gradient for a parameter: the parameter's dtype and shape, on any device (host or CUDA
    array: only ``.dtype`` and ``.shape`` are read). A wrong dtype is never cast silently."""
    if not hasattr(g, "dtype") or not hasattr(g, "shape"):
        raise TypeError(f"{_where(op)}the gradient must be an array, got {type(g).__name__}")
    if np.dtype(g.dtype) != np.dtype(data.dtype):
        raise TypeError(f"{_where(op)}mixed dtypes: a gradient of dtype {g.dtype} for a parameter of dtype "
                        f"{np.dtype(data.dtype)}")
    if tuple(g.shape) != tuple(data.shape):
        raise ValueError(f"{_where(op)}the gradient must have the parameter's shape {tuple(data.shape)}, "
                         f"got {tuple(g.shape)}")


# ------------------------------------------------------------------------------------- the op set
# The op set of every tier (tinyeffnet.ops, tinyeffnet.ops.reference, tinyeffnet.cuda): same names,
# same parameter names (tests/test_tiers.py). The layers call nothing else through ``backend.ops_for(x)``.
OP_NAMES = (
    "conv2d_forward", "conv2d_backward",
    "depthwise_conv2d_forward", "depthwise_conv2d_backward",
    "batchnorm_forward", "batchnorm_backward",
    "batchnorm_silu_forward", "batchnorm_silu_backward",
    "silu_forward", "silu_backward", "sigmoid_forward", "sigmoid_backward",
    "global_avg_pool_forward", "global_avg_pool_backward",
    "linear_forward", "linear_backward",
    "softmax_cross_entropy",
    "dropout_forward", "dropout_backward", "drop_path_forward", "drop_path_backward",
    # between the layers: the residual add, Squeeze-Excite's gate, gradient accumulation
    "add", "channel_gate_forward", "channel_gate_backward", "fill", "axpy", "copy", "zeros",
)
