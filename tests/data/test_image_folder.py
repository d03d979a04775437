"""The image-folder loader on a temporary folder of PNG / JPEG files, and its error messages."""
import re

import numpy as np
import pytest
from PIL import Image

from tinyeffnet.data import ImageFolder, read_image


def write(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "red").mkdir()
    (tmp_path / "gray").mkdir()
    red = np.zeros((10, 14, 3), dtype=np.uint8)
    red[..., 0] = 255
    write(tmp_path / "red" / "a.png", red)
    write(tmp_path / "red" / "b.PNG", red[:8, :8])
    rgba = np.zeros((6, 6, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 10                                     # nearly transparent: alpha is dropped
    write(tmp_path / "red" / "c.png", rgba)
    write(tmp_path / "gray" / "g.png", np.full((9, 9), 128, dtype=np.uint8))
    write(tmp_path / "gray" / "h.jpg", np.full((16, 12, 3), 128, dtype=np.uint8))
    (tmp_path / "gray" / "notes.txt").write_text("not an image")
    return tmp_path


def test_loads_classes_labels_and_resized_pixels(folder):
    ds = ImageFolder(folder, image_size=5)
    assert ds.class_names == ["gray", "red"] and ds.num_classes == 2 and len(ds) == 5
    np.testing.assert_array_equal(ds.labels, [0, 0, 1, 1, 1])
    images, labels = ds.arrays()
    assert images.shape == (5, 5, 5, 3) and images.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_allclose(images[labels == 1], np.broadcast_to([1.0, 0, 0], (3, 5, 5, 3)), atol=1e-6)
    np.testing.assert_allclose(images[0], 128 / 255, atol=1e-6)                   # grayscale -> 3 channels
    np.testing.assert_allclose(images[1], 128 / 255, atol=2 / 255)                # JPEG: lossy
    bigger, _ = ds.batch([2], image_size=9)
    assert bigger.shape == (1, 9, 9, 3)
    image, label = ds[3]
    np.testing.assert_array_equal(image, images[3])
    assert label == 1


def test_cache_returns_the_same_pixels(folder):
    ds = ImageFolder(folder, image_size=4, cache=True)
    first, _ = ds.arrays()
    second, _ = ds.arrays()
    np.testing.assert_array_equal(first, second)


def test_missing_root_names_the_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=re.escape(f"image folder {missing} does not exist")):
        ImageFolder(missing)


def test_root_that_is_a_file_names_the_path(tmp_path):
    path = tmp_path / "file.png"
    path.write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match=re.escape(f"image folder {path} is not a directory")):
        ImageFolder(path)


def test_root_without_class_folders(tmp_path):
    with pytest.raises(ValueError, match=re.escape(f"image folder {tmp_path} has no class subfolders")):
        ImageFolder(tmp_path)


def test_empty_class_folder_is_named(folder):
    (folder / "empty").mkdir()
    with pytest.raises(ValueError, match=re.escape(f"class folder {folder / 'empty'} has no images")):
        ImageFolder(folder)


def test_unreadable_image_names_the_file(folder):
    bad = folder / "red" / "broken.png"
    bad.write_bytes(b"\x89PNG this is not really a png")
    ds = ImageFolder(folder, image_size=4)
    index = ds.paths.index(str(bad))
    ds.batch([0])                                            # other files still load
    with pytest.raises(ValueError, match=re.escape(f"cannot read image {bad}")):
        ds.batch([0, index])
    with pytest.raises(ValueError, match=re.escape(f"cannot read image {bad}")):
        ds.verify()


def test_read_image_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(f"image file {tmp_path / 'x.png'} does not exist")):
        read_image(str(tmp_path / "x.png"))
