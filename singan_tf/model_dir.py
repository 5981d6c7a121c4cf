"""The on-disk model format (version 1), documented in README.md "Model directory".

    MODEL_DIR/
      singan.json                  manifest: format, config, sizes, per-scale noise_amp,
                                   widths and training seconds; rewritten atomically
      reals.npz                    the training image at every scale (float32, [-1, 1])
      scales/NN/generator.keras    G_NN (keras.saving format)
      scales/NN/discriminator.keras
      scales/NN/z_opt.npy          the fixed reconstruction noise
      previews/scale_NN.png        real | reconstruction | 4 samples, after each scale
      logs/scale_NN/               TensorBoard
      .singan.lock                 held (flock) by the fit writing the directory
      fit.log                      the fit's output, when `fit-many` ran it

A scale directory appears by rename only when all its files are written, and the manifest
lists a scale only after that, so an interrupted fit never leaves a half-written scale.
"""
from __future__ import annotations

import contextlib
import fcntl
import io
import json
import math
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import keras
import numpy as np

from . import atomic
from . import models  # noqa: F401  (registers the Keras classes for loading)
from .config import config_from_manifest, reference_preset
from .config import preset as preset_config
from .errors import ModelDirError, SinGANError
from .trained_pyramid import TrainedScale

FORMAT = "singan-tf-model"
FORMAT_VERSION = 1
MANIFEST = "singan.json"
REALS = "reals.npz"
LOCK = ".singan.lock"
LOG = "fit.log"


@dataclass
class ScaleFiles:
    generator: keras.Model
    discriminator: keras.Model | None  # None when not asked for
    z_opt: np.ndarray


def scale_dir(model_dir, scale: int) -> Path:
    return Path(model_dir) / "scales" / f"{scale:02d}"


def finished_scale_dir(model_dir, scale: int) -> Path:
    """Where a finished scale's files are read from: its directory, or the copy a fit
    killed while rewriting it left aside (see atomic.atomic_directory)."""
    return atomic.existing_directory(scale_dir(model_dir, scale))


def write_json_atomic(path: Path, data: dict) -> None:
    atomic.write_text(path, json.dumps(data, indent=2) + "\n")


def new_manifest(config, preset: str, seed: int, source: str,
                 source_size, sizes, factor: float, task: str = "generation", **extra) -> dict:
    """`settings` records the options set beyond the preset as it stands at fit time, so that
    a later change of the preset does not make its old values look set by the user."""
    settings = config.differences(preset_config(reference_preset(config, preset)))
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "task": task,
            "preset": preset, "seed": seed, "config": config.to_dict(), "settings": settings,
            "source_image": source, "source_size": list(source_size),
            "sizes": [list(s) for s in sizes], "scale_factor": factor,
            "num_scales": len(sizes), "scales": [], "train_seconds": 0.0, **extra}


def save_reals(model_dir, reals) -> None:
    with atomic.atomic_file(Path(model_dir) / REALS, suffix=".npz") as tmp:
        np.savez(tmp, **{f"scale_{n:02d}": np.asarray(r) for n, r in enumerate(reals)})


def save_scale(model_dir, scale: int, generator, discriminator, z_opt) -> None:
    """Write one finished scale to a temporary directory, then rename it into place."""
    with atomic.atomic_directory(scale_dir(model_dir, scale)) as tmp:
        generator.save(tmp / "generator.keras")
        discriminator.save(tmp / "discriminator.keras")
        np.save(tmp / "z_opt.npy", np.asarray(z_opt))


def rewrite_generator(model_dir, scale: int, generator) -> None:
    """Replace a finished scale's G (one that trained along with a finer scale), keeping
    its other files as they are; as atomic as save_scale."""
    kept = ["discriminator.keras", "z_opt.npy"]
    _require(model_dir, scale, kept)  # the one-line error loading them gives
    source = finished_scale_dir(model_dir, scale)
    with atomic.atomic_directory(scale_dir(model_dir, scale)) as tmp:
        for name in kept:
            shutil.copy2(source / name, tmp / name)
        generator.save(tmp / "generator.keras")


# What a model directory holds that singan-tf wrote: all that `remove_model` deletes.
OWNED_FILES = (MANIFEST, REALS, LOG, atomic.temporary_name(MANIFEST),
               atomic.temporary_name(REALS, ".npz"))
OWNED_DIRS = ("scales", "previews", "logs")


def remove_model(model_dir) -> None:
    """Delete a model for --overwrite: only after its manifest proves it is one, and only
    the files singan-tf writes; anything else the user keeps there stays."""
    model_dir = Path(model_dir)
    try:
        read_manifest(model_dir)
    except ModelDirError as err:
        raise ModelDirError(f"refusing to overwrite {model_dir}: it is not a singan-tf model "
                            f"directory ({err})") from None
    for name in OWNED_DIRS:
        shutil.rmtree(model_dir / name, ignore_errors=True)
    for name in OWNED_FILES:
        (model_dir / name).unlink(missing_ok=True)


