"""One scale of SinGAN as Keras models: Generator, Discriminator and SinGANScale.

SinGANScale owns its scale's G and D, a custom `train_step` (WGAN-GP critic steps, then
generator steps with the reconstruction loss) and `keras.metrics.Mean` trackers, so it
trains with `model.fit` and ordinary callbacks, and round-trips through `keras.saving`.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from .normalization import BatchRenormalization
from .pyramid import resize

PACKAGE = "singan_tf"


def conv(filters: int, kernel_size: int, name: str, initializer=None,
         dtype=None) -> keras.layers.Conv2D:
    """A valid conv, initialized N(0, 0.02) as the paper's unless told otherwise. `dtype`
    is its dtype policy: Keras does not pass a model's policy on to its layers."""
    return keras.layers.Conv2D(filters, kernel_size, padding="valid", name=name,
                               kernel_initializer=initializer
                               or keras.initializers.RandomNormal(0.0, 0.02),
                               bias_initializer="zeros", dtype=dtype)


class _ConvStack(keras.Model):
    """head block + body blocks (Conv 3x3 valid -> BatchNorm -> LeakyReLU) + tail conv.

    batch_norm=False leaves the BatchNorm out and initializes the blocks' convs He-normal:
    the paper's N(0, 0.02) shrinks the signal about 3x per block when no BatchNorm
    rescales it (docs/performance.md). paper_init=True keeps N(0, 0.02) anyway
    (ConSinGAN's critic, which has no BatchNorm and is initialized so).
    """

    normalization = keras.layers.BatchNormalization

    def __init__(self, channels=32, out_channels=3, num_layers=5, kernel_size=3,
                 leaky_slope=0.2, bn_momentum=0.9, batch_norm=True, paper_init=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.channels, self.out_channels = channels, out_channels
        self.num_layers, self.kernel_size = num_layers, kernel_size
        self.leaky_slope, self.bn_momentum = leaky_slope, bn_momentum
        self.batch_norm = bool(batch_norm)
        self.paper_init = bool(paper_init)
        self.blocks = []
        policy = self.dtype_policy
        for i in range(num_layers - 1):
            name = "head" if i == 0 else f"body{i}"
            self.blocks.append(conv(channels, kernel_size, f"{name}_conv",
                                    None if self.batch_norm or self.paper_init
                                    else "he_normal", dtype=policy))
            if self.batch_norm:
                # PyTorch momentum 0.1 is Keras momentum 0.9; eps matches PyTorch's 1e-5.
                self.blocks.append(self.normalization(
                    momentum=bn_momentum, epsilon=1e-5, name=f"{name}_bn",
                    gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02), dtype=policy))
            self.blocks.append(keras.layers.LeakyReLU(negative_slope=leaky_slope,
                                                      name=f"{name}_act", dtype=policy))
        self.tail = conv(out_channels, kernel_size, "tail_conv", dtype=policy)

    @property
    def pad(self) -> int:
        """Pixels each side that the valid convs remove."""
        return self.num_layers * (self.kernel_size // 2)

    def features(self, x, training=False, renormalize=False):
        for layer in self.blocks:
            if isinstance(layer, BatchRenormalization):
                x = layer(x, training=training, renormalize=renormalize)
            else:
                x = layer(x, training=training)
        return self.tail(x)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "num_layers": self.num_layers, "kernel_size": self.kernel_size,
                "leaky_slope": self.leaky_slope, "bn_momentum": self.bn_momentum,
                "batch_norm": self.batch_norm, "paper_init": self.paper_init}


@keras.saving.register_keras_serializable(PACKAGE)
class Generator(_ConvStack):
    """G_n([noisy, prev]) = tanh(convs(pad(noisy))) + prev, where noisy = amp * z + prev.

    Zero-padding the input by `pad` px makes the output the size of the input, for any H x W.
    In training, `renormalize` normalizes by Batch Renormalization instead of the batch's
    own statistics (windowed scales: see SinGANScale).
    """

    normalization = BatchRenormalization

    def __init__(self, channels=32, **kwargs):
        kwargs.pop("out_channels", None)
        super().__init__(channels=channels, out_channels=3, **kwargs)

    def call(self, inputs, training=False, renormalize=False):
        noisy, prev = inputs
        features = self.features(self._padded(noisy), training=training,
                                 renormalize=renormalize)
        return ops.tanh(features) + prev

    def _padded(self, noisy):
        p = self.pad
        return ops.pad(noisy, [[0, 0], [p, p], [p, p], [0, 0]])


