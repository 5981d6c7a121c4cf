"""One scale's training, set up once: build its SinGANScale, compile it, feed it
random-path inputs from the frozen coarser scales and `fit` it. The pyramid trainer runs
it for every scale; paint-to-image runs it to fine-tune one generator.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from .config import SinGANConfig
from .models import Discriminator, Generator, SinGANScale
from .trained_pyramid import Pyramid

BANK_CHUNK = 16  # random-path inputs computed per call when filling a bank (bounds memory)


def build_scale(cfg: SinGANConfig, n: int, size, generator=None, discriminator=None,
                seed=None, renormalize_windows=False, lower_scales=()) -> SinGANScale:
    """The SinGANScale of scale n (fresh G and D unless given); see SinGANScale for
    renormalize_windows. lower_scales: the TrainedScales of `cfg.lower_stages(n)`, whose
    generators train on as copies (a failed attempt leaves the originals as they were)."""
    width = cfg.channels(n)
    conv_options = dict(kernel_size=cfg.kernel_size, leaky_slope=cfg.leaky_slope,
                        bn_momentum=cfg.bn_momentum)
    lowest = n - len(lower_scales)
    return SinGANScale(generator or Generator(width, batch_norm=cfg.generator_normalized(n),
                                              num_layers=cfg.layers(n), **conv_options),
                       discriminator or Discriminator(
                           width, batch_norm=cfg.discriminator_normalized(n),
                           num_layers=cfg.critic_layers(n), **conv_options), size,
                       noise_channels=cfg.noise_channels(n), alpha=cfg.reconstruction_weight(n),
                       gp_weight=cfg.gp_weight, critic_steps=cfg.critic_steps,
                       generator_steps=cfg.generator_steps, seed=seed,
                       crop_size=cfg.crop_size_at(n), redraw_z_opt=cfg.redraws_z_opt(lowest),
                       renormalize_windows=renormalize_windows,
                       joint_critic_batch=cfg.joint_critic_batch(n),
                       joint_penalty=cfg.joint_critic_batch(n) and cfg.joint_gradient_penalty,
                       lower_generators=[trainable_copy(s.generator) for s in lower_scales],
                       lower_sizes=[s.size for s in lower_scales],
                       lower_noise_amps=[s.noise_amp for s in lower_scales],
                       lower_noise_channels=[s.z_opt.shape[-1] for s in lower_scales],
                       name=f"singan_scale_{n:02d}")


def trainable_copy(generator: Generator) -> Generator:
    """A new, trainable Generator with `generator`'s architecture and weights."""
    copy = Generator.from_config({**generator.get_config(), "trainable": True})
    zeros = tf.zeros((1, 1, 1, 3))  # any size builds it: G pads its input
    copy([zeros, zeros])
    copy.set_weights(generator.get_weights())
    return copy


def compile_scale(scale: SinGANScale, cfg: SinGANConfig, iterations: int | None = None,
                  lr_factor: float = 1.0) -> None:
    """Adam for G and D with the reference's lr cut, XLA and steps_per_execution from cfg.
    lr_factor scales both learning rates (a retry after divergence trains more gently);
    a lower generator k scales down trains at joint_lr_scale**k of G's rate."""
    iterations = iterations or cfg.iters_per_scale

    def adam(lr, steps_per_iteration):
        return scheduled_adam(cfg, lr * lr_factor, iterations, steps_per_iteration)

    lower = len(scale.lower_generators)
    scale.compile(d_optimizer=adam(cfg.lr_d, cfg.critic_steps),
                  g_optimizer=adam(cfg.lr_g, cfg.generator_steps),
                  lower_g_optimizers=[adam(cfg.lr_g * cfg.joint_lr_scale ** (lower - i),
                                           cfg.generator_steps) for i in range(lower)],
                  jit_compile=cfg.jit_compile,
                  steps_per_execution=steps_per_execution(cfg, iterations))


def scheduled_adam(cfg, lr: float, iterations: int,
                   steps_per_iteration: int) -> keras.optimizers.Adam:
    """Adam at `lr`, cut to lr x cfg.lr_decay after cfg.lr_decay_at of the `iterations`
    (the reference's schedule); the optimizer steps `steps_per_iteration` times each."""
    decay_step = int(cfg.lr_decay_at * iterations) * steps_per_iteration
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [max(decay_step - 1, 0)], [lr, lr * cfg.lr_decay])
    return keras.optimizers.Adam(schedule, beta_1=cfg.beta_1, beta_2=cfg.beta_2)


