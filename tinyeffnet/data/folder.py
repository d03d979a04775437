"""A user's own images: one subfolder per class, PNG / JPEG / BMP files, resized on load.

    root/
      cat/   a.png  b.jpg ...        class 0 (subfolders sorted by name)
      dog/   c.jpeg ...              class 1

Each image is decoded to RGB (grayscale is repeated into 3 channels, an alpha channel dropped),
scaled to [0, 1] by its real bit depth (8-bit: / 255; 16-bit PNG: / 65535), its largest central
square cut out and resampled bilinearly to S x S (see ``augment.center_crop_resize``). Decoding uses
Pillow (installed with matplotlib); without Pillow, matplotlib.image.imread reads PNG files.

Errors name the path: a missing root or a root that is not a folder, a root without class
subfolders, a root with a single class (a classifier of one class is always right: its accuracy 1.0
would mean nothing), a class folder without images, and any file that cannot be decoded.

Dimension legend: N images in a batch, S output side, 3 channels (RGB).
Output: float32 NHWC images in [0, 1], int64 labels.
"""
from __future__ import annotations

import os

import numpy as np

from .augment import center_crop_resize

__all__ = ["ImageFolder", "read_image", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


def _to_rgb_float(array: np.ndarray, path: str, max_value: int | None = None) -> np.ndarray:
    """uint8 / uint16 / float arrays (H, W), (H, W, 1|3|4) -> (H, W, 3) float32 in [0, 1].

    Integer pixels are divided by ``max_value``, the largest value of the image's bit depth
    (default: the dtype's largest, 255 for uint8, 65535 for uint16).
    """
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or min(array.shape[:2]) < 1:
        raise ValueError(f"cannot read image {path}: unsupported pixel array shape {array.shape}")
    array = array[..., :3] if array.shape[-1] == 4 else array
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if np.issubdtype(array.dtype, np.integer):
        top = np.iinfo(array.dtype).max if max_value is None else max_value
        return np.clip(array.astype(np.float32) / np.float32(top), 0, 1)
    return np.clip(array.astype(np.float32), 0, 1)


# Pillow's modes for one channel of more than 8 bits. A 16-bit grayscale PNG opens as "I;16"
# (older Pillow: "I", 32-bit ints holding 0..65535). img.convert("RGB") would clip these to 0..255,
# so that every pixel above 255 out of 65535 became white: the image silently turned into {0, 1}.
_WIDE_GRAY_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}


def _decode_pil(img) -> tuple:
    """(pixel array, largest value of its bit depth) of an open Pillow image."""
    if img.mode in _WIDE_GRAY_MODES:
        return np.asarray(img).astype(np.int64), _WIDE_GRAY_MODES[img.mode]   # (H, W), e.g. 0..65535
    return np.asarray(img.convert("RGB")), 255                                # (H, W, 3) uint8


def read_image(path: str) -> np.ndarray:
    """Decode one file to (H, W, 3) float32 in [0, 1]; ValueError naming the file if it cannot."""
    try:
        from PIL import Image
    except ImportError:                                            # pragma: no cover (Pillow is standard)
        Image = None
    max_value = None
    try:
        if Image is not None:
            with Image.open(path) as img:
                array, max_value = _decode_pil(img)
        else:                                                      # pragma: no cover
            import matplotlib.image
            array = matplotlib.image.imread(path)                  # PNG: float in [0, 1] already
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {path} does not exist") from None
    except Exception as err:                                       # decoder errors vary by format
        raise ValueError(f"cannot read image {path}: {type(err).__name__}: {err}") from err
    return _to_rgb_float(array, path, max_value)


class ImageFolder:
    """Images in class subfolders, loaded and resized per batch (the same API as ShapesDataset).

    root:        the folder holding one subfolder per class.
    image_size:  default side S for ``batch`` (any size can be asked for per call).
    extensions:  file endings that count as images (case-insensitive); other files are ignored.
    cache:       keep decoded full-size images in memory after the first load.
    Attributes: class_names (sorted subfolder names), num_classes, paths, labels (N,) int64.
    """

    def __init__(self, root: str, image_size: int = 64, extensions=IMAGE_EXTENSIONS, cache: bool = False):
        root = os.fspath(root)
        if not os.path.exists(root):
            raise FileNotFoundError(f"image folder {root} does not exist")
        if not os.path.isdir(root):
            raise NotADirectoryError(f"image folder {root} is not a directory")
        if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
            raise ValueError(f"image_size must be an int >= 1, got {image_size!r}")
        self.root = root
        self.image_size = int(image_size)
        self.extensions = tuple(e.lower() for e in extensions)
        self.class_names = sorted(d for d in os.listdir(root)
                                  if not d.startswith(".") and os.path.isdir(os.path.join(root, d)))
        if not self.class_names:
            raise ValueError(f"image folder {root} has no class subfolders (expected root/<class>/<image>)")
        if len(self.class_names) == 1:
            raise ValueError(f"image folder {root} must have at least 2 class subfolders, got 1 "
                             f"({self.class_names[0]!r}): with one class every prediction is right, so "
                             f"training would report accuracy 1.0 and learn nothing")
        self.paths, labels = [], []
        for label, name in enumerate(self.class_names):
            folder = os.path.join(root, name)
            files = sorted(f for f in os.listdir(folder)
                           if f.lower().endswith(self.extensions) and os.path.isfile(os.path.join(folder, f)))
            if not files:
                raise ValueError(f"class folder {folder} has no images with endings {list(self.extensions)}")
            self.paths += [os.path.join(folder, f) for f in files]
            labels += [label] * len(files)
        self.labels = np.array(labels, dtype=np.int64)
        self.num_classes = len(self.class_names)
        self._cache = {} if cache else None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        images, labels = self.batch([i])
        return images[0], labels[0]

    def _load(self, i: int) -> np.ndarray:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        image = read_image(self.paths[i])
        if self._cache is not None:
            self._cache[i] = image
        return image

    def batch(self, indices, image_size: int | None = None):
        """Load, centre-crop and resize: images (N, S, S, 3) float32 in [0, 1], labels (N,) int64."""
        indices = np.asarray(indices)
        if indices.ndim != 1 or not (indices.size == 0 or np.issubdtype(indices.dtype, np.integer)):
            raise TypeError(f"indices must be a 1-D sequence of ints, got shape {indices.shape}")
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"index out of range for an image folder of {len(self)} images")
        size = self.image_size if image_size is None else int(image_size)
        images = np.empty((indices.size, size, size, 3), dtype=np.float32)         # (N, S, S, 3)
        for row, i in enumerate(indices):
            images[row] = np.clip(center_crop_resize(self._load(int(i)), size), 0, 1)
        return images, self.labels[indices].copy()

    def arrays(self, image_size: int | None = None):
        """Every image: (N, S, S, 3) float32 and (N,) int64."""
        return self.batch(np.arange(len(self)), image_size)

    def verify(self) -> None:
        """Decode every file once; raises the first unreadable one's error (names the file)."""
        for path in self.paths:
            read_image(path)