class InferenceGenerator(tf.Module):
    """A trained Generator for sampling: each BatchNorm (inference mode), if G has any,
    folded into the conv before it, so a block is one conv + bias + LeakyReLU that oneDNN
    runs fused. The same function as `generator(inputs, training=False)` up to float
    rounding (~1e-6), and 10-20% faster on CPU (docs/performance.md). A snapshot: later
    weight changes of the Keras generator do not reach it."""

    def __init__(self, generator: Generator):
        super().__init__(name=f"inference_{generator.name}")
        self.pad = generator.pad
        self.leaky_slope = generator.leaky_slope
        self.kernels, self.biases = [], []
        for conv, norm in _conv_norm_pairs(generator.blocks):
            kernel, bias = ops.convert_to_tensor(conv.kernel), ops.convert_to_tensor(conv.bias)
            if norm is not None:
                scale = norm.gamma / ops.sqrt(norm.moving_variance + norm.epsilon)
                kernel, bias = kernel * scale, (bias - norm.moving_mean) * scale + norm.beta
            self.kernels.append(tf.Variable(kernel, trainable=False))
            self.biases.append(tf.Variable(bias, trainable=False))
        self.tail_kernel = tf.Variable(ops.convert_to_tensor(generator.tail.kernel),
                                       trainable=False)
        self.tail_bias = tf.Variable(ops.convert_to_tensor(generator.tail.bias), trainable=False)

    def __call__(self, inputs, training=False):
        noisy, prev = inputs
        p = self.pad
        x = tf.pad(noisy, [[0, 0], [p, p], [p, p], [0, 0]])
        for kernel, bias in zip(self.kernels, self.biases):
            x = tf.nn.leaky_relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "VALID"), bias),
                                 self.leaky_slope)
        x = tf.nn.bias_add(tf.nn.conv2d(x, self.tail_kernel, 1, "VALID"), self.tail_bias)
        return tf.tanh(x) + prev


def _conv_norm_pairs(blocks):
    """(conv, the BatchNorm after it or None) for each block of a _ConvStack."""
    pairs = []
    for layer in blocks:
        if isinstance(layer, keras.layers.Conv2D):
            pairs.append([layer, None])
        elif isinstance(layer, keras.layers.BatchNormalization):
            pairs[-1][1] = layer
    return pairs


@keras.saving.register_keras_serializable(PACKAGE)
class Discriminator(_ConvStack):
    """Patch critic: one unbounded score per receptive field (11x11 for the paper's nets).
    The scores are float32 whatever the dtype policy computes in (mixed precision)."""

    def __init__(self, channels=32, **kwargs):
        kwargs.pop("out_channels", None)
        super().__init__(channels=channels, out_channels=1, **kwargs)

    def call(self, images, training=False):
        return ops.cast(self.features(images, training=training), "float32")


def gradient_penalty(critic, real, fake, weight):
    """SinGAN's WGAN-GP term: mean over pixels of (||dD/dx||_2 over channels - 1)^2.

    The norm is per pixel, not per image (the official code's choice: 1-Lipschitz per
    patch). One interpolation weight for the whole image. `weight` is drawn by the caller.
    """
    return ops.mean(_penalty_terms(critic, weight * real + (1.0 - weight) * fake))


