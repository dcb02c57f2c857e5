"""ssd_lib.jpeg: the header walk agrees with Pillow, reduced decoding has the libjpeg sizes, and
what the fast path does not handle is left to Pillow."""

import io

import numpy as np
import pytest
from PIL import Image

from ssd_lib.jpeg import decode_jpeg, read_jpeg
from ssd_lib.pipeline import open_image


def photo(width=160, height=120) -> np.ndarray:
    rows, columns = np.mgrid[0:height, 0:width]
    return np.stack([columns * 255 // width, rows * 255 // height, (rows + columns) % 256], -1).astype(np.uint8)


def save(path, image, **options):
    Image.fromarray(image).save(path, **options)
    return path


@pytest.mark.parametrize("options", [{"quality": 90}, {"quality": 75, "progressive": True}, {"subsampling": 0}])
def test_size_and_pixels_equal_pillows(tmp_path, options):
    path = save(tmp_path / "photo.jpg", photo(), **options)
    jpeg = read_jpeg(path)
    assert jpeg.size == (160, 120) and str(path) in repr(jpeg)
    rgb = decode_jpeg(jpeg)[..., ::-1]
    assert np.abs(rgb.astype(int) - np.asarray(Image.open(path))).mean() < 1


@pytest.mark.parametrize("shrink, shape", [(1.0, (120, 160)), (1.99, (120, 160)), (2.0, (60, 80)), (5.0, (30, 40)),
                                           (8.0, (15, 20)), (100.0, (15, 20))])
def test_reduced_decoding_uses_libjpeg_scales(tmp_path, shrink, shape):
    jpeg = read_jpeg(save(tmp_path / "photo.jpg", photo()))
    assert decode_jpeg(jpeg, shrink).shape == (*shape, 3)


def test_exif_orientation_png_grey_and_cmyk_go_to_pillow(tmp_path):
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show
    Image.fromarray(photo()).save(rotated, exif=exif.tobytes())
    assert read_jpeg(rotated) is None
    assert open_image(rotated).shape == (160, 120, 3)  # upright, by Pillow
    upright = tmp_path / "upright.jpg"
    exif[0x0112] = 1
    Image.fromarray(photo()).save(upright, exif=exif.tobytes())
    assert read_jpeg(upright).size == (160, 120)
    assert read_jpeg(save(tmp_path / "photo.png", photo())) is None
    assert read_jpeg(save(tmp_path / "grey.jpg", photo()[..., 0])) is None
    Image.fromarray(photo()).convert("CMYK").save(tmp_path / "cmyk.jpg")
    assert read_jpeg(tmp_path / "cmyk.jpg") is None
    assert open_image(tmp_path / "cmyk.jpg").shape == (120, 160, 3)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(OSError):
        read_jpeg(tmp_path / "missing.jpg")
    with pytest.raises(ValueError, match="missing.jpg"):
        open_image(tmp_path / "missing.jpg")
    buffer = io.BytesIO()
    Image.fromarray(photo()).save(buffer, format="JPEG")
    header_only = tmp_path / "header_only.jpg"
    header_only.write_bytes(buffer.getvalue()[:700])  # frame header, no image data
    jpeg = read_jpeg(header_only)
    with pytest.raises(ValueError, match="header_only.jpg: image file is truncated or corrupt"):
        decode_jpeg(jpeg)
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert read_jpeg(tmp_path / "empty.jpg") is None
