"""Hyperparameters: one frozen dataclass with the paper's defaults, plus named presets.

`paper` is exactly ../shared/design/singan-reference.md; `fast` is the CPU default;
`quality` trades `fast`'s speed for a better layout and finer detail.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from .config_fields import ConfigFields
from .consingan.config import CONSINGAN, ConSinGANConfig
from .errors import SinGANError
from .pyramid import PyramidSpec, pyramid_spec


@dataclass(frozen=True)
class SinGANConfig(ConfigFields):
    # Pyramid
    max_size: int = 250          # long side of the finest scale
    min_size: int = 25           # short side of the coarsest scale (about)
    scale_factor: float = 0.75   # initial factor; recomputed exactly from the sizes
    count_scales_on_fitted: bool = False  # scale count: the nearest whole number of
                                          # scale_factor steps on the image as fitted
                                          # (false: the official count; pyramid.py)
    # Networks
    base_channels: int = 32      # nfc at scale 0
    max_channels: int = 128      # widths double every `channels_double_every` scales up to this
    channels_double_every: int = 4
    num_layers: int = 5          # convs per network (head, body..., tail)
    coarse_num_layers: int = 0   # at the coarse scales from shallow_coarse_scales on
                                 # instead (0: num_layers; measured, off)
    shallow_coarse_scales: int = 2  # the first this many keep num_layers: they draw the layout
    coarse_deep_critic: bool = True  # D as deep as G there (false: D keeps num_layers,
                                     # ConSinGAN's deep generator beside a shallow critic)
    kernel_size: int = 3
    leaky_slope: float = 0.2
    bn_momentum: float = 0.9     # PyTorch momentum 0.1 == Keras momentum 0.9
    generator_batchnorm: bool = True      # BatchNorm in G's blocks (the paper's)
    discriminator_batchnorm: bool = True  # BatchNorm in D's blocks (the paper's; ConSinGAN has none)
    discriminator_joint_batchnorm: bool = False  # above the coarse scales, D's BatchNorm sees
                                                 # real and fake as one batch
    joint_gradient_penalty: bool = False  # the joint critic's gradient penalty scores the
                                          # mix beside the real image too (measured, off)
    # Optimisation
    iters_per_scale: int = 2000
    coarse_scales: int = 0           # the first this many scales (cheap; they set the layout)
    coarse_iters_per_scale: int = 0  # train this long instead (0: iters_per_scale)
    coarse_joint_stages: int = 1     # a coarse scale's G trains together with this many
                                     # - 1 below it (ConSinGAN's 3 stages; 1: alone)
    joint_lr_scale: float = 0.1      # their learning rates: this factor per scale down
    critic_steps: int = 3
    generator_steps: int = 3
    lr_g: float = 5e-4
    lr_d: float = 5e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    lr_decay_at: float = 0.8     # fraction of iters_per_scale after which lr is multiplied by lr_decay
    lr_decay: float = 0.1
    # Losses
    alpha: float = 10.0          # reconstruction weight
    coarse_alpha: float = 0.0    # at the first coarse_scales scales instead (0: alpha)
    gp_weight: float = 0.1
    noise_amp_init: float = 0.1
    coarse_noise_amp_init: float = 0.0  # at scales 1..coarse_scales-1 instead (0: noise_amp_init)
    # Speed (do not change the math)
    jit_compile: bool = False    # XLA: on a CPU oneDNN ran the paper's finest step 1.7x
                                 # faster without it (docs/performance.md); try on GPUs
    steps_per_execution: int = 10
    # Speed options that approximate the reference (0 = off, as in the paper)
    crop_size: int = 0           # train scales larger than this on random square windows
                                 # (scales whose G starts from the coarser one's weights)
    whole_image_scales: int = 0  # but the first this many scales train on the whole image
    random_path_bank: int = 0    # draw the random-path inputs from this many per scale,
                                 # computed once, instead of fresh ones every iteration
    renormalize_windows: bool = False  # G's BatchNorm on windows: renormalized from the first
                                       # attempt (else frozen; retries always renormalize)
    # The official code's behaviour where it departs from the paper's text
    redraw_coarsest_z_opt: bool = False  # scale 0's reconstruction noise: new every iteration
    # ConSinGAN's choice (measured, not adopted: docs/performance.md)
    real_coarsest_z_opt: bool = False  # scale 0 reconstructs from the coarsest real image

    def __post_init__(self):
        positive_ints = ["max_size", "min_size", "base_channels", "max_channels",
                         "channels_double_every", "iters_per_scale", "critic_steps",
                         "generator_steps", "steps_per_execution", "coarse_joint_stages"]
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise SinGANError(f"config: {name} must be a positive integer, got {value!r}")
        if self.min_size > self.max_size:
            raise SinGANError(f"config: min_size ({self.min_size}) exceeds max_size ({self.max_size})")
        if not 0.0 < self.scale_factor < 1.0:
            raise SinGANError("config: scale_factor must lie in (0, 1)")
        for name in ["crop_size", "whole_image_scales", "random_path_bank", "coarse_scales",
                     "coarse_iters_per_scale", "coarse_num_layers", "shallow_coarse_scales"]:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise SinGANError(f"config: {name} must be a non-negative integer, got {value!r}")
        if self.num_layers < 3 or 0 < self.coarse_num_layers < 3:
            raise SinGANError("config: num_layers and coarse_num_layers must be at least 3 "
                              "(head, body, tail)")
        widest_critic = max([self.num_layers] + [self.critic_layers(n)
                                                 for n in range(self.coarse_scales)])
        critic_field = 2 * self.receptive_pad_of(widest_critic) + 1
        if self.min_size < critic_field:
            raise SinGANError(f"config: min_size must be at least {critic_field} "
                              "(the critic's receptive field)")
        if 0 < self.crop_size < critic_field:  # a deep coarse scale may train on windows too
            raise SinGANError(f"config: crop_size must be 0 (off) or at least "
                              f"{critic_field} (the critic's receptive field)")
        if 0 < self.random_path_bank < self.critic_steps:
            raise SinGANError("config: random_path_bank must be 0 (off) or at least critic_steps")
        if self.redraw_coarsest_z_opt and self.real_coarsest_z_opt:
            raise SinGANError("config: real_coarsest_z_opt needs redraw_coarsest_z_opt=false "
                              "(scale 0 reconstructs from one input)")
        if self.joint_gradient_penalty and not self.discriminator_joint_batchnorm:
            raise SinGANError("config: joint_gradient_penalty needs "
                              "discriminator_joint_batchnorm=true (it is that critic's penalty)")
        for name in ["jit_compile", "count_scales_on_fitted", "redraw_coarsest_z_opt",
                     "real_coarsest_z_opt", "generator_batchnorm", "coarse_deep_critic",
                     "discriminator_batchnorm", "discriminator_joint_batchnorm",
                     "joint_gradient_penalty", "renormalize_windows"]:
            if not isinstance(getattr(self, name), bool):
                raise SinGANError(f"config: {name} must be true or false, "
                                  f"got {getattr(self, name)!r}")
        for name in ["lr_g", "lr_d", "alpha", "coarse_alpha", "gp_weight", "noise_amp_init",
                     "coarse_noise_amp_init", "joint_lr_scale"]:
            if getattr(self, name) < 0:
                raise SinGANError(f"config: {name} must be non-negative")

    def pyramid_spec(self, height: int, width: int) -> PyramidSpec:
        """The pyramid this config gives an image of this size: the one place that reads
        the pyramid options."""
        return pyramid_spec(height, width, self.min_size, self.max_size, self.scale_factor,
                            self.count_scales_on_fitted)

    def receptive_pad_of(self, layers: int) -> int:
        """Pixels lost per side by `layers` valid convs (5 for five 3x3 convs)."""
        return layers * (self.kernel_size // 2)

    def channels(self, scale: int) -> int:
        """Width of G and D at a scale: nfc = min(32 * 2**floor(n/4), 128) for the paper."""
        return min(self.base_channels * 2 ** (scale // self.channels_double_every), self.max_channels)

    def _coarse_or(self, scale: int, coarse_value, value):
        """`coarse_value` at the first `coarse_scales` scales when it is set (non-zero),
        else `value`: how every `coarse_*` option applies."""
        return coarse_value if scale < self.coarse_scales and coarse_value else value

    def layers(self, scale: int) -> int:
        """Conv layers of G and D at a scale. Deeper ones at the coarse scales keep objects
        whole, but where the layout is drawn (scale 0 from redrawn noise draws one blot,
        scale 1 turns noise into the layout) they map every noise to the photo itself, so
        the first `shallow_coarse_scales` keep num_layers (docs/performance.md)."""
        if scale < self.shallow_coarse_scales:
            return self.num_layers
        return self._coarse_or(scale, self.coarse_num_layers, self.num_layers)

    def critic_layers(self, scale: int) -> int:
        """Conv layers of D at a scale: G's, or num_layers without `coarse_deep_critic`.
        The critic's reach decides which arrangements pass as real: one that sees half the
        image accepts little but the photo's own layout."""
        return self.layers(scale) if self.coarse_deep_critic else self.num_layers

    def iterations(self, scale: int) -> int:
        """Training iterations of a scale."""
        return self._coarse_or(scale, self.coarse_iters_per_scale, self.iters_per_scale)

    def reconstruction_weight(self, scale: int) -> float:
        """alpha of a scale: with a joint critic batch the fine scales need a heavier one
        to keep their reconstruction (docs/performance.md)."""
        return self._coarse_or(scale, self.coarse_alpha, self.alpha)

    def noise_amp_factor(self, scale: int) -> float:
        """Scale's noise amplitude over its input's RMSE (scale 0's amplitude is 1).

        Coarse scales trained long learn to map every input near their reconstruction
        input to the photo, so their samples vary less; `coarse_noise_amp_init` tries more
        noise there (3x gave back a little diversity for worse samples: docs/performance.md)."""
        return self._coarse_or(scale, self.coarse_noise_amp_init, self.noise_amp_init)

    def redraws_z_opt(self, scale: int) -> bool:
        """Whether scale's reconstruction loss uses new noise every iteration.

        The official code draws scale 0's z_opt anew in every iteration (tamarott/SinGAN
        issue #63; not in its SR training), so G_0 learns to bring *any* noise close to the
        image: samples keep its layout and contrast. The published samples come from that code.
        """
        return self.redraw_coarsest_z_opt and scale == 0

    def lower_stages(self, scale: int) -> range:
        """The coarser scales that train together with `scale` (ConSinGAN trains its last
        three stages together): up to coarse_joint_stages - 1 below a coarse scale, where
        the layout is learned and whole images are cheap."""
        if scale >= self.coarse_scales:
            return range(scale, scale)
        return range(max(0, scale - self.coarse_joint_stages + 1), scale)

    def noise_channels(self, scale: int) -> int:
        """Noise channels of a scale: one broadcast to RGB at scale 0 (the official code's),
        three above it, and at scale 0 too when its reconstruction input is the real image
        (ConSinGAN's), so that noise and image are drawn alike."""
        return 1 if scale == 0 and not self.real_coarsest_z_opt else 3

    def joint_critic_batch(self, scale: int) -> bool:
        """Whether scale's critic scores real and fake as one BatchNorm batch.

        Apart (the paper's), D's BatchNorm normalizes each image by its own statistics and
        cannot see that a sample has less contrast or texture than the photo: the fine
        scales' critic loss fell to about 0 and they drew no texture. Only above the
        `coarse_scales`: there it would set the layout too, and on LSUN 4 it cost scales 0
        and 1 their reconstruction (11.5 and 12.7 dB; docs/performance.md)."""
        return self.discriminator_joint_batchnorm and scale >= self.coarse_scales

    def generator_normalized(self, scale: int) -> bool:
        """Whether scale's G has BatchNorm. Not at a scale 0 that reconstructs from the real
        image (ConSinGAN's, whose networks have none): G's moving statistics would mix the
        image's with the noise's, and in inference G would fit neither."""
        return self.generator_batchnorm and not self._consingan_coarsest(scale)

    def discriminator_normalized(self, scale: int) -> bool:
        """Whether scale's D has BatchNorm. Not at a scale 0 that reconstructs from the real
        image: there only D sees the colours of G's samples from noise, and a D with
        BatchNorm, normalizing each image by its own statistics, cannot."""
        return self.discriminator_batchnorm and not self._consingan_coarsest(scale)

    def _consingan_coarsest(self, scale: int) -> bool:
        return scale == 0 and self.real_coarsest_z_opt

    def inherits_weights(self, scale: int) -> bool:
        """Whether scale's G and D start from the coarser scale's weights (same networks)."""
        return (scale > 0 and self.channels(scale - 1) == self.channels(scale)
                and self.layers(scale - 1) == self.layers(scale)
                and self.generator_normalized(scale - 1) == self.generator_normalized(scale)
                and self.discriminator_normalized(scale - 1)
                == self.discriminator_normalized(scale))

    def crop_size_at(self, scale: int) -> int:
        """Window size of a scale (0: whole image). Windows normalize G with its moving
        BatchNorm statistics (see SinGANScale), so a fresh G, with none learned yet, trains
        on the whole image; so do the first `whole_image_scales`, where a window would hold
        half the image or more anyway, so that G's and D's BatchNorm see the image's
        statistics (docs/performance.md)."""
        if scale < self.whole_image_scales or not self.inherits_weights(scale):
            return 0
        return self.crop_size

    def training_size(self, size, scale: int) -> tuple[int, int]:
        """The window scale `scale` of this size trains on: all of it, or a crop."""
        crop = self.crop_size_at(scale)
        return tuple(size) if not crop else tuple(min(length, crop) for length in size)

    def for_super_resolution(self, factor: float) -> "SinGANConfig":
        """The reference's SR training: alpha 100, min_size 18, and a scale factor of
        factor**(-1/k) with k steps of about 2**(1/3) (x4 -> 6 steps of 1.26). Fresh
        random-path inputs: a bank cost 4 dB of shrunk-back PSNR on the test model. A fixed
        noise z_opt at scale 0, as the official SR training has."""
        if not factor > 1:
            raise SinGANError(f"super-resolution factor must be > 1, got {factor}")
        steps = sr_steps(factor)
        return self.replace(alpha=100.0, coarse_alpha=0.0, min_size=18,
                            scale_factor=factor ** (-1 / steps), count_scales_on_fitted=False,
                            random_path_bank=0, redraw_coarsest_z_opt=False,
                            real_coarsest_z_opt=False)


