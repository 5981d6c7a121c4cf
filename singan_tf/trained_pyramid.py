"""The trained pyramid: every finished scale's generator, noise amplitude, reconstruction
noise, size and reconstruction in one object, with SinGAN's one forward step and one run
over the scales.

Training (the random path of the coarser scales), sampling, reconstruction, injection
(paint, edit, harmonize), super-resolution, animation and the exported SavedModel all run
through `Pyramid`, so they agree bit for bit. Noise comes from stateless random ops keyed
by (seed, scale), so the same seed gives the same images anywhere, unless a caller passes
its own noise (the animation's walk).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .models import InferenceGenerator
from .pyramid import resize

SAMPLE_SIGNATURE = [
    tf.TensorSpec([], tf.int64, name="seed"),
    tf.TensorSpec([], tf.int32, name="num_samples"),
    tf.TensorSpec([], tf.float32, name="scale_h"),
    tf.TensorSpec([], tf.float32, name="scale_w"),
    tf.TensorSpec([], tf.int32, name="start_scale"),
]


def to_uint8(images):
    """[-1, 1] floats -> uint8 (round half to even, as numpy's round in images.to_uint8)."""
    return tf.cast(tf.round(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def forward_step(generator, noise_amp, z, prev):
    """SinGAN's one forward step, G_n(amp * z + prev, prev) in inference mode."""
    return generator([noise_amp * z + prev, prev], training=False)


MAX_SIDE = 2 ** 30  # retargeted sides are clamped here, so an absurd scale cannot overflow
SAMPLE_CHUNK = 4   # samples generated together: a request's memory is that of one chunk


def retargeted_size(height, width, scale_h, scale_w):
    """A scale's size when sampling at scale_h x scale_w of the training size (round half
    even, at least 1); TF ops, so the exported graph and the server's check agree."""
    def scaled(length, factor):
        value = tf.round(tf.cast(length, tf.float32) * tf.cast(factor, tf.float32))
        return tf.cast(tf.clip_by_value(value, 1.0, MAX_SIDE), tf.int32)
    return tf.stack([scaled(height, scale_h), scaled(width, scale_w)])


def in_chunks(num_samples, draw):
    """uint8 images of `draw(first, count)` (float samples first..first+count-1), drawn
    SAMPLE_CHUNK at a time so that a request's memory is that of one chunk."""
    chunks = (num_samples + SAMPLE_CHUNK - 1) // SAMPLE_CHUNK

    def chunk(i, images):
        first = i * SAMPLE_CHUNK
        count = tf.minimum(SAMPLE_CHUNK, num_samples - first)
        return i + 1, images.write(i, to_uint8(draw(first, count)))

    images = tf.TensorArray(tf.uint8, size=chunks, infer_shape=False)
    _, images = tf.while_loop(lambda i, _: i < chunks, chunk, [tf.constant(0), images],
                              parallel_iterations=1)  # one chunk in memory at a time
    return images.concat()


def keyed_noise(shape, seed, level):
    """Standard normal noise of one scale or stage, stateless and keyed by (seed, level):
    the same seed draws the same noise anywhere."""
    return tf.random.stateless_normal(
        shape, seed=tf.random.experimental.stateless_fold_in(seed, level))


def seed_pair(seed):
    """A scalar seed -> the [seed, 0] pair stateless random ops take (a pair stays)."""
    seed = tf.cast(seed, tf.int64)
    return tf.stack([seed, tf.zeros_like(seed)]) if seed.shape.rank == 0 else seed


def branch(pred, true_fn, false_fn):
    """tf.cond for a tensor predicate; plain Python when it is known while tracing."""
    if isinstance(pred, bool):
        return true_fn() if pred else false_fn()
    return tf.cond(pred, true_fn, false_fn)


@dataclass(frozen=True)
class TrainedScale:
    """What training leaves of one scale."""
    generator: object         # the Keras Generator (saving, fine-tuning)
    noise_amp: float
    z_opt: np.ndarray         # [1, H, W, noise channels]: the reconstruction noise
    size: tuple[int, int]


class Pyramid(tf.Module):
    """Frozen scales 0..K-1, coarsest first, and their reconstructions.

    `reconstructions[n]` is scale n's output on the reconstruction path (fixed z_opt);
    starting a sample at scale k > 0 feeds it the upsampled `reconstructions[k-1]`.
    Generators run as snapshots with BatchNorm folded in (`InferenceGenerator`): make a
    new Pyramid (`with_generator`) after changing a generator's weights.
    """

    def __init__(self, scales, reconstructions=None):
        super().__init__(name="pyramid")
        self.scales = list(scales)
        self._runners = [InferenceGenerator(s.generator) for s in self.scales]
        if reconstructions is None:
            reconstructions = self._reconstruct()
        self.reconstructions = [tf.Variable(r, trainable=False, name=f"reconstruction_{n}")
                                for n, r in enumerate(reconstructions)]

    # ------------------------------------------------------------- facts
    @property
    def num_scales(self) -> int:
        return len(self.scales)

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return [tuple(int(v) for v in s.size) for s in self.scales]

    def with_generator(self, n: int, generator) -> "Pyramid":
        """The same pyramid with G_n replaced (paint-to-image's fine-tuned one); the
        reconstructions stay those of the trained model, as injection expects."""
        scales = list(self.scales)
        scales[n] = TrainedScale(generator, scales[n].noise_amp, scales[n].z_opt,
                                 scales[n].size)
        return Pyramid(scales, [r.numpy() for r in self.reconstructions])

    def extended(self, scale: TrainedScale, reconstruction) -> "Pyramid":
        """This pyramid with one more (finer) scale, whose reconstruction is known."""
        return Pyramid(self.scales + [scale],
                       [r.numpy() for r in self.reconstructions] + [reconstruction])

    def coarser(self, n: int) -> "Pyramid":
        """Scales 0..n-1: the frozen pyramid that feeds scale n while it trains."""
        return Pyramid(self.scales[:n], [r.numpy() for r in self.reconstructions[:n]])

    # ------------------------------------------------------- one step, one run
    def step(self, n: int, z, prev):
        """Scale n's forward step on its input `prev` with noise `z`."""
        return forward_step(self._runners[n], self.scales[n].noise_amp, z, prev)

    def noise_channels(self, n: int) -> int:
        """Scale n's noise channels, those of its z_opt (see SinGANConfig.noise_channels)."""
        return int(self.scales[n].z_opt.shape[-1])

    def noise(self, n: int, shape, seed):
        """Scale n's noise for `seed`: stateless, keyed by (seed, n)."""
        return keyed_noise(tf.concat([shape[:3], [self.noise_channels(n)]], axis=0), seed, n)

    def reconstruction_input(self, n: int, size=None):
        """Scale n's input on the reconstruction path [1, H, W, 3]: zeros at scale 0, else
        the reconstruction of scale n-1 upsampled (to scale n's size unless `size`)."""
        size = self.scales[n].size if size is None else size
        if n == 0:
            return tf.zeros(tf.concat([[1], size, [3]], axis=0))
        return resize(self.reconstructions[n - 1][None], size)

    def run(self, seed, num_samples, sizes, start_scale=0, stop_scale=None, first_input=None,
            noise=None):
        """Output of scales start_scale..stop_scale-1 at `sizes`, float in [-1, 1]-ish.

        The input of `start_scale` is `first_input` when given (injection tasks), else the
        reconstruction of the scale below upsampled (zeros at scale 0). `start_scale` may
        be a tensor, as in the exported signature. `noise(n, shape)` replaces the seeded
        noise.
        """
        stop_scale = self.num_scales if stop_scale is None else stop_scale
        seed = seed_pair(seed)
        draw = noise or (lambda n, shape: self.noise(n, shape, seed))
        x = None
        for n in range(stop_scale):
            size = sizes[n]

            def start_input(n=n, size=size):
                image = (resize(first_input, size) if first_input is not None
                         else self.reconstruction_input(n, size))
                return tf.tile(image, [num_samples // tf.shape(image)[0], 1, 1, 1])

            if n == 0:
                prev = start_input()
            else:
                prev = branch(n <= start_scale, start_input,
                              lambda x=x, size=size: resize(x, size))
            x = branch(n < start_scale, lambda prev=prev: prev,
                       lambda n=n, prev=prev: self.step(n, draw(n, tf.shape(prev)), prev))
        return x

    def _reconstruct(self):
        """Every scale's reconstruction [H, W, 3] from its fixed z_opt, coarse to fine,
        by the Keras generators, exactly as training computed them."""
        outputs = []
        for n, scale in enumerate(self.scales):
            prev = (tf.zeros((1, *scale.size, 3)) if n == 0
                    else resize(outputs[-1][None], scale.size))
            outputs.append(forward_step(scale.generator, scale.noise_amp, scale.z_opt, prev)[0])
        return outputs

    # ------------------------------------------------------------ the tasks' cores
    def target_sizes(self, scale_h, scale_w):
        """Per-scale sizes for an output scale_h x scale_w of the training size."""
        return [retargeted_size(h, w, scale_h, scale_w) for h, w in self.sizes]

    @tf.function(input_signature=SAMPLE_SIGNATURE, autograph=False)
    def sample(self, seed, num_samples, scale_h, scale_w, start_scale):
        """uint8 samples, generated SAMPLE_CHUNK at a time so that a request's memory is
        that of one chunk. Every scale's noise is drawn for the whole batch first, so the
        images are those one run over the whole batch gives. The exported
        `serving_default` signature is exactly this."""
        sizes = self.target_sizes(scale_h, scale_w)
        seed = seed_pair(seed)
        noises = [self.noise(n, tf.concat([[num_samples], sizes[n]], axis=0), seed)
                  for n in range(self.num_scales)]

        def draw(first, count):
            return self.run(seed, count, sizes, start_scale,
                            noise=lambda n, shape: noises[n][first:first + count])
        return {"images": in_chunks(num_samples, draw)}

    def inject(self, image, start_scale, seed, num_samples=1):
        """Scales start_scale.. run on `image` (float [1, H, W, 3], finest size), first
        shrunk to scale start_scale-1's size so it enters looking like a coarser output:
        the core of paint-to-image, editing and harmonization."""
        coarser = tf.gather(tf.constant(self.sizes), start_scale - 1)
        return self.run(seed, num_samples, self.sizes, start_scale=start_scale,
                        first_input=resize(image, coarser))

    def random_input(self, size, num_samples, seed):
        """Training's random path into the next scale: all these scales with fresh noise,
        upsampled to that scale's `size` (zeros when there are none yet)."""
        if not self.scales:
            return tf.zeros((num_samples, *size, 3))
        return resize(self.run(seed, num_samples, self.sizes), size)
