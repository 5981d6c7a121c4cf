"""Animation: a momentum random walk in noise space around the reconstruction noise.

Frame t at scale n >= start uses z_t = alpha * z_opt + (1 - alpha) * (z_{t-1} + d_t) with
d_t = beta * (z_{t-1} - z_{t-2}) + (1 - beta) * noise, as the official generate_gif.
Scales below `start_scale` keep the reconstruction, so the scene stays put and moves.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from ..atomic import atomic_file
from ..errors import SinGANError
from ..images import to_uint8
from ..seeds import resolve_seed

FRAME_BATCH = 10  # frames per generator call: bounds memory at 250 px


class NoiseWalk:
    """One scale's noise drifting with momentum, pulled back towards z_opt, drawn a batch
    of frames at a time (its state is the last two maps), so any number of frames costs
    the memory of one batch."""

    def __init__(self, z_opt: np.ndarray, alpha: float, beta: float, rng: np.random.Generator):
        self.z_opt, self.alpha, self.beta, self.rng = z_opt[0], alpha, beta, rng
        self.prev1 = 0.95 * self.z_opt + 0.05 * rng.standard_normal(self.z_opt.shape)
        self.prev2 = self.z_opt

    def take(self, count: int) -> np.ndarray:
        """The next `count` noise maps [count, H, W, C]."""
        maps = []
        for _ in range(count):
            step = self.beta * (self.prev1 - self.prev2) + \
                (1 - self.beta) * self.rng.standard_normal(self.z_opt.shape)
            z = self.alpha * self.z_opt + (1 - self.alpha) * (self.prev1 + step)
            self.prev2, self.prev1 = self.prev1, z
            maps.append(z)
        return np.stack(maps).astype(np.float32)


def animation_frames(model, start_scale: int = 2, alpha: float = 0.1, beta: float = 0.9,
                     frames: int = 100, seed: int | None = None):
    """Yield the animation's uint8 frames [H, W, 3] one by one, generated in batches."""
    model.require_pyramid("animation")
    model.check_start_scale(start_scale)
    if not (0 <= alpha <= 1 and 0 <= beta <= 1):
        raise SinGANError("alpha and beta must lie in [0, 1]")
    if frames < 2:
        raise SinGANError("an animation needs at least 2 frames")
    rng = np.random.default_rng(resolve_seed(seed))
    pyramid = model.pyramid
    walks = {n: NoiseWalk(pyramid.scales[n].z_opt, alpha, beta, rng)
             for n in range(start_scale, model.num_scales)}
    return _frames(pyramid, start_scale, walks, frames)


def _frames(pyramid, start_scale, walks, frames):
    for first in range(0, frames, FRAME_BATCH):
        count = min(FRAME_BATCH, frames - first)
        x = pyramid.run(0, count, pyramid.sizes, start_scale,
                        noise=lambda n, shape, count=count: walks[n].take(count))
        yield from to_uint8(x.numpy())


def animate(model, start_scale: int = 2, alpha: float = 0.1, beta: float = 0.9,
            frames: int = 100, seed: int | None = None) -> np.ndarray:
    """All frames at once, uint8 [frames, H, W, 3] (`animation_frames` streams them)."""
    return np.stack(list(animation_frames(model, start_scale, alpha, beta, frames, seed)))


def frame_milliseconds(fps: float) -> int:
    """A frame's duration as GIF stores it: 10 ms units in 16 bits (10 ms .. 655.35 s)."""
    return max(10, min(655_350, round(1000 / fps)))


def save_gif(frames, path, fps: float = 10) -> None:
    """A looping GIF written with Pillow from an iterable of frames, atomically."""
    frames = iter(frames)
    first = Image.fromarray(next(frames))
    with atomic_file(path, suffix=".gif") as tmp:
        first.save(tmp, save_all=True, append_images=(Image.fromarray(f) for f in frames),
                   loop=0, duration=frame_milliseconds(fps), optimize=False)
