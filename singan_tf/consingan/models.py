"""ConSinGAN's networks as Keras models: the GrowingGenerator, and ConSinGANStage, the
GAN of one stage, which owns its `train_step`, takes its optimizers in `compile` and
reports `keras.metrics.Mean` trackers, so each stage trains with `model.fit`.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from ..models import (PACKAGE, Discriminator, LossTrackers, conv, gradient_penalty,
                      windowed_gradient_penalty)


def _pad(x, pixels: int):
    return ops.pad(x, [[0, 0], [pixels, pixels], [pixels, pixels], [0, 0]])


def upsample(features, size, align_corners=False):
    """Bicubic resize of feature maps, not clipped: they are not images. Resized in
    float32 and returned in their own dtype: TF has no bicubic gradient in bfloat16.

    align_corners: as ConSinGAN's PyTorch code resizes (corner pixels aligned, cubic
    a = -0.75) instead of TF's half-pixel centres and Keys' a = -0.5.
    """
    features32 = ops.cast(features, "float32")
    if align_corners:
        resized = tf.raw_ops.ResizeBicubic(images=features32, size=size, align_corners=True)
    else:
        resized = tf.image.resize(features32, size, method="bicubic")
    return ops.cast(resized, features.dtype)


@keras.saving.register_keras_serializable(PACKAGE)
class GrowingGenerator(keras.Model):
    """G(noises): a head conv turns stage 0's 3-channel input into `channels` feature
    maps and stage 0's body refines them; each later stage's body takes the coarser maps,
    upsampled, plus noise, and adds its output to them; a tail conv and tanh turn the last
    maps into an image. Unlike SinGAN's pyramid, the stages pass features, not images.

    noises[0] is [B, h0, w0, 3] (the coarsest real image on the reconstruction path);
    noises[k > 0] is [B, h_k + 2p, w_k + 2p, channels] with p = convs_per_stage (its
    valid convs eat them), already scaled by the stage's amplitude (`noise_shape`). The
    sizes follow from the noises, so one generator draws any size. Under a mixed dtype
    policy (`dtype="mixed_bfloat16"`) the stages compute in bfloat16; the output is float32.
    """

    def __init__(self, num_stages=1, channels=64, convs_per_stage=3, leaky_slope=0.05,
                 align_corners=False, **kwargs):
        super().__init__(**kwargs)
        self.num_stages, self.channels = int(num_stages), int(channels)
        self.convs_per_stage, self.leaky_slope = int(convs_per_stage), float(leaky_slope)
        self.align_corners = bool(align_corners)  # how its feature maps are upsampled
        self.head = self._block(["head_conv"], ["head_act"], "head", 3)
        self.bodies = [self._block([f"stage{k}_conv{i}" for i in range(convs_per_stage)],
                                   [f"stage{k}_act{i}" for i in range(convs_per_stage)],
                                   f"stage_{k}", channels)
                       for k in range(self.num_stages)]
        self.tail = conv(3, 3, "tail_conv", dtype=self.dtype_policy)
        self.tail.build((None, None, None, channels))
        self.built = True  # every layer is built above: no input shape is needed to load

    def _block(self, conv_names, act_names, name, in_channels) -> keras.Sequential:
        """Valid 3x3 convs of `channels`, each followed by a LeakyReLU, built."""
        policy, layers = self.dtype_policy, []
        for conv_name, act_name in zip(conv_names, act_names):
            layers += [conv(self.channels, 3, conv_name, dtype=policy),
                       keras.layers.LeakyReLU(self.leaky_slope, name=act_name, dtype=policy)]
        block = keras.Sequential(layers, name=name)
        block.build((None, None, None, in_channels))
        return block

    def noise_shape(self, stage: int, size, batch) -> tf.Tensor:
        """The shape of stage's noise for an output of `size` [h, w] at that stage."""
        size = tf.convert_to_tensor(size, tf.int32)
        if stage == 0:
            return tf.concat([[batch], size, [3]], axis=0)
        return tf.concat([[batch], size + 2 * self.convs_per_stage, [self.channels]], axis=0)

    def call(self, noises):
        pad = self.convs_per_stage
        noises = [ops.cast(noise, self.compute_dtype) for noise in noises]
        x = self.head(_pad(noises[0], 1))
        # Stage 0's maps are upsampled by 2 px, as ConSinGAN's, which keeps its samples'
        # borders from repeating one pattern; padded up to what the body's convs eat.
        size = tf.shape(noises[0])[1:3]
        x = self.bodies[0](_pad(self._upsample(x, size + 2), pad - 1))
        for body, noise in zip(self.bodies[1:], noises[1:]):
            size = tf.shape(noise)[1:3] - 2 * pad
            x = body(self._upsample(x, size + 2 * pad) + noise) + self._upsample(x, size)
        return ops.cast(ops.tanh(self.tail(_pad(x, 1))), "float32")

    def _upsample(self, features, size):
        return upsample(features, size, self.align_corners)

    def grown(self) -> "GrowingGenerator":
        """This generator with one more stage, whose body starts as a copy of the last
        one's (ConSinGAN's): a new stage begins by doing what the one below it learned."""
        bigger = GrowingGenerator(self.num_stages + 1, self.channels, self.convs_per_stage,
                                  self.leaky_slope, self.align_corners, name=self.name,
                                  dtype=self.dtype_policy)
        for new, old in zip([bigger.head, *bigger.bodies, bigger.tail],
                            [self.head, *self.bodies, self.bodies[-1], self.tail]):
            new.set_weights(old.get_weights())
        return bigger

    def get_config(self):
        return {**super().get_config(), "num_stages": self.num_stages,
                "channels": self.channels, "convs_per_stage": self.convs_per_stage,
                "leaky_slope": self.leaky_slope, "align_corners": self.align_corners}


