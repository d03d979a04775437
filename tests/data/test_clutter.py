"""The harder built-in dataset: determinism, any-resolution rendering, balance, geometry, clutter,
bad input, and the registry of built-in datasets."""
import math

import numpy as np
import pytest

from tinyeffnet.data import CLUTTER_CLASS_NAMES, DATASETS, ClutterDataset, ShapesDataset, make_dataset
from tinyeffnet.data.clutter import NUM_SHAPES, _coverage


def test_the_same_scenes_at_24_48_and_96_px():
    # Without pixel noise only the anti-aliasing along edges differs: a 2x larger image averaged over
    # 2x2 blocks must match the smaller rendering. The bound, 0.02, is a tenth of the difference
    # between two different scenes (> 0.1, checked too); 48 -> 24 is the loosest pair, because the
    # fine stripes are 2 px wide at 24 px.
    ds = ClutterDataset(64, 48, seed=2, noise=0.0)
    images = {size: ds.arrays(size) for size in (24, 48, 96)}
    for size in (48, 96):
        np.testing.assert_array_equal(images[size][1], images[24][1])
        half = size // 2
        pooled = images[size][0].reshape(64, half, 2, half, 2, 3).mean(axis=(2, 4))
        per_sample = np.abs(pooled - images[half][0]).mean(axis=(1, 2, 3))
        assert per_sample.max() < 0.02, (size, per_sample.max())
    small = images[24][0]
    assert np.abs(small[1:] - small[:-1]).mean(axis=(1, 2, 3)).min() > 0.1
    # The dataset's image_size is only a default: a dataset built at 24 renders identical images.
    np.testing.assert_array_equal(ClutterDataset(64, 24, seed=2, noise=0.0).arrays()[0], small)


def test_images_and_labels_types_ranges_and_balance():
    ds = ClutterDataset(320, 16, seed=0)
    images, labels = ds.arrays()
    assert images.shape == (320, 16, 16, 3) and images.dtype == np.float32
    assert labels.dtype == np.int64 and len(ds) == 320 and ds.num_classes == 16
    assert images.min() >= 0 and images.max() <= 1
    assert np.bincount(labels, minlength=16).tolist() == [20] * 16         # a permutation per block of 16
    for block in labels.reshape(-1, 16):
        assert sorted(block.tolist()) == list(range(16))
    assert len(CLUTTER_CLASS_NAMES) == 16 == len(set(CLUTTER_CLASS_NAMES))


def test_every_image_has_one_to_three_distractors_of_other_shape_classes():
    ds = ClutterDataset(400, 32, seed=3)
    counts = []
    for i in range(len(ds)):
        scene = ds.scene(i)
        counts.append(len(scene["distractors"]))
        for d in scene["distractors"]:
            assert 0 <= d["label"] < NUM_SHAPES and d["label"] != scene["label"]
            assert 0.05 <= d["size"] <= 0.1 < 0.14 <= scene["size"]        # always smaller than the object
    assert set(counts) == {1, 2, 3}
    assert {d["front"] for i in range(20) for d in ds.scene(i)["distractors"]} == {True, False}
    plain = ClutterDataset(40, 32, seed=3, distractors=0)
    assert all(plain.scene(i)["distractors"] == [] for i in range(40))
    # Same scene numbers, without the distractors: the images differ, the labels do not.
    np.testing.assert_array_equal(plain.labels, ds.labels[:40])
    assert np.abs(plain.arrays()[0] - ds.batch(np.arange(40))[0]).mean() > 0.005


def _area(label: int, size: float = 0.3, period: float = 0.1, image: int = 512) -> float:
    """Covered fraction of the image for one centred, unrotated object."""
    f32 = np.float32
    params = {"center": np.array([[0.5, 0.5]], f32), "rotation": np.zeros(1, f32), "size": np.array([size], f32),
              "period": np.array([period], f32), "offset": np.zeros((1, 2), f32)}
    return float(_coverage(params, np.array([label]), image).mean())


@pytest.mark.parametrize("name, area", [
    ("circle", math.pi * 0.3 ** 2),
    ("hexagon", 1.5 * math.sqrt(3) * 0.3 ** 2),                           # circumradius r
    ("square", (1.6 * 0.3) ** 2),                                          # half-side 0.8 r
    ("triangle", math.sqrt(3) / 4 * (math.sqrt(3) * 0.3) ** 2),            # apothem r / 2: side sqrt(3) r
    ("ring", math.pi * ((0.92 * 0.3) ** 2 - (0.52 * 0.3) ** 2)),
    ("broken_ring", math.pi * ((0.92 * 0.3) ** 2 - (0.52 * 0.3) ** 2) * (1 - 1.2 / (2 * math.pi))),
    ("cross", 2 * (2 * 0.3) * (0.54 * 0.3) - (0.54 * 0.3) ** 2),
    ("hstripes_fine", 0.5 * 0.6 ** 2),                                     # half of the 2h x 2h patch
    ("vstripes_coarse", 0.5 * 0.6 ** 2),
    ("checker", 0.5 * 0.6 ** 2),
    ("dots", math.pi * 0.32 ** 2 * 0.6 ** 2),                              # a disc of 0.32 P per P x P cell
    ("grid", (1 - 0.72 ** 2) * 0.6 ** 2),                                  # lines 0.28 P wide both ways
])
def test_each_class_covers_the_area_its_formula_says(name, area):
    # Periods 0.1 and patch half-side 0.3: the patch holds exactly 6 x 6 periods, so the textures'
    # covered fractions are exact; the shapes' areas come from elementary geometry.
    assert _area(CLUTTER_CLASS_NAMES.index(name)) == pytest.approx(area, rel=0.02)


def test_confusable_pairs_differ_only_a_little():
    circle, hexagon = _area(0), _area(1)
    assert 0.1 < 1 - hexagon / circle < 0.2                               # 17% of the area: the corners
    assert _area(5) < _area(4) and _area(7) != _area(8)


def test_the_registry_builds_every_built_in_dataset_by_name():
    assert DATASETS == {"shapes": ShapesDataset, "clutter": ClutterDataset}
    ds = make_dataset("clutter", 20, image_size=24, seed=4, split="val")
    assert isinstance(ds, ClutterDataset) and (len(ds), ds.image_size, ds.seed, ds.split) == (20, 24, 4, "val")
    assert isinstance(make_dataset("shapes", 10), ShapesDataset)
    with pytest.raises(ValueError, match="dataset must be one of clutter, shapes, got 'cifar'"):
        make_dataset("cifar", 10)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(num_samples=0), ValueError, "num_samples must be >= 1, got 0"),
    (dict(num_samples=2.5), TypeError, "num_samples must be an int, got float"),
    (dict(image_size=True), TypeError, "image_size must be an int, got bool"),
    (dict(image_size=3), ValueError, "image_size must be >= 4, got 3"),
    (dict(seed=-1), ValueError, "seed must be >= 0, got -1"),
    (dict(split="dev"), ValueError, "split must be one of"),
    (dict(noise=0.6), ValueError, r"noise must be in \[0, 0.5\], got 0.6"),
    (dict(noise="low"), TypeError, "noise must be a number"),
    (dict(distractors=4), ValueError, "distractors must be <= 3, got 4"),
])
def test_bad_arguments_name_the_argument(kwargs, error, message):
    with pytest.raises(error, match=f"ClutterDataset: {message}"):
        ClutterDataset(**{"num_samples": 10, **kwargs})
