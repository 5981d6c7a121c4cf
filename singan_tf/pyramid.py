"""Pyramid math: how many scales, what size each one is, and how images move between them.

Pure functions of sizes and tensors; the formulas are the official code's, float
arithmetic included (its `ceil` on 188 * r**9 = 25.000000000000004 gives 26, not 25).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

from .errors import ImageError


@dataclass(frozen=True)
class PyramidSpec:
    """Sizes of every scale, coarsest (0) first, and the exact factor between them."""
    sizes: tuple[tuple[int, int], ...]
    factor: float

    @property
    def num_scales(self) -> int:
        return len(self.sizes)

    @property
    def finest(self) -> tuple[int, int]:
        return self.sizes[-1]


def fit_to_max_size(height: int, width: int, max_size: int) -> tuple[int, int]:
    """Shrink so the long side is at most max_size (never enlarge)."""
    scale = min(max_size / max(height, width), 1.0)
    return math.ceil(height * scale), math.ceil(width * scale)


def pyramid_spec(height: int, width: int, min_size: int, max_size: int,
                 scale_factor: float = 0.75, count_on_fitted: bool = False) -> PyramidSpec:
    """The official `adjust_scales2image` followed by `creat_reals_pyramid`'s sizes.

    The scale count is decided on the ORIGINAL size, then the factor is recomputed on the
    image shrunk to max_size so that the coarsest short side is about min_size. With
    `count_on_fitted` the count is the nearest whole number of `scale_factor` steps from
    the shrunk image's short side down to min_size instead: the official count rounds up
    twice, on two sizes, so that a 168x251 image gets 8 scales (factor 0.76) and a 168x250
    one 9 (0.79).
    """
    if min(height, width) < min_size:
        raise ImageError(f"image is {height}x{width}, smaller than min_size={min_size} on its "
                         "short side; use a larger image or a smaller --min-size")
    fitted_h, fitted_w = fit_to_max_size(height, width, max_size)
    if count_on_fitted:
        stop_scale = max(1, round(math.log(min_size / min(fitted_h, fitted_w), scale_factor)))
    else:
        num_scales = math.ceil(math.log(min_size / min(height, width), scale_factor)) + 1
        scale_to_stop = math.ceil(math.log(min(max_size, max(height, width))
                                           / max(height, width), scale_factor))
        stop_scale = num_scales - scale_to_stop
    if stop_scale < 1 or min(fitted_h, fitted_w) < min_size:
        raise ImageError(f"image is {height}x{width}: after shrinking to max_size={max_size} "
                         f"its short side is below min_size={min_size}; raise --max-size or "
                         "lower --min-size")
    factor = math.pow(min_size / min(fitted_h, fitted_w), 1 / stop_scale)
    sizes = []
    for n in range(stop_scale + 1):
        scale = math.pow(factor, stop_scale - n)
        sizes.append((math.ceil(fitted_h * scale), math.ceil(fitted_w * scale)))
    return PyramidSpec(tuple(sizes), factor)


def consingan_spec(height: int, width: int, min_size: int, max_size: int,
                   stages: int) -> PyramidSpec:
    """ConSinGAN's stage sizes: `stages` sizes from a coarsest short side of about
    min_size to the image shrunk to max_size, denser at the fine end than a geometric
    series (its paper: more stages at high resolution). Stage i < N-1 of N is the shrunk
    image times factor**(1 + (N-2) * ln(N-1-i) / ln(N-1)), factor**(N-1) = min_size over
    the shrunk short side."""
    fitted_h, fitted_w = fit_to_max_size(height, width, max_size)
    if min(fitted_h, fitted_w) < min_size:
        raise ImageError(f"image is {height}x{width}: after shrinking to max_size={max_size} "
                         f"its short side is below min_size={min_size}; use a larger image, "
                         "raise --max-size or lower --min-size")
    last = stages - 1
    factor = math.pow(min_size / min(fitted_h, fitted_w), 1 / last)
    sizes = []
    for i in range(last):
        exponent = 1 + (last - 1) * math.log(last - i) / math.log(last) if last > 1 else 1
        scale = math.pow(factor, exponent)
        sizes.append((math.ceil(fitted_h * scale), math.ceil(fitted_w * scale)))
    return PyramidSpec(tuple(sizes) + ((fitted_h, fitted_w),), factor)


def resize(images: tf.Tensor, size) -> tf.Tensor:
    """Bicubic (Keys a=-0.5) with antialiasing when shrinking; images stay in [-1, 1].

    Not XLA-compilable (no ResizeBicubic kernel), so it stays out of the jitted train step.
    """
    out = tf.image.resize(images, size, method="bicubic", antialias=True)
    return tf.clip_by_value(out, -1.0, 1.0)


def real_pyramid(image: tf.Tensor, spec: PyramidSpec) -> list[tf.Tensor]:
    """Every scale's training image, each resized directly from the finest one."""
    finest = resize(image[None], spec.finest)
    return [resize(finest, size) for size in spec.sizes[:-1]] + [finest]