@contextlib.contextmanager
def writer_lock(model_dir):
    """Hold the model directory's lock while a fit writes it, so a second fit, resume or
    overwrite of the same directory fails at once instead of training beside it. An OS
    lock (flock): a killed fit leaves no stale lock behind."""
    model_dir = Path(model_dir)
    if model_dir.exists() and not model_dir.is_dir():
        raise ModelDirError(f"{model_dir} exists and is not a directory")
    model_dir.mkdir(parents=True, exist_ok=True)
    handle = open(model_dir / LOCK, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ModelDirError(f"{model_dir} is being written by another fit ({holder}); "
                            "wait for it to finish or stop it first") from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    try:
        yield
    finally:
        handle.close()  # releases the lock


def is_empty(model_dir) -> bool:
    """No model yet: nothing but (perhaps) the lock and the log."""
    return all(child.name in (LOCK, LOG) for child in Path(model_dir).iterdir())


def remove_partial_scales(model_dir) -> None:
    """Drop temporary scale directories left by a killed fit, after putting back any
    finished scale it had renamed aside to replace."""
    root = Path(model_dir) / "scales"
    if root.is_dir():
        atomic.restore_all_replaced(root)
        for child in root.iterdir():
            if child.name.startswith("."):
                shutil.rmtree(child, ignore_errors=True)


def read_manifest(model_dir) -> dict:
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirError(f"model directory not found: {model_dir}")
    path = model_dir / MANIFEST
    if not path.is_file():
        raise ModelDirError(f"{model_dir} is not a singan-tf model directory "
                            f"(missing {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelDirError(f"{path} is corrupt: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelDirError(f"{path} is not a singan-tf manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelDirError(f"{path} has format version {manifest.get('format_version')}; "
                            f"this singan-tf reads version {FORMAT_VERSION}")
    missing = [k for k in ("config", "sizes", "scales", "num_scales") if k not in manifest]
    if missing:
        raise ModelDirError(f"{path} is corrupt: missing {', '.join(missing)}")
    problem = _manifest_problem(manifest)
    if problem:
        raise ModelDirError(f"{path} is corrupt: {problem}")
    return manifest


def _is_int(value, low=None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and \
        (low is None or value >= low)


def _manifest_problem(manifest: dict) -> str | None:
    """What is wrong with a parsed manifest's types and ranges, or None."""
    count = manifest["num_scales"]
    if not _is_int(count, 1):
        return f"num_scales must be a positive integer, got {count!r}"
    sizes = manifest["sizes"]
    if not (isinstance(sizes, list) and len(sizes) == count and all(
            isinstance(s, list) and len(s) == 2 and all(_is_int(v, 1) for v in s)
            for s in sizes)):
        return f"sizes must be {count} [height, width] pairs of positive integers"
    scales = manifest["scales"]
    if not isinstance(scales, list) or len(scales) > count:
        return f"scales must be a list of at most {count} entries"
    for n, scale in enumerate(scales):
        amp = scale.get("noise_amp") if isinstance(scale, dict) else None
        if not (isinstance(amp, (int, float)) and math.isfinite(amp) and amp >= 0):
            return f"scale {n} has no valid noise_amp"
    if not _is_int(manifest.get("seed", 0), 0):
        return f"seed must be a non-negative integer, got {manifest.get('seed')!r}"
    task = manifest.get("task", "generation")
    if task not in ("generation", "sr"):
        return f"unknown task {task!r}"
    factor = manifest.get("sr_factor")
    if task == "sr" and not (isinstance(factor, (int, float)) and factor > 1):
        return f"an sr model needs an sr_factor > 1, got {factor!r}"
    if not isinstance(manifest["config"], dict):
        return "config must be an object"
    if not isinstance(manifest.get("settings", {}), dict):
        return "settings must be an object"
    try:
        config_from_manifest(manifest)
    except (SinGANError, TypeError) as err:
        return f"bad config: {err}"
    return None


def load_reals(model_dir, num_scales: int) -> list[np.ndarray]:
    path = Path(model_dir) / REALS
    if not path.is_file():
        raise ModelDirError(f"{model_dir} is incomplete: missing {REALS}")
    try:
        with np.load(path) as data:
            return [data[f"scale_{n:02d}"] for n in range(num_scales)]
    except (KeyError, ValueError, OSError) as err:
        raise ModelDirError(f"{path} is corrupt: {err}") from None


def load_scale(model_dir, scale: int, discriminator: bool = True) -> ScaleFiles:
    """One finished scale's files; discriminator=False skips reading D (only training and
    fine-tuning need it), though a missing D file still makes the directory incomplete."""
    _require(model_dir, scale, ["generator.keras", "discriminator.keras", "z_opt.npy"])
    generator = _read(model_dir, scale, "generator.keras", _load_keras)
    critic = _read(model_dir, scale, "discriminator.keras", _load_keras) if discriminator else None
    z_opt = _read(model_dir, scale, "z_opt.npy", np.load)
    generator.trainable = False
    return ScaleFiles(generator, critic, z_opt)


def load_discriminator(model_dir, scale: int):
    """One finished scale's D alone (the next scale of the same width starts from it)."""
    _require(model_dir, scale, ["discriminator.keras"])
    return _read(model_dir, scale, "discriminator.keras", _load_keras)


def _require(model_dir, scale: int, names) -> None:
    """A missing file of a finished scale makes the directory incomplete: name them all."""
    directory = finished_scale_dir(model_dir, scale)
    missing = [str(directory / n) for n in names if not (directory / n).is_file()]
    if missing:
        raise ModelDirError(f"model directory is incomplete: missing {', '.join(missing)}")


def _load_keras(path):
    """keras.saving.load_model, also for generators saved before session 9 (see below)."""
    renamed = _renamed_pre_renorm_generator(path)
    if renamed is None:
        return keras.saving.load_model(path, compile=False)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / Path(path).name
        copy.write_bytes(renamed)
        return keras.saving.load_model(copy, compile=False)


# Keras stores the layers of a list under their class's name: G's BatchNorm layers became
# BatchRenormalization (a subclass with the same weights) in session 9, so generators saved
# before keep those weights under the old name, and Keras would refuse them.
_OLD_NORM, _NORM = "batch_normalization", "batch_renormalization"


def _renamed_pre_renorm_generator(path) -> bytes | None:
    """A copy of a pre-session-9 generator file with its BatchNorm groups renamed to what
    G's layers are called today; None for any other file (left to Keras as it is)."""
    with zipfile.ZipFile(path) as archive:
        if json.loads(archive.read("config.json")).get("class_name") != "Generator":
            return None
        weights = io.BytesIO(archive.read("model.weights.h5"))
        with h5py.File(weights, "r+") as store:
            blocks = store.get("blocks", {})
            old = [name for name in blocks if name.startswith(_OLD_NORM)]
            for name in old:
                blocks.move(name, _NORM + name[len(_OLD_NORM):])
        if not old:
            return None
        files = {item.filename: archive.read(item) for item in archive.infolist()}
    files["model.weights.h5"] = weights.getvalue()
    renamed = io.BytesIO()
    with zipfile.ZipFile(renamed, "w") as copy:
        for name, data in files.items():
            copy.writestr(name, data)
    return renamed.getvalue()


def _read(model_dir, scale: int, name: str, reader):
    """reader(path) of one file of a finished scale; a damaged file is a ModelDirError."""
    try:
        return reader(finished_scale_dir(model_dir, scale) / name)
    except Exception as err:  # Keras raises many types for a damaged zip or h5
        raise ModelDirError(f"scale {scale} in {model_dir} is corrupt: {err}") from None


def load_trained_scales(model_dir, manifest: dict) -> list[TrainedScale]:
    """Every finished scale's generator, noise amplitude, z_opt and size."""
    scales = []
    for n, record in enumerate(manifest["scales"]):
        files = load_scale(model_dir, n, discriminator=False)
        scales.append(TrainedScale(files.generator, float(record["noise_amp"]), files.z_opt,
                                   tuple(manifest["sizes"][n])))
    return scales


def load_growing_generator(model_dir, manifest: dict, critic: bool = False):
    """A ConSinGAN's (generator, critic or None, z_opts): the generator and critic of its
    last finished stage (each stage retrains the bodies below it, so earlier stages' files
    hold stale copies) and every finished stage's reconstruction noise."""
    done = len(manifest["scales"])
    last = load_scale(model_dir, done - 1, discriminator=critic)
    z_opts = [_read(model_dir, k, "z_opt.npy", np.load) for k in range(done - 1)]
    return last.generator, last.discriminator, z_opts + [last.z_opt]


def damaged_files(model_dir, manifest: dict) -> list[str]:
    """What loading the model would fail on: reals.npz and every finished scale's files,
    read back (a truncated weights file is found here, not at the user's next sample)."""
    problems = []
    try:
        load_reals(model_dir, manifest["num_scales"])
    except ModelDirError as err:
        problems.append(str(err))
    for n in range(len(manifest["scales"])):
        try:
            load_scale(model_dir, n)
        except ModelDirError as err:
            problems.append(str(err))
    return problems
