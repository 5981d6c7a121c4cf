"""Quality metrics for single-image generators (README "Evaluating a model").

- diversity: the SinGAN paper's; per-pixel std of luma over the samples, averaged over
  pixels, divided by the std of the training image's luma (higher = more varied).
- patch SWD: multi-scale patch sliced-Wasserstein distance between the training image's
  7x7 RGB patches and a sample's, on a 4-level Gaussian pyramid, in [0, 1] intensity units
  (lower = closer patch statistics); `centered` removes each patch's mean colour first.
- NIQE and noise_sigma (naturalness.py): no-reference naturalness (lower = more natural),
  read only next to the noise level, since on small images NIQE falls when grain is added.
- SIFID: Frechet distance of InceptionV3's first-block features, only with local weights.

Read SWD together with diversity: copying the training image scores SWD 0, diversity 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import linalg, ndimage

from .naturalness import luma, niqe, noise_sigma

BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
SWD_LEVELS, SWD_PATCH, SWD_PROJECTIONS, SWD_MAX_PATCHES = 4, 7, 128, 65536


def _crop_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top:top + height, left:left + width]


def diversity(real: np.ndarray, samples: list[np.ndarray]) -> float:
    """Images as floats in [0, 1], HxWx3; samples of mixed sizes are centre-cropped."""
    if len(samples) < 2:
        raise ValueError("diversity needs at least 2 samples")
    height = min(s.shape[0] for s in samples)
    width = min(s.shape[1] for s in samples)
    stack = luma(np.stack([_crop_to(s, height, width) for s in samples]))
    spread = luma(real).std()
    return float(stack.std(axis=0).mean() / spread) if spread > 0 else float("nan")


def gaussian_pyramid(image: np.ndarray, levels: int = SWD_LEVELS,
                     min_size: int = 2 * SWD_PATCH) -> list[np.ndarray]:
    """Level 0 is the image; each next level is blurred (binomial 5-tap) and halved."""
    pyramid = [np.asarray(image, np.float32)]
    while len(pyramid) < levels and min(pyramid[-1].shape[:2]) // 2 >= min_size:
        blurred = ndimage.correlate1d(pyramid[-1], BINOMIAL, axis=0, mode="reflect")
        blurred = ndimage.correlate1d(blurred, BINOMIAL, axis=1, mode="reflect")
        pyramid.append(np.ascontiguousarray(blurred[::2, ::2]))
    return pyramid


def patches(image: np.ndarray, size: int = SWD_PATCH, centered: bool = False) -> np.ndarray:
    """Every size x size patch as a row, laid out channel-major (C, size, size)."""
    windows = np.lib.stride_tricks.sliding_window_view(image, (size, size), axis=(0, 1))
    rows = windows.reshape(-1, image.shape[2], size * size)
    if centered:
        rows = rows - rows.mean(axis=2, keepdims=True)
    return rows.reshape(rows.shape[0], -1)


def projection_directions(dim: int, count: int, level: int, seed: int = 0) -> np.ndarray:
    """Fixed random unit directions; seeded as ../shared/eval does so values compare."""
    directions = np.random.default_rng([seed, level, dim]).standard_normal((dim, count))
    return (directions / np.linalg.norm(directions, axis=0, keepdims=True)).astype(np.float32)


def swd_signature(image: np.ndarray, centered: bool = False, seed: int = 0) -> list[np.ndarray]:
    """Per pyramid level, the sorted projections of the image's patches."""
    signature = []
    for level, layer in enumerate(gaussian_pyramid(image)):
        rows = patches(layer, centered=centered)
        if len(rows) > SWD_MAX_PATCHES:
            rng = np.random.default_rng([seed, level, len(rows)])
            rows = rows[np.sort(rng.choice(len(rows), SWD_MAX_PATCHES, replace=False))]
        projected = rows.astype(np.float32) @ projection_directions(rows.shape[1],
                                                                    SWD_PROJECTIONS, level, seed)
        signature.append(np.sort(projected, axis=0))
    return signature


def _wasserstein_1d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """W1 per column of two sorted samples (quantiles matched when their sizes differ)."""
    if len(a) == len(b):
        return np.abs(a - b).mean(axis=0)
    count = max(len(a), len(b))
    quantiles = (np.arange(count) + 0.5) / count
    index_a = np.minimum((quantiles * len(a)).astype(int), len(a) - 1)
    index_b = np.minimum((quantiles * len(b)).astype(int), len(b) - 1)
    return np.abs(a[index_a] - b[index_b]).mean(axis=0)