def windowed_gradient_penalty(critic, real, fake, weight, window: int, seed_generator):
    """`gradient_penalty` averaged over a random window x window square of pixels instead
    of the whole image: an estimate at a fraction of its double backward pass.

    A pixel's term depends only on the scores whose receptive field holds it, so it is
    exact when the critic sees the window plus 2 x `critic.pad` pixels each side; the
    critic reads that (fixed-size) square, and where it touches the image's edge the terms
    up to the edge are exact too. The whole image when it is no bigger than that square.
    """
    mixed = weight * real + (1.0 - weight) * fake
    margin = 2 * critic.pad
    crops, exact = [], []
    for length in (int(real.shape[1]), int(real.shape[2])):
        size = min(window + 2 * margin, length)
        start = (0 if size == length
                 else keras.random.randint((), 0, length - size + 1, seed=seed_generator))
        position = ops.arange(size)
        exact.append(ops.logical_and(
            ops.logical_or(position >= margin, ops.equal(start, 0)),
            ops.logical_or(position < size - margin, ops.equal(start, length - size))))
        crops.append((start, size))
    (top, height), (left, width) = crops
    terms = _penalty_terms(critic, ops.slice(mixed, [0, top, left, 0],
                                             [mixed.shape[0], height, width, mixed.shape[3]]))
    mask = ops.cast(ops.logical_and(exact[0][:, None], exact[1][None, :]), terms.dtype)
    return ops.sum(terms * mask) / (ops.sum(mask) * terms.shape[0])


def _penalty_terms(critic, mixed):
    """(||dD/dx||_2 over channels - 1)^2 at each pixel of `mixed`: [B, H, W]."""
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        scores = critic(mixed, training=True)
    grads = tape.gradient(scores, mixed)
    # The tiny epsilon keeps sqrt differentiable at an exactly-zero gradient.
    norms = ops.sqrt(ops.sum(ops.square(grads), axis=-1) + 1e-12)
    return ops.square(norms - 1.0)


class LossTrackers:
    """The losses a GAN of one scale or stage reports (what the progress bar, TensorBoard
    and the manifest's final_losses show), as keras.metrics.Mean trackers."""

    def _track_losses(self) -> None:
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.rec_loss_tracker = keras.metrics.Mean(name="rec_loss")
        self.gp_tracker = keras.metrics.Mean(name="gp")

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.rec_loss_tracker, self.gp_tracker]

    def _record_losses(self, d_loss, g_loss, rec_loss, gp) -> dict:
        for tracker, value in zip(self.metrics, (d_loss, g_loss, rec_loss, gp)):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}


