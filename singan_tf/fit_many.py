"""Fit one model per image on a Ray cluster (or Ray started locally): `singan-tf fit-many`.

Each image is one Ray task that fits `MODELS_DIR/<name>/` exactly as `singan-tf fit` would
(same config, same model format, one process per scale), with TensorFlow limited to the
task's CPUs so that fits side by side do not fight. A model directory that is already
complete is skipped; an unfinished one resumes from its last finished scale, so a rerun,
and Ray's retry of a task whose worker died, continue instead of starting over. One image's
failure is reported with its reason and does not stop the others. MODELS_DIR must be
storage every node sees (a shared filesystem path).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import model_dir as fmt
from .atomic import write_text
from .config import FAST, SinGANConfig, config_from_manifest
from .errors import ModelDirError, SinGANError
from .images import image_files

SUMMARY = "fit-many.json"


@dataclass
class FitResult:
    image: str
    model_dir: str
    status: str            # done | skipped (already complete) | failed
    scales: int            # finished scales
    fit_seconds: float
    error: str | None = None


def collect_images(paths) -> list[Path]:
    """Image files from files and directories (a directory's images, sorted by name)."""
    images = []
    for path in map(Path, paths):
        if path.is_dir():
            images += image_files(path)
        elif path.exists():
            images.append(path)
        else:
            raise SinGANError(f"image not found: {path}")
    if not images:
        raise SinGANError("no images to fit")
    return images


def model_names(images) -> list[str]:
    """One directory name per image: its stem, with -2, -3, ... where stems repeat."""
    names, seen = [], {}
    for image in images:
        stem = Path(image).stem
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def _finished_scales(model_dir: Path) -> tuple[int, int] | None:
    """(finished, total) scales of a model directory, or None if there is no model yet."""
    try:
        manifest = fmt.read_manifest(model_dir)
    except ModelDirError:
        return None
    return len(manifest["scales"]), manifest["num_scales"]


@contextlib.contextmanager
def _output_to(path: Path):
    """Send this process's stdout and stderr (file descriptors 1 and 2, which the per-scale
    child processes inherit) to `path` for the duration; a Ray worker runs many tasks."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def fit_one(image: str, model_dir: str, config: dict, preset: str, seed: int,
            family: str = "singan") -> dict:
    """One image's fit, run in a Ray worker: starts or resumes MODEL_DIR, logs to fit.log.
    A user error (not an image, too small, ...) is returned as a failed result; anything
    else (a killed process, out of memory) propagates, so Ray retries the task."""
    from .trainer import make_trainer

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    resume = _finished_scales(model_dir) is not None
    with _output_to(model_dir / fmt.LOG):
        try:
            cfg = config_from_manifest({"family": family, "config": config})
            trainer = make_trainer(model_dir, cfg, resume, preset=preset, seed=seed,
                                   tensorboard=False, process_per_scale=True, verbose=1)
            trainer.fit(None if resume else image, resume=resume)
            error = None
        except SinGANError as err:
            print(f"Error: {err}", flush=True)
            error = str(err)
    finished = _finished_scales(model_dir)
    if error and finished is None and fmt.is_empty(model_dir):
        shutil.rmtree(model_dir)  # nothing fitted: no directory; the reason is in the summary
    return asdict(FitResult(image, str(model_dir), "failed" if error else "done",
                            finished[0] if finished else 0, time.perf_counter() - start,
                            error))


def _ray():
    try:
        import ray
    except ImportError:
        raise SinGANError('fit-many runs on Ray: pip install "singan-tf[ray]"') from None
    return ray


def fit_many(images, models_dir, config: SinGANConfig = FAST, preset: str = "fast",
             seed: int = 0, address: str | None = None, cpus_per_fit: int = 1,
             gpus_per_fit: float = 0, max_retries: int = 2, export_base=None,
             report=print) -> list[dict]:
    """Fit every image into MODELS_DIR/<name>/ as Ray tasks; returns one result per image
    (also written to MODELS_DIR/fit-many.json). address: a Ray cluster to join (None: start
    Ray on this machine). export_base: also export every finished model into one TF
    Serving layout there."""
    ray = _ray()
    images = collect_images(images)
    names = model_names(images)
    models_dir = Path(models_dir)
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except Exception as err:  # Ray raises ConnectionError, RuntimeError, ValueError...
            where = f" at {address}" if address else ""
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SinGANError(f"cannot start or reach Ray{where}: {reason}") from None
    models_dir.mkdir(parents=True, exist_ok=True)  # only once Ray is up: no empty dir left
    results, pending = {}, {}
    threads = str(max(1, int(cpus_per_fit)))
    task = ray.remote(fit_one).options(
        num_cpus=cpus_per_fit, num_gpus=gpus_per_fit, max_retries=max_retries,
        runtime_env={"env_vars": {"TF_NUM_INTRAOP_THREADS": threads,
                                  "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": threads}})
    for image, name in zip(images, names):
        model_dir = models_dir / name
        finished = _finished_scales(model_dir)
        if finished and finished[0] == finished[1]:
            results[name] = asdict(FitResult(str(image), str(model_dir), "skipped",
                                             finished[0], 0.0))
            continue
        fit = task.remote(str(image), str(model_dir), config.to_dict(), preset, seed,
                          config.family)
        pending[fit] = (name, image, model_dir)
    start, total = time.perf_counter(), len(images)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        name, image, model_dir = pending.pop(ready[0])
        try:
            results[name] = ray.get(ready[0])
        except ray.exceptions.RayError as err:  # the worker died on every retry
            finished = _finished_scales(model_dir)
            reason = str(err).strip().splitlines()[0]
            results[name] = asdict(FitResult(str(image), str(model_dir), "failed",
                                             finished[0] if finished else 0,
                                             time.perf_counter() - start, reason))
        report(_progress_line(results, len(pending), total, time.perf_counter() - start))
    ordered = [results[name] for name in names]
    write_text(models_dir / SUMMARY, json.dumps(ordered, indent=2) + "\n")
    if export_base is not None:
        export_finished(ordered, export_base, report)
    return ordered


def _progress_line(results, running: int, total: int, seconds: float) -> str:
    done = sum(r["status"] != "failed" for r in results.values())
    failed = len(results) - done
    fitted = [r for r in results.values() if r["status"] == "done"]
    eta = ""
    if fitted and running:
        per_fit = seconds / len(fitted)
        eta = f", ETA {per_fit * running / 60:.1f} min"
    return (f"fit-many: {done} done, {failed} failed, {running} running or queued "
            f"of {total}{eta}")


def export_finished(results, export_base, report=print) -> None:
    """Export every finished model under its directory name into one TF Serving layout."""
    from .export import export
    from .singan import load

    for result in results:
        if result["status"] != "failed":
            name = Path(result["model_dir"]).name
            path = export(load(result["model_dir"]), export_base, name)
            report(f"exported {name} -> {path}")
