import io
import struct
import zlib

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.data import get_testdata_file

from healthgpt_lite.data.io import load_image
from healthgpt_lite.errors import InputError


def png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


GRADIENT = np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (32, 1))


# ----------------------------------------------------------------------------- good inputs
@pytest.mark.parametrize("make", [
    lambda: Image.fromarray(GRADIENT, "L"),
    lambda: Image.fromarray(np.stack([GRADIENT] * 3, -1), "RGB"),
    lambda: Image.fromarray(np.dstack([GRADIENT] * 3 + [np.full_like(GRADIENT, 255)]), "RGBA"),
    lambda: Image.fromarray(GRADIENT, "L").convert("P"),
    lambda: Image.fromarray(GRADIENT.astype(np.uint16) * 257),  # 16-bit
])
def test_formats_agree(make, tmp_path):
    """Gray, RGB, opaque RGBA, palette and 16-bit versions of one gradient load alike."""
    path = tmp_path / "img.png"
    make().save(path)
    t = load_image(path, size=32)
    assert t.shape == (3, 32, 32) and t.dtype == torch.float32
    assert torch.allclose(t[0, 0], torch.linspace(0, 1, 32), atol=0.02)


def test_sources_path_bytes_pil_array(tmp_path):
    img = Image.fromarray(GRADIENT, "L")
    img.save(tmp_path / "a.png")
    ref = load_image(tmp_path / "a.png")
    for src in (str(tmp_path / "a.png"), png_bytes(img), img, GRADIENT):
        assert torch.equal(load_image(src), ref)


def test_jpeg_and_resize():
    t = load_image(png_bytes(Image.fromarray(GRADIENT, "L"), format="JPEG", quality=95), size=64, channels=1)
    assert t.shape == (1, 64, 64) and 0 <= t.min() and t.max() <= 1


def test_non_square_is_padded_not_stretched():
    wide = np.full((20, 40), 255, np.uint8)
    t = load_image(wide, channels=1)
    assert t.shape == (1, 40, 40)
    assert t[0, :10].max() == 0 and t[0, 10:30].min() == 1 and t[0, 30:].max() == 0


def test_rgba_transparency_composites_on_black():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 255, 0  # white but fully transparent
    assert load_image(Image.fromarray(rgba, "RGBA")).max() == 0


def test_dicom_ct_uses_rescale_and_window():
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    t = load_image(path, channels=1, window=(40, 400))  # soft-tissue window in Hounsfield units
    expected = np.clip((hu - (40 - 200)) / 400, 0, 1)
    np.testing.assert_allclose(t[0].numpy(), expected, atol=1e-5)


def test_dicom_mr_uses_its_window():
    path = get_testdata_file("MR_small.dcm")
    ds = pydicom.dcmread(path)
    c, w = float(ds.WindowCenter), float(ds.WindowWidth)
    expected = np.clip((ds.pixel_array - (c - w / 2)) / w, 0, 1)
    np.testing.assert_allclose(load_image(path, channels=1)[0].numpy(), expected, atol=1e-5)