def parse_overrides(items) -> dict:
    """["crop_size=64", "dtype_policy=mixed_bfloat16"] -> {"crop_size": 64, "dtype_policy":
    "mixed_bfloat16"}: values as JSON, or as the string itself where they are not JSON.
    `replace` then refuses unknown names and the config checks the values."""
    overrides = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise SinGANError(f"config override {item!r} is not OPTION=VALUE "
                              "(e.g. max_channels=64)")
        try:
            overrides[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[name.strip()] = value
    return overrides


def sr_steps(factor: float) -> int:
    """How many upsampling steps of about 2**(1/3) reach `factor` (the official calc_init_scale)."""
    return max(1, round(math.log(factor) / math.log(2 ** (1 / 3))))


PAPER = SinGANConfig()

# 2-core CPUs at the paper's image size, each choice measured (docs/performance.md):
# constant narrow width, fewer iterations (twice as many at the cheap, layout-setting coarse
# scales), 64 px training windows at the fine scales, a bank of random-path inputs, no XLA
# (it is 60-100x slower with random windows on CPU), and the official code's redrawn
# scale-0 reconstruction noise. Critic and generator keep 3 steps each: cheap steps cost
# quality (reference notes).
FAST = PAPER.replace(max_channels=32, iters_per_scale=300, coarse_scales=4,
                     coarse_iters_per_scale=600, crop_size=64, random_path_bank=64,
                     jit_compile=False, redraw_coarsest_z_opt=True)

# About twice `fast`'s time for a better layout and finer detail: the paper's 2000
# iterations at the four coarse scales, where the layout is learned (whole objects more
# often than `fast`, whose samples vary more); above them a critic that scores real and
# fake as one batch, so it sees the samples' missing contrast and texture, with the
# heavier reconstruction weight it needs, and the scales up to 5 on the whole image, so
# that at scales 4 and 5 its statistics cover the image rather than two windows. Lower
# mean SWD, centred SWD and NIQE than without the last three on five dev images, all
# three lower on held-out LSUN 2, NIQE higher on held-out LSUN 3 (docs/performance.md,
# "Scales 4 and 5 on the whole image"). At scales 2-3 a generator of nine convs beside the
# five-conv critic (ConSinGAN's arrangement) keeps objects whole in the layout the shallow
# scales 0-1 drew: on ten LSUN images SWD 18% and centred SWD 13% lower, NIQE level,
# diversity 15% lower (docs/performance.md, "`quality` gets the deep generator at scales 2-3").
# Its pyramid steps by about 0.8 on every image, as the official count gives 188x250
# (10 scales); that count gives 168x251 only 8 at 0.76, and there 10 scales lowered SWD
# in 4 of 4 fits (2 images x 2 seeds), centred SWD in 3 and NIQE in 3, with 17% less
# diversity (docs/performance.md, "`quality`'s scale count"); on 9-scale images a tenth
# scale was no clear gain either way (same file, "... on the 9-scale images").
QUALITY = FAST.replace(coarse_iters_per_scale=2000, discriminator_joint_batchnorm=True,
                       alpha=50.0, coarse_alpha=10.0, whole_image_scales=6,
                       coarse_num_layers=9, coarse_deep_critic=False,
                       scale_factor=0.8, count_scales_on_fitted=True)

# ConSinGAN's recipe, a second model family (consingan/): one growing generator whose
# stages pass features, the last three trained together (docs/performance.md).
PRESETS = {"paper": PAPER, "fast": FAST, "quality": QUALITY, "consingan": CONSINGAN}
FAMILIES = {"singan": SinGANConfig, "consingan": ConSinGANConfig}


def config_from_manifest(manifest: dict) -> SinGANConfig | ConSinGANConfig:
    """The config a model directory was trained with, of its manifest's model family
    (models written before there were families are SinGAN's)."""
    family = manifest.get("family", "singan")
    if family not in FAMILIES:
        raise SinGANError(f"unknown model family {family!r}; choose from {', '.join(FAMILIES)}")
    return FAMILIES[family].from_dict(manifest["config"])


def reference_preset(config, name: str) -> str:
    """The preset a fit's options are told against: the one it was fitted from, or, for a
    config of the caller's own (`name` no preset), its family's reference."""
    if name in PRESETS:
        return name
    return "consingan" if config.family == "consingan" else "paper"


def preset(name: str) -> SinGANConfig | ConSinGANConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise SinGANError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
