"""PyramidTrainer: trains SinGAN coarse to fine, one SinGANScale per scale.

Each finished scale is frozen and written to the model directory atomically, so a killed
fit loses at most the scale in progress and `resume=True` continues from there. With
`coarse_joint_stages` a coarse scale trains the generators below it along, and they are
written again before it.
"""
from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import model_dir as fmt
from .config import FAST, SinGANConfig, config_from_manifest
from .errors import ImageError, ModelDirError, ScaleDivergedError, SinGANError
from .health import (COLOUR_DRIFT_WARNING, TOLERANCE, ScaleHealth, colour_drift, colour_turned,
                     psnr)
from .images import contact_sheet, load_image, save_png, to_uint8
from .progress import ScaleProgress, StopOnNonFinite, format_seconds
from .pyramid import real_pyramid, resize
from .scale_training import steps_per_execution, train_scale
from .singan import SinGAN, load
from .trained_pyramid import Pyramid, TrainedScale

PREVIEW_SAMPLES = 4
# The samples drawn after each scale for its checks (colour drift; ConSinGAN's layout
# error); the preview shows the first ones. With 4, a healthy scale's colour drift varied
# by +-3 levels from seed to seed.
CHECK_SAMPLES = 16
# A scale that fails the health check (health.py) is trained again from its initial
# weights with another seed and these factors on the learning rates, then the fit stops.
# Retries also renormalize G's BatchNorm on windowed scales (see SinGANScale): no windowed
# scale trained so has collapsed (docs/performance.md).
RETRY_LR_FACTORS = (1.0, 0.5, 0.25)


