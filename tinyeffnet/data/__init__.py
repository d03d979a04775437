"""Data: the built-in procedural datasets, an image-folder loader, a resumable batch iterator, and
augmentation in NumPy (random resized crop, flip, RandAugment, mixup).

Every image source has the same small API: ``len(ds)``, ``ds.labels``, ``ds.num_classes``,
``ds.class_names`` and ``ds.batch(indices, image_size) -> (images (N, S, S, 3) float32 in [0, 1],
labels (N,) int64)``.

    >>> from tinyeffnet.data import ShapesDataset, BatchIterator
    >>> train = ShapesDataset(5000, image_size=64, seed=0, split="train")
    >>> for indices in BatchIterator(len(train), batch_size=64, seed=0):
    ...     images, labels = train.batch(indices, image_size=32)    # the same scenes at any size

The built-in datasets, by name (``make_dataset(name, ...)``; ``tinyeffnet train --dataset NAME``):

    shapes    ShapesDataset: ten shapes and textures, one per image (easy: the default model
              reaches ~99.8%)
    clutter   ClutterDataset: sixteen confusable classes among distractors, with a scale range
              (hard enough that two network designs differ in accuracy)
"""
from .augment import (
    RAND_AUGMENT_OPS, apply_op, center_crop_resize, horizontal_flip, mixup, mixup_apply, mixup_params,
    one_hot, rand_augment, random_resized_crop, resize,
)
from .folder import IMAGE_EXTENSIONS, ImageFolder, read_image
from .loader import BatchIterator, generator_state, set_generator_state
from .clutter import CLUTTER_CLASS_NAMES, ClutterDataset
from .shapes import CLASS_NAMES, ShapesDataset

DATASETS = {"shapes": ShapesDataset, "clutter": ClutterDataset}


def make_dataset(name: str, num_samples: int, image_size: int = 64, seed: int = 0, split: str = "train"):
    """The built-in dataset called ``name`` (a key of DATASETS) with the given size, seed and split.

    ValueError naming the known datasets for an unknown name; the dataset checks the other values.
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(sorted(DATASETS))}, got {name!r}")
    return DATASETS[name](num_samples, image_size=image_size, seed=seed, split=split)


__all__ = [
    "ShapesDataset", "CLASS_NAMES", "ClutterDataset", "CLUTTER_CLASS_NAMES", "DATASETS", "make_dataset",
    "ImageFolder", "read_image", "IMAGE_EXTENSIONS",
    "BatchIterator", "generator_state", "set_generator_state",
    "resize", "center_crop_resize", "random_resized_crop", "horizontal_flip",
    "RAND_AUGMENT_OPS", "apply_op", "rand_augment",
    "one_hot", "mixup_params", "mixup_apply", "mixup",
]
