"""Augmentation in NumPy on NHWC batches of float images in [0, 1]; every random choice uses ``rng``.

One piece is compiled: the affine resampler of the geometric ops (``_affine``, Numba, and
``_each_affine`` for a group of images; its NumPy version ``_affine_numpy`` beside it gives the same bits).

Resampling (bilinear, half-pixel centres, as torch's align_corners=False). An output pixel (i, j) of
an (h, w) output that covers the box (top, left, height, width) of the input reads the input at

    y = top + (i + 1/2) height / h - 1/2,    x = left + (j + 1/2) width / w - 1/2
    out = (1-wy)(1-wx) in[y0, x0] + (1-wy) wx in[y0, x1] + wy (1-wx) in[y1, x0] + wy wx in[y1, x1]

with y0 = floor(y), wy = y - y0 (clamped at the border), and the same for x. No anti-aliasing
filter: shrinking by more than 2x skips pixels (fine for crops; resize large photos in steps).

Random resized crop (Inception / torchvision): area fraction s ~ U(scale), aspect ratio r with
log r ~ U(log ratio); box w = round(sqrt(s H W r)), h = round(sqrt(s H W / r)); up to 10 tries,
else the central crop with the ratio clamped into range. Then resample the box to size x size.

RandAugment (Cubuk et al. 2020), torchvision's 0..30 magnitude scale, m = magnitude / 30 in [0, 1].
Each image gets ``num_layers`` ops drawn uniformly (with replacement); signed ops flip a coin for
the sign. f = 1 +- 0.9 m is a blend factor, blend(a, b, f) = b + f (a - b):

    identity        x
    brightness      blend(x, 0, f)
    color           blend(x, gray(x), f)              gray = 0.299 R + 0.587 G + 0.114 B
    contrast        blend(x, mean(gray(x)), f)
    sharpness       blend(x, smooth(x), f)            smooth: 3x3 kernel [1 1 1; 1 5 1; 1 1 1] / 13
    posterize       keep 8 - floor(4 m) bits of round(255 x)
    solarize        1 - x where x > 1 - m             (strict >: magnitude 0 is the identity)
    autocontrast    (x - min) / (max - min) per channel
    equalize        per-channel histogram equalisation on 256 levels
    rotate          +- 30 m degrees about the centre
    shear_x/_y      +- 0.3 m
    translate_x/_y  +- 0.45 m of the side (torchvision: 150/331)
Geometric ops fill uncovered pixels with gray 0.5 (TensorFlow fills 128/255). Every op clips to [0, 1].
``rand_augment`` draws every image's ops and signs first, image by image (the draws of one image
augmented alone), then runs each layer op by op on the group of images that drew it; the result is
that of one image at a time (tests/data/test_augment.py), a batch of 64 48 x 48 images 7 -> 5 ms.

Mixup (Zhang et al. 2018): lam ~ Beta(alpha, alpha), perm a random permutation of the batch,

    x~ = lam x + (1 - lam) x[perm],    y~ = lam onehot(y) + (1 - lam) onehot(y[perm])     (N, K)

alpha = 0 turns it off (lam = 1). Soft cross entropy is linear in the target, so
CE(x~, y~) = lam CE(x~, y) + (1 - lam) CE(x~, y[perm]): integer-label losses suffice.

Dimension legend: N images, H, W input height and width, S output side, C channels, K classes.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from tinyeffnet.ops._checks import as_float_array, check_dtype, check_int, describe, is_number

__all__ = [
    "resize", "center_crop_resize", "random_resized_crop", "horizontal_flip",
    "RAND_AUGMENT_OPS", "apply_op", "rand_augment",
    "one_hot", "mixup_params", "mixup_apply", "mixup",
]

FILL = 0.5
MAX_MAGNITUDE = 30.0


# Argument checks: each names the function and the argument (the same rules as ops/_checks.py).
def _images(images, op: str) -> np.ndarray:
    return as_float_array("images", images, ndim=4, op=op, layout="(N, H, W, C)")


def _check_size(size, op: str) -> int:
    if not isinstance(size, (int, np.integer)) or isinstance(size, (bool, np.bool_)):
        raise TypeError(f"{op}: size must be an int, got {type(size).__name__}")
    if size < 1:
        raise ValueError(f"{op}: size must be >= 1, got {size}")
    return int(size)


def _check_range(name: str, pair, low: float, high: float, op: str) -> tuple:
    """(a, b) with low <= a <= b <= high: a pair of finite numbers."""
    if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2 \
            or not all(is_number(v) for v in pair):
        raise TypeError(f"{op}: {name} must be a pair (a, b) of numbers, got {describe(pair)}")
    a, b = (float(v) for v in pair)
    if not low <= a <= b <= high:
        raise ValueError(f"{op}: {name} must be (a, b) with {low} <= a <= b <= {high}, got {tuple(pair)}")
    return a, b


def _check_fraction(name: str, value, op: str) -> float:
    """A probability or a mixing weight: a number in [0, 1]."""
    if not is_number(value):
        raise TypeError(f"{op}: {name} must be a number in [0, 1], got {describe(value)}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{op}: {name} must be in [0, 1], got {value}")
    return float(value)


def _check_rng(rng, op: str) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{op}: rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


# ----------------------------------------------------------------------------------------------------
# Resampling
# ----------------------------------------------------------------------------------------------------

def _axis_weights(start: float, length: float, out: int, size: int):
    """Source indices i0, i1 (out,) and weights t (out,) for one axis (see the module docstring)."""
    coords = start + (np.arange(out) + 0.5) * (length / out) - 0.5           # (out,) float64
    coords = np.clip(coords, 0, size - 1)
    i0 = np.floor(coords).astype(np.int64)
    i1 = np.minimum(i0 + 1, size - 1)
    return i0, i1, coords - i0


def _resample_box(image: np.ndarray, box: tuple, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resample of box (top, left, height, width) of image (H, W, C) to (out_h, out_w, C)."""
    top, left, height, width = box
    y0, y1, wy = _axis_weights(top, height, out_h, image.shape[0])
    x0, x1, wx = _axis_weights(left, width, out_w, image.shape[1])
    dtype = image.dtype
    wy = wy.astype(dtype)[:, None, None]                                     # (out_h, 1, 1)
    wx = wx.astype(dtype)[None, :, None]                                     # (1, out_w, 1)
    rows0, rows1 = image[y0], image[y1]                                      # (out_h, W, C)
    top_row = rows0[:, x0] + (rows0[:, x1] - rows0[:, x0]) * wx              # (out_h, out_w, C)
    bottom_row = rows1[:, x0] + (rows1[:, x1] - rows1[:, x0]) * wx
    return top_row + (bottom_row - top_row) * wy