# ----------------------------------------------------------------------------- bad inputs
def _huge_png() -> bytes:
    """A valid 8x8 PNG whose header claims 100000 x 100000 pixels."""
    data = bytearray(png_bytes(Image.new("L", (8, 8))))
    ihdr = data[12:29]  # b'IHDR' + 13 bytes
    ihdr[4:12] = struct.pack(">II", 100_000, 100_000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def _dicom_without_pixels(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PixelData
    path = tmp_path / "no_pixels.dcm"
    ds.save_as(path)
    return path


def _nan_tiff(tmp_path):
    a = np.ones((16, 16), np.float32)
    a[3, 3] = np.nan
    path = tmp_path / "nan.tiff"
    Image.fromarray(a, "F").save(path)
    return path


BAD = {
    "missing file": (lambda tmp: tmp / "nope.png", "does not exist"),
    "directory": (lambda tmp: tmp, "is a directory"),
    "zero-byte file": (lambda tmp: (tmp / "empty.png").write_bytes(b"") or tmp / "empty.png", "empty input"),
    "empty bytes": (lambda tmp: b"", "empty input"),
    "truncated png": (lambda tmp: png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)))[:300],
                      "truncated or corrupt"),
    "truncated dicom": (lambda tmp: get_testdata_file("MR_truncated.dcm"), "truncated or corrupt DICOM"),
    "text file": (lambda tmp: (tmp / "notes.png").write_text("hello") and tmp / "notes.png", "not an image"),
    "text named .dcm": (lambda tmp: (tmp / "x.dcm").write_text("hello") and tmp / "x.dcm", "not a valid DICOM"),
    "dicom without pixels": (_dicom_without_pixels, "has no pixel data"),
    "decompression bomb": (lambda tmp: _huge_png(), "absurd dimensions"),
    "nan pixels": (_nan_tiff, "NaN or infinite"),
    "inf in array": (lambda tmp: np.array([[0.0, np.inf]] * 8 * 4).reshape(8, 8), "NaN or infinite"),
    "too small": (lambda tmp: png_bytes(Image.new("L", (2, 2))), "too small"),
    "wrong type": (lambda tmp: 42, "cannot load an image from a int"),
    "bad array shape": (lambda tmp: np.zeros((2, 8, 8, 8)), "expected (H, W)"),
    "corrupt jpeg": (lambda tmp: png_bytes(Image.new("L", (64, 64)), format="JPEG")[:200] + b"\x00" * 50, "truncated or corrupt"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_the_problem(case, tmp_path):
    make, fragment = BAD[case]
    src = make(tmp_path)
    with pytest.raises(InputError) as err:
        load_image(src, size=32)
    assert fragment in str(err.value)
    if isinstance(src, (str,)) or hasattr(src, "name"):
        assert str(getattr(src, "name", src)) in str(err.value)  # names the file


def test_bad_arguments():
    with pytest.raises(InputError, match="size=0"):
        load_image(GRADIENT, size=0)
    with pytest.raises(InputError, match="channels=2"):
        load_image(GRADIENT, channels=2)


def test_input_error_is_a_value_error():
    with pytest.raises(ValueError):
        load_image(b"")


def test_what_load_image_returns_loads_again():
    """A student's first call: ``load_image`` returns (3, H, W); feeding it back is an identity."""
    t = load_image(GRADIENT, size=32)
    assert torch.equal(load_image(t), t)
    assert torch.allclose(load_image(t, size=16), load_image(GRADIENT, size=16), atol=1e-5)
    gray = load_image(GRADIENT, size=32, channels=1)  # (1, H, W)
    assert torch.equal(load_image(gray, channels=1), gray)
    assert torch.equal(load_image(t[0]), t)  # (H, W) tensor


@pytest.mark.parametrize("layout", ["CHW", "HWC", "HW"])
def test_arrays_in_either_channel_layout(layout):
    t = load_image(GRADIENT, size=32)
    a = {"CHW": t.numpy(), "HWC": t.permute(1, 2, 0).numpy(), "HW": t[0].numpy()}[layout]
    assert torch.allclose(load_image(a), t)


def test_uint8_tensor_and_bad_tensors():
    t = torch.full((3, 16, 16), 255, dtype=torch.uint8)
    assert torch.equal(load_image(t), torch.ones(3, 16, 16))
    with pytest.raises(InputError, match="<tensor>.*NaN or infinite"):
        load_image(torch.full((3, 8, 8), float("nan")))
    with pytest.raises(InputError, match="<tensor>.*expected \\(H, W\\)"):
        load_image(torch.zeros(2, 3, 8, 8))
    with pytest.raises(InputError, match="dtype torch.bool"):
        load_image(torch.zeros(8, 8, dtype=torch.bool))
