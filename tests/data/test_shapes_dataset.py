"""The built-in procedural dataset: determinism, any-resolution rendering, balance, geometry."""
import math

import numpy as np
import pytest

from tinyeffnet.data import CLASS_NAMES, ShapesDataset
from tinyeffnet.data.shapes import _coverage, _scene_parameters


def test_the_same_scene_at_32_and_64_px():
    # Without pixel noise the only differences are anti-aliasing along edges: the 64 px image
    # averaged over 2x2 blocks must match the 32 px rendering closely. 0.01 is an order of magnitude
    # below the difference between two different samples (> 0.1, checked too).
    ds = ShapesDataset(60, 64, seed=2, noise=0.0)
    big, labels = ds.arrays(64)
    small, small_labels = ds.arrays(32)
    np.testing.assert_array_equal(labels, small_labels)
    pooled = big.reshape(60, 32, 2, 32, 2, 3).mean(axis=(2, 4))
    per_sample = np.abs(pooled - small).mean(axis=(1, 2, 3))
    assert per_sample.max() < 0.01, per_sample
    assert np.abs(small[1:] - small[:-1]).mean() > 0.1
    # The dataset's image_size is only a default: a dataset built at 32 renders identical images.
    np.testing.assert_array_equal(ShapesDataset(60, 32, seed=2, noise=0.0).arrays()[0], small)


def test_scene_parameters_are_resolution_free_and_noise_stays_small():
    ds = ShapesDataset(10, 48, seed=3)
    scene = ds.scene(4)
    assert scene["label"] == ds.labels[4] and scene["class_name"] == CLASS_NAMES[ds.labels[4]]
    assert 0.3 <= min(scene["center"]) and max(scene["center"]) <= 0.7
    noisy, _ = ds.batch([4], 48)
    clean, _ = ShapesDataset(10, 48, seed=3, noise=0.0).batch([4], 48)
    assert 0 < np.abs(noisy - clean).max() <= 0.05 + 1e-6          # noise amplitude 0.05 (default)


def test_images_and_labels_types_ranges_and_balance():
    ds = ShapesDataset(200, 16, seed=0)
    images, labels = ds.arrays()
    assert images.shape == (200, 16, 16, 3) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert labels.dtype == np.int64 and labels.min() == 0 and labels.max() == 9
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [20] * 10)
    for start in range(0, 200, 10):                       # every block of ten has each class once
        assert sorted(labels[start: start + 10]) == list(range(10))
    image, label = ds[3]
    np.testing.assert_array_equal(image, images[3])
    assert label == labels[3]


def test_foreground_is_visible_in_every_class():
    # Colours differ by >= 0.3 per channel, so at least 2% of the pixels must be far from the
    # background colour in every image (the smallest shape covers about 4% of the image).
    ds = ShapesDataset(100, 32, seed=4, noise=0.0)
    images, labels = ds.arrays()
    for i in range(100):
        bg = np.array(ds.scene(i)["bg"], dtype=np.float32)
        far = np.abs(images[i] - bg).max(axis=-1) > 0.2            # the background wave is <= 0.12
        assert far.mean() > 0.02, (i, CLASS_NAMES[labels[i]])


def _star_area(r):
    # rho(phi) = r (0.45 + 0.55 T), T uniform on [0, 1] over each point: area = pi E[rho^2]
    return math.pi * r * r * (0.45 ** 2 + 0.45 * 0.55 + 0.55 ** 2 / 3)


EXPECTED_AREA = {   # area of each shape from its definition (module docstring), r = radius, a = aux
    0: lambda r, a: math.pi * r * r,
    1: lambda r, a: (1.7 * r) ** 2,
    2: lambda r, a: 3 * math.sqrt(3) * (r / 2) ** 2,                   # equilateral, inradius r/2
    3: lambda r, a: math.pi * 4 * 0.75 * r * (0.12 + 0.08 * a) * r,     # annulus 2 pi R * width
    4: lambda r, a: 2 * (2 * r) * (2 * w) - (2 * w) ** 2 if (w := (0.22 + 0.1 * a) * r) else 0,
    5: lambda r, a: _star_area(r),
}


@pytest.mark.parametrize("label", range(6), ids=CLASS_NAMES[:6])
def test_rendered_shape_area_matches_its_definition(label):
    # Anti-aliased coverage summed over pixels approximates the area; at 256 px the edge error of a
    # shape with radius >= 0.18 is well under 2%.
    ds = ShapesDataset(400, seed=5)
    params = _scene_parameters(ds._table, ds.labels)
    margin = np.minimum(params["center"], 1 - params["center"]).min(axis=1)
    rows = np.flatnonzero((ds.labels == label) & (margin > 1.25 * params["size"]))[:3]
    assert rows.size == 3
    sub = {k: v[rows] for k, v in params.items()}
    coverage = _coverage(sub, ds.labels[rows], 256)
    for k, row in enumerate(rows):
        measured = coverage[k].sum() / 256 ** 2
        expected = EXPECTED_AREA[label](float(params["size"][row]), float(params["aux"][row]))
        assert measured == pytest.approx(expected, rel=0.02)


def test_horizontal_and_vertical_stripes_run_the_right_way():
    # Inside the texture square (a window of half-side h/2 about its centre stays inside it at any
    # rotation up to 15 degrees) horizontal stripes change between vertically adjacent pixels, and
    # hardly between horizontal neighbours: ratio about cot(15 deg) = 3.7 at the worst angle; the
    # background does not show there, hence a margin of 2.
    size = 128
    ds = ShapesDataset(100, size, seed=6, noise=0.0)
    images, labels = ds.arrays()
    stripes = np.flatnonzero((labels == 6) | (labels == 7))
    assert stripes.size == 20
    for i in stripes:
        scene = ds.scene(i)
        cx, cy = (int(round(c * size)) for c in scene["center"])
        half = int(scene["size"] * size / 2)
        window = images[i, cy - half: cy + half, cx - half: cx + half]
        vertical = np.abs(np.diff(window, axis=0)).mean()
        horizontal = np.abs(np.diff(window, axis=1)).mean()
        if labels[i] == 6:
            assert vertical > 2 * horizontal, (i, vertical, horizontal)
        else:
            assert horizontal > 2 * vertical, (i, vertical, horizontal)


def test_bad_arguments_raise_named_errors():
    with pytest.raises(ValueError, match="split must be one of"):
        ShapesDataset(10, split="training")
    with pytest.raises(ValueError, match="num_samples must be >= 1, got 0"):
        ShapesDataset(0)
    with pytest.raises(TypeError, match="image_size must be an int, got float"):
        ShapesDataset(10, image_size=32.0)
    with pytest.raises(ValueError, match="noise must be in"):
        ShapesDataset(10, noise=-0.1)
    # the batch() checks are the shared base's: tests/data/test_procedural.py