def critic(channels=64, layers=5, leaky_slope=0.05) -> Discriminator:
    """ConSinGAN's patch critic: five valid 3x3 convs, no normalization, N(0, 0.02)."""
    model = Discriminator(channels, num_layers=layers, leaky_slope=leaky_slope,
                          batch_norm=False, paper_init=True)
    model(ops.zeros((1, 2 * layers + 1, 2 * layers + 1, 3)))
    return model


def copy_of(model: keras.Model, dtype_policy: str | None = None) -> keras.Model:
    """A new model with `model`'s architecture and weights (a retried stage starts over),
    computing under `dtype_policy` if given (the variables stay float32)."""
    config = model.get_config()
    if dtype_policy is not None:
        config["dtype"] = dtype_policy
    copy = model.__class__.from_config(config)
    if not copy.built:
        copy(ops.zeros((1, 2 * copy.pad + 1, 2 * copy.pad + 1, 3)))
    copy.set_weights(model.get_weights())
    return copy


@keras.saving.register_keras_serializable(PACKAGE)
class ConSinGANStage(LossTrackers, keras.Model):
    """The GAN of stage K: the generator grown to K + 1 stages and the critic.

    `fit` takes a dataset of stage K's training image [1, H, W, 3]. The reconstruction
    noises (`z_opts`; stage 0's is the coarsest real image) and the noise amplitudes are
    weights, set before training. One iteration is ConSinGAN's: one fake, `critic_steps`
    WGAN-GP critic steps on it, then one generator gradient (adversarial + alpha x
    reconstruction) that every trained part's optimizer applies `generator_steps` times.
    gp_window > 0 takes the gradient penalty over a random window of that many pixels
    square (`windowed_gradient_penalty`) where the image is bigger: its double backward
    pass over the whole image is a third of a fine stage's step.
    The trained parts (`trained_parts`): the bodies of `trained_stages`, the head with
    `train_head`, and the tail; `compile` takes an optimizer for each.
    """

    def __init__(self, generator, critic, sizes, trained_stages, train_head=False, alpha=10.0,
                 gp_weight=0.1, critic_steps=3, generator_steps=3, gp_window=0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.generator, self.critic = generator, critic
        self.sizes = [tuple(int(v) for v in size) for size in sizes]
        self.trained_stages = [int(k) for k in trained_stages]
        self.train_head = bool(train_head)
        self.alpha, self.gp_weight = float(alpha), float(gp_weight)
        self.critic_steps, self.generator_steps = int(critic_steps), int(generator_steps)
        self.gp_window = int(gp_window)
        self.seed = seed
        for k, body in enumerate(generator.bodies):
            body.trainable = k in self.trained_stages
        generator.head.trainable = self.train_head
        self.z_opts = [self.add_weight(name=f"z_opt_{k}", initializer="zeros", trainable=False,
                                       shape=tuple(int(v) for v in generator.noise_shape(
                                           k, size, 1).numpy()))
                       for k, size in enumerate(self.sizes)]
        self.noise_amps = self.add_weight(name="noise_amps", shape=(len(self.sizes),),
                                          initializer="ones", trainable=False)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._track_losses()
        self.built = True

    def trained_parts(self) -> list:
        """The generator's parts that train, each with its own optimizer (learning rate)."""
        parts = [self.generator.bodies[k] for k in self.trained_stages]
        return parts + ([self.generator.head] if self.train_head else []) + [self.generator.tail]

    def compile(self, d_optimizer, g_optimizers, **kwargs):
        """The critic's optimizer and one per trained part, in `trained_parts` order."""
        super().compile(**kwargs)
        parts = self.trained_parts()
        if len(g_optimizers) != len(parts):
            raise ValueError(f"{len(parts)} trained parts need as many optimizers, "
                             f"got {len(g_optimizers)}")
        self.d_optimizer, self.g_optimizers = d_optimizer, list(g_optimizers)
        # Built now: the train step's graph cannot create their slots.
        self.d_optimizer.build(self.critic.trainable_variables)
        for optimizer, part in zip(self.g_optimizers, parts):
            optimizer.build(part.trainable_variables)

    def get_compile_config(self):
        return {"d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
                "g_optimizers": [keras.saving.serialize_keras_object(optimizer)
                                 for optimizer in self.g_optimizers]}

    def compile_from_config(self, config):
        self.compile(d_optimizer=keras.saving.deserialize_keras_object(config["d_optimizer"]),
                     g_optimizers=[keras.saving.deserialize_keras_object(optimizer)
                                   for optimizer in config["g_optimizers"]])

    def random_noises(self, batch: int) -> list:
        """One draw of every stage's noise, scaled by its amplitude."""
        return [self.noise_amps[k] * keras.random.normal(
                    self.generator.noise_shape(k, size, batch), seed=self.seed_generator)
                for k, size in enumerate(self.sizes)]

    def call(self, batch_size=1):
        return self.generator(self.random_noises(batch_size))

    def reconstruct(self):
        """The output on the reconstruction path: should reproduce the real image."""
        return self.generator([self.noise_amps[k] * z for k, z in enumerate(self.z_opts)])

    def train_step(self, real):
        parts = self.trained_parts()
        # One fake serves the critic steps and then the generator's loss (ConSinGAN's):
        # the tape keeps its graph, and watches only the trained parts.
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([v.value for part in parts for v in part.trainable_variables])
            fake = self.generator(self.random_noises(1))
            for _ in range(self.critic_steps):
                d_loss, gp = self._critic_step(real, ops.stop_gradient(fake))
            g_loss = -ops.mean(self.critic(fake))
            rec_loss = ops.mean(ops.square(self.reconstruct() - real))
            loss = g_loss + self.alpha * rec_loss
        gradients = tape.gradient(loss, [part.trainable_variables for part in parts])
        for _ in range(self.generator_steps):
            for optimizer, part, part_gradients in zip(self.g_optimizers, parts, gradients):
                optimizer.apply(part_gradients, part.trainable_variables)
        return self._record_losses(d_loss, g_loss, rec_loss, gp)

    def _critic_step(self, real, fake):
        with tf.GradientTape() as tape:
            mix_weight = keras.random.uniform((), seed=self.seed_generator)
            if self.gp_window:
                gp = windowed_gradient_penalty(self.critic, real, fake, mix_weight,
                                               self.gp_window, self.seed_generator)
            else:
                gp = gradient_penalty(self.critic, real, fake, mix_weight)
            d_loss = (ops.mean(self.critic(fake, training=True))
                      - ops.mean(self.critic(real, training=True)) + self.gp_weight * gp)
        variables = self.critic.trainable_variables
        self.d_optimizer.apply(tape.gradient(d_loss, variables), variables)
        return d_loss, gp

    def get_config(self):
        return {**super().get_config(),
                "generator": keras.saving.serialize_keras_object(self.generator),
                "critic": keras.saving.serialize_keras_object(self.critic),
                "sizes": [list(size) for size in self.sizes],
                "trained_stages": self.trained_stages, "train_head": self.train_head,
                "alpha": self.alpha, "gp_weight": self.gp_weight,
                "critic_steps": self.critic_steps, "generator_steps": self.generator_steps,
                "gp_window": self.gp_window, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["critic"] = keras.saving.deserialize_keras_object(config["critic"])
        return cls(**config)
