"""Super-resolution: apply the finest generator again and again, each time on the previous
output upsampled by about 2**(1/3), until the image is `factor` times larger.

Back-projection (on by default; off gives the reference's output): after each step the
output's low band is corrected so that shrinking it gives back that step's input, as
ZSSR does (one iteration of Irani & Peleg's iterative back-projection). G_N's passes add
detail but also colour casts and texture whose low frequencies survive shrinking, and
they compound over the steps: on a 64 px zebra model x4, the output shrunk back was
24.6 dB from the input without, 34.7 dB with (bicubic up and down: 31.1 dB), and the
added detail stays (RMS from bicubic 21.3 and 21.0 levels; scripts/sr_fidelity.py).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..config import sr_steps
from ..errors import SinGANError
from ..images import to_uint8
from ..pyramid import resize
from ..seeds import resolve_seed


def check_super_resolution(model, factor: float | None) -> float:
    """The factor to use (default: the one the model was trained for), after checking it."""
    factor = factor or model.manifest.get("sr_factor") or 4.0
    if not factor > 1:
        raise SinGANError(f"super-resolution factor must be > 1, got {factor}")
    if model.manifest.get("task") != "sr":
        raise SinGANError("this model was trained for generation, not super-resolution; train "
                          "one with `singan-tf fit LR.png --task sr --sr-factor 4 -o MODEL`")
    return factor


def upscale(pyramid, image, factor: float, seed, back_projection: bool = True):
    """float [1, h, w, 3] -> [1, round(h * factor), round(w * factor), 3] by the pyramid's
    finest scale, in TF ops so that the exported `super_resolve` signature runs exactly this."""
    finest = pyramid.num_scales - 1
    channels = pyramid.noise_channels(finest)
    steps = sr_steps(factor)
    seed = tf.cast(seed, tf.int64)
    size_in = tf.cast(tf.shape(image)[1:3], tf.float32)
    x = image
    for step in range(1, steps + 1):
        size = tf.cast(tf.round(size_in * factor ** (step / steps)), tf.int32)
        upsampled = resize(x, size)
        z = tf.random.stateless_normal(tf.concat([[1], size, [channels]], axis=0),
                                       seed=tf.stack([seed, tf.constant(step, tf.int64)]))
        out = pyramid.step(finest, z, upsampled)
        if back_projection:
            lost = x - resize(out, tf.shape(x)[1:3])  # what shrinking the output misses
            out = tf.clip_by_value(out + resize(lost, size), -1.0, 1.0)
        x = out
    return x


def super_resolve(model, factor: float | None = None, image: np.ndarray | None = None,
                  seed: int | None = None, back_projection: bool = True) -> np.ndarray:
    """uint8 HxWx3 `factor` times the size of `image` (default: the training image).
    back_projection=False gives the reference's output (see the module docstring)."""
    factor = check_super_resolution(model, factor)
    x = tf.constant((model.reals[-1] if image is None else image)[None], tf.float32)
    seed = resolve_seed(seed)
    out = upscale(model.pyramid, x, factor, seed, back_projection)
    return to_uint8(out[0].numpy())