class PyramidTrainer:
    """Fit one image into a model directory.

    callbacks: extra Keras callbacks given to every scale's `fit` (the scale index is
    available as `trainer.current_scale`).
    process_per_scale: train every scale in a fresh process (see `isolation`): peak memory
    stays that of one scale instead of growing with every scale. Needs no callbacks.
    """

    family = "singan"  # the model family it trains (the config's)
    level = "scale"  # what the model's levels are called in messages
    health_tolerance = TOLERANCE  # of the health check (health.py)

    def __init__(self, model_dir, config: SinGANConfig = FAST, preset: str = "custom",
                 seed: int = 0, callbacks=(), verbose: int = 1, tensorboard: bool = True,
                 task: str = "generation", sr_factor: float | None = None,
                 process_per_scale: bool = False):
        if process_per_scale and callbacks:
            raise SinGANError("callbacks cannot reach other processes; use "
                              "process_per_scale=False to pass callbacks")
        # What a child process needs to build the same trainer (see isolation.py).
        self.options = dict(model_dir=model_dir, config=config, preset=preset, seed=seed,
                            verbose=verbose, tensorboard=tensorboard, task=task,
                            sr_factor=sr_factor)
        self.process_per_scale = process_per_scale
        self.announce = True  # header and resume lines; off in later per-scale processes
        self.owns_lock = True  # off in per-scale processes: their parent holds the lock
        self.model_dir = Path(model_dir)
        if task not in ("generation", "sr"):
            raise SinGANError(f"unknown task {task!r}; choose generation or sr")
        if task == "sr":
            if not isinstance(config, SinGANConfig):
                raise SinGANError("task sr needs a SinGAN preset (paper, fast or quality)")
            if sr_factor is None:
                raise SinGANError("task sr needs an sr_factor (e.g. 4)")
            config = config.for_super_resolution(sr_factor)
        self.task, self.sr_factor = task, sr_factor
        self.config = config
        self.preset = preset
        self.seed = int(seed)
        self.callbacks = list(callbacks)
        self.verbose = verbose
        self.tensorboard = tensorboard
        self.current_scale = None
        self.current_attempt = 0  # > 0 while a diverged scale is retrained

    # ------------------------------------------------------------------ setup
    def fit(self, image=None, resume: bool = False, overwrite: bool = False,
            max_new_scales: int | None = None) -> SinGAN | None:
        """Train on `image` (a path) and return the trained model.

        resume: continue the model directory's unfinished fit (its saved config is used).
        overwrite: replace an existing model directory.
        max_new_scales: stop after training this many scales (returns None if unfinished).
        """
        if resume and overwrite:
            raise SinGANError("choose either resume or overwrite, not both")
        if not self.owns_lock:  # a per-scale child: its parent holds the lock
            return self._fit_locked(image, resume, overwrite, max_new_scales)
        checked = None if resume else self._checked_image(image)  # before touching the output
        created = not self.model_dir.exists()
        try:
            with fmt.writer_lock(self.model_dir):
                return self._fit_locked(image, resume, overwrite, max_new_scales, checked)
        except BaseException:
            if created and self.model_dir.is_dir() and fmt.is_empty(self.model_dir):
                shutil.rmtree(self.model_dir)  # nothing but the lock: leave no trace
            raise

    def _fit_locked(self, image, resume, overwrite, max_new_scales, checked=None):
        if resume:
            manifest, reals = self._resume_state(image)
        else:
            manifest, reals = self._start(image, overwrite, checked)
        if self.process_per_scale:
            return self._train_in_processes(manifest)
        return self._train(manifest, reals, max_new_scales)

    def _train_in_processes(self, manifest) -> SinGAN:
        from .isolation import train_next_scale_in_child

        self._announce_plan(manifest)
        while len(manifest["scales"]) < manifest["num_scales"]:
            train_next_scale_in_child(type(self), self.options)
            manifest = fmt.read_manifest(self.model_dir)
        return load(self.model_dir)

    def _log(self, message: str) -> None:
        if self.verbose:
            print(message, flush=True)

    def _prepare_image(self, image):
        array, notes = load_image(image, max_side=self.config.max_size)
        for note in notes:
            self._log(f"note: {note}")
        h, w = array.shape[:2]
        spec = self.config.pyramid_spec(h, w)
        if spec.finest != (h, w):
            self._log(f"note: image is {h}x{w}; shrunk to {spec.finest[0]}x{spec.finest[1]} "
                      f"(max_size={self.config.max_size})")
        return array, spec

    def _checked_image(self, image):
        if image is None:
            raise SinGANError("fit needs an image")
        return self._prepare_image(image)

    def _start(self, image, overwrite, checked=None):
        array, spec = checked or self._checked_image(image)
        self._claim_output_dir(overwrite)
        reals = [r[0].numpy() for r in real_pyramid(tf.constant(array), spec)]
        manifest = fmt.new_manifest(self.config, self.preset, self.seed, str(image),
                                    array.shape[:2], spec.sizes, spec.factor, task=self.task,
                                    sr_factor=self.sr_factor, tensorboard=self.tensorboard,
                                    family=self.config.family)
        self.model_dir.mkdir(parents=True, exist_ok=True)
        fmt.save_reals(self.model_dir, reals)
        fmt.write_json_atomic(self.model_dir / fmt.MANIFEST, manifest)
        return manifest, reals

    def _claim_output_dir(self, overwrite):
        directory = self.model_dir
        if directory.exists() and not directory.is_dir():
            raise ModelDirError(f"{directory} exists and is not a directory")
        if not directory.exists() or fmt.is_empty(directory):
            return
        if not overwrite:
            raise ModelDirError(f"{directory} is not empty; use --resume to continue its fit "
                                "or --overwrite to start again")
        fmt.remove_model(directory)

    def _resume_state(self, image):
        manifest = fmt.read_manifest(self.model_dir)
        reals = fmt.load_reals(self.model_dir, manifest["num_scales"])
        self.config = config_from_manifest(manifest)
        if self.config.family != self.family:
            raise SinGANError(f"{self.model_dir} holds a {self.config.family} model; resume it "
                              f"with `singan-tf fit -o {self.model_dir} --resume` or "
                              "singan_tf.fit(None, MODEL_DIR, resume=True)")
        self.preset, self.seed = manifest["preset"], manifest["seed"]
        self.task, self.sr_factor = manifest["task"], manifest.get("sr_factor")
        # A fit started without TensorBoard logs resumes without them too.
        self.tensorboard = self.tensorboard and manifest.get("tensorboard", True)
        if image is not None:
            array, spec = self._prepare_image(image)
            finest = real_pyramid(tf.constant(array), spec)[-1][0].numpy()
            if finest.shape != reals[-1].shape or np.abs(finest - reals[-1]).max() > 2 / 255:
                raise ImageError(f"{image} is not the image {self.model_dir} was trained on")
        fmt.remove_partial_scales(self.model_dir)
        done = len(manifest["scales"])
        if done == manifest["num_scales"]:
            self._log(f"{self.model_dir} is already fully trained ({done} {self.level}s)")
        elif self.announce:
            self._log(f"resuming at {self.level} {done} of {manifest['num_scales']}")
        return manifest, reals

    # --------------------------------------------------------------- training
    def _train(self, manifest, reals, max_new_scales=None) -> SinGAN | None:
        cfg = self.config
        sizes = [tuple(s) for s in manifest["sizes"]]
        pyramid = Pyramid(fmt.load_trained_scales(self.model_dir, manifest))
        # The last finished D: a scale of the same width starts from its weights.
        discriminator = (fmt.load_discriminator(self.model_dir, pyramid.num_scales - 1)
                         if pyramid.num_scales else None)
        total = len(sizes)
        stop = total if max_new_scales is None else min(total,
                                                         pyramid.num_scales + max_new_scales)
        if self.announce:
            self._announce_plan(manifest)
        for n in range(pyramid.num_scales, stop):
            self.current_scale = n
            started = time.perf_counter()
            rec_prev = pyramid.reconstruction_input(n, sizes[n])
            real = tf.constant(reals[n][None])
            amp = 1.0 if n == 0 else cfg.noise_amp_factor(n) * float(
                tf.sqrt(tf.reduce_mean(tf.square(real - rec_prev))))
            z_opt = self._z_opt(n, real)

            def train(attempt, lr_factor):
                return self._train_scale(n, sizes, real, rec_prev, amp, z_opt, pyramid,
                                         discriminator, attempt, lr_factor)
            scale, history, reconstruction, health = self._train_until_healthy(
                n, train, reals[n], manifest)
            scale.generator.trainable = False
            trained = TrainedScale(scale.generator, amp, z_opt, sizes[n])
            if scale.lower_generators:
                pyramid = self._save_lower_stages(n, pyramid, scale, trained)
            else:
                pyramid = pyramid.extended(trained, reconstruction)
            discriminator = scale.discriminator
            fmt.save_scale(self.model_dir, n, scale.generator, scale.discriminator, z_opt)
            seconds = time.perf_counter() - started
            losses = {k: float(v[-1]) for k, v in history.history.items()}
            samples, drift = self._preview_samples(n, pyramid, reals[n])
            manifest["scales"].append({"index": n, "size": list(sizes[n]),
                                       "channels": cfg.channels(n), "noise_amp": amp,
                                       "train_seconds": round(seconds, 2),
                                       "final_losses": losses, **health.to_dict(),
                                       "colour_drift": drift,
                                       "attempts": self.current_attempt + 1})
            manifest.pop("failed_attempts", None)  # only ever the scale now finished
            manifest["train_seconds"] = round(manifest["train_seconds"] + seconds, 2)
            fmt.write_json_atomic(self.model_dir / fmt.MANIFEST, manifest)
            self._save_preview(n, pyramid.reconstructions[n].numpy(), reals[n], samples)
            self._log(f"scale {n}: {format_seconds(seconds)}, reconstruction "
                      f"{psnr(health.rec_error):.1f} dB (rec_loss {losses['rec_loss']:.4f}), "
                      f"noise_amp {amp:.4f}")
            if colour_turned(drift):
                self._log(f"warning: scale {n} moved the samples' colours away from the "
                          f"photo's by {drift:.1f} levels (healthy scales stay under "
                          f"{COLOUR_DRIFT_WARNING:g}): look at previews/scale_{n:02d}.png")
        self.current_scale = None
        if pyramid.num_scales < total:
            return None
        if total:
            self._log(f"done: {total} scales in {format_seconds(manifest['train_seconds'])} "
                      f"-> {self.model_dir}")
        return SinGAN(manifest, pyramid, reals, path=self.model_dir)

    def _announce_plan(self, manifest) -> None:
        sizes, done, total = manifest["sizes"], len(manifest["scales"]), manifest["num_scales"]
        if done < total:
            self._log(f"training {total - done} of {total} {self.level}s, sizes "
                      f"{sizes[0][0]}x{sizes[0][1]} .. {sizes[-1][0]}x{sizes[-1][1]}, "
                      f"preset {self.preset}")

    def _save_lower_stages(self, n, pyramid, scale, trained) -> Pyramid:
        """Write the lower generators that trained along with scale n over their scales'
        files (before scale n's own: a fit killed between them resumes at scale n with
        them) and return the pyramid with them and `trained`. Their manifest records keep
        the figures of their own training."""
        first = n - len(scale.lower_generators)
        lower = []
        for j, generator in enumerate(scale.lower_generators, start=first):
            generator.trainable = False
            old = pyramid.scales[j]
            lower.append(TrainedScale(generator, old.noise_amp, old.z_opt, old.size))
            fmt.rewrite_generator(self.model_dir, j, generator)
        return Pyramid(pyramid.scales[:first] + lower + [trained])

    def _train_until_healthy(self, n, train, real, manifest, rec_input=None):
        """Train scale n until it passes the health check (health.py): each failed attempt
        is logged, recorded in the manifest and retried with another seed, a lower
        learning rate and what `_retry_change` says; after the last one
        the fit stops with the finished scales kept. A resumed fit goes on after the
        attempts its manifest records as failed (training is deterministic on a CPU, so a
        failed attempt would fail again), or from the first when all of them failed. The
        check compares the reconstruction with `rec_input`, or else the scale's own
        reconstruction input. Returns (scale, history, reconstruction, health)."""
        failed = list(manifest.get("failed_attempts", {}).get(str(n), []))
        if len(failed) >= len(RETRY_LR_FACTORS):
            failed = []
        size = tuple(real.shape[:2])
        strict = self._checks_strictly(n, size)
        for attempt in range(len(failed), len(RETRY_LR_FACTORS)):
            self.current_attempt, lr_factor = attempt, RETRY_LR_FACTORS[attempt]
            scale, history = train(attempt, lr_factor)
            reconstruction = scale.reconstruct()[0]
            given = scale.reconstruction_input() if rec_input is None else rec_input
            health = ScaleHealth.measure(real, reconstruction, given, n,
                                         self.config.iterations(n), strict,
                                         self.health_tolerance)
            if health.healthy:
                return scale, history, reconstruction, health
            failed.append({"seed": self._scale_seed(n, attempt), "lr_factor": lr_factor,
                           **health.to_dict()})
            manifest["failed_attempts"] = {str(n): failed}
            fmt.write_json_atomic(self.model_dir / fmt.MANIFEST, manifest)
            retry = ""
            if attempt + 1 < len(RETRY_LR_FACTORS):
                retry = (f"; retraining it with seed {self._scale_seed(n, attempt + 1)}, "
                         f"{RETRY_LR_FACTORS[attempt + 1]:g}x the learning rate"
                         f"{self._retry_change(n, size)} "
                         f"(attempt {attempt + 2} of {len(RETRY_LR_FACTORS)})")
            self._log(f"warning: {self.level} {n} diverged: {health.describe()}{retry}")
        raise ScaleDivergedError(
            f"{self.level} {n} diverged in all {len(RETRY_LR_FACTORS)} attempts (last: "
            f"{health.describe()}), so it was not written; the {n} finished {self.level}(s) "
            f"are kept in {self.model_dir}: continue with --resume, on this CPU perhaps with "
            f"TF_ENABLE_ONEDNN_OPTS=0 (docs/performance.md; the attempts are listed under "
            f"'failed_attempts' in {fmt.MANIFEST})")

    def _retry_change(self, n, size) -> str:
        """What else a retry of scale n changes, for the log: G's BatchNorm renormalized
        on a windowed scale."""
        normalized = self._windowed(n, size) and self.config.generator_normalized(n)
        return ", G's BatchNorm renormalized" if normalized else ""

    def _windowed(self, n, size) -> bool:
        """Whether scale n trains on windows of its image (see SinGANScale)."""
        return self.config.training_size(size, n) != size

    def _checks_strictly(self, n, size) -> bool:
        """Whether scale n's health check uses the strict floor (health.py): windowed scales,
        whose G normalizes by frozen statistics, the collapse's mechanism."""
        return self._windowed(n, size)

    def _train_scale(self, n, sizes, real, rec_prev, amp, z_opt, frozen, discriminator,
                     attempt, lr_factor):
        """One attempt at scale n, fed by the `frozen` coarser scales: fresh weights, or
        the coarser scale's G and `discriminator` when of the same width; returns
        (scale, history). One seed per scale: a resumed fit draws exactly what an
        uninterrupted one would."""
        cfg = self.config
        start_from = ((frozen.scales[-1].generator, discriminator)
                      if cfg.inherits_weights(n) else None)
        lower = [frozen.scales[j] for j in cfg.lower_stages(n)]
        if lower:  # they train along: the frozen pyramid ends below them
            first = n - len(lower)
            frozen, rec_prev = frozen.coarser(first), frozen.reconstruction_input(first)
        return train_scale(cfg, n, real, frozen, rec_prev, amp, z_opt, lower_scales=lower,
                           seed=self._scale_seed(n, attempt), start_from=start_from,
                           lr_factor=lr_factor,
                           renormalize_windows=cfg.renormalize_windows or attempt > 0,
                           callbacks=self._scale_callbacks(n, sizes, attempt))

    def _scale_seed(self, n: int, attempt: int = 0) -> int:
        """The seed of scale n; a retry after divergence (attempt > 0) draws other numbers."""
        return (self.seed * 1009 + n + 7919 * attempt) % (2 ** 31)

    def _z_opt(self, n, real) -> np.ndarray:
        """Scale n's fixed reconstruction input, the same shape as its noise: zeros above
        scale 0; at scale 0 random (drawn once), or the real image itself with
        real_coarsest_z_opt (ConSinGAN's)."""
        shape = (*real.shape[:3], self.config.noise_channels(n))
        if n > 0:
            return np.zeros(shape, np.float32)
        if self.config.real_coarsest_z_opt:
            return np.asarray(real, np.float32)
        return np.random.default_rng(self._scale_seed(0)).standard_normal(shape).astype(np.float32)

    def _work(self, n, size) -> float:
        """Scale n's cost relative to the others' (for the fit's ETA): trained pixels x
        width^2 x iterations."""
        cfg = self.config
        return math.prod(cfg.training_size(size, n)) * cfg.channels(n) ** 2 * cfg.iterations(n)

    def _scale_title(self, n, sizes) -> str:
        cfg = self.config
        return (f"scale {n + 1}/{len(sizes)}: {sizes[n][0]}x{sizes[n][1]}, "
                f"{cfg.channels(n)} channels, {cfg.iterations(n)} iterations")

    def _scale_callbacks(self, n, sizes, attempt=0):
        cfg = self.config
        work = [self._work(m, size) for m, size in enumerate(sizes)]
        title = self._scale_title(n, sizes)
        if attempt:
            title += f", attempt {attempt + 1}"
        callbacks = [ScaleProgress(title, cfg.iterations(n), sum(work[n + 1:]) / work[n],
                                   verbose=self.verbose), StopOnNonFinite()]
        if self.tensorboard:
            logs = f"scale_{n:02d}" + (f"_attempt{attempt + 1}" if attempt else "")
            callbacks.append(keras.callbacks.TensorBoard(
                self.model_dir / "logs" / logs, write_graph=False,
                update_freq=steps_per_execution(cfg, cfg.iterations(n))))
        return callbacks + self.callbacks

    def _preview_samples(self, n, pyramid: Pyramid, real):
        """Scale n's preview samples, and how far scale n moved the colours of
        `CHECK_SAMPLES` samples away from the photo's (health.colour_drift; None at scale
        0, which has no input to compare)."""
        seed = self._scale_seed(n)
        if n == 0:
            return pyramid.run(seed, PREVIEW_SAMPLES, pyramid.sizes), None
        inputs = resize(pyramid.coarser(n).run(seed, CHECK_SAMPLES, pyramid.sizes[:n]),
                        pyramid.sizes[n])
        samples = pyramid.run(seed, CHECK_SAMPLES, pyramid.sizes, start_scale=n,
                              first_input=inputs)
        drift = round(colour_drift(samples.numpy(), inputs.numpy(), real), 2)
        return samples[:PREVIEW_SAMPLES], drift

    def _save_preview(self, n, reconstruction, real, samples):
        """previews/scale_NN.png: real | reconstruction | the samples."""
        images = [to_uint8(real), to_uint8(reconstruction)] + list(to_uint8(samples))
        labels = ["real", "reconstruction"] + [f"sample {i + 1}" for i in range(PREVIEW_SAMPLES)]
        directory = self.model_dir / "previews"
        directory.mkdir(exist_ok=True)
        save_png(directory / f"scale_{n:02d}.png", contact_sheet(images, labels))


def make_trainer(model_dir, config=FAST, resume: bool = False, **options) -> PyramidTrainer:
    """The trainer of `config`'s model family (PyramidTrainer for SinGAN's presets,
    ConSinGANTrainer for consingan); resuming, that of the model directory's family."""
    from .consingan.trainer import ConSinGANTrainer  # it builds on this module

    family = config.family
    if resume and (Path(model_dir) / fmt.MANIFEST).is_file():
        family = config_from_manifest(fmt.read_manifest(model_dir)).family
    trainer_class = ConSinGANTrainer if family == "consingan" else PyramidTrainer
    return trainer_class(model_dir, config, **options)


def fit(image, model_dir, config: SinGANConfig = FAST, **kwargs) -> SinGAN:
    """Train on one image with `config`'s model family; see PyramidTrainer for the options."""
    fit_options = {k: kwargs.pop(k) for k in ("resume", "overwrite") if k in kwargs}
    return make_trainer(model_dir, config, fit_options.get("resume", False),
                        **kwargs).fit(image, **fit_options)
