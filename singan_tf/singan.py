"""A trained SinGAN loaded from its model directory: sample and reconstruct."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from . import model_dir as fmt
from .config import SinGANConfig
from .errors import SinGANError
from .sampler import PyramidSampler, reconstruct_pyramid, to_uint8
from .seeds import resolve_seed


class SinGAN:
    """The frozen pyramid of generators. Arrays in and out are uint8 HxWx3."""

    def __init__(self, manifest: dict, generators, z_opts, reals, path=None):
        self.manifest = manifest
        self.path = Path(path) if path else None
        self.config = SinGANConfig.from_dict(manifest["config"])
        self.sizes = [tuple(s) for s in manifest["sizes"]]
        self.noise_amps = [float(s["noise_amp"]) for s in manifest["scales"]]
        self.generators = list(generators)
        self.z_opts = [np.asarray(z, np.float32) for z in z_opts]
        self.reals = [np.asarray(r, np.float32) for r in reals]
        reconstructions = reconstruct_pyramid(self.generators, self.noise_amps, self.z_opts,
                                              self.sizes)
        self.sampler = PyramidSampler(self.generators, self.noise_amps, self.sizes,
                                      reconstructions)

    def discriminator(self, scale: int):
        """D of one scale, read from the model directory (only fine-tuning needs it)."""
        if self.path is None:
            raise SinGANError("this model has no directory to read discriminators from")
        return fmt.load_scale(self.path, scale).discriminator

    @property
    def num_scales(self) -> int:
        return len(self.generators)

    def sample(self, num: int = 1, scale_h: float = 1.0, scale_w: float = 1.0,
               start_scale: int = 0, seed: int | None = None) -> np.ndarray:
        """`num` random images [num, H, W, 3] uint8, H x W = scale_h x scale_w of the training size.

        start_scale k > 0 keeps the reconstruction below k (the layout of the training
        image) and draws new noise from k up. The same seed gives the same images.
        """
        self.check_sample_args(num, scale_h, scale_w, start_scale)
        seed = resolve_seed(seed)
        out = self.sampler.sample(tf.constant(seed, tf.int64), tf.constant(num, tf.int32),
                                  tf.constant(scale_h, tf.float32),
                                  tf.constant(scale_w, tf.float32),
                                  tf.constant(start_scale, tf.int32))
        return out["images"].numpy()

    def reconstruct(self) -> np.ndarray:
        """The finest reconstruction from the fixed noise: should look like the training image."""
        return to_uint8(self.sampler.reconstructions[-1]).numpy()

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
    scales = [fmt.load_scale(path, n) for n in range(total)]
    return SinGAN(manifest, [s.generator for s in scales], [s.z_opt for s in scales], reals,
                  path=path)
