"""What every procedural dataset here shares: scenes drawn from a uniform table, rendered at any size.

A subclass describes its scenes: ``_draw_scenes`` (the table U and the labels, row i depending only
on (seed, split, i)), ``_render`` (draw rows into an (N, S, S, 3) float32 buffer) and ``scene`` (the
numbers of one sample). This class gives the common API and its checks:

    len(ds), ds[i]                      one sample (image (S, S, 3), label)
    ds.batch(indices, image_size)       images (N, S, S, 3) float32 in [0, 1], labels (N,) int64
    ds.arrays(image_size)               the whole dataset
    pixel noise                         uniform in [-noise, noise], one generator per (seed, split,
                                        sample, size, NOISE_STREAM): deterministic, per resolution
    the render cache                    every image rendered at a size is kept, for one size at a
                                        time, while the whole dataset at that size fits in
                                        CACHE_BYTES (512 MiB); a later batch copies it from there

and the geometry both renderers use: pixel centres in the unit square and the rotated local frame.

Why the cache: progressive learning trains several epochs at each size, and drawing the same scene
again at the same size gives the same pixels (noise included), so each image needs drawing once per
size. The main job's 8,000 training images at 48 px take 221 MB; rendering them was about 12% of a
training epoch (0.7-1.1 s of ~9 s, 2-core Xeon), and a stage of three epochs now renders once.
The validation set (one size, every epoch) renders once per run.

Why the two small compiled loops (``fill_background``, ``paint``): both write an (N, S, S, 3) image
from per-pixel (N, S, S) and per-image (N, 3) numbers. Written as NumPy broadcasting, the innermost
loop NumPy runs is the last axis, three channels long, and the lerp makes two image-sized
temporaries. One pass over the pixels with the same float32 operations in the same order gives the
same bits: for 8,000 images at 43 px the background took 138 ms, now 39; the lerp 221 ms, now 72; the
whole render 0.78 s, now 0.61 (2-core Xeon, a size's second render; the first also pays for touching
the cache's fresh memory). They run on one core: the data pipeline starts no thread pool (see
``augment._affine_group_kernel``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

SPLITS = {"train": 0, "val": 1, "test": 2}


def check_count(where: str, name: str, value, minimum: int) -> int:
    """An int >= minimum (bools and floats refused), named in the message."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value}")
    return int(value)


def check_split(where: str, split) -> str:
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"{where}: split must be one of {sorted(SPLITS)}, got {split!r}")
    return split


def pixel_centres(size: int) -> np.ndarray:
    """(col + 0.5) / S for col = 0 .. S-1: the pixel centres along one side of the unit square, (S,)."""
    return (np.arange(size, dtype=np.float32) + np.float32(0.5)) / np.float32(size)


def local_frame(params: dict, size: int):
    """q = R(-theta)(p - c) for every pixel: qx, qy (N, S, S), from params "center" (N, 2), "rotation" (N,)."""
    t = pixel_centres(size)
    px = t[None, None, :] - params["center"][:, 0, None, None]                  # (N, 1, S)
    py = t[None, :, None] - params["center"][:, 1, None, None]                  # (N, S, 1)
    cos = np.cos(params["rotation"])[:, None, None]
    sin = np.sin(params["rotation"])[:, None, None]
    return cos * px + sin * py, -sin * px + cos * py                             # (N, S, S) each


