"""Running a stack of trained generators coarse to fine: the one forward pass of SinGAN.

Training (the random path of the coarser scales), `SinGAN.sample` and the exported
SavedModel all call `PyramidSampler`, so they agree bit for bit. Noise comes from
stateless random ops keyed by (seed, scale): the same seed gives the same images anywhere.
"""
from __future__ import annotations

import tensorflow as tf

from .models import InferenceGenerator
from .pyramid import noise_channels, resize


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
    """SinGAN's one forward step, G_n(amp * z + prev, prev) in inference mode: sampling
    (fresh z), reconstruction (z_opt), animation (a walk) and super-resolution all run it."""
    return generator([noise_amp * z + prev, prev], training=False)


def reconstruction_input(reconstructions, sizes, n):
    """Scale n's input on the reconstruction path: zeros at scale 0, else the reconstruction
    of scale n-1 upsampled to scale n. [1, H, W, 3]."""
    if n == 0:
        return tf.zeros((1, *sizes[0], 3))
    return resize(reconstructions[n - 1][None], sizes[n])


def reconstruct_pyramid(generators, noise_amps, z_opts, sizes):
    """Every scale's reconstruction [H, W, 3], coarse to fine, from the fixed z_opt maps."""
    outputs = []
    for n, generator in enumerate(generators):
        prev = reconstruction_input(outputs, sizes, n)
        outputs.append(forward_step(generator, noise_amps[n], z_opts[n], prev)[0])
    return outputs


def _branch(pred, true_fn, false_fn):
    """tf.cond for a tensor predicate; plain Python when it is known while tracing."""
    if isinstance(pred, bool):
        return true_fn() if pred else false_fn()
    return tf.cond(pred, true_fn, false_fn)


class PyramidSampler(tf.Module):
    """Frozen generators of scales 0..K-1 with their noise amplitudes and training sizes.

    `reconstructions[n]` is scale n's output on the reconstruction path (fixed z_opt);
    starting a sample at scale k > 0 feeds it the upsampled `reconstructions[k-1]`.
    The generators are snapshots with BatchNorm folded in (`InferenceGenerator`): build a
    new sampler after changing weights.
    """

    def __init__(self, generators, noise_amps, sizes, reconstructions):
        super().__init__(name="pyramid_sampler")
        if not (len(generators) == len(noise_amps) == len(reconstructions)):
            raise ValueError("one noise amplitude and reconstruction per generator")
        self.generators = [InferenceGenerator(g) for g in generators]
        self.noise_amps = [float(a) for a in noise_amps]
        self.sizes = [tuple(int(v) for v in s) for s in sizes]
        self.reconstructions = [tf.Variable(r, trainable=False, name=f"reconstruction_{n}")
                                for n, r in enumerate(reconstructions)]

    @property
    def num_scales(self) -> int:
        return len(self.generators)

    def target_sizes(self, scale_h, scale_w):
        """Per-scale sizes for an output scale_h x scale_w of the training size (round half even)."""
        def scaled(length, factor):
            value = tf.round(tf.cast(length, tf.float32) * factor)
            return tf.maximum(tf.cast(value, tf.int32), 1)
        return [tf.stack([scaled(h, scale_h), scaled(w, scale_w)]) for h, w in self.sizes]

    def apply_scale(self, scale, prev, seed):
        """One random step: G_n(amp * z + prev, prev) with z keyed by (seed, scale)."""
        shape = tf.concat([tf.shape(prev)[:3], [noise_channels(scale)]], axis=0)
        scale_seed = tf.random.experimental.stateless_fold_in(seed, scale)
        z = tf.random.stateless_normal(shape, seed=scale_seed)
        return forward_step(self.generators[scale], self.noise_amps[scale], z, prev)

    def run(self, seed, num_samples, sizes, start_scale=0, stop_scale=None, first_input=None):
        """Output of scales start_scale..stop_scale-1 at `sizes`, float in [-1, 1]-ish.

        The input of `start_scale` is `first_input` when given (injection tasks), else the
        reconstruction of the scale below upsampled (zeros at scale 0). `start_scale` may
        be a tensor, as in the exported signature.
        """
        stop_scale = self.num_scales if stop_scale is None else stop_scale
        seed = tf.cast(seed, tf.int64)
        if seed.shape.rank == 0:
            seed = tf.stack([seed, tf.zeros_like(seed)])
        x = None
        for n in range(stop_scale):
            size = sizes[n]

            def start_input(n=n, size=size):
                if first_input is not None:
                    image = first_input
                elif n == 0:
                    image = tf.zeros(tf.concat([[1], size, [3]], axis=0))
                else:
                    image = self.reconstructions[n - 1][None]
                image = resize(image, size)
                return tf.tile(image, [num_samples // tf.shape(image)[0], 1, 1, 1])

            if n == 0:
                prev = start_input()
            else:
                prev = _branch(n <= start_scale, start_input,
                               lambda x=x, size=size: resize(x, size))
            x = _branch(n < start_scale, lambda prev=prev: prev,
                        lambda n=n, prev=prev: self.apply_scale(n, prev, seed))
        return x

    @tf.function(input_signature=SAMPLE_SIGNATURE, autograph=False)
    def sample(self, seed, num_samples, scale_h, scale_w, start_scale):
        """uint8 samples; the exported `serving_default` signature is exactly this."""
        sizes = self.target_sizes(scale_h, scale_w)
        return {"images": to_uint8(self.run(seed, num_samples, sizes, start_scale))}

    def random_input(self, scale, num_samples, seed):
        """Training's random path: scales 0..scale-1 with fresh noise, upsampled to `scale`."""
        if scale == 0:
            return tf.zeros((num_samples, *self.sizes[0], 3))
        out = self.run(seed, num_samples, self.sizes, stop_scale=scale)
        return resize(out, self.sizes[scale])
