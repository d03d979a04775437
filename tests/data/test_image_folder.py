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


def test_16_bit_grayscale_png_is_scaled_by_its_bit_depth(tmp_path):
    # Pillow opens a 16-bit grayscale PNG as mode "I;16"; convert("RGB") clips every value above 255
    # to 255, which used to turn such an image into {0, 1}. 0..65535 must map onto 0..1.
    values = np.array([[0, 255, 1000], [32768, 60000, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as img:
        assert img.mode.startswith("I")                      # really stored as a 16-bit image
    image = read_image(str(path))
    assert image.shape == (2, 3, 3) and image.dtype == np.float32
    expected = values.astype(np.float64) / 65535
    for channel in range(3):
        np.testing.assert_allclose(image[..., channel], expected, rtol=0, atol=1e-7)


def test_16_bit_png_in_a_folder_keeps_its_mid_gray(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        Image.fromarray(np.full((6, 6), 32768, dtype=np.uint16)).save(tmp_path / cls / "x.png")
    images, _ = ImageFolder(tmp_path, image_size=4).arrays()
    np.testing.assert_allclose(images, 32768 / 65535, rtol=0, atol=1e-6)


def test_a_folder_with_one_class_is_refused(tmp_path):
    (tmp_path / "only").mkdir()
    write(tmp_path / "only" / "a.png", np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=re.escape(f"image folder {tmp_path} must have at least 2 class "
                                                   f"subfolders, got 1 ('only')")):
        ImageFolder(tmp_path)
