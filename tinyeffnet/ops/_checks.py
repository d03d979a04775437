"""Input checks shared by every op, run before any kernel.

A Numba typing error reaching a user is a bug: every public op calls these first, so that bad input
gets a ``TypeError`` or ``ValueError`` naming the argument, what was expected and what came.

Also home of the one padding rule used by both conv families (``resolve_padding``), because "same"
padding (TensorFlow's rule) and PyTorch's symmetric int padding must agree everywhere.
"""
from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_array(name: str, x, ndim: int | None = None, dtype=None) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32/float64 array, or raise a clear error.

    - not an array-like of floats (ints, bools, float16, complex) -> TypeError
    - wrong number of dimensions -> ValueError
    - ``dtype`` given and different -> TypeError ("mixed dtypes")
    Non-contiguous input (a transposed view, a slice with a step) is copied once into C order: it is
    accepted, and kernels then always walk memory in order.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of float32 or float64, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {x.ndim}-D array of shape {x.shape}")
    if dtype is not None and x.dtype != np.dtype(dtype):
        raise TypeError(f"mixed dtypes: {name} has dtype {x.dtype} but the input has dtype {np.dtype(dtype)}")
    return np.ascontiguousarray(x)


def check_shape(name: str, x: np.ndarray, expected: tuple) -> None:
    """Raise ValueError unless ``x.shape == expected`` (used for gradients against their cache)."""
    if tuple(x.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(x.shape)}")


def check_stride(stride) -> int:
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)):
        raise TypeError(f"stride must be an int >= 1, got {stride!r}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    return int(stride)


def check_probability(name: str, p) -> float:
    if not isinstance(p, (int, float, np.floating)) or isinstance(p, bool) or not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{name} must be a float in [0, 1), got {p!r}")
    return float(p)


def _same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME": output = ceil(size / stride); the smaller half of the padding goes first.

        total = max((ceil(size / stride) - 1) * stride + k - size, 0)
        before = total // 2,  after = total - before
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, height: int, width: int, kh: int, kw: int, stride: int) -> tuple[int, int, int, int]:
    """Turn ``padding`` (an int, PyTorch style, or "same", TensorFlow style) into (top, bottom, left, right).

    Also checks that the kernel fits in the padded input and that "same" gets an odd kernel.
    """
    if isinstance(padding, str):
        if padding != "same":
            raise ValueError(f'padding must be an int >= 0 or "same", got {padding!r}')
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f'padding="same" needs an odd kernel size, got kernel {kh}x{kw}')
        top, bottom = _same_pads(height, kh, stride)
        left, right = _same_pads(width, kw, stride)
    elif isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        if padding < 0:
            raise ValueError(f'padding must be an int >= 0 or "same", got {padding}')
        top = bottom = left = right = int(padding)
    else:
        raise TypeError(f'padding must be an int >= 0 or "same", got {padding!r}')
    if kh > height + top + bottom or kw > width + left + right:
        raise ValueError(
            f"kernel {kh}x{kw} is larger than the padded input {height + top + bottom}x{width + left + right} "
            f"(input {height}x{width}, padding {padding!r})"
        )
    return top, bottom, left, right


def conv_output_size(size: int, k: int, stride: int, pad_before: int, pad_after: int) -> int:
    """floor((size + pads - k) / stride) + 1, the output length of a convolution along one axis."""
    return (size + pad_before + pad_after - k) // stride + 1
