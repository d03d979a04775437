"""Augmentation: resampling against torch, crops, flips, RandAugment ops, mixup targets."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyeffnet.data import (
    RAND_AUGMENT_OPS, apply_op, center_crop_resize, horizontal_flip, mixup, mixup_apply, mixup_params,
    one_hot, rand_augment, random_resized_crop, resize,
)
from tinyeffnet.testing import compare


def batch(n=3, h=12, w=12, c=3, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).random((n, h, w, c)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("h, w, size", [(12, 12, 6), (12, 12, 17), (9, 14, 5), (7, 5, 11)])
def test_resize_matches_torch_bilinear_half_pixel(dtype, h, w, size):
    # torch's interpolate(bilinear, align_corners=False, antialias=False) uses the same half-pixel
    # mapping; only the operation order differs (float32: a few ulps of values in [0, 1]).
    x = batch(2, h, w, 3, dtype)
    ours = resize(x, size)
    theirs = F.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=(size, size), mode="bilinear",
                           align_corners=False, antialias=False).permute(0, 2, 3, 1).numpy()
    tol = dict(atol=1e-12, rtol=1e-12) if dtype == np.float64 else dict(atol=1e-6, rtol=1e-6)
    row = compare("resize", ours, theirs, **tol)
    assert row.ok, row.detail


def test_center_crop_resize_takes_the_central_square():
    image = batch(1, 6, 10, 3)[0]
    np.testing.assert_allclose(center_crop_resize(image, 6), image[:, 2:8], atol=1e-7)
    tall = batch(1, 9, 5, 3, seed=1)[0]
    np.testing.assert_allclose(center_crop_resize(tall, 5), tall[2:7], atol=1e-7)


def test_random_resized_crop_shapes_ranges_and_determinism():
    x = batch(4, 20, 16, 3)
    out = random_resized_crop(x, 8, np.random.default_rng(3), scale=(0.2, 1.0))
    assert out.shape == (4, 8, 8, 3) and out.dtype == np.float32
    assert out.min() >= x.min() and out.max() <= x.max()       # bilinear: convex combinations
    again = random_resized_crop(x, 8, np.random.default_rng(3), scale=(0.2, 1.0))
    np.testing.assert_array_equal(out, again)
    other = random_resized_crop(x, 8, np.random.default_rng(4), scale=(0.2, 1.0))
    assert not np.array_equal(out, other)


def test_random_resized_crop_full_box_is_a_plain_resize():
    x = batch(2, 10, 10, 3, np.float64)
    out = random_resized_crop(x, 7, np.random.default_rng(0), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_allclose(out, resize(x, 7), atol=1e-14)


def test_horizontal_flip():
    x = batch(6, 5, 7, 3)
    np.testing.assert_array_equal(horizontal_flip(x, np.random.default_rng(0), p=1.0), x[:, :, ::-1])
    np.testing.assert_array_equal(horizontal_flip(x, np.random.default_rng(0), p=0.0), x)
    mixed = horizontal_flip(x, np.random.default_rng(1), p=0.5)
    flipped = [np.array_equal(m, xi[:, ::-1]) for m, xi in zip(mixed, x)]
    kept = [np.array_equal(m, xi) for m, xi in zip(mixed, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


@pytest.mark.parametrize("name", sorted(RAND_AUGMENT_OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_op_keeps_shape_dtype_and_range(name, dtype):
    x = batch(1, 9, 11, 3, dtype)[0]
    x[0, 0] = [0.0, 1.0, 0.5]                                   # the extremes present
    for magnitude in (0, 15, 30):
        for sign in (1, -1):
            out = apply_op(x, name, magnitude, sign)
            assert out.shape == x.shape and out.dtype == dtype
            assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", ["identity", "brightness", "color", "contrast", "sharpness", "solarize",
                                  "rotate", "shear_x", "shear_y", "translate_x", "translate_y"])
def test_magnitude_zero_is_the_identity(name):
    x = batch(1, 8, 8, 3, np.float64)[0]
    np.testing.assert_allclose(apply_op(x, name, 0.0), x, atol=1e-12)


def test_pixel_ops_follow_their_formulas():
    x = batch(1, 6, 6, 3, np.float64)[0] * 0.9
    np.testing.assert_allclose(apply_op(x, "brightness", 30, -1), x * 0.1, atol=1e-12)
    np.testing.assert_allclose(apply_op(x, "brightness", 10, +1), np.clip(x * 1.3, 0, 1), atol=1e-12)
    gray = x @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(apply_op(x, "color", 30, -1), gray[..., None] + 0.1 * (x - gray[..., None]),
                               atol=1e-12)
    np.testing.assert_allclose(apply_op(x, "contrast", 30, -1), gray.mean() + 0.1 * (x - gray.mean()),
                               atol=1e-12)
    np.testing.assert_allclose(apply_op(x, "solarize", 15), np.where(x > 0.5, 1 - x, x), atol=1e-12)
    poster = apply_op(x, "posterize", 30)                       # 4 bits kept: multiples of 16 / 255
    np.testing.assert_allclose(poster * 255 / 16, np.round(poster * 255 / 16), atol=1e-9)
    assert np.all(poster <= x + 1e-12) and np.all(x - poster < 16.5 / 255)
    stretched = apply_op(x, "autocontrast", 0)
    np.testing.assert_allclose(stretched.min(axis=(0, 1)), 0, atol=1e-12)
    np.testing.assert_allclose(stretched.max(axis=(0, 1)), 1, atol=1e-12)
    equalized = apply_op(x, "equalize", 0)
    np.testing.assert_allclose(equalized.max(axis=(0, 1)), 1, atol=1e-12)
    order = np.argsort(x[..., 0].ravel())                      # equalisation keeps the pixel order
    assert np.all(np.diff(equalized[..., 0].ravel()[order]) >= 0)


def test_translate_moves_content_and_fills_gray():
    x = batch(1, 6, 20, 3, np.float64)[0]
    out = apply_op(x, "translate_x", 30, +1)                    # 0.45 * 20 = 9 pixels exactly
    np.testing.assert_allclose(out[:, :11], x[:, 9:], atol=1e-12)
    np.testing.assert_allclose(out[:, 12:], 0.5, atol=1e-12)


def test_rotate_leaves_a_centred_round_blob_nearly_unchanged():
    # A radially symmetric image is invariant to rotation about its centre, up to the bilinear
    # interpolation error h^2/8 (|f_xx| + |f_yy|) <= 2 / (8 sigma^2) = 0.0156 for a sigma = 4 px
    # Gaussian (h = 1 px). Rotating about a centre off by 1 px would err by ~0.15 (the blob's
    # slope). The corners that rotate in from outside the frame get the gray fill.
    yy, xx = np.mgrid[0:31, 0:31] - 15.0
    blob = np.exp(-(xx ** 2 + yy ** 2) / (2 * 4.0 ** 2))[..., None].repeat(3, axis=-1)
    rotated = apply_op(blob, "rotate", 30, +1)
    inside = xx ** 2 + yy ** 2 < 14 ** 2
    assert np.abs(rotated - blob)[inside].max() < 0.0157
    np.testing.assert_allclose(rotated[0, 0], 0.5, atol=1e-12)
    sheared = apply_op(blob, "shear_x", 30, +1)
    assert np.abs(sheared - blob).max() > 0.05                   # a shear is not a rotation


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("h, w", [(12, 12), (7, 13), (1, 5), (48, 48)])
def test_the_compiled_affine_resampler_gives_the_numpy_versions_bits(dtype, h, w):
    from tinyeffnet.data import augment
    rng = np.random.default_rng(h * 100 + w)
    x = rng.random((h, w, 3)).astype(dtype)
    for _ in range(20):                          # rotations, shears, shifts out of the frame, big scales
        angle = rng.uniform(-3.2, 3.2)
        matrix = ((np.cos(angle) * rng.uniform(0.5, 2), -np.sin(angle) + rng.uniform(-0.5, 0.5)),
                  (np.sin(angle), np.cos(angle) * rng.uniform(0.5, 2)))
        shift = (rng.uniform(-1.5, 1.5) * w, rng.uniform(-1.5, 1.5) * h)
        fast, readable = augment._affine(x, matrix, shift), augment._affine_numpy(x, matrix, shift)
        assert fast.dtype == readable.dtype == dtype
        np.testing.assert_array_equal(fast, readable)
    for name in ("rotate", "shear_x", "shear_y", "translate_x", "translate_y"):   # the ops use it
        assert "_each_affine" in RAND_AUGMENT_OPS[name].__code__.co_names
    assert "_affine_group_kernel" in augment._each_affine.__code__.co_names
    group = rng.random((5, h, w, 3)).astype(dtype)             # the compiled call for a group of images
    transforms = [(((np.cos(a), -np.sin(a)), (np.sin(a), np.cos(a))), (a * w, -a * h)) for a in rng.uniform(-1, 1, 5)]
    np.testing.assert_array_equal(augment._each_affine(group, transforms),
                                  np.stack([augment._affine_numpy(g, *t) for g, t in zip(group, transforms)]))


def test_rand_augment_batch_shapes_ranges_and_determinism():
    x = batch(5, 10, 10, 3)
    out = rand_augment(x, np.random.default_rng(0), num_layers=3, magnitude=20)
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(out, rand_augment(x, np.random.default_rng(0), num_layers=3, magnitude=20))
    np.testing.assert_array_equal(rand_augment(x, np.random.default_rng(0), num_layers=0), x)
    only = rand_augment(x, np.random.default_rng(1), num_layers=2, magnitude=30, ops=["solarize"])
    np.testing.assert_allclose(only, x, atol=1e-6)             # solarize at threshold 0, twice: 1-(1-x)


def test_mixup_targets_are_the_lam_combination_of_one_hots():
    x = batch(6, 4, 4, 3)
    labels = np.array([0, 1, 2, 3, 4, 0])
    mixed, targets = mixup(x, labels, 5, alpha=0.4, rng=np.random.default_rng(11))
    lam, perm = mixup_params(6, 0.4, np.random.default_rng(11))      # the same draws
    assert 0 <= lam <= 1 and sorted(perm) == list(range(6))
    eye = np.eye(5, dtype=np.float32)
    np.testing.assert_allclose(targets, lam * eye[labels] + (1 - lam) * eye[labels[perm]], atol=1e-7)
    np.testing.assert_allclose(targets.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(mixed, lam * x + (1 - lam) * x[perm], atol=1e-7)
    assert mixed.dtype == targets.dtype == np.float32
    assert mixed.min() >= 0 and mixed.max() <= 1


def test_mixup_alpha_zero_is_off():
    x = batch(4, 3, 3, 3)
    labels = np.array([2, 0, 1, 2])
    mixed, targets = mixup(x, labels, 3, alpha=0.0, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(mixed, x)
    np.testing.assert_array_equal(targets, one_hot(labels, 3))
    mixed, targets = mixup_apply(x, labels, 3, 0.25, np.array([1, 2, 3, 0]))
    np.testing.assert_allclose(targets[0], [0.75, 0, 0.25], atol=1e-7)   # 0.25 onehot(2) + 0.75 onehot(0)


def test_bad_inputs_raise_named_errors():
    x = batch(2, 4, 4, 3)
    with pytest.raises(TypeError, match="images"):
        resize(x.astype(np.int32), 3)
    with pytest.raises(ValueError, match="images"):
        rand_augment(x[0], np.random.default_rng(0))
    with pytest.raises(ValueError, match="magnitude must be in \\[0, 30\\], got 31"):
        rand_augment(x, np.random.default_rng(0), magnitude=31)
    with pytest.raises(ValueError, match="unknown op 'blur'"):
        apply_op(x[0], "blur", 5)
    with pytest.raises(ValueError, match="scale must be"):
        random_resized_crop(x, 3, np.random.default_rng(0), scale=(0.9, 0.1))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got values in \[0, 3\]"):
        mixup(x, np.array([0, 3]), 3, 0.2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        mixup(x, np.array([0, 1]), 3, -1.0, np.random.default_rng(0))


@settings(max_examples=15, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), size=st.integers(1, 9), seed=st.integers(0, 2 ** 16))
def test_property_resize_matches_torch_for_any_sizes(h, w, size, seed):
    x = batch(1, h, w, 2, np.float64, seed)
    ours = resize(x, size)
    theirs = F.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=(size, size), mode="bilinear",
                           align_corners=False, antialias=False).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(h=st.integers(3, 10), w=st.integers(3, 10), magnitude=st.floats(0, 30), layers=st.integers(0, 4),
       seed=st.integers(0, 2 ** 16))
def test_property_rand_augment_and_crop_stay_in_range(h, w, magnitude, layers, seed):
    rng = np.random.default_rng(seed)
    x = batch(2, h, w, 3, np.float32, seed)
    out = rand_augment(x, rng, num_layers=layers, magnitude=magnitude)
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    crop = random_resized_crop(out, 5, rng)
    assert crop.shape == (2, 5, 5, 3) and crop.min() >= 0 and crop.max() <= 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rand_augment_runs_each_image_through_its_own_draws_as_apply_op_would(dtype):
    """rand_augment groups the images that drew the same op at a layer and runs the op once per
    group; the result is each image augmented alone with the same draws, in the same order."""
    x = batch(24, 12, 10, 3, dtype)
    names = list(RAND_AUGMENT_OPS)
    out = rand_augment(x, np.random.default_rng(3), num_layers=2, magnitude=17)
    rng, expected = np.random.default_rng(3), x.copy()
    for i in range(len(x)):                                     # the draws, image by image
        for _ in range(2):
            name = names[int(rng.integers(len(names)))]
            sign = 1.0 if rng.random() < 0.5 else -1.0
            expected[i] = apply_op(expected[i], name, 17, sign)
    np.testing.assert_allclose(out, expected, rtol=0, atol=4 * np.finfo(dtype).eps)
    assert out.dtype == dtype
