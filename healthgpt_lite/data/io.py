"""One door for every image: PNG, JPEG, DICOM (and anything else PIL reads), from a path,
bytes, a PIL image, a numpy array or a tensor (such as ``load_image`` itself returns), into a
``(C, H, W)`` float tensor in [0, 1].

Medical images arrive in many shapes: 8-bit grayscale, 16-bit PNGs, palette images, RGBA
screenshots, DICOM with rescale slope/intercept (Hounsfield units) and a display window. All
are mapped the same way, and anything wrong raises :class:`~healthgpt_lite.errors.InputError`
with the source's name and the problem, never a deep PIL / pydicom traceback.

Intensity conventions (a choice, written down here):
* 8-bit data: value / 255.
* 16-bit and float data: min-max to [0, 1] (the full dynamic range of the image).
* DICOM: modality LUT (slope/intercept) first, then the file's window centre/width if it has
  one (or the ``window=`` argument), else min-max; MONOCHROME1 is inverted.
* Transparency is composited on black; colour becomes gray (ITU-R 601 luma) when ``channels=1``.
* Arrays and tensors: ``(H, W)``, channels-last ``(H, W, 1|3|4)`` or channels-first
  ``(1|3|4, H, W)`` (the layout of a tensor from ``load_image``; an array is read as channels-last
  when its last axis could be channels, a tensor as channels-first when its first axis could be).
* Non-square images are padded to square (black, centred), then resized with antialiasing,
  as LLaVA pads, so anatomy is never stretched.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from ..errors import InputError

MAX_PIXELS = 64_000_000  # decompression-bomb guard: no medical slice comes near this
MIN_SIDE = 4
ImageSource = Union[str, Path, bytes, bytearray, memoryview, Image.Image, np.ndarray, torch.Tensor]


def load_image(src: ImageSource, size: int | None = None, channels: int = 3,
               window: tuple[float, float] | None = None) -> torch.Tensor:
    """Load ``src`` as a float32 tensor ``(channels, size, size)`` with values in [0, 1].

    ``size=None`` keeps the native (padded-to-square) size. ``window=(centre, width)`` sets the
    DICOM display window (e.g. ``(-600, 1500)`` for lungs).
    """
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 8192):
        raise InputError(f"size={size!r}: expected an integer number of pixels in 1..8192")
    if channels not in (1, 3):
        raise InputError(f"channels={channels!r}: expected 1 (gray) or 3 (RGB)")
    name, array = _read(src, window)
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name}: the image has NaN or infinite pixel values")
    array = _to_channels(array, channels)  # (H, W, C) in [0, 1]
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)
    tensor = pad_to_square(tensor)
    if size is not None and tensor.shape[-1] != size:
        tensor = F.interpolate(tensor[None], size=(size, size), mode="bicubic", antialias=True,
                               align_corners=False)[0]
    return tensor.clamp_(0, 1)


def open_rgb(src: ImageSource, window: tuple[float, float] | None = None) -> Image.Image:
    """``src`` as an 8-bit RGB PIL image at its own size (no padding, no resizing), read by the
    same rules as :func:`load_image`: what LLaVA-style pipelines (``Image.open(path).convert("RGB")``)
    get for PNG and JPEG, and a windowed 8-bit rendering for DICOM and high bit depths."""
    name, array = _read(src, window)
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name}: the image has NaN or infinite pixel values")
    rgb = np.clip(_to_channels(array, 3), 0, 1)  # (H, W, 3) in [0, 1]
    return Image.fromarray(np.round(rgb * 255).astype(np.uint8), mode="RGB")


# ----------------------------------------------------------------------------- sources
def _read(src: ImageSource, window) -> tuple[str, np.ndarray]:
    if isinstance(src, Image.Image):
        return "<PIL image>", _from_pil(src, "<PIL image>")
    if isinstance(src, np.ndarray):
        return "<array>", _from_array(src, "<array>")
    if isinstance(src, torch.Tensor):
        return "<tensor>", _from_array(_tensor_to_array(src), "<tensor>")
    if isinstance(src, (bytes, bytearray, memoryview)):
        data, name = bytes(src), f"<{len(src)} bytes>"
    elif isinstance(src, (str, Path)):
        name, data = str(src), _read_file(Path(src))
    else:
        raise InputError(f"cannot load an image from a {type(src).__name__}; give a path, bytes, a PIL image, an array or a tensor")
    if not data:
        raise InputError(f"{name}: empty input (0 bytes), not an image")
    if data[128:132] == b"DICM" or name.lower().endswith((".dcm", ".dicom")):
        return name, _from_dicom(data, name, window)
    return name, _from_encoded(data, name)


def _read_file(path: Path) -> bytes:
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image file")
    if not path.exists():
        raise InputError(f"{path}: file does not exist")
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror or e})") from None


def _from_encoded(data: bytes, name: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise InputError(f"{name}: not an image (no PNG, JPEG, DICOM or other known header)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InputError(f"{name}: absurd dimensions (decompression-bomb guard)") from None
        except (OSError, SyntaxError, ValueError) as e:  # a known header, broken right after it
            raise InputError(f"{name}: truncated or corrupt image file ({e})") from None
        _check_dims(im.size[0], im.size[1], name)
        try:
            im.load()
        except (OSError, SyntaxError, ValueError) as e:
            raise InputError(f"{name}: truncated or corrupt image file ({e})") from None
    return _from_pil(im, name)


def _check_dims(width: int, height: int, name: str) -> None:
    if width * height > MAX_PIXELS:
        raise InputError(f"{name}: absurd dimensions {width}x{height} (more than {MAX_PIXELS:,} pixels; "
                         "decompression-bomb guard)")
    if min(width, height) < MIN_SIDE:
        raise InputError(f"{name}: {width}x{height} pixels is too small to be an image (minimum {MIN_SIDE})")


def _from_pil(im: Image.Image, name: str) -> np.ndarray:
    _check_dims(im.size[0], im.size[1], name)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("1", "L", "RGB"):
        return np.asarray(im.convert("L" if im.mode == "1" else im.mode), dtype=np.float32) / 255.0
    if im.mode in ("LA", "RGBA", "PA"):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
        return rgba[..., :3] * rgba[..., 3:4]  # composite on black
    if im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    # "I;16", "I;16B", "I", "F": high bit depth -> min-max
    return _minmax(np.asarray(im, dtype=np.float64), name)


def _tensor_to_array(t: torch.Tensor) -> np.ndarray:
    """A tensor as an array in channels-last layout: ``(C, H, W)`` is what ``load_image`` returns."""
    if t.is_complex() or t.dtype == torch.bool:
        raise InputError(f"<tensor>: tensor of dtype {t.dtype} is not an image")
    a = t.detach().cpu()
    a = a.numpy() if a.dtype == torch.uint8 else a.double().numpy()
    if a.ndim == 3 and a.shape[0] in (1, 3, 4):
        a = a.transpose(1, 2, 0)
    return a


def _from_array(a: np.ndarray, name: str) -> np.ndarray:
    if a.ndim == 3 and a.shape[-1] not in (1, 3, 4) and a.shape[0] in (1, 3, 4):
        a = a.transpose(1, 2, 0)  # channels-first, e.g. a load_image tensor converted with .numpy()
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[-1] in (1, 3, 4) or a.ndim == 2:
        _check_dims(a.shape[1], a.shape[0], name)
    else:
        raise InputError(f"{name}: array of shape {a.shape}; expected (H, W), (H, W, 1|3|4) or (1|3|4, H, W)")
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
        return a[..., :3] * a[..., 3:4] if a.ndim == 3 and a.shape[-1] == 4 else a
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise InputError(f"{name}: array of dtype {a.dtype} is not an image")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name}: the image has NaN or infinite pixel values")
    return a if a.min() >= 0 and a.max() <= 1 else _minmax(a, name)


def _from_dicom(data: bytes, name: str, window) -> np.ndarray:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut

    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError) as e:
        raise InputError(f"{name}: not a valid DICOM file ({e})") from None
    if "PixelData" not in ds:
        raise InputError(f"{name}: DICOM file has no pixel data (a structured report or other non-image object?)")
    _check_dims(int(ds.get("Columns", 0) or 0), int(ds.get("Rows", 0) or 0), name)
    try:
        pixels = ds.pixel_array
    except Exception as e:  # pydicom raises ValueError, NotImplementedError, RuntimeError...
        raise InputError(f"{name}: truncated or corrupt DICOM pixel data ({e})") from None
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        pixels = pixels[len(pixels) // 2]  # a volume: take the middle slice
    if ds.get("PhotometricInterpretation", "MONOCHROME2") in ("RGB", "YBR_FULL", "YBR_FULL_422"):
        return pixels.astype(np.float32) / float(2 ** int(ds.get("BitsStored", 8)) - 1)
    values = apply_modality_lut(pixels, ds).astype(np.float64)  # e.g. Hounsfield units for CT
    if not np.all(np.isfinite(values)):
        raise InputError(f"{name}: the image has NaN or infinite pixel values")
    centre_width = window or _dicom_window(ds)
    if centre_width is not None:
        c, w = centre_width
        img = np.clip((values - (c - w / 2)) / max(w, 1e-6), 0, 1)
    else:
        img = _minmax(values, name)
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":  # 0 = white in MONOCHROME1
        img = 1 - img
    return img


def _dicom_window(ds) -> tuple[float, float] | None:
    c, w = ds.get("WindowCenter"), ds.get("WindowWidth")
    if c is None or w is None:
        return None
    return _first_value(c), _first_value(w)


def _first_value(v) -> float:
    """DICOM multi-valued windows (several presets) -> the first one."""
    try:
        return float(v[0])
    except TypeError:
        return float(v)


def _minmax(a: np.ndarray, name: str) -> np.ndarray:
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name}: the image has NaN or infinite pixel values")
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _to_channels(a: np.ndarray, channels: int) -> np.ndarray:
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] == 4:
        a = a[..., :3]
    if channels == 1 and a.shape[-1] == 3:
        a = (a @ np.array([0.299, 0.587, 0.114]))[..., None]
    elif channels == 3 and a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return a


def pad_to_square(t: torch.Tensor) -> torch.Tensor:
    """(C, H, W) -> (C, S, S), S = max(H, W), image centred on black."""
    c, h, w = t.shape
    if h == w:
        return t
    s = max(h, w)
    top, left = (s - h) // 2, (s - w) // 2
    return F.pad(t, (left, s - w - left, top, s - h - top))


def save_image(t: torch.Tensor, path: str | Path) -> None:
    """Save a (C, H, W) or (H, W) tensor in [0, 1] as an 8-bit PNG (gray when C is 1 or 3 equal)."""
    a = t.detach().cpu().float().clamp(0, 1)
    if a.ndim == 3:
        a = a.mean(0) if a.shape[0] == 3 else a[0]
    Image.fromarray((a.numpy() * 255).round().astype(np.uint8), mode="L").save(path)