def patch_swd(real_signature: list[np.ndarray], sample: np.ndarray,
              centered: bool = False) -> float:
    sample_signature = swd_signature(sample, centered)
    levels = min(len(real_signature), len(sample_signature))
    return float(np.mean([_wasserstein_1d(real_signature[i], sample_signature[i]).mean()
                          for i in range(levels)]))


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two sets of feature rows."""
    mu_a, mu_b = features_a.mean(axis=0), features_b.mean(axis=0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def inception_features(weights_path):
    """InceptionV3 up to the 64-channel block before the first max-pool, from local weights."""
    import keras
    full = keras.applications.InceptionV3(include_top=False, weights=str(weights_path))
    pool = next(layer for layer in full.layers
                if isinstance(layer, keras.layers.MaxPooling2D))
    model = keras.Model(full.input, pool.input)

    def features(image):  # [0, 1] HxWx3 -> (positions, 64)
        out = model(keras.applications.inception_v3.preprocess_input(image[None] * 255.0))
        return np.asarray(out).reshape(-1, out.shape[-1])
    return features


def naturalness_report(real: np.ndarray, samples: list[np.ndarray]) -> dict:
    """NIQE of the real image and the samples' mean, with both noise levels beside them.
    `niqe` is None, and `niqe_error` says why, for images under one 96x96 NIQE block."""
    report = {"noise_sigma": {"real": noise_sigma(real),
                              "samples_mean": float(np.mean([noise_sigma(s) for s in samples]))}}
    try:
        per_sample = [niqe(s) for s in samples]
        report["niqe"] = {"real": niqe(real), "samples_mean": float(np.mean(per_sample)),
                          "per_sample": per_sample}
    except ValueError as err:
        report["niqe"], report["niqe_error"] = None, str(err)
    return report


def evaluate(real: np.ndarray, samples: list[np.ndarray], inception_weights=None) -> dict:
    """All metrics for one training image and its samples (floats in [0, 1])."""
    result = {"num_samples": len(samples)}
    result["diversity"] = diversity(real, samples) if len(samples) > 1 else None
    for key, centered in (("swd", False), ("swd_centered", True)):
        signature = swd_signature(real, centered)
        values = [patch_swd(signature, s, centered) for s in samples]
        result[key] = float(np.mean(values))
        result[f"{key}_per_sample"] = values
    result.update(naturalness_report(real, samples))
    if inception_weights:
        features = inception_features(inception_weights)
        real_features = features(real)
        result["sifid"] = float(np.mean([frechet_distance(real_features, features(s))
                                         for s in samples]))
    else:
        result["sifid"] = None
    return result


def evaluate_source(real_path, source, num: int = 50, seed: int = 0,
                    inception_weights=None) -> tuple[dict, str, list[str]]:
    """`evaluate` on files: SOURCE is a model directory (num samples drawn with seed) or a
    folder of images. The real image is resized to the samples' size when it differs, so
    patches compare at one scale. Returns (result, where the samples came from, notes)."""
    from PIL import Image

    from .errors import SinGANError
    from .images import image_files, load_image, to_uint8
    from .singan import load

    source = Path(source)
    if (source / "singan.json").is_file():
        samples = list(load(source).sample(num, seed=seed))
        origin = f"{num} samples of {source} (seed {seed})"
    elif source.is_dir():
        files = image_files(source)
        if len(files) < 2:
            raise SinGANError(f"{source} holds {len(files)} images; evaluate needs at least 2")
        samples = [to_uint8(load_image(f)[0]) for f in files]
        origin = f"{len(files)} images in {source}"
    else:
        raise SinGANError(f"{source} is neither a model directory nor a folder of images")
    notes = []
    real = to_uint8(load_image(real_path)[0])
    height, width = samples[0].shape[:2]
    if real.shape[:2] != (height, width):
        notes.append(f"real image is {real.shape[0]}x{real.shape[1]}; resized to the samples' "
                     f"{height}x{width} so patches compare at one scale")
        real = np.asarray(Image.fromarray(real).resize((width, height), Image.BICUBIC))
    result = evaluate(real / 255.0, [s / 255.0 for s in samples], inception_weights)
    return result, origin, notes