def resize(images, size: int) -> np.ndarray:
    """Resample every image (whole frame, aspect not kept) to (size, size): (N, H, W, C) -> (N, S, S, C)."""
    images = _images(images, "resize")
    size = _check_size(size, "resize")
    n, h, w, c = images.shape
    if (h, w) == (size, size):
        return images.copy()
    return np.stack([_resample_box(img, (0, 0, h, w), size, size) for img in images]) if n else \
        np.empty((0, size, size, c), dtype=images.dtype)


def _center_square(h: int, w: int) -> tuple:
    side = min(h, w)
    return ((h - side) / 2, (w - side) / 2, side, side)


def center_crop_resize(image, size: int) -> np.ndarray:
    """The largest central square of one image (H, W, C), resampled to (size, size, C)."""
    image = as_float_array("image", image, ndim=3, op="center_crop_resize", layout="(H, W, C)")
    size = _check_size(size, "center_crop_resize")
    return _resample_box(image, _center_square(*image.shape[:2]), size, size)


def _random_box(h: int, w: int, rng, scale: tuple, ratio: tuple) -> tuple:
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        bw = int(round(math.sqrt(target * aspect)))
        bh = int(round(math.sqrt(target / aspect)))
        if 0 < bw <= w and 0 < bh <= h:
            top = int(rng.integers(0, h - bh + 1))
            left = int(rng.integers(0, w - bw + 1))
            return top, left, bh, bw
    aspect = w / h                                                      # fallback: central crop
    if aspect < ratio[0]:
        bw, bh = w, int(round(w / ratio[0]))
    elif aspect > ratio[1]:
        bh, bw = h, int(round(h * ratio[1]))
    else:
        bw, bh = w, h
    return (h - bh) // 2, (w - bw) // 2, bh, bw


