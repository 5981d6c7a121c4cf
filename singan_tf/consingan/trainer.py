"""ConSinGANTrainer: trains a ConSinGAN stage by stage into a model directory.

The directory is PyramidTrainer's (model_dir.py), with "family": "consingan" in its
manifest, and so are locking, resuming, retrying an unhealthy stage, progress and
previews. Stage K's directory holds the generator as grown to K + 1 stages, the critic
(carried from stage to stage) and stage K's fixed reconstruction noise.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import keras
import numpy as np

from .. import model_dir as fmt
from ..health import STAGE_TOLERANCE, ScaleHealth, layout_error, layout_lost
from ..progress import format_seconds
from ..singan import SinGAN
from ..trainer import CHECK_SAMPLES, PREVIEW_SAMPLES, PyramidTrainer
from .config import CONSINGAN, ConSinGANConfig
from .models import copy_of, upsample
from .stage_training import build_stage, first_generator, new_critic, stage_dataset
from .trained import TrainedGrowingGenerator

# Stage 0 draws the layout that the stages above refine. LSUN 1 drew another scene with two
# of three seeds, so a stage 0 whose samples lose the photo's layout is retrained from new
# weights, up to this many tries in all; the nearest to it is kept, and the user told.
LAYOUT_TRIES = 3


@dataclass
class FittedStage:
    """One trained try at a stage, float32, with what the manifest and preview need."""
    generator: keras.Model
    critic: keras.Model
    z_opts: list
    amps: list
    history: keras.callbacks.History
    reconstruction: np.ndarray
    health: ScaleHealth
    samples: np.ndarray  # CHECK_SAMPLES of them
    layout: float  # health.layout_error of the samples
    trained_in: str  # the dtype policy it computed in
    attempts: int  # how many times it was trained until healthy


def _far_from_the_photo(k, layout) -> str:
    healthy = "up to about 4 at stage 0" if k == 0 else "about 1"
    return (f"stage {k}'s samples lie {layout:.1f}x further from the photo than from one "
            f"another (healthy: {healthy})")


class ConSinGANTrainer(PyramidTrainer):
    """Fit one image with ConSinGAN's recipe (see PyramidTrainer for the options)."""

    family = "consingan"
    level = "stage"
    health_tolerance = STAGE_TOLERANCE

    def __init__(self, model_dir, config: ConSinGANConfig = CONSINGAN,
                 preset: str = "consingan", **kwargs):
        super().__init__(model_dir, config, preset=preset, **kwargs)

    def _train(self, manifest, reals, max_new_scales=None) -> SinGAN | None:
        cfg = self.config
        sizes = [tuple(s) for s in manifest["sizes"]]
        total, done = len(sizes), len(manifest["scales"])
        stop = total if max_new_scales is None else min(total, done + max_new_scales)
        if self.announce:
            self._announce_plan(manifest)
            self._log(f"stages compute in {cfg.compute_policy()}")
        generator, stage_critic, z_opts = (fmt.load_growing_generator(
            self.model_dir, manifest, critic=True) if done else (None, None, []))
        amps = [float(s["noise_amp"]) for s in manifest["scales"]]
        k = done
        while k < stop:
            self.current_scale = k
            started = time.perf_counter()
            fitted, rejected = self._fit_stage(k, sizes, reals, generator, stage_critic,
                                               z_opts, amps, manifest), []
            while k == 0 and layout_lost(fitted.layout, k) and len(rejected) + 1 < LAYOUT_TRIES:
                self._log(f"warning: {_far_from_the_photo(k, fitted.layout)}, another scene; "
                          f"retraining it from new weights (try {len(rejected) + 2} of "
                          f"{LAYOUT_TRIES})")
                rejected.append(fitted)
                manifest.pop("failed_attempts", None)  # each try has its own attempts
                fitted = self._fit_stage(k, sizes, reals, generator, stage_critic, z_opts,
                                         amps, manifest, weights_try=len(rejected))
            if rejected:  # the try nearest the photo stays; the user looks at it
                fitted = min(rejected + [fitted], key=lambda f: f.layout)
                if not layout_lost(fitted.layout, k):
                    self._log(f"warning: stage 0 drew another scene in {len(rejected)} of "
                              f"{len(rejected) + 1} tries; kept one {fitted.layout:.1f}x "
                              f"further from the photo than from its fellows: look at "
                              f"previews/scale_00.png (a jumble of the photo's parts passes "
                              f"this check), another --seed may draw the photo's scene")
            seconds = time.perf_counter() - started
            manifest["train_seconds"] = round(manifest["train_seconds"] + seconds, 2)
            if k == 1 and layout_lost(fitted.layout, k) and self._relayout(manifest, fitted):
                generator, stage_critic, z_opts, amps, k = None, None, [], [], 0
                continue
            generator, stage_critic = fitted.generator, fitted.critic
            z_opts, amps = fitted.z_opts, fitted.amps
            fmt.save_scale(self.model_dir, k, generator, stage_critic, z_opts[k])
            losses = {name: float(v[-1]) for name, v in fitted.history.history.items()}
            manifest["scales"].append({"index": k, "size": list(sizes[k]),
                                       "channels": cfg.channels, "noise_amp": amps[k],
                                       "dtype_policy": fitted.trained_in,
                                       "train_seconds": round(seconds, 2),
                                       "final_losses": losses, **fitted.health.to_dict(),
                                       "layout_error": fitted.layout,
                                       "rejected_layout_errors": [f.layout for f in rejected],
                                       "attempts": fitted.attempts})
            manifest.pop("failed_attempts", None)
            fmt.write_json_atomic(self.model_dir / fmt.MANIFEST, manifest)
            self._save_preview(k, fitted.reconstruction, reals[k],
                               fitted.samples[:PREVIEW_SAMPLES])
            self._log(f"stage {k}: {format_seconds(seconds)}, {fitted.health.describe()}, "
                      f"noise_amp {amps[k]:.4f}")
            if layout_lost(fitted.layout, k):
                self._log(f"warning: {_far_from_the_photo(k, fitted.layout)}: they may draw "
                          f"another scene; look at previews/scale_{k:02d}.png, another --seed "
                          f"may draw the photo's")
            k += 1
        self.current_scale = None
        if len(manifest["scales"]) < total:
            return None
        self._log(f"done: {total} stages in {format_seconds(manifest['train_seconds'])} "
                  f"-> {self.model_dir}")
        return SinGAN(manifest, TrainedGrowingGenerator(generator, amps, z_opts, sizes), reals,
                      path=self.model_dir)

    def _relayout(self, manifest, stage_1: FittedStage) -> bool:
        """Start the fit again from stage 0 with a stage-0 critic of the config's
        relayout_layers (recorded in the manifest's config, so a resumed fit trains the
        same), where it has any. Whether it does.

        Stage 1 trains stage 0 further, and its layout score is surer: in float32 LSUN 1's
        stage 0 drew another scene at 4.65x (under stage 0's 6x) and two jumbles at about
        1x; at stage 1 one jumble had been put in order (1.1x) and the others scored 12.9x
        and 11.4x. A 9-conv stage-0 critic kept LSUN 1's scene with every seed tried, but
        it blurs healthy stage 0s, so it is only the remedy (docs/performance.md, sessions
        43-44)."""
        cfg = self.config
        layers = cfg.relayout_layers
        if not layers:
            return False
        self._log(f"warning: {_far_from_the_photo(1, stage_1.layout)}: stage 0 drew another "
                  f"scene; training stages 0 and 1 again with a {layers}-conv stage-0 "
                  f"critic, which sees more of the layout")
        self.config = cfg.replace(first_critic_layers=layers)
        manifest["config"] = self.config.to_dict()
        manifest["relayout"] = {"stage_1_layout_error": stage_1.layout,
                                "stage_0_layout_error": manifest["scales"][0].get("layout_error"),
                                "first_critic_layers": layers}
        manifest["scales"] = []
        manifest.pop("failed_attempts", None)
        fmt.write_json_atomic(self.model_dir / fmt.MANIFEST, manifest)
        return True

    def _fit_stage(self, k, sizes, reals, generator, stage_critic, z_opts, amps, manifest,
                   weights_try=0) -> FittedStage:
        """Grow `generator` (None: new stage-0 weights, drawn with the seed of
        `weights_try`) by stage k, train it until healthy and draw its check samples."""
        cfg = self.config
        real = reals[k][None]
        # What the health check compares stage k with: what the stages below it
        # reconstruct, upsampled (stage 0, like SinGAN's scale 0, is given zeros).
        given = (np.zeros_like(real) if generator is None else upsample(
            generator([amp * z for amp, z in zip(amps, z_opts)]), sizes[k]).numpy())
        keras.utils.set_random_seed(self._scale_seed(k, weights_try))  # the new weights
        generator = first_generator(cfg) if generator is None else generator.grown()
        z_opts = z_opts + [self._stage_z_opt(k, reals[0],
                                             generator.noise_shape(k, sizes[k], 1))]
        if stage_critic is None or stage_critic.num_layers != cfg.critic_layers_at(k):
            stage_critic = new_critic(cfg, k)
        # Stage k's noise: noise_amp_init x the RMSE of the grown generator's
        # reconstruction with no noise at stage k (ConSinGAN's).
        grown = generator([amp * z for amp, z in zip(amps + [0.0], z_opts)]).numpy()
        amps = amps + [1.0 if k == 0 else
                       cfg.noise_amp_init * math.sqrt(float(np.mean(np.square(grown - real))))]

        def train(attempt, lr_factor):
            return self._train_stage(k, sizes, real, generator, stage_critic, z_opts, amps,
                                     attempt, lr_factor)
        stage, history, reconstruction, health = self._train_until_healthy(
            k, train, reals[k], manifest, rec_input=given)
        # Saved and sampled in float32 whatever the stage trained in (recorded).
        generator = copy_of(stage.generator, "float32")
        trained = TrainedGrowingGenerator(generator, amps, z_opts, sizes[:k + 1])
        samples = generator(trained.noises(self._scale_seed(k), CHECK_SAMPLES,
                                           sizes[:k + 1])).numpy()
        return FittedStage(generator, copy_of(stage.critic, "float32"), z_opts, amps, history,
                           reconstruction, health, samples,
                           round(layout_error(samples, reals[k]), 3),
                           stage.generator.dtype_policy.name, self.current_attempt + 1)

    def _stage_z_opt(self, k, coarsest_real, shape) -> np.ndarray:
        """Stage k's fixed reconstruction noise of `shape`: the coarsest real image at
        stage 0 (ConSinGAN's), a random draw (seeded) above it."""
        if k == 0:
            return np.asarray(coarsest_real[None], np.float32)
        rng = np.random.default_rng(self._scale_seed(k))
        return rng.standard_normal(tuple(shape.numpy())).astype(np.float32)

    def _train_stage(self, k, sizes, real, generator, stage_critic, z_opts, amps, attempt,
                     lr_factor):
        """One attempt at stage k (see build_stage); a retry computes in float32.
        Returns (stage, history)."""
        cfg = self.config
        seed = self._scale_seed(k, attempt)
        keras.utils.set_random_seed(seed)
        iterations = cfg.iterations(k)
        stage = build_stage(cfg, k, sizes, generator, stage_critic, seed, iterations,
                            lr_factor, dtype_policy=self._attempt_policy(attempt))
        stage.noise_amps.assign(amps)
        for weight, z_opt in zip(stage.z_opts, z_opts):
            weight.assign(z_opt)
        history = stage.fit(stage_dataset(real), epochs=1, steps_per_epoch=iterations, verbose=0,
                            shuffle=False, callbacks=self._scale_callbacks(k, sizes, attempt))
        return stage, history

    def _attempt_policy(self, attempt) -> str:
        """The dtype policy of an attempt: a retry computes in float32 (bfloat16 stages
        went NaN at once, at any learning rate, on an Intel CPU with AMX: oneDNN's AMX
        weight-gradient kernel; docs/performance.md, sessions 42-43)."""
        return "float32" if attempt else self.config.compute_policy()

    def _retry_change(self, n, size) -> str:
        changed = self._attempt_policy(1) != self._attempt_policy(0)
        return f", in {self._attempt_policy(1)}" if changed else ""

    def _windowed(self, n, size) -> bool:
        return False  # every stage trains on its whole image

    def _checks_strictly(self, n, size) -> bool:
        return True  # see health.py: a stage that adds nothing keeps its input's error

    def _work(self, n, size) -> float:
        return math.prod(size) * self.config.iterations(n)

    def _scale_title(self, n, sizes) -> str:
        return (f"stage {n + 1}/{len(sizes)}: {sizes[n][0]}x{sizes[n][1]}, "
                f"{self.config.iterations(n)} iterations, stages "
                f"{self.config.trained_stages(n).start}-{n} training")
