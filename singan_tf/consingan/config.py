"""ConSinGAN's hyperparameters: one frozen dataclass with its paper's defaults.

The `consingan` preset keeps ConSinGAN's 2000 iterations at stages 0-4 and gives only the
finest stage 500. 1000 at the coarse stages broke the layout (docs/performance.md,
"ConSinGAN's recipe as a whole"); 500 at stage 4, which trains stages 2-3 along, left the
objects as broken as stages 2-3 draw them, where 2000 redrew them whole on both images tried
("Stage 4 with ConSinGAN's 2000 iterations"). It upsamples the feature maps as ConSinGAN's
code does (`align_corners`): with TF's half-pixel resize its samples kept the photo's layout,
near-copies (docs/performance.md, "ConSinGAN's resize in the preset").
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import machine
from ..config_fields import ConfigFields
from ..errors import SinGANError
from ..pyramid import PyramidSpec, consingan_spec


DTYPE_POLICIES = ("float32", "mixed_bfloat16", "auto")


@dataclass(frozen=True)
class ConSinGANConfig(ConfigFields):
    # Stages
    max_size: int = 250            # long side of the finest stage
    min_size: int = 25             # short side of the coarsest stage (about)
    stages: int = 6
    # Networks
    channels: int = 64             # of every conv and of the feature maps between stages
    convs_per_stage: int = 3       # each stage's body; the critic has this + 2
    first_critic_layers: int = 0   # > 0: stage 0's critic has this many convs instead, to
                                   # see more of the layout; stage 1 starts a new critic
    relayout_critic_layers: int = 9  # where stage 1 lost the layout, stages 0 and 1 train
                                     # again with first_critic_layers this (at most what
                                     # min_size takes); 0: never
    leaky_slope: float = 0.05
    align_corners: bool = False    # upsample feature maps as ConSinGAN's PyTorch code does
                                   # (the preset's; False here: models saved before the
                                   # option existed used TF's half-pixel resize)
    # Optimisation
    iters_per_stage: int = 2000
    fine_stages: int = 0           # the last this many stages train fine_iters_per_stage
    fine_iters_per_stage: int = 0
    train_depth: int = 3           # stages trained together: the newest and those below it
    lr_scale: float = 0.1          # each older stage's learning rate: this x the next one's
    critic_steps: int = 3
    generator_steps: int = 3       # Adam steps with the iteration's one generator gradient
    lr_g: float = 5e-4
    lr_d: float = 5e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    lr_decay_at: float = 0.8       # fraction of a stage's iterations before lr x lr_decay
    lr_decay: float = 0.1
    # Losses
    alpha: float = 10.0            # reconstruction weight
    gp_weight: float = 0.1
    gp_window: int = 0             # > 0: the penalty over a random window this wide (px)
    noise_amp_init: float = 0.1    # a stage's noise: this x the reconstruction RMSE before it
    # Speed
    steps_per_execution: int = 10
    dtype_policy: str = "float32"  # mixed_bfloat16: train in bfloat16; auto: where it pays

    family = "consingan"  # the model family a model directory's manifest names

    def __post_init__(self):
        for name in ["max_size", "min_size", "channels", "convs_per_stage", "iters_per_stage",
                     "train_depth", "critic_steps", "generator_steps", "steps_per_execution"]:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise SinGANError(f"config: {name} must be a positive integer, got {value!r}")
        for name in ["fine_stages", "fine_iters_per_stage", "gp_window",
                     "first_critic_layers", "relayout_critic_layers"]:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SinGANError(f"config: {name} must be a non-negative integer, "
                                  f"got {value!r}")
        if not isinstance(self.align_corners, bool):
            raise SinGANError(f"config: align_corners must be true or false, "
                              f"got {self.align_corners!r}")
        if not isinstance(self.stages, int) or self.stages < 2:
            raise SinGANError(f"config: stages must be an integer of at least 2, "
                              f"got {self.stages!r}")
        if self.min_size < self.critic_field:
            deeper = (f", with first_critic_layers={self.first_critic_layers}"
                      if self.first_critic_layers > self.critic_layers else "")
            raise SinGANError(f"config: min_size must be at least {self.critic_field} "
                              f"(the critic's receptive field{deeper})")
        if self.min_size > self.max_size:
            raise SinGANError(f"config: min_size ({self.min_size}) exceeds max_size "
                              f"({self.max_size})")
        for name in ["lr_g", "lr_d", "alpha", "gp_weight", "noise_amp_init", "lr_scale",
                     "leaky_slope"]:
            if getattr(self, name) < 0:
                raise SinGANError(f"config: {name} must be non-negative")
        if self.dtype_policy not in DTYPE_POLICIES:
            raise SinGANError(f"config: dtype_policy must be one of {', '.join(DTYPE_POLICIES)}, "
                              f"got {self.dtype_policy!r}")
        if not 0 <= self.lr_decay_at <= 1:
            raise SinGANError("config: lr_decay_at must lie in [0, 1]")

    @property
    def critic_layers(self) -> int:
        return self.convs_per_stage + 2

    def critic_layers_at(self, stage: int) -> int:
        """The convs of the critic that trains with `stage`."""
        return self.first_critic_layers if stage == 0 and self.first_critic_layers else (
            self.critic_layers)

    @property
    def critic_field(self) -> int:
        """The widest critic's receptive field in pixels (11 for five 3x3 convs)."""
        return 2 * max(self.critic_layers, self.first_critic_layers) + 1

    @property
    def relayout_layers(self) -> int:
        """The stage-0 critic's convs for a relayout: relayout_critic_layers, at most those
        whose field min_size takes; 0 (none) where that is no deeper than the usual critic
        or stage 0 already has a deeper one."""
        layers = min(self.relayout_critic_layers, (self.min_size - 1) // 2)
        return 0 if self.first_critic_layers or layers <= self.critic_layers else layers

    def pyramid_spec(self, height: int, width: int) -> PyramidSpec:
        return consingan_spec(height, width, self.min_size, self.max_size, self.stages)

    def compute_policy(self) -> str:
        """The dtype policy the stages train under (their weights stay float32): "auto"
        is mixed_bfloat16 where bfloat16 trains fast and safely here (machine.fast_bfloat16:
        AVX512_BF16 without AMX), else float32."""
        if self.dtype_policy != "auto":
            return self.dtype_policy
        return "mixed_bfloat16" if machine.fast_bfloat16() else "float32"

    def iterations(self, stage: int) -> int:
        """Training iterations of a stage."""
        if stage >= self.stages - self.fine_stages and self.fine_iters_per_stage:
            return self.fine_iters_per_stage
        return self.iters_per_stage

    def trained_stages(self, stage: int) -> range:
        """The stages whose bodies train while `stage` does: it and up to train_depth - 1
        below it (older ones stay as they are)."""
        return range(max(0, stage - self.train_depth + 1), stage + 1)

    def trains_head(self, stage: int) -> bool:
        """The head (image -> features) trains while fewer than train_depth stages exist."""
        return stage < self.train_depth


CONSINGAN = ConSinGANConfig(fine_stages=1, fine_iters_per_stage=500, align_corners=True)
