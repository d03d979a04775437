"""Data: the built-in procedural dataset, an image-folder loader, a resumable batch iterator, and
augmentation in NumPy (random resized crop, flip, RandAugment, mixup).

Every image source has the same small API: ``len(ds)``, ``ds.labels``, ``ds.num_classes``,
``ds.class_names`` and ``ds.batch(indices, image_size) -> (images (N, S, S, 3) float32 in [0, 1],
labels (N,) int64)``.

    >>> from tinyeffnet.data import ShapesDataset, BatchIterator
    >>> train = ShapesDataset(5000, image_size=64, seed=0, split="train")
    >>> for indices in BatchIterator(len(train), batch_size=64, seed=0):
    ...     images, labels = train.batch(indices, image_size=32)    # the same scenes at any size
"""
from .augment import (
    RAND_AUGMENT_OPS, apply_op, center_crop_resize, horizontal_flip, mixup, mixup_apply, mixup_params,
    one_hot, rand_augment, random_resized_crop, resize,
)
from .folder import IMAGE_EXTENSIONS, ImageFolder, read_image
from .loader import BatchIterator, generator_state, set_generator_state
from .shapes import CLASS_NAMES, ShapesDataset

__all__ = [
    "ShapesDataset", "CLASS_NAMES",
    "ImageFolder", "read_image", "IMAGE_EXTENSIONS",
    "BatchIterator", "generator_state", "set_generator_state",
    "resize", "center_crop_resize", "random_resized_crop", "horizontal_flip",
    "RAND_AUGMENT_OPS", "apply_op", "rand_augment",
    "one_hot", "mixup_params", "mixup_apply", "mixup",
]
