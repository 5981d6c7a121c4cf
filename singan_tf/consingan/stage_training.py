"""A ConSinGAN stage's GAN and its data, built as the trainer trains it: one home for the
stage-0 networks, the stage's trained parts, learning rates and dtype policy, used by the
trainer and the benchmark."""
from __future__ import annotations

import tensorflow as tf

from ..models import Discriminator
from ..scale_training import scheduled_adam, steps_per_execution, without_autotuning
from .config import ConSinGANConfig
from .models import ConSinGANStage, GrowingGenerator, copy_of
from .models import critic as patch_critic  # build_stage's `critic` is the stage's own


def first_generator(cfg: ConSinGANConfig) -> GrowingGenerator:
    """The generator of stage 0, new weights; each later stage grows it by one."""
    return GrowingGenerator(1, cfg.channels, cfg.convs_per_stage, cfg.leaky_slope,
                            cfg.align_corners)


def new_critic(cfg: ConSinGANConfig, stage: int) -> Discriminator:
    """A critic with new weights for `stage`: stage 0's, and stage 1's after a deeper
    stage-0 critic (first_critic_layers); every other stage goes on training the one below's."""
    return patch_critic(cfg.channels, cfg.critic_layers_at(stage), cfg.leaky_slope)


def build_stage(cfg: ConSinGANConfig, k: int, sizes, generator, critic, seed,
                iterations: int, lr_factor: float = 1.0,
                dtype_policy: str | None = None) -> ConSinGANStage:
    """Stage k's GAN, compiled: copies of `generator` (grown to k + 1 stages) and `critic`
    computing under `dtype_policy`, by default the config's `compute_policy()` (a retry
    starts from the same weights), one Adam per trained part. The newest stage learns at
    lr_g, each older one lr_scale times the next, the head as old as stage 0, the tail at
    lr_g (ConSinGAN's)."""
    policy = dtype_policy or cfg.compute_policy()
    stage = ConSinGANStage(copy_of(generator, policy), copy_of(critic, policy), sizes[:k + 1],
                           cfg.trained_stages(k), cfg.trains_head(k), alpha=cfg.alpha,
                           gp_weight=cfg.gp_weight, critic_steps=cfg.critic_steps,
                           generator_steps=cfg.generator_steps, gp_window=cfg.gp_window,
                           seed=seed,
                           name=f"consingan_stage_{k:02d}")

    def adam(lr, steps_per_iteration):
        return scheduled_adam(cfg, lr * lr_factor, iterations, steps_per_iteration)

    rates = [cfg.lr_g * cfg.lr_scale ** (k - j) for j in cfg.trained_stages(k)]
    rates += [cfg.lr_g * cfg.lr_scale ** k] if cfg.trains_head(k) else []
    stage.compile(d_optimizer=adam(cfg.lr_d, cfg.critic_steps),
                  g_optimizers=[adam(lr, cfg.generator_steps) for lr in rates + [cfg.lr_g]],
                  steps_per_execution=steps_per_execution(cfg, iterations))
    return stage


def stage_dataset(real) -> tf.data.Dataset:
    """A stage's training image [1, H, W, 3], repeated."""
    return without_autotuning(
        tf.data.Dataset.from_tensors(tf.constant(real, tf.float32)).repeat())