def without_autotuning(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with tf.data's autotuning off. A training pipeline here is one small map at
    most, with nothing to tune, and with autotuning on the training step on a Zen 4 VM
    often took just under 2^n ms (2.05 s instead of 1.1 at ConSinGAN's stage 4 in 6 of
    10 timed rounds; docs/performance.md, sessions 35-36)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def random_path_dataset(real, frozen: Pyramid, critic_steps: int, seed: int,
                        transform=None, bank_size: int = 0, size=None) -> tf.data.Dataset:
    """(real, prevs) per iteration; prevs are random-path inputs into the scale after the
    `frozen` ones, at `size` (default `real`'s), one per critic step.

    bank_size 0 draws fresh ones every iteration (the reference); otherwise they are drawn
    from `bank_size` inputs computed once, which saves running every coarser generator
    `critic_steps` times per iteration. `transform` maps the prevs first (paint-to-image
    quantizes them to the paint colours).
    """
    seed = tf.constant(seed, tf.int64)
    size = tuple(real.shape[1:3]) if size is None else tuple(size)
    if bank_size:
        chunks = [frozen.random_input(size, min(BANK_CHUNK, bank_size - start),
                                      tf.stack([seed, -1 - start]))
                  for start in range(0, bank_size, BANK_CHUNK)]
        bank = tf.concat(chunks, axis=0)

    def element(step):
        if bank_size:
            picks = tf.random.stateless_uniform([critic_steps], tf.stack([seed, step]),
                                                maxval=bank_size, dtype=tf.int32)
            prevs = tf.gather(bank, picks)
        else:
            prevs = frozen.random_input(size, critic_steps, tf.stack([seed, step]))
        return real, prevs if transform is None else transform(prevs)

    return without_autotuning(tf.data.Dataset.counter().map(element).prefetch(2))


def steps_per_execution(cfg: SinGANConfig, iterations: int | None = None) -> int:
    """Keras runs whole executions (it would train 40 steps for 35 at 10 per execution),
    so use the largest count up to the configured one that divides the iterations."""
    iterations = iterations or cfg.iters_per_scale
    return max(d for d in range(1, min(cfg.steps_per_execution, iterations) + 1)
               if iterations % d == 0)


def train_scale(cfg: SinGANConfig, n: int, real, frozen: Pyramid, rec_prev, noise_amp: float,
                z_opt, seed: int, iterations: int | None = None, start_from=None,
                lr_factor: float = 1.0, renormalize_windows: bool = False, transform=None,
                callbacks=(), verbose: int = 0, lower_scales=()):
    """Build, compile and fit scale n on `real` [1, H, W, 3], fed by the `frozen` coarser
    scales. start_from: (generator, discriminator) whose weights G and D start from (else
    fresh ones); renormalize_windows: see SinGANScale. lower_scales: the TrainedScales
    that train along (see build_scale); then `frozen` ends below them and `rec_prev` is
    the lowest one's input. Returns (SinGANScale, history)."""
    iterations = iterations or cfg.iterations(n)
    keras.utils.set_random_seed(seed)
    scale = build_scale(cfg, n, tuple(real.shape[1:3]), seed=seed,
                        renormalize_windows=renormalize_windows, lower_scales=lower_scales)
    if start_from is not None:
        generator, discriminator = start_from
        scale.generator.set_weights(generator.get_weights())
        scale.discriminator.set_weights(discriminator.get_weights())
    compile_scale(scale, cfg, iterations, lr_factor)
    scale.noise_amp.assign(noise_amp)
    scale.z_opt.assign(z_opt)
    scale.rec_prev.assign(rec_prev)
    for weight, lower in zip(scale.lower_z_opts, lower_scales):
        weight.assign(lower.z_opt)
    dataset = random_path_dataset(real, frozen, cfg.critic_steps, seed, transform,
                                  cfg.random_path_bank, scale.input_size)
    history = scale.fit(dataset, epochs=1, steps_per_epoch=iterations, verbose=verbose,
                        shuffle=False, callbacks=list(callbacks))
    return scale, history