class ProceduralDataset:
    """The shared half of ShapesDataset and ClutterDataset (see the module docstring)."""

    NOISE_STREAM: tuple = ()             # extra words in the noise generator's seed (one per dataset)
    RENDER_PIXELS = 2 ** 20              # pixels rendered per chunk: bounds the temporaries
    CACHE_BYTES = 512 << 20              # the render cache's limit (0: no cache); see the module docstring
    _cache = None                        # (size, images (num_samples, S, S, 3) float32, rendered (num_samples,) bool)

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, i: int):
        images, labels = self.batch([i])
        return images[0], labels[0]

    def _indices(self, indices) -> np.ndarray:
        where = type(self).__name__
        indices = np.asarray(indices)
        if indices.ndim != 1 or not (indices.size == 0 or np.issubdtype(indices.dtype, np.integer)):
            raise TypeError(f"{where}: indices must be a 1-D sequence of ints, got shape {indices.shape}, "
                            f"dtype {indices.dtype}")
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_samples):
            bad = indices[(indices < 0) | (indices >= self.num_samples)][0]
            raise IndexError(f"{where}: index {bad} out of range for a dataset of {self.num_samples} samples")
        return indices.astype(np.int64)

    def batch(self, indices, image_size: int | None = None):
        """Render samples ``indices`` at side ``image_size`` (default: the dataset's), or copy them from
        the render cache where they were drawn before at that size.

        Returns images (N, S, S, 3) float32 in [0, 1] (a new array) and labels (N,) int64.
        """
        indices = self._indices(indices)
        size = self.image_size if image_size is None else check_count(type(self).__name__, "image_size",
                                                                      image_size, 4)
        cache = self._render_cache(size)
        if cache is None:
            return self._rendered(indices, size), self.labels[indices].copy()
        images, rendered = cache
        missing = np.unique(indices[~rendered[indices]])
        if missing.size:
            images[missing] = self._rendered(missing, size)
            rendered[missing] = True
        return images[indices], self.labels[indices].copy()

    def _rendered(self, indices: np.ndarray, size: int) -> np.ndarray:
        """Draw samples ``indices`` at side ``size``: (N, S, S, 3) float32, in chunks of RENDER_PIXELS."""
        images = np.empty((indices.size, size, size, 3), dtype=np.float32)          # (N, S, S, 3)
        chunk = max(1, self.RENDER_PIXELS // (size * size))
        for start in range(0, indices.size, chunk):
            part = indices[start: start + chunk]
            self._render(part, size, out=images[start: start + part.size])
        return images

    def _render_cache(self, size: int):
        """(images, rendered) for ``size``: the cache of this size, a new empty one (replacing another
        size's), or None when the whole dataset at this size would not fit in CACHE_BYTES."""
        if self._cache is not None and self._cache[0] == size:
            return self._cache[1:]
        if self.num_samples * size * size * 3 * 4 > self.CACHE_BYTES:
            return None
        self._cache = None                                   # free the other size's images first
        self._cache = (size, np.empty((self.num_samples, size, size, 3), dtype=np.float32),
                       np.zeros(self.num_samples, dtype=bool))
        return self._cache[1:]

    def arrays(self, image_size: int | None = None):
        """The whole dataset: images (num_samples, S, S, 3) float32, labels (num_samples,) int64."""
        return self.batch(np.arange(self.num_samples), image_size)

    def _add_noise(self, indices: np.ndarray, size: int, out: np.ndarray) -> None:
        """out += uniform(-noise, noise), one generator per (seed, split, sample, size)."""
        noise = np.empty((size, size, 3), dtype=np.float32)                          # (S, S, 3)
        scale = np.float32(2 * self.noise)
        for row, i in enumerate(indices):
            rng = np.random.default_rng([self.seed, SPLITS[self.split], int(i), size, *self.NOISE_STREAM])
            rng.random(dtype=np.float32, out=noise)
            noise -= np.float32(0.5)
            noise *= scale
            out[row] += noise


@njit(cache=True)
def _fill_background_kernel(bg, wave, out):
    n_images, height, width, channels = out.shape
    for n in range(n_images):
        for i in range(height):
            for j in range(width):
                for c in range(channels):
                    out[n, i, j, c] = bg[n, c] + wave[n, i, j]


def fill_background(bg: np.ndarray, wave: np.ndarray, out: np.ndarray) -> None:
    """out[n, i, j, c] = bg[n, c] + wave[n, i, j]: bg (N, 3), wave (N, S, S), out (N, S, S, 3) float32."""
    if bg.shape != (out.shape[0], out.shape[3]) or wave.shape != out.shape[:3]:
        raise ValueError(f"fill_background: bg must be {(out.shape[0], out.shape[3])} and wave {out.shape[:3]} "
                         f"for out {out.shape}, got {bg.shape} and {wave.shape}")
    _fill_background_kernel(np.ascontiguousarray(bg, dtype=out.dtype), np.ascontiguousarray(wave, dtype=out.dtype),
                            out)


@njit(cache=True)
def _paint_kernel(out, rows, a, rgb):
    _, height, width, channels = out.shape
    for k in range(rows.size):
        r = rows[k]
        for i in range(height):
            for j in range(width):
                for c in range(channels):
                    v = out[r, i, j, c]
                    out[r, i, j, c] = v + (rgb[k, c] - v) * a[k, i, j]


def paint(out: np.ndarray, a: np.ndarray, rgb: np.ndarray, rows=None) -> None:
    """out <- out + (rgb - out) a, i.e. out (1 - a) + rgb a (a lerp), in place.

    out (N, S, S, 3) float32; a (n, S, S) coverage in [0, 1]; rgb (n, 3); rows (n,) the images of out
    that a and rgb belong to (default: all, n = N)."""
    rows = np.arange(out.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= out.shape[0]):       # the loop does not check
        raise IndexError(f"paint: rows must be in [0, {out.shape[0]}), got values in [{rows.min()}, {rows.max()}]")
    if a.shape != (rows.size,) + out.shape[1:3] or rgb.shape != (rows.size, out.shape[3]):
        raise ValueError(f"paint: a must be {(rows.size,) + out.shape[1:3]} and rgb {(rows.size, out.shape[3])} "
                         f"for out {out.shape}, got {a.shape} and {rgb.shape}")
    _paint_kernel(out, rows, np.ascontiguousarray(a, dtype=out.dtype), np.ascontiguousarray(rgb, dtype=out.dtype))


def coverage_by_label(signed_distance, labels: np.ndarray, qx, qy, per_object: dict, size: int) -> np.ndarray:
    """a = clip(1/2 - sd(q) / px, 0, 1), px = 1 / S: each object's anti-aliased coverage (N, S, S).

    signed_distance(label, qx, qy, p) gives sd for the rows of one class at a time (vectorised over
    them); per_object holds each object's (N,) parameters, broadcast to (n, 1, 1) for its rows."""
    coverage = np.empty(qx.shape, dtype=np.float32)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        p = {k: v[rows, None, None] for k, v in per_object.items()}             # (n, 1, 1)
        sd = signed_distance(int(label), qx[rows], qy[rows], p)                 # (n, S, S)
        coverage[rows] = np.clip(np.float32(0.5) - sd * np.float32(size), 0, 1)
    return coverage