def random_resized_crop(images, size: int, rng: np.random.Generator, scale=(0.08, 1.0),
                        ratio=(3 / 4, 4 / 3)) -> np.ndarray:
    """A random box per image (area fraction in scale, aspect in ratio) resampled: (N, H, W, C) -> (N, S, S, C)."""
    op = "random_resized_crop"
    images = _images(images, op)
    size = _check_size(size, op)
    rng = _check_rng(rng, op)
    scale = _check_range("scale", scale, 0.0, 1.0, op)
    ratio = _check_range("ratio", ratio, 1e-3, 1e3, op)
    if scale[1] == 0:
        raise ValueError(f"{op}: scale must allow a non-empty crop, got {scale}")
    n, h, w, c = images.shape
    out = np.empty((n, size, size, c), dtype=images.dtype)                    # (N, S, S, C)
    for i in range(n):
        out[i] = _resample_box(images[i], _random_box(h, w, rng, scale, ratio), size, size)
    return out


def horizontal_flip(images, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right with probability p: (N, H, W, C) -> (N, H, W, C), a new array."""
    images = _images(images, "horizontal_flip")
    rng = _check_rng(rng, "horizontal_flip")
    p = _check_fraction("p", p, "horizontal_flip")
    flip = rng.random(images.shape[0]) < p                                   # (N,) bool
    out = images.copy()
    out[flip] = images[flip, :, ::-1]
    return out


# ----------------------------------------------------------------------------------------------------
# RandAugment ops: each takes a group of images (k, H, W, C) in [0, 1] that drew the op, m in [0, 1]
# and each image's sign (k,) of +1/-1; returns a new array. apply_op runs one image as a group of 1.
# ----------------------------------------------------------------------------------------------------

def _blend(x, base, factor):
    return base + (x - base) * factor


def _gray(x):
    """Luminance (k, H, W, 1) for RGB; the channel mean for other channel counts."""
    if x.shape[-1] == 3:
        weights = np.array([0.299, 0.587, 0.114], dtype=x.dtype)
        return (x @ weights)[..., None]
    return x.mean(axis=-1, keepdims=True)


def _factor(x, m: float, sign):
    """f = 1 + sign 0.9 m per image, (k, 1, 1, 1) in x's dtype (rounded once, as a Python float was)."""
    return (1.0 + np.asarray(sign, dtype=np.float64) * 0.9 * m).astype(x.dtype)[:, None, None, None]


def _per_image_channel(x, reduce):
    """reduce over each image's pixels, per channel: (k, H, W, C) -> (k, 1, 1, C). The pixels are
    first made contiguous per channel ((k, C, H W)): NumPy reduces a contiguous run ~10x faster than
    a stride-C one, and min and max are exact in any order."""
    runs = np.ascontiguousarray(np.moveaxis(x, -1, 1)).reshape(x.shape[0], x.shape[-1], -1)
    return reduce(runs, axis=2)[:, None, None, :]


def _identity(x, m, sign):
    return x.copy()


def _brightness(x, m, sign):
    return x * _factor(x, m, sign)


def _color(x, m, sign):
    return _blend(x, _gray(x), _factor(x, m, sign))


def _contrast(x, m, sign):
    return _blend(x, _gray(x).mean(axis=(1, 2, 3), keepdims=True), _factor(x, m, sign))


def _smooth(x):
    """3x3 smoothing [1 1 1; 1 5 1; 1 1 1] / 13 on the interior, border pixels unchanged (as PIL)."""
    out = x.copy()
    h, w = x.shape[1:3]
    if h < 3 or w < 3:
        return out
    acc = 4 * x[:, 1:-1, 1:-1]                                                 # centre weight 5 = 4 + 1
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            acc = acc + x[:, 1 + dy: h - 1 + dy, 1 + dx: w - 1 + dx]
    out[:, 1:-1, 1:-1] = acc / x.dtype.type(13)
    return out


def _sharpness(x, m, sign):
    return _blend(x, _smooth(x), _factor(x, m, sign))


def _posterize(x, m, sign):
    drop = int(4 * m)                                        # bits removed: 0..4
    step = 2 ** drop
    levels = np.floor(np.round(x * 255) / step) * step       # keep the high bits of an 8-bit value
    return (levels / 255).astype(x.dtype)


def _solarize(x, m, sign):
    threshold = 1.0 - m
    return np.where(x > threshold, 1 - x, x)


def _autocontrast(x, m, sign):
    low = _per_image_channel(x, np.min)                                       # (k, 1, 1, C)
    high = _per_image_channel(x, np.max)
    span = high - low
    safe = np.where(span > 0, span, 1)
    return np.where(span > 0, (x - low) / safe, x)


def _equalize_image(x):
    """Histogram equalisation of one image (H, W, C), per channel on 256 levels."""
    q = np.clip(np.round(x * 255), 0, 255).astype(np.int64)                  # (H, W, C) levels
    out = np.empty_like(x)
    for c in range(x.shape[-1]):
        hist = np.bincount(q[..., c].ravel(), minlength=256)
        cdf = np.cumsum(hist)
        first = cdf[np.flatnonzero(hist)[0]]                                   # count of the lowest level
        if cdf[-1] == first:                                                   # one level only: unchanged
            out[..., c] = x[..., c]
            continue
        lut = (cdf - first) / (cdf[-1] - first)                                # (256,) in [0, 1]
        out[..., c] = np.clip(lut, 0, 1)[q[..., c]]
    return out


def _equalize(x, m, sign):
    # image by image: one bincount over all k C histograms (bins offset per image and channel) measured
    # slower, 146 against 82 us per 48 x 48 image, because of the gather through the stacked tables
    return np.stack([_equalize_image(image) for image in x])


def _affine_numpy(x, matrix, shift):
    """out(p) = in(matrix @ (p - centre) + centre + shift), bilinear, FILL outside. p = (x, y) pixels.

    The readable version, in NumPy; ``_affine`` runs the same arithmetic compiled (bit for bit:
    tests/data/test_augment.py), because these arrays of (H, W) temporaries per image were 10% of
    the main job's training epoch."""
    h, w, c = x.shape
    padded = np.full((h + 2, w + 2, c), FILL, dtype=x.dtype)                   # a ring of fill pixels
    padded[1:-1, 1:-1] = x
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")  # (H, W) each
    src_x = matrix[0][0] * xx + matrix[0][1] * yy + cx + shift[0] + 1          # +1: the padding
    src_y = matrix[1][0] * xx + matrix[1][1] * yy + cy + shift[1] + 1
    src_x = np.clip(src_x, 0, w + 1)
    src_y = np.clip(src_y, 0, h + 1)
    x0 = np.minimum(np.floor(src_x).astype(np.int64), w)
    y0 = np.minimum(np.floor(src_y).astype(np.int64), h)
    wx = (src_x - x0).astype(x.dtype)[..., None]                               # (H, W, 1)
    wy = (src_y - y0).astype(x.dtype)[..., None]
    top = padded[y0, x0] + (padded[y0, x0 + 1] - padded[y0, x0]) * wx          # (H, W, C)
    bottom = padded[y0 + 1, x0] + (padded[y0 + 1, x0 + 1] - padded[y0 + 1, x0]) * wx
    return top + (bottom - top) * wy


@njit(cache=True)
def _affine_kernel(x, m00, m01, m10, m11, shift_x, shift_y, out):
    """_affine_numpy's arithmetic one pixel at a time, in the same order and precision (float64
    coordinates, interpolation in x's dtype; no fastmath, so no fused multiply-adds)."""
    h, w, c = x.shape
    padded = np.full((h + 2, w + 2, c), FILL, dtype=x.dtype)                   # a ring of fill pixels
    padded[1:-1, 1:-1] = x
    cy, cx = (h - 1) / 2, (w - 1) / 2
    for i in range(h):
        yy = i - cy
        for j in range(w):
            xx = j - cx
            src_x = min(max(m00 * xx + m01 * yy + cx + shift_x + 1, 0.0), w + 1.0)
            src_y = min(max(m10 * xx + m11 * yy + cy + shift_y + 1, 0.0), h + 1.0)
            x0 = min(int(np.floor(src_x)), w)                                  # 0 <= x0 <= w
            y0 = min(int(np.floor(src_y)), h)
            wx = x.dtype.type(src_x - x0)
            wy = x.dtype.type(src_y - y0)
            for ch in range(c):
                top = padded[y0, x0, ch] + (padded[y0, x0 + 1, ch] - padded[y0, x0, ch]) * wx
                bottom = padded[y0 + 1, x0, ch] + (padded[y0 + 1, x0 + 1, ch] - padded[y0 + 1, x0, ch]) * wx
                out[i, j, ch] = top + (bottom - top) * wy


def _affine(x, matrix, shift):
    """out(p) = in(matrix @ (p - centre) + centre + shift), bilinear, FILL outside (``_affine_numpy``,
    compiled)."""
    out = np.empty_like(x)
    _affine_kernel(np.ascontiguousarray(x), float(matrix[0][0]), float(matrix[0][1]), float(matrix[1][0]),
                   float(matrix[1][1]), float(shift[0]), float(shift[1]), out)
    return out


@njit(cache=True)
def _affine_group_kernel(x, transforms, out):
    """_affine_kernel on each image of a group, on one core. x, out: (k, H, W, C); transforms (k, 6):
    m00, m01, m10, m11, shift_x, shift_y per image. Serial on purpose: the data pipeline starts no
    thread pool of its own, which would spin against the training step's (ours, or PyTorch's in
    ``bench train-vs-torch``, whose job runs this same augmentation)."""
    for i in range(x.shape[0]):
        t = transforms[i]
        _affine_kernel(x[i], t[0], t[1], t[2], t[3], t[4], t[5], out[i])


def _each_affine(x, transforms):
    """``_affine`` on every image of x (k, H, W, C), image i with transforms[i] = (matrix, shift),
    in one compiled call (a call per image cost more than the resampling of a 48 x 48 image)."""
    table = np.array([(m[0][0], m[0][1], m[1][0], m[1][1], shift[0], shift[1]) for m, shift in transforms],
                     dtype=np.float64).reshape(len(x), 6)                      # (k, 6)
    out = np.empty_like(x)
    _affine_group_kernel(np.ascontiguousarray(x), table, out)
    return out


def _rotate(x, m, sign):
    angles = [math.radians(s * 30.0 * m) for s in sign]
    return _each_affine(x, [(((math.cos(a), -math.sin(a)), (math.sin(a), math.cos(a))), (0.0, 0.0))
                            for a in angles])


def _shear_x(x, m, sign):
    return _each_affine(x, [(((1.0, s * 0.3 * m), (0.0, 1.0)), (0.0, 0.0)) for s in sign])


def _shear_y(x, m, sign):
    return _each_affine(x, [(((1.0, 0.0), (s * 0.3 * m, 1.0)), (0.0, 0.0)) for s in sign])


def _translate_x(x, m, sign):
    return _each_affine(x, [(((1.0, 0.0), (0.0, 1.0)), (s * 0.45 * m * x.shape[2], 0.0)) for s in sign])


def _translate_y(x, m, sign):
    return _each_affine(x, [(((1.0, 0.0), (0.0, 1.0)), (0.0, s * 0.45 * m * x.shape[1])) for s in sign])


RAND_AUGMENT_OPS = {
    "identity": _identity, "brightness": _brightness, "color": _color, "contrast": _contrast,
    "sharpness": _sharpness, "posterize": _posterize, "solarize": _solarize,
    "autocontrast": _autocontrast, "equalize": _equalize, "rotate": _rotate,
    "shear_x": _shear_x, "shear_y": _shear_y, "translate_x": _translate_x, "translate_y": _translate_y,
}


def _check_magnitude(magnitude, op: str) -> float:
    if not is_number(magnitude):
        raise TypeError(f"{op}: magnitude must be a number in [0, {MAX_MAGNITUDE:g}], got {describe(magnitude)}")
    if not 0.0 <= float(magnitude) <= MAX_MAGNITUDE:
        raise ValueError(f"{op}: magnitude must be in [0, {MAX_MAGNITUDE:g}], got {magnitude}")
    return float(magnitude)


def apply_op(image, name: str, magnitude: float, sign: float = 1.0) -> np.ndarray:
    """One RandAugment op on one image (H, W, C) in [0, 1], result clipped to [0, 1]."""
    if not isinstance(name, str) or name not in RAND_AUGMENT_OPS:
        raise ValueError(f"apply_op: unknown op {name!r}; choose from {sorted(RAND_AUGMENT_OPS)}")
    image = as_float_array("image", image, ndim=3, op="apply_op", layout="(H, W, C)")
    m = _check_magnitude(magnitude, "apply_op") / MAX_MAGNITUDE
    if not is_number(sign):
        raise TypeError(f"apply_op: sign must be a number (+1 or -1), got {describe(sign)}")
    out = RAND_AUGMENT_OPS[name](image[None], m, np.array([1.0 if sign >= 0 else -1.0]))[0]
    return np.clip(out, 0, 1).astype(image.dtype, copy=False)


def rand_augment(images, rng: np.random.Generator, num_layers: int = 2, magnitude: float = 9.0,
                 ops=None) -> np.ndarray:
    """RandAugment: ``num_layers`` random ops per image at ``magnitude`` (0..30): (N, H, W, C) -> same."""
    op = "rand_augment"
    images = _images(images, op)
    rng = _check_rng(rng, op)
    magnitude = _check_magnitude(magnitude, op)
    if isinstance(num_layers, bool) or not isinstance(num_layers, (int, np.integer)) or num_layers < 0:
        raise ValueError(f"{op}: num_layers must be an int >= 0, got {num_layers!r}")
    if isinstance(ops, str) or (ops is not None and not hasattr(ops, "__iter__")):
        raise TypeError(f"{op}: ops must be None or a list of op names, got {ops!r}")
    names = list(RAND_AUGMENT_OPS) if ops is None else list(ops)
    unknown = [name for name in names if not isinstance(name, str) or name not in RAND_AUGMENT_OPS]
    if unknown or not names:
        raise ValueError(f"{op}: unknown ops {unknown}; choose from {sorted(RAND_AUGMENT_OPS)}")
    # The draws, image by image (image i: its first op and sign, its second, ...), as if each image
    # were augmented alone; then each layer runs op by op on the group of images that drew it.
    n = images.shape[0]
    chosen = np.empty((n, num_layers), dtype=np.int64)                       # (N, layers) indices into names
    signs = np.empty((n, num_layers))                                         # (N, layers) +1 / -1
    for i in range(n):
        for layer in range(num_layers):
            chosen[i, layer] = rng.integers(len(names))
            signs[i, layer] = 1.0 if rng.random() < 0.5 else -1.0
    m = magnitude / MAX_MAGNITUDE
    out = images.copy()
    for layer in range(num_layers):
        for k in np.unique(chosen[:, layer]):
            group = np.flatnonzero(chosen[:, layer] == k)                    # the images that drew op k
            result = RAND_AUGMENT_OPS[names[k]](out[group], m, signs[group, layer])
            out[group] = np.clip(result, 0, 1)
    return out


# ----------------------------------------------------------------------------------------------------
# Mixup
# ----------------------------------------------------------------------------------------------------

def _labels(labels, n: int, num_classes: int, op: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or not (n == 0 or np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"{op}: labels must be ({n},) ints, got shape {labels.shape}, dtype {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{op}: labels must be in [0, {num_classes}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return labels


def one_hot(labels, num_classes: int, dtype=np.float32) -> np.ndarray:
    """(N,) ints -> (N, K) with a 1 at each label."""
    num_classes = check_int("num_classes", num_classes, op="one_hot")
    dtype = check_dtype("dtype", dtype, op="one_hot")
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"one_hot: labels must be 1-D (N,), got shape {labels.shape}")
    labels = _labels(labels, labels.shape[0], num_classes, "one_hot")
    out = np.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def mixup_params(n: int, alpha: float, rng: np.random.Generator):
    """lam ~ Beta(alpha, alpha) and a permutation (n,); alpha == 0: lam = 1, identity permutation."""
    n = check_int("n", n, 0, op="mixup_params")
    if not is_number(alpha):
        raise TypeError(f"mixup_params: alpha must be a number >= 0, got {describe(alpha)}")
    if not float(alpha) >= 0 or not math.isfinite(float(alpha)):
        raise ValueError(f"mixup_params: alpha must be >= 0, got {alpha}")
    if alpha == 0:
        return 1.0, np.arange(n)
    rng = _check_rng(rng, "mixup_params")
    return float(rng.beta(alpha, alpha)), rng.permutation(n)


def mixup_apply(images, labels, num_classes: int, lam: float, perm):
    """x~ = lam x + (1 - lam) x[perm]; targets lam onehot(y) + (1 - lam) onehot(y[perm]) (N, K)."""
    op = "mixup_apply"
    images = _images(images, op)
    num_classes = check_int("num_classes", num_classes, op=op)
    labels = _labels(labels, images.shape[0], num_classes, op)
    lam = _check_fraction("lam", lam, op)
    perm = np.asarray(perm)
    n = images.shape[0]
    if perm.shape != (n,) or not (n == 0 or np.issubdtype(perm.dtype, np.integer)) \
            or not np.array_equal(np.sort(perm), np.arange(n)):
        raise ValueError(f"{op}: perm must be a permutation of range({n}) (one index per image), "
                         f"got {describe(perm)}")
    targets = one_hot(labels, num_classes, images.dtype)                       # (N, K)
    if lam == 1.0:
        return images.copy(), targets
    mixed = lam * images + (1.0 - lam) * images[perm]                           # (N, H, W, C)
    return mixed, lam * targets + (1.0 - lam) * targets[perm]


def mixup(images, labels, num_classes: int, alpha: float, rng: np.random.Generator):
    """Mixup of a batch: returns mixed images (N, H, W, C) and soft targets (N, K) that sum to 1."""
    images = _images(images, "mixup")
    lam, perm = mixup_params(images.shape[0], alpha, rng)
    return mixup_apply(images, labels, num_classes, lam, perm)
