"""The shared input checks and the padding rule (TensorFlow "same": smaller half first)."""
import math

import numpy as np
import pytest

from tinyeffnet.ops._checks import as_float_array, conv_output_size, resolve_padding


def tf_same_pads(size, k, s):
    # Written out independently of the package: TF's rule from tf.nn.conv2d docs.
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


SAME_GRID = [
    (size, k, s)
    for size in [1, 2, 5, 6, 7, 8, 224, 225]
    for k in [1, 3, 5]
    for s in [1, 2, 3]
    if k <= size + sum(tf_same_pads(size, k, s))  # kernel fits; the error case is tested below
]


@pytest.mark.parametrize("size, k, s", SAME_GRID)
def test_same_padding_matches_tensorflow_and_gives_ceil_output(size, k, s):
    top, bottom, left, right = resolve_padding("same", size, size, k, k, s)
    assert (top, bottom) == tf_same_pads(size, k, s) == (left, right)
    assert conv_output_size(size, k, s, top, bottom) == math.ceil(size / s)


def test_same_padding_stride2_even_puts_the_extra_row_last():
    # 3x3 stride 2 on 8 rows: total padding 1 -> 0 before, 1 after (PyTorch would use 1/1).
    assert resolve_padding("same", 8, 8, 3, 3, 2) == (0, 1, 0, 1)
    # odd size: symmetric, equal to PyTorch's padding=1
    assert resolve_padding("same", 9, 9, 3, 3, 2) == (1, 1, 1, 1)


def test_int_padding_is_symmetric_and_non_square():
    assert resolve_padding(2, 5, 9, 3, 5, 1) == (2, 2, 2, 2)


@pytest.mark.parametrize(
    "padding, kernel, error, match",
    [
        ("valid", (3, 3), ValueError, "padding must be"),
        (-1, (3, 3), ValueError, "padding must be"),
        (1.5, (3, 3), TypeError, "padding must be"),
        ("same", (2, 2), ValueError, "odd kernel"),
        (0, (9, 3), ValueError, "larger than the padded input"),
    ],
)
def test_bad_padding(padding, kernel, error, match):
    with pytest.raises(error, match=match):
        resolve_padding(padding, 5, 5, *kernel, 1)


def test_as_float_array_messages():
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got int64"):
        as_float_array("x", np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="got float16"):
        as_float_array("x", np.zeros(3, np.float16))
    with pytest.raises(ValueError, match=r"x must be 4-D, got 2-D array of shape \(2, 3\)"):
        as_float_array("x", np.zeros((2, 3)), ndim=4)
    with pytest.raises(TypeError, match="mixed dtypes: w has dtype float64"):
        as_float_array("w", np.zeros(3), dtype=np.float32)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        as_float_array("x", [1.0, 2.0])
    view = np.zeros((4, 6), np.float32)[:, ::2]
    out = as_float_array("x", view)
    assert out.flags.c_contiguous and out.dtype == np.float32
