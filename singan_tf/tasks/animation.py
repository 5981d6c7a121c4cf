"""Animation: a momentum random walk in noise space around the reconstruction noise.

Frame t at scale n >= start uses z_t = alpha * z_opt + (1 - alpha) * (z_{t-1} + d_t) with
d_t = beta * (z_{t-1} - z_{t-2}) + (1 - beta) * noise, as the official generate_gif.
Scales below `start_scale` keep the reconstruction, so the scene stays put and moves.
"""
from __future__ import annotations

import secrets

import numpy as np
import tensorflow as tf
from PIL import Image

from ..errors import SinGANError
from ..images import to_uint8
from ..pyramid import resize

FRAME_BATCH = 10  # frames per generator call: bounds memory at 250 px


def noise_walk(z_opt: np.ndarray, frames: int, alpha: float, beta: float,
               rng: np.random.Generator) -> np.ndarray:
    """[frames, H, W, C] noise maps drifting with momentum, pulled back towards z_opt."""
    shape = z_opt.shape[1:]
    z_prev1 = 0.95 * z_opt[0] + 0.05 * rng.standard_normal(shape)
    z_prev2 = z_opt[0]
    walk = []
    for _ in range(frames):
        step = beta * (z_prev1 - z_prev2) + (1 - beta) * rng.standard_normal(shape)
        z = alpha * z_opt[0] + (1 - alpha) * (z_prev1 + step)
        z_prev2, z_prev1 = z_prev1, z
        walk.append(z)
    return np.stack(walk).astype(np.float32)


def animate(model, start_scale: int = 2, alpha: float = 0.1, beta: float = 0.9,
            frames: int = 100, seed: int | None = None) -> np.ndarray:
    """uint8 [frames, H, W, 3]."""
    if not 0 <= start_scale < model.num_scales:
        raise SinGANError(f"start scale must be in 0..{model.num_scales - 1}, got {start_scale}")
    if not (0 <= alpha <= 1 and 0 <= beta <= 1):
        raise SinGANError("alpha and beta must lie in [0, 1]")
    if frames < 2:
        raise SinGANError("an animation needs at least 2 frames")
    rng = np.random.default_rng(secrets.randbits(62) if seed is None else seed)
    walks = {n: noise_walk(model.z_opts[n], frames, alpha, beta, rng)
             for n in range(start_scale, model.num_scales)}
    out = []
    for first in range(0, frames, FRAME_BATCH):
        count = min(FRAME_BATCH, frames - first)
        if start_scale == 0:
            x = tf.zeros((count, *model.sizes[0], 3))
        else:
            rec = model.sampler.reconstructions[start_scale - 1][None]
            x = tf.tile(resize(rec, model.sizes[start_scale]), [count, 1, 1, 1])
        for n in range(start_scale, model.num_scales):
            if n > start_scale:
                x = resize(x, model.sizes[n])
            z = walks[n][first:first + count]
            x = model.sampler.generators[n]([model.noise_amps[n] * z + x, x], training=False)
        out.append(to_uint8(x.numpy()))
    return np.concatenate(out)


def save_gif(frames: np.ndarray, path, fps: float = 10) -> None:
    """A looping GIF written with Pillow."""
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], loop=0,
                   duration=max(1, round(1000 / fps)), optimize=False)
