"""A trained ConSinGAN for sampling, with the interface of `trained_pyramid.Pyramid` that
`SinGAN` and the exported `serving_default` signature use: sizes, num_scales,
reconstructions and `sample`. Its stages pass features, so it has no images to inject
between them: paint-to-image, editing, harmonization and animation need a SinGAN model.
"""
from __future__ import annotations

import tensorflow as tf

from ..trained_pyramid import (SAMPLE_SIGNATURE, branch, in_chunks, keyed_noise,
                               retargeted_size, seed_pair)
from .models import upsample


class TrainedGrowingGenerator(tf.Module):
    """The generator of the last stage with every stage's noise amplitude and fixed
    reconstruction noise (z_opts[0]: the coarsest real image)."""

    def __init__(self, generator, noise_amps, z_opts, sizes):
        super().__init__(name="growing_generator")
        self.generator = generator
        self.noise_amps = [float(amp) for amp in noise_amps]
        self.z_opts = [tf.Variable(z, trainable=False, name=f"z_opt_{k}")
                       for k, z in enumerate(z_opts)]
        self._sizes = [tuple(int(v) for v in size) for size in sizes]
        reconstruction = generator([amp * z for amp, z in zip(self.noise_amps, self.z_opts)])
        self.reconstructions = [tf.Variable(reconstruction[0], trainable=False,
                                            name="reconstruction")]

    @property
    def num_scales(self) -> int:
        return len(self._sizes)

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return list(self._sizes)

    def noises(self, seed, num_samples, sizes, start_scale=0) -> list:
        """Every stage's scaled noise: the fixed reconstruction noise (resized to `sizes`)
        below start_scale, so the samples keep the photo's layout there, new noise keyed
        by (seed, stage) from it up."""
        seed = seed_pair(seed)
        out = []
        for k, amp in enumerate(self.noise_amps):
            shape = self.generator.noise_shape(k, sizes[k], num_samples)

            def fixed(k=k, shape=shape):
                z = upsample(self.z_opts[k], shape[1:3])
                return tf.tile(z, [num_samples, 1, 1, 1])

            out.append(amp * branch(k < start_scale, fixed,
                                    lambda k=k, shape=shape: keyed_noise(shape, seed, k)))
        return out

    @tf.function(input_signature=SAMPLE_SIGNATURE, autograph=False)
    def sample(self, seed, num_samples, scale_h, scale_w, start_scale):
        """uint8 samples at scale_h x scale_w of the training size, as Pyramid.sample."""
        sizes = [retargeted_size(h, w, scale_h, scale_w) for h, w in self._sizes]
        noises = self.noises(seed, num_samples, sizes, start_scale)
        return {"images": in_chunks(num_samples, lambda first, count: self.generator(
            [z[first:first + count] for z in noises]))}
