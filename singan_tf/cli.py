"""`singan-tf` command line: a thin layer over the Python API (singan_tf.fit, singan_tf.load)."""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from . import config as configs
from .errors import SinGANError

SAMPLE_BATCH = 16  # images generated per call; bounds memory for large -n


def user_errors(command):
    """Report SinGANError as one line and exit 1, never a traceback."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SinGANError as err:
            raise click.ClickException(str(err)) from None
    return wrapper


@click.group()
@click.version_option(package_name="singan-tf")
def main():
    """SinGAN: learn a generative model from one natural image, then sample from it."""


@main.command()
@click.argument("image", required=False, type=click.Path(dir_okay=True, path_type=Path))
@click.option("-o", "--output", "model_dir", required=True, type=click.Path(path_type=Path),
              help="Model directory to create (or continue with --resume).")
@click.option("--preset", type=click.Choice(sorted(configs.PRESETS)), default="fast",
              show_default=True, help="fast: CPU default. paper: the published settings.")
@click.option("--max-size", type=click.IntRange(min=1), help="Long side of the finest scale.")
@click.option("--min-size", type=click.IntRange(min=1), help="Short side of the coarsest scale.")
@click.option("--iters", type=click.IntRange(min=1), help="Training iterations per scale.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--xla/--no-xla", default=None, help="XLA-compile the train step (preset default: on).")
@click.option("--resume", is_flag=True, help="Continue an interrupted fit in MODEL_DIR.")
@click.option("--overwrite", is_flag=True, help="Replace an existing model directory.")
@click.option("--no-tensorboard", is_flag=True, help="Do not write TensorBoard logs.")
@user_errors
def fit(image, model_dir, preset, max_size, min_size, iters, seed, xla, resume, overwrite,
        no_tensorboard):
    """Train on IMAGE (default: a photo that ships with scikit-image) into MODEL_DIR."""
    from .images import default_image_path
    from .trainer import PyramidTrainer

    if image is None and not resume:
        image = default_image_path()
        click.echo(f"note: no IMAGE given; using the built-in photo {image}")
    overrides = {k: v for k, v in (("max_size", max_size), ("min_size", min_size),
                                   ("iters_per_scale", iters), ("jit_compile", xla))
                 if v is not None}
    if resume and overrides:
        raise SinGANError("--resume continues with the model's saved settings; "
                          "drop --max-size/--min-size/--iters/--xla")
    cfg = configs.preset(preset).replace(**overrides)
    trainer = PyramidTrainer(model_dir, cfg, preset=preset, seed=seed,
                             tensorboard=not no_tensorboard)
    try:
        trainer.fit(image, resume=resume, overwrite=overwrite)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: finished scales are kept in {model_dir}; continue with "
                   f"`singan-tf fit -o {model_dir} --resume`", err=True)
        sys.exit(130)


@main.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Directory for the PNG files.")
@click.option("-n", "--num", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--scale-h", type=float, default=1.0, show_default=True,
              help="Output height as a multiple of the training height.")
@click.option("--scale-w", type=float, default=1.0, show_default=True,
              help="Output width as a multiple of the training width.")
@click.option("--start-scale", type=click.IntRange(min=0), default=0, show_default=True,
              help="Keep the training image's layout below this scale.")
@click.option("--seed", type=click.IntRange(min=0), help="Same seed, same images.")
@user_errors
def sample(model_dir, out_dir, num, scale_h, scale_w, start_scale, seed):
    """Write NUM random samples of a trained model as PNG files."""
    import secrets

    from .images import save_png
    from .singan import load

    model = load(model_dir)
    model.check_sample_args(num, scale_h, scale_w, start_scale)
    if out_dir.exists() and not out_dir.is_dir():
        raise SinGANError(f"{out_dir} exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = secrets.randbits(62) if seed is None else seed
    written = 0
    with click.progressbar(length=num, label="sampling", file=sys.stderr) as bar:
        for batch, first in enumerate(range(0, num, SAMPLE_BATCH)):
            count = min(SAMPLE_BATCH, num - first)
            images = model.sample(count, scale_h, scale_w, start_scale, seed=seed + batch)
            for i, image in enumerate(images):
                save_png(out_dir / f"sample_{first + i:04d}.png", image)
            written += count
            bar.update(count)
    click.echo(f"wrote {written} samples of {images.shape[1]}x{images.shape[2]} to {out_dir} "
               f"(seed {seed})")


@main.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@user_errors
def info(model_dir, as_json):
    """Describe a model directory: scales, sizes, widths, noise amplitudes, training time."""
    from .model_dir import read_manifest
    from .progress import format_seconds

    manifest = read_manifest(model_dir)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    done, total = len(manifest["scales"]), manifest["num_scales"]
    state = "complete" if done == total else f"INCOMPLETE ({done} of {total} scales)"
    click.echo(f"model:      {model_dir} ({state})")
    click.echo(f"task:       {manifest['task']}")
    click.echo(f"preset:     {manifest['preset']} (seed {manifest['seed']})")
    click.echo(f"image:      {manifest['source_image']} "
               f"({manifest['source_size'][0]}x{manifest['source_size'][1]})")
    click.echo(f"scales:     {total}, factor {manifest['scale_factor']:.4f}")
    click.echo(f"trained in: {format_seconds(manifest['train_seconds'])}")
    click.echo(f"{'scale':>5}  {'size':>9}  {'width':>5}  {'noise_amp':>9}  {'time':>7}  rec_loss")
    for n, size in enumerate(manifest["sizes"]):
        if n < done:
            s = manifest["scales"][n]
            click.echo(f"{n:>5}  {size[0]:>4}x{size[1]:<4}  {s['channels']:>5}  "
                       f"{s['noise_amp']:>9.4f}  {format_seconds(s['train_seconds']):>7}  "
                       f"{s['final_losses'].get('rec_loss', float('nan')):.4f}")
        else:
            click.echo(f"{n:>5}  {size[0]:>4}x{size[1]:<4}  {'-':>5}  {'-':>9}  {'-':>7}  -")


if __name__ == "__main__":
    main()
