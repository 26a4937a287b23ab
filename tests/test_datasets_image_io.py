"""OpenCV image reading: RGB order, missing/corrupt files named, whole-split checks with skip_bad."""
import os

import cv2
import numpy as np
import pytest

from global_model.data.image_io import ImageReadError, check_images, read_image
from global_model.data.records import ImageRecord


def _png(path, bgr):
    img = np.zeros((4, 6, 3), np.uint8)
    img[:] = bgr
    assert cv2.imwrite(str(path), img)
    return str(path)


def _garbage(path, data=b"not a jpeg at all"):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def test_read_image_returns_rgb_uint8(tmp_path):
    img = read_image(_png(tmp_path / "blue.png", (255, 0, 0)))  # pure blue in OpenCV's BGR
    assert img.shape == (4, 6, 3) and img.dtype == np.uint8
    assert img[0, 0].tolist() == [0, 0, 255]
    grey = str(tmp_path / "grey.png")
    cv2.imwrite(grey, np.full((3, 3), 77, np.uint8))
    assert read_image(grey).shape == (3, 3, 3)


@pytest.mark.parametrize("data", [b"not a jpeg at all", b""])
def test_corrupt_image_names_the_file(tmp_path, data):
    path = _garbage(tmp_path / "000042.jpg", data)
    with pytest.raises(ImageReadError, match=f"cannot read image {path}: corrupt or not an image"):
        read_image(path)


def test_missing_image_names_the_file(tmp_path):
    path = str(tmp_path / "gone.jpg")
    with pytest.raises(ImageReadError, match=f"cannot read image {path}: no such file"):
        read_image(path)


@pytest.fixture
def records(tmp_path):
    """A readable image, an unreadable one, a readable one with an unreadable clear twin, and a readable pair."""
    ok = _png(tmp_path / "ok.png", (1, 2, 3))
    bad = _garbage(tmp_path / "bad.jpg")
    bad_twin = _garbage(tmp_path / "bad_clear.jpg")
    return [ImageRecord(ok, 1, 0), ImageRecord(bad, 2, 0), ImageRecord(ok, 3, 0, clear_path=bad_twin),
            ImageRecord(ok, 4, 0, clear_path=ok)]


def test_check_images_raises_on_the_first_bad_image(records):
    with pytest.raises(ImageReadError, match=f"cannot read image {records[1].path}"):
        check_images(records)


def test_check_images_can_skip_bad_images_and_twins(records):
    good, bad_paths = check_images(records, skip_bad=True)
    assert [r.pid for r in good] == [1, 4]
    assert bad_paths == [records[1].path, records[2].clear_path]


def test_check_images_keeps_readable_records(records):
    assert check_images(records[:1]) == (records[:1], [])


def test_check_images_names_a_missing_file(records):
    os.remove(records[0].path)
    with pytest.raises(ImageReadError, match="no such file"):
        check_images(records[:1])
