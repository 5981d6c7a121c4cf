"""A trained SinGAN loaded from its model directory: sample and reconstruct."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from . import model_dir as fmt
from .config import config_from_manifest
from .errors import SinGANError
from .limits import CLI_MAX_PIXELS, check_pixels
from .consingan.trained import TrainedGrowingGenerator
from .seeds import resolve_seed
from .trained_pyramid import Pyramid, retargeted_size, to_uint8

SAMPLE_BATCH = 16  # images generated per call by sample_batches; bounds memory for many


class SinGAN:
    """A trained model: its manifest, training images and `Pyramid`. Arrays in and out
    are uint8 HxWx3."""

    def __init__(self, manifest: dict, pyramid: Pyramid, reals, path=None):
        self.manifest = manifest
        self.path = Path(path) if path else None
        self.config = config_from_manifest(manifest)
        self.pyramid = pyramid
        self.reals = [np.asarray(r, np.float32) for r in reals]

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return self.pyramid.sizes

    def discriminator(self, scale: int):
        """D of one scale, read from the model directory (only fine-tuning needs it)."""
        if self.path is None:
            raise SinGANError("this model has no directory to read discriminators from")
        return fmt.load_discriminator(self.path, scale)

    @property
    def num_scales(self) -> int:
        return self.pyramid.num_scales

    @property
    def family(self) -> str:
        return self.config.family

    def require_pyramid(self, task: str) -> None:
        """Injection and animation feed images or noise walks into single scales, which a
        ConSinGAN (whose stages pass features) does not have."""
        if self.family != "singan":
            raise SinGANError(f"{task} needs a SinGAN model (preset paper, fast or quality); "
                              f"this is a {self.family} model, which samples only")

    def sample(self, num: int = 1, scale_h: float = 1.0, scale_w: float = 1.0,
               start_scale: int = 0, seed: int | None = None) -> np.ndarray:
        """`num` random images [num, H, W, 3] uint8, H x W = scale_h x scale_w of the training size.

        start_scale k > 0 keeps the reconstruction below k (the layout of the training
        image) and draws new noise from k up. The same seed gives the same images.
        """
        self.check_sample_args(num, scale_h, scale_w, start_scale)
        seed = resolve_seed(seed)
        out = self.pyramid.sample(tf.constant(seed, tf.int64), tf.constant(num, tf.int32),
                                  tf.constant(scale_h, tf.float32),
                                  tf.constant(scale_w, tf.float32),
                                  tf.constant(start_scale, tf.int32))
        return out["images"].numpy()

    def output_size(self, scale_h: float = 1.0, scale_w: float = 1.0) -> tuple[int, int]:
        """The size of a sample at scale_h x scale_w of the training size."""
        return tuple(int(v) for v in retargeted_size(*self.sizes[-1], scale_h, scale_w).numpy())

    def sample_batches(self, num: int, scale_h: float = 1.0, scale_w: float = 1.0,
                       start_scale: int = 0, seed: int | None = None,
                       max_pixels: int = CLI_MAX_PIXELS):
        """`num` samples as (index of the first, uint8 batch) pairs, each batch under
        `max_pixels` output pixels; batch b draws with seed + b. The arguments are checked
        now, before the first batch is asked for."""
        self.check_sample_args(num, scale_h, scale_w, start_scale)
        height, width = self.output_size(scale_h, scale_w)
        check_pixels(height * width, max_pixels, f"a {height}x{width} sample")
        batch_size = min(SAMPLE_BATCH, max_pixels // (height * width))
        seed = resolve_seed(seed)

        def batches():
            for batch, first in enumerate(range(0, num, batch_size)):
                count = min(batch_size, num - first)
                yield first, self.sample(count, scale_h, scale_w, start_scale, seed=seed + batch)
        return batches()

    def reconstruct(self) -> np.ndarray:
        """The finest reconstruction from the fixed noise: should look like the training image."""
        return to_uint8(self.pyramid.reconstructions[-1]).numpy()

    def check_start_scale(self, start_scale: int, lowest: int = 0, what: str = "") -> None:
        """start_scale in lowest..N-1 (injection needs a scale below it: lowest 1)."""
        if not lowest <= start_scale < self.num_scales:
            raise SinGANError(f"start scale{what} must be in {lowest}..{self.num_scales - 1}, "
                              f"got {start_scale}")

    def check_sample_args(self, num, scale_h, scale_w, start_scale) -> None:
        if not isinstance(num, (int, np.integer)) or num < 1:
            raise SinGANError(f"number of samples must be a positive integer, got {num!r}")
        for name, value in (("scale_h", scale_h), ("scale_w", scale_w)):
            if not (value > 0 and math.isfinite(value)):
                raise SinGANError(f"{name} must be a finite positive number, got {value!r}")
        self.check_start_scale(start_scale)
        for h, w in self.sizes:
            if round(h * scale_h) < 1 or round(w * scale_w) < 1:
                raise SinGANError(f"scale {scale_h}x{scale_w} shrinks a {h}x{w} scale to nothing")


def load(path) -> SinGAN:
    """Load a finished model directory (see README "Model directory")."""
    manifest = fmt.read_manifest(path)
    done, total = len(manifest["scales"]), manifest["num_scales"]
    if done < total:
        raise SinGANError(f"{path} is incomplete: {done} of {total} scales trained; "
                          f"finish it with `singan-tf fit IMAGE -o {path} --resume`")
    reals = fmt.load_reals(path, total)
    if config_from_manifest(manifest).family == "consingan":
        generator, _, z_opts = fmt.load_growing_generator(path, manifest)
        pyramid = TrainedGrowingGenerator(generator, [s["noise_amp"] for s in manifest["scales"]],
                                          z_opts, manifest["sizes"])
    else:
        pyramid = Pyramid(fmt.load_trained_scales(path, manifest))
    return SinGAN(manifest, pyramid, reals, path=path)
