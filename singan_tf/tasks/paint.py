"""Paint-to-image: inject a clipart or painting at a coarse scale.

With `quantize`, the paint is mapped to the training image's 5 main colours (k-means) and
G_K is fine-tuned on random-path inputs quantized to the same colours, as the reference
does, so it learns to turn flat colour regions into texture.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from scipy.cluster.vq import kmeans2, vq

from ..images import to_uint8
from ..scale_training import train_scale
from .injection import check_injection_scale, inject, load_reference

NUM_COLOURS = 5


@dataclass
class PaintResult:
    image: np.ndarray              # uint8 HxWx3
    quantized_paint: np.ndarray | None
    notes: list


def main_colours(image: np.ndarray, k: int = NUM_COLOURS, seed: int = 0) -> np.ndarray:
    """The k k-means centres of an image's pixels (float RGB in [-1, 1])."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    centres, _ = kmeans2(pixels, k, minit="++", seed=seed)
    return centres.astype(np.float32)


def quantize(image: np.ndarray, centres: np.ndarray) -> np.ndarray:
    codes, _ = vq(image.reshape(-1, 3).astype(np.float64), centres.astype(np.float64))
    return centres[codes].reshape(image.shape)


def quantize_tf(images, centres):
    """Nearest-centre colours for a batch of images, inside the tf.data pipeline."""
    distances = tf.reduce_sum(tf.square(images[..., None, :] - centres), axis=-1)
    return tf.gather(centres, tf.argmin(distances, axis=-1))


def finetune_generator(model, scale: int, centres: np.ndarray, iterations: int, seed: int = 0,
                       verbose: int = 1) -> keras.Model:
    """Copy of G_scale trained further on quantized random-path inputs (other scales frozen)."""
    pyramid = model.pyramid
    trained = pyramid.scales[scale]
    centres_tf = tf.constant(centres)
    tuned, _ = train_scale(model.config, scale, tf.constant(model.reals[scale][None]),
                           pyramid.coarser(scale), pyramid.reconstruction_input(scale),
                           trained.noise_amp, trained.z_opt, seed, iterations,
                           start_from=(trained.generator, model.discriminator(scale)),
                           transform=lambda prevs: quantize_tf(prevs, centres_tf),
                           verbose=2 if verbose else 0)
    tuned.generator.trainable = False
    return tuned.generator


def paint2image(model, paint_path, start_scale: int = 1, quantize_colours: bool = False,
                seed: int | None = None, finetune_iters: int | None = None,
                verbose: int = 1) -> PaintResult:
    check_injection_scale(model, start_scale)
    notes = []
    paint, _ = load_reference(model, paint_path, notes, "paint")
    pyramid, quantized = None, None
    if quantize_colours:
        centres = main_colours(model.reals[start_scale])
        quantized = quantize(paint, centres)
        iterations = finetune_iters or max(1, model.config.iters_per_scale // 2)
        notes.append(f"fine-tuned G_{start_scale} for {iterations} iterations on the "
                     f"{NUM_COLOURS} main colours")
        tuned = finetune_generator(model, start_scale, centres, iterations, verbose=verbose)
        pyramid = model.pyramid.with_generator(start_scale, tuned)
        paint = quantized
    out = inject(model, paint, start_scale, seed=seed, pyramid=pyramid)[0]
    return PaintResult(to_uint8(out), None if quantized is None else to_uint8(quantized), notes)
