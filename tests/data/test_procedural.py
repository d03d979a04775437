"""What every built-in procedural dataset promises (data/procedural.py, their shared base):
the same seed gives the same arrays, another seed or split another dataset, and sample i depends
only on (seed, split, i), not on how many samples there are or which batch asks for it."""
import numpy as np
import pytest

from tinyeffnet.data import ClutterDataset, ShapesDataset

DATASETS = [pytest.param(ShapesDataset, 40, id="shapes"), pytest.param(ClutterDataset, 48, id="clutter")]


@pytest.mark.parametrize("dataset, num_samples", DATASETS)
def test_same_seed_gives_identical_arrays_and_other_seeds_or_splits_differ(dataset, num_samples):
    a_images, a_labels = dataset(num_samples, 32, seed=7).arrays()
    b_images, b_labels = dataset(num_samples, 32, seed=7).arrays()
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_labels, b_labels)
    c_images, c_labels = dataset(num_samples, 32, seed=8).arrays()
    assert np.abs(a_images - c_images).mean() > 0.1
    assert not np.array_equal(a_labels, c_labels)
    d_images, _ = dataset(num_samples, 32, seed=7, split="val").arrays()
    assert np.abs(a_images - d_images).mean() > 0.1


@pytest.mark.parametrize("dataset, num_samples", DATASETS)
def test_sample_i_does_not_depend_on_num_samples_or_batch_composition(dataset, num_samples):
    small = dataset(23, 24, seed=1)
    large = dataset(57, 24, seed=1)
    small.CACHE_BYTES = large.CACHE_BYTES = 0      # every batch drawn afresh: what the render cache relies on
    np.testing.assert_array_equal(small.arrays()[0], large.batch(np.arange(23))[0])
    np.testing.assert_array_equal(small.labels, large.labels[:23])
    alone, _ = large.batch([5])
    together, _ = large.batch([40, 5, 3])
    np.testing.assert_array_equal(alone[0], together[1])


@pytest.mark.parametrize("dataset, num_samples", DATASETS)
def test_bad_indices_and_sizes_in_batch(dataset, num_samples):
    ds = dataset(10, 16)
    with pytest.raises(IndexError, match="index 10 out of range for a dataset of 10 samples"):
        ds.batch([0, 10])
    with pytest.raises(TypeError, match="indices must be a 1-D sequence of ints"):
        ds.batch([0.5])
    with pytest.raises(ValueError, match="image_size must be >= 4, got 2"):
        ds.batch([0], image_size=2)


@pytest.mark.parametrize("dataset, num_samples", DATASETS)
def test_the_render_cache_gives_the_pixels_a_fresh_render_gives(dataset, num_samples):
    cached, fresh = dataset(num_samples, 24, seed=3), dataset(num_samples, 24, seed=3)
    fresh.CACHE_BYTES = 0
    for indices, size in [([4, 1, 4], 24), ([1, 2, 3], 24), ([0, 1], 20), (list(range(num_samples)), 20),
                          ([7, 1], 24)]:                  # repeats, a second size replacing the first, back
        images, labels = cached.batch(indices, size)
        expected, expected_labels = fresh.batch(indices, size)
        np.testing.assert_array_equal(images, expected)
        np.testing.assert_array_equal(labels, expected_labels)
    assert fresh._cache is None and cached._cache[0] == 24
    assert cached._cache[2].sum() == 2                    # only what was asked for at 24 px since the switch
    images, _ = cached.batch([7], 24)
    images[...] = -1.0                                    # a batch is a copy: writing it changes no later batch
    np.testing.assert_array_equal(cached.batch([7], 24)[0], fresh.batch([7], 24)[0])


def test_a_dataset_too_big_for_the_cache_renders_every_batch():
    ds = ShapesDataset(40, 32)
    ds.CACHE_BYTES = 40 * 32 * 32 * 3 * 4 - 1            # one byte short of the whole set at 32 px
    ds.batch([0, 1], 32)
    assert ds._cache is None
    ds.batch([0, 1], 31)                                  # the whole set at 31 px fits
    assert ds._cache[0] == 31


def test_the_compiled_background_and_paint_give_the_bits_numpy_broadcasting_gives():
    """fill_background and paint are the readable broadcasting formulas run as one loop: the same
    float32 operations in the same order, so the same bits (at every size the datasets draw)."""
    from tinyeffnet.data.procedural import fill_background, paint

    rng = np.random.default_rng(3)
    for n, size in [(1, 4), (5, 17), (9, 48)]:
        bg = rng.random((n, 3), dtype=np.float32)
        wave = (rng.standard_normal((n, size, size)) * 0.1).astype(np.float32)
        out = np.empty((n, size, size, 3), dtype=np.float32)
        fill_background(bg, wave, out)
        expected = np.empty_like(out)
        np.add(bg[:, None, None, :], wave[..., None], out=expected)                  # (N, S, S, 3)
        np.testing.assert_array_equal(out, expected)

        a = rng.random((n, size, size), dtype=np.float32)                           # every image painted
        fg = rng.random((n, 3), dtype=np.float32)
        paint(out, a, fg)
        expected += (fg[:, None, None, :] - expected) * a[..., None]
        np.testing.assert_array_equal(out, expected)

        rows = np.flatnonzero(rng.random(n) < 0.5)                                  # some images painted
        a, fg = a[: rows.size], fg[: rows.size]
        paint(out, a, fg, rows)
        part = expected[rows]
        part += (fg[:, None, None, :] - part) * a[..., None]
        expected[rows] = part
        np.testing.assert_array_equal(out, expected)


def test_paint_and_fill_background_refuse_arrays_that_do_not_match_the_images():
    from tinyeffnet.data.procedural import fill_background, paint

    out = np.zeros((4, 8, 8, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"paint: a must be \(2, 8, 8\) and rgb \(2, 3\)"):
        paint(out, np.zeros((4, 8, 8), np.float32), np.zeros((4, 3), np.float32), rows=[0, 2])
    with pytest.raises(ValueError, match=r"paint: a must be \(4, 8, 8\)"):
        paint(out, np.zeros((4, 8, 7), np.float32), np.zeros((4, 3), np.float32))
    with pytest.raises(IndexError, match=r"paint: rows must be in \[0, 4\), got values in \[1, 4\]"):
        paint(out, np.zeros((2, 8, 8), np.float32), np.zeros((2, 3), np.float32), rows=[1, 4])
    with pytest.raises(ValueError, match=r"fill_background: bg must be \(4, 3\) and wave \(4, 8, 8\)"):
        fill_background(np.zeros((4, 3), np.float32), np.zeros((4, 8, 9), np.float32), out)
