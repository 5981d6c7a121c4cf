"""Image files in and out: validation, colour-mode conversion, the default image, contact sheets.

Arrays in the library are float32 HxWx3 in [-1, 1]; files are 8-bit RGB PNGs.
"""
from __future__ import annotations

import importlib.resources
import math
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from .atomic import atomic_file
from .errors import ImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


def image_files(directory) -> list[Path]:
    """The image files directly in a directory (by suffix), sorted by name."""
    return sorted(p for p in Path(directory).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def default_image_path() -> Path:
    """A natural photo shipped in the scikit-image wheel: a SpaceX launch (public domain)."""
    return Path(str(importlib.resources.files("skimage") / "data" / "rocket.jpg"))


def load_image(path, max_side: int | None = None) -> tuple[np.ndarray, list[str]]:
    """Read any Pillow-readable image as float32 RGB in [-1, 1].

    max_side: an image whose long side exceeds twice this is shrunk by Pillow while it is
    read (JPEG decodes at 1/2..1/8 size, then an integer box reduction), so a huge photo
    never exists as floats at full size; the caller's resize does the final step.
    Returns the array and notes on what was converted, for the caller to show.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"image not found: {path}")
    if path.is_dir():
        raise ImageError(f"expected an image file, got a directory: {path}")
    notes = []
    try:
        with Image.open(path) as im:
            if max_side:
                im.draft(None, (2 * max_side, 2 * max_side))
            im.load()
            if getattr(im, "n_frames", 1) > 1:
                notes.append(f"{path.name} has {im.n_frames} frames; using the first")
            factor = max(im.size) // (2 * max_side) if max_side else 1
            if factor > 1:
                notes.append(f"read the {im.height}x{im.width} image at 1/{factor} size "
                             f"to save memory")
                im = im.reduce(factor)
            ImageOps.exif_transpose(im, in_place=True)  # after reducing: no full-size copy
    except UnidentifiedImageError:
        raise ImageError(f"not an image Pillow can read: {path}") from None
    except Image.DecompressionBombError as err:
        raise ImageError(f"refusing {path}: {err}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"cannot read image {path}: {err}") from None
    array, conversion_notes = _to_rgb(im)
    return array, notes + conversion_notes


def _to_rgb(im: Image.Image) -> tuple[np.ndarray, list[str]]:
    notes = []
    mode = im.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "F":
        values = np.asarray(im, dtype=np.float64)
        if mode == "F":
            top = max(values.max(), 1e-12)   # float images have no fixed range
        elif values.max() > 255:
            top = 65535.0
        else:
            top = 255.0                      # 8-bit values stored in a wide mode
        gray = np.clip(values / top, 0.0, 1.0)
        rgb = np.repeat(gray[..., None], 3, axis=-1)
        notes.append(f"converted {mode} (high bit depth grayscale) to 8-bit RGB")
        rgb = np.round(rgb * 255.0) / 255.0
    else:
        has_alpha = "A" in im.getbands() or (mode == "P" and "transparency" in im.info)
        if has_alpha:
            notes.append(f"dropped the alpha channel of a {mode} image: transparent pixels "
                         f"keep the colour stored under them")
            im = im.convert("RGBA")
        elif mode != "RGB":
            notes.append(f"converted {mode} image to RGB")
        rgb = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
    return (rgb * 2.0 - 1.0).astype(np.float32), notes


_MASK_MODES = {"1", "L", "P", "I", "I;16", "I;16B", "I;16L", "RGB", "RGBA", "LA"}


def image_size(path) -> tuple[int, int]:
    """Height and width of an image file as `load_image` reads it at full size (EXIF
    rotation applied), from its header alone."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            if im.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8):  # turned 90 deg
                width, height = height, width
    except (UnidentifiedImageError, OSError) as err:
        raise ImageError(f"cannot read image {path}: {err}") from None
    return height, width


def load_mask(path, size: tuple[int, int] | None = None, notes: list | None = None,
              max_side: int | None = None) -> np.ndarray:
    """A mask as float32 HxW in [0, 1] (white = 1), checked to be `size` when given.

    Single-channel or RGB files; an alpha channel is dropped (as the official code does:
    the shared editing mask is RGBA with an opaque alpha). Other modes (CMYK, YCbCr, ...)
    are refused. max_side: as in `load_image`, a large mask is box-reduced while read.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"mask not found: {path}")
    try:
        with Image.open(path) as im:
            if im.mode not in _MASK_MODES:
                raise ImageError(f"mask {path} is {im.mode}; expected a single-channel or RGB "
                                 "image")
            if size is not None and (im.height, im.width) != tuple(size):
                raise ImageError(f"mask {path} is {im.height}x{im.width} but its image is "
                                 f"{size[0]}x{size[1]}; they must be the same size")
            im.load()
            if "A" in im.getbands() and notes is not None:
                notes.append(f"dropped the alpha channel of the mask {path.name}")
            im = im.convert("I") if im.mode.startswith("I") else im.convert("RGB").convert("L")
            factor = max(im.size) // (2 * max_side) if max_side else 1
            if factor > 1:
                im = im.reduce(factor)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise ImageError(f"cannot read mask {path}: {err}") from None
    mask = np.asarray(im, np.float32)
    if im.mode.startswith("I"):
        return mask / (65535.0 if mask.max() > 255 else 255.0)
    return mask / 255.0


def to_uint8(images) -> np.ndarray:
    """[-1, 1] floats -> uint8, rounding to nearest."""
    return np.clip(np.round((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def save_png(path, image_uint8: np.ndarray) -> None:
    """Write atomically: a reader never sees a half-written file."""
    with atomic_file(path) as tmp:
        Image.fromarray(image_uint8).save(tmp, format="PNG")


def contact_sheet(images: list[np.ndarray], labels: list[str] | None = None,
                  pad: int = 4, label_height: int = 14) -> np.ndarray:
    """uint8 images side by side on white, each with a caption above it. Images too narrow
    for their captions (a coarse scale's preview) are all enlarged by the same integer
    factor, nearest neighbour so their pixels stay visible, until every caption fits."""
    font = ImageFont.load_default()
    factor = max([math.ceil(font.getlength(label) / im.shape[1])
                  for im, label in zip(images, labels or [])] + [1])
    images = [np.asarray(Image.fromarray(im).resize(
        (im.shape[1] * factor, im.shape[0] * factor), Image.NEAREST)) for im in images]
    height = max(im.shape[0] for im in images)
    width = sum(im.shape[1] for im in images) + pad * (len(images) + 1)
    top = label_height if labels else 0
    sheet = Image.new("RGB", (width, height + top + 2 * pad), "white")
    draw = ImageDraw.Draw(sheet)
    x = pad
    for i, im in enumerate(images):
        sheet.paste(Image.fromarray(im), (x, top + pad))
        if labels:
            draw.text((x, 1), labels[i], fill="black", font=font)
        x += im.shape[1] + pad
    return np.asarray(sheet)