@keras.saving.register_keras_serializable(PACKAGE)
class SinGANScale(LossTrackers, keras.Model):
    """The GAN of one pyramid scale.

    `fit` takes a dataset of `(real, prevs)`: `real` is this scale's training image
    [1, H, W, 3] and `prevs` holds `critic_steps` random-path inputs [k, H, W, 3] (the
    frozen coarser scales' output upsampled to this scale; zeros at scale 0). The
    reconstruction path (fixed `z_opt` and `rec_prev`) and `noise_amp` are weights of
    the model, set once before training.

    crop_size > 0 trains on one random crop_size x crop_size window per iteration (the
    same window of real, prevs and reconstruction path): the critic only judges 11x11
    patches, so a window holds the same statistics at a fraction of the cost. G's
    BatchNorm then normalizes with its moving statistics, not each window's own (which
    trains a G whose colours drift on the whole image): frozen at the inherited ones, or
    with renormalize_windows by Batch Renormalization (normalization.py), which moves
    them with G's weights. Frozen ones let some windowed scales collapse; renormalized
    ones have not, but at 32 channels gave softer or grainier samples and at 64 no better
    ones, so the trainer uses them to retrain a collapsed scale unless the config's
    renormalize_windows asks for them from the first attempt (docs/performance.md).

    redraw_z_opt: the reconstruction loss uses new noise every iteration instead of the
    fixed z_opt (the official code's scale 0; see `SinGANConfig.redraws_z_opt`).

    lower_generators: coarser scales' generators that train together with this one
    (ConSinGAN's concurrent stages), lowest first, at `lower_sizes`, with their noise
    amplitudes and reconstruction noises (`lower_z_opts`, weights set before training).
    Then `prevs` and `rec_prev` are the input of the lowest of them; its reconstruction
    noise is the redrawn one when redraw_z_opt. They run on the whole image with their
    BatchNorm statistics frozen; only this scale's input is cut to the window. The
    compiled `lower_g_optimizers` train their weights.
    """

    def __init__(self, generator, discriminator, image_size, noise_channels=3, alpha=10.0,
                 gp_weight=0.1, critic_steps=3, generator_steps=3, seed=None, crop_size=0,
                 redraw_z_opt=False, renormalize_windows=False, joint_critic_batch=False,
                 joint_penalty=False, lower_generators=(), lower_sizes=(), lower_noise_amps=(),
                 lower_noise_channels=(), **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.image_size = tuple(image_size)
        self.noise_channels = noise_channels
        self.alpha = alpha
        self.gp_weight = gp_weight
        self.critic_steps = critic_steps
        self.generator_steps = generator_steps
        self.seed = seed
        self.crop_size = int(crop_size)
        self.redraw_z_opt = bool(redraw_z_opt)
        self.renormalize_windows = bool(renormalize_windows)
        self.joint_critic_batch = bool(joint_critic_batch)
        self.joint_penalty = bool(joint_penalty)
        self.lower_generators = list(lower_generators)
        self.lower_sizes = [tuple(size) for size in lower_sizes]
        self.lower_noise_amps = [float(amp) for amp in lower_noise_amps]
        self.lower_noise_channels = [int(c) for c in lower_noise_channels]
        self.lower_z_opts = [
            self.add_weight(name=f"lower_z_opt_{i}", shape=(1, *size, channels),
                            initializer="zeros", trainable=False)
            for i, (size, channels) in enumerate(zip(self.lower_sizes,
                                                     self.lower_noise_channels))]
        self.noise_amp = self.add_weight(name="noise_amp", shape=(), initializer="ones",
                                         trainable=False)
        self.z_opt = self.add_weight(name="z_opt", shape=(1, *self.image_size, noise_channels),
                                     initializer="zeros", trainable=False)
        self.rec_prev = self.add_weight(name="rec_prev", shape=(1, *self.input_size, 3),
                                        initializer="zeros", trainable=False)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._track_losses()
        self.build()

    @property
    def input_size(self):
        """Size of `prevs` and `rec_prev`: the lowest trained stage's."""
        return self.lower_sizes[0] if self.lower_sizes else self.image_size

    def build(self, input_shape=None):
        """Create G's and D's weights now, so weight copies and saving work before fit."""
        for generator, size in zip(self.lower_generators, self.lower_sizes):
            zeros = ops.zeros((1, *size, 3))
            generator([zeros, zeros])
        zeros = ops.zeros((1, *self.image_size, 3))
        self.generator([zeros, zeros])
        self.discriminator(zeros)
        self.built = True

    def compile(self, d_optimizer, g_optimizer, lower_g_optimizers=(), **kwargs):
        """The two optimizers, and one per lower generator when there are any."""
        super().compile(**kwargs)
        if len(lower_g_optimizers) != len(self.lower_generators):
            raise ValueError(f"{len(self.lower_generators)} lower generators need as many "
                             f"optimizers, got {len(lower_g_optimizers)}")
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.lower_g_optimizers = list(lower_g_optimizers)
        # Built now, not in the train step's graph loop, which cannot create their slots;
        # built optimizers also receive their saved slots when a scale is loaded.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        for optimizer, generator in zip(self.lower_g_optimizers, self.lower_generators):
            optimizer.build(generator.trainable_variables)

    def get_compile_config(self):
        return {"d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
                "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
                "lower_g_optimizers": [keras.saving.serialize_keras_object(optimizer)
                                       for optimizer in self.lower_g_optimizers]}

    def compile_from_config(self, config):
        self.compile(d_optimizer=keras.saving.deserialize_keras_object(config["d_optimizer"]),
                     g_optimizer=keras.saving.deserialize_keras_object(config["g_optimizer"]),
                     lower_g_optimizers=[keras.saving.deserialize_keras_object(optimizer)
                                         for optimizer in config.get("lower_g_optimizers", [])])

    def call(self, prev, training=False):
        """A random output of this scale for the given input of its lowest trained stage."""
        return self._fake(prev, None, training)

    def reconstruct(self, training=False, window=None, z_opt=None):
        """The output on the reconstruction path: should reproduce the real image (or its
        `window`, see `_crop`). `z_opt` replaces the lowest trained stage's fixed one."""
        own_z_opt = self.z_opt if z_opt is None or self.lower_z_opts else z_opt
        prev = self._crop(self.reconstruction_input(z_opt), window)
        own_z_opt = self._crop(own_z_opt, window)
        return self._generate([self.noise_amp * own_z_opt + prev, prev], training, window)

    def reconstruction_input(self, z_opt=None):
        """This scale's input on the reconstruction path: `rec_prev`, or the lower
        generators' output on it (`z_opt` replacing the lowest one's fixed noise)."""
        lower_z_opts = list(self.lower_z_opts)
        if z_opt is not None and lower_z_opts:
            lower_z_opts[0] = z_opt
        return self._through_lower_stages(self.rec_prev, lower_z_opts)

    def _fake(self, prev, window, training):
        """A random output for the lowest trained stage's input `prev`, cut to `window`."""
        noises = [keras.random.normal((ops.shape(prev)[0], *size, channels),
                                      seed=self.seed_generator)
                  for size, channels in zip(self.lower_sizes, self.lower_noise_channels)]
        prev = self._crop(self._through_lower_stages(prev, noises), window)
        return self._generate([self._noisy(prev), prev], training, window)

    def _through_lower_stages(self, x, noises):
        """The lower generators' output on `x` with `noises`, upsampled to this scale's
        size (`x` itself when there are none). On whole images, and in training too with
        BatchNorm on the moving statistics of their own training: normalized per call,
        the chain trained to 27-29 dB on the reconstruction and ran at 15-23 dB in
        sampling (docs/performance.md)."""
        next_sizes = self.lower_sizes[1:] + [self.image_size]
        for generator, amp, z, size in zip(self.lower_generators, self.lower_noise_amps,
                                           noises, next_sizes):
            x = resize(generator([amp * z + x, x], training=False), size)
        return x

    def _generate(self, inputs, training, window):
        """G on `inputs`; in training a window normalizes with the moving statistics,
        frozen or renormalized (see the class docstring)."""
        if training and window is not None:
            if self.renormalize_windows:
                return self.generator(inputs, training=True, renormalize=True)
            return self.generator(inputs, training=False)
        return self.generator(inputs, training=training)

    def _random_window(self):
        """(top, left, height, width) of this iteration's training window, or None."""
        h, w = self.image_size
        if not self.crop_size or (h <= self.crop_size and w <= self.crop_size):
            return None
        ch, cw = min(h, self.crop_size), min(w, self.crop_size)
        top = keras.random.randint((), 0, h - ch + 1, seed=self.seed_generator)
        left = keras.random.randint((), 0, w - cw + 1, seed=self.seed_generator)
        return top, left, ch, cw

    @staticmethod
    def _crop(images, window):
        if window is None:
            return images
        top, left, height, width = window
        begin = ops.stack([0, top, left, 0])
        return tf.slice(images, begin, [ops.shape(images)[0], height, width, images.shape[-1]])

    def _noisy(self, prev):
        shape = (*ops.shape(prev)[:3], self.noise_channels)
        z = keras.random.normal(shape, seed=self.seed_generator)
        return self.noise_amp * z + prev

    def train_step(self, data):
        real, prevs = data
        window = self._random_window()
        real = self._crop(real, window)
        # One new reconstruction noise per iteration if redraw_z_opt (see SinGANConfig).
        lowest_z_opt = self.lower_z_opts[0] if self.lower_z_opts else self.z_opt
        rec_z = (keras.random.normal(ops.shape(lowest_z_opt), seed=self.seed_generator)
                 if self.redraw_z_opt else None)

        def critic_step(step, d_loss, gp):
            fake = self._fake(prevs[step:step + 1], window, True)
            return (step + 1, *self._critic_step(real, fake))

        def generator_step(step, g_loss, rec_loss):
            # A fresh fake every step (the official code reuses a stale one).
            prev = prevs[step % self.critic_steps:step % self.critic_steps + 1]
            return (step + 1,
                    *self._generator_step(real, prev, window, rec_z))

        # Graph loops, so the step's (double-backprop) graph is traced once, not once per
        # step (3-5x less tracing per scale); one step at a time, each sees the last update.
        zero = tf.zeros(())
        _, d_loss, gp = tf.while_loop(lambda step, *_: step < self.critic_steps,
                                      critic_step, (0, zero, zero), parallel_iterations=1)
        _, g_loss, rec_loss = tf.while_loop(lambda step, *_: step < self.generator_steps,
                                            generator_step, (0, zero, zero),
                                            parallel_iterations=1)
        return self._record_losses(d_loss, g_loss, rec_loss, gp)

    def critic_loss(self, real, fake):
        """WGAN-GP critic loss (d_loss, gp); D is to score real above fake."""
        mix_weight = keras.random.uniform((), seed=self.seed_generator)
        real_score, fake_score = self._critic_scores(real, fake)
        gp = self._penalty(real, fake, mix_weight)
        return fake_score - real_score + self.gp_weight * gp, gp

    def _penalty(self, real, fake, mix_weight):
        """The gradient penalty. With joint_penalty the mix goes through D beside the real
        image, as the fake does in the joint critic's scores, so the penalty holds the
        function the critic scores with to slope 1; otherwise D sees the mix alone."""
        if not self.joint_penalty:
            return gradient_penalty(self.discriminator, real, fake, mix_weight)

        def beside_real(images, training=True):
            batch = ops.concatenate([real, images], axis=0)
            return self.discriminator(batch, training=True)[ops.shape(real)[0]:]
        return gradient_penalty(beside_real, real, fake, mix_weight)

    def generator_loss(self, real, prev, window, rec_z):
        """(g_loss, rec_loss): fool D with a fresh fake, and reconstruct the real image."""
        fake = self._fake(prev, window, True)
        adversarial = -self._critic_scores(real, fake)[1]
        rec = self.reconstruct(True, window, rec_z)
        rec_loss = ops.mean(ops.square(rec - real))
        return adversarial + self.alpha * rec_loss, rec_loss

    def _critic_scores(self, real, fake):
        """D's mean score of real and of fake. With joint_critic_batch both go through D as
        one batch, so D's BatchNorm normalizes them by their joint statistics and can see
        that one has less contrast or texture than the other; apart (the paper's), each is
        normalized by its own, which hides exactly that (tests/test_models.py)."""
        if self.joint_critic_batch:
            scores = self.discriminator(ops.concatenate([real, fake], axis=0), training=True)
            num_real = ops.shape(real)[0]
            return ops.mean(scores[:num_real]), ops.mean(scores[num_real:])
        return (ops.mean(self.discriminator(real, training=True)),
                ops.mean(self.discriminator(fake, training=True)))

    def _critic_step(self, real, fake):
        with tf.GradientTape() as tape:
            d_loss, gp = self.critic_loss(real, fake)
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply(tape.gradient(d_loss, variables), variables)
        return d_loss, gp

    def _generator_step(self, real, prev, window, rec_z):
        with tf.GradientTape() as tape:
            g_loss, rec_loss = self.generator_loss(real, prev, window, rec_z)
        optimizers = [self.g_optimizer] + self.lower_g_optimizers
        variables = [g.trainable_variables for g in [self.generator] + self.lower_generators]
        gradients = tape.gradient(g_loss, variables)
        for optimizer, grads, variables_of_one in zip(optimizers, gradients, variables):
            optimizer.apply(grads, variables_of_one)
        return g_loss, rec_loss

    def get_config(self):
        return {**super().get_config(),
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "image_size": list(self.image_size), "noise_channels": self.noise_channels,
                "alpha": self.alpha, "gp_weight": self.gp_weight,
                "critic_steps": self.critic_steps, "generator_steps": self.generator_steps,
                "seed": self.seed, "crop_size": self.crop_size,
                "redraw_z_opt": self.redraw_z_opt,
                "renormalize_windows": self.renormalize_windows,
                "joint_critic_batch": self.joint_critic_batch,
                "joint_penalty": self.joint_penalty,
                "lower_generators": [keras.saving.serialize_keras_object(generator)
                                     for generator in self.lower_generators],
                "lower_sizes": [list(size) for size in self.lower_sizes],
                "lower_noise_amps": self.lower_noise_amps,
                "lower_noise_channels": self.lower_noise_channels}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("follow_statistics", None)  # saved by builds that had that option
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        config["lower_generators"] = [keras.saving.deserialize_keras_object(generator)
                                      for generator in config.get("lower_generators", [])]
        return cls(**config)
