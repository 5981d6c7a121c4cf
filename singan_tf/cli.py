"""`singan-tf` command line: a thin layer over the Python API (singan_tf.fit, singan_tf.load)."""
from __future__ import annotations

import functools
import json
import math
import sys
from pathlib import Path

import click

from . import config as configs
from .errors import SinGANError
from .health import colour_turned, layout_lost
from .limits import (CLI_MAX_PIXELS, MAX_ANIMATION_FRAMES, SERVING_MAX_PIXELS,
                     SERVING_MAX_REQUEST_BYTES)

SEED_RANGE = click.IntRange(0, 2 ** 62)  # seeds are int64 (sample adds its batch index)


class FinitePositive(click.ParamType):
    """A float > 0 that is not inf or nan (click's FloatRange lets nan through)."""

    name = "number"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not (math.isfinite(number) and number > 0):
            self.fail(f"{value!r} is not a finite positive number", param, ctx)
        return number


POSITIVE = FinitePositive()
MAX_PIXELS = click.option("--max-pixels", type=click.IntRange(min=1), default=CLI_MAX_PIXELS,
                          show_default=True,
                          help="Refuse outputs larger than this many pixels (per generated "
                               "batch): memory is about 440 bytes per pixel at 32 channels.")


def config_options(command):
    """The options `fit` and `fit-many` share: the preset, its common overrides, any other
    config field (--set) and the seed (see _config_overrides)."""
    options = [
        click.option("--preset", type=click.Choice(sorted(configs.PRESETS)), default="fast",
                     show_default=True,
                     help="fast: CPU default. quality: about twice fast's time, a better "
                          "layout and finer detail. paper: the published settings. "
                          "consingan: ConSinGAN's growing generator (sampling only; "
                          "about twice quality's time)."),
        click.option("--max-size", type=click.IntRange(min=1),
                     help="Long side of the finest scale."),
        click.option("--min-size", type=click.IntRange(min=1),
                     help="Short side of the coarsest scale."),
        click.option("--iters", type=click.IntRange(min=1),
                     help="Training iterations of every scale or stage (the coarse and "
                          "fine ones included)."),
        click.option("--set", "settings", multiple=True, metavar="OPTION=VALUE",
                     help="Any other config option (singan_tf/config.py; for consingan "
                          "singan_tf/consingan/config.py), e.g. --set max_channels=64; "
                          "repeatable."),
        click.option("--seed", type=SEED_RANGE, default=0, show_default=True),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def user_errors(command):
    """Report SinGANError, and the OS refusing a file operation (a missing or read-only
    directory, a full disk), as one line and exit 1, never a traceback."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SinGANError as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:
            where = f": {err.filename}" if err.filename else ""
            raise click.ClickException(f"{err.strerror or err}{where}") from None
    return wrapper


@click.group()
@click.version_option(package_name="singan-tf")
def main():
    """SinGAN: learn a generative model from one natural image, then sample from it."""


def _config_overrides(settings, preset: str, iters=None, **options) -> dict:
    """Config fields given on the command line: the named options that were set, then
    --set OPTION=VALUE. --iters means every scale or stage of the preset's family (the
    coarse or fine ones included)."""
    overrides = {k: v for k, v in options.items() if v is not None}
    if iters is not None and configs.preset(preset).family == "consingan":
        overrides.update(iters_per_stage=iters, fine_iters_per_stage=0)
    elif iters is not None:
        overrides.update(iters_per_scale=iters, coarse_iters_per_scale=0)
    overrides.update(configs.parse_overrides(settings))
    return overrides


@main.command()
@click.argument("image", required=False, type=click.Path(dir_okay=True, path_type=Path))
@click.option("-o", "--output", "model_dir", required=True, type=click.Path(path_type=Path),
              help="Model directory to create (or continue with --resume).")
@config_options
@click.option("--xla/--no-xla", default=None,
              help="XLA-compile the train step (default off: slower on CPUs, "
                   "see docs/performance.md).")
@click.option("--crop-size", type=click.IntRange(min=0),
              help="Train larger scales on random windows of this size (0: whole image).")
@click.option("--random-path-bank", type=click.IntRange(min=0),
              help="Random-path inputs computed once per scale (0: fresh every iteration).")
@click.option("--process-per-scale/--single-process", default=True, show_default=True,
              help="Train each scale in a fresh process: memory stays that of one scale "
                   "(TensorFlow keeps ~150 MiB per trained scale for a process's lifetime).")
@click.option("--resume", is_flag=True, help="Continue an interrupted fit in MODEL_DIR.")
@click.option("--overwrite", is_flag=True, help="Replace an existing model directory.")
@click.option("--no-tensorboard", is_flag=True, help="Do not write TensorBoard logs.")
@click.option("--task", type=click.Choice(["generation", "sr"]), default="generation",
              show_default=True, help="sr: train for super-resolution (alpha 100, min size 18).")
@click.option("--sr-factor", type=click.FloatRange(min=1, min_open=True), default=4.0,
              show_default=True, help="Upscaling factor the sr task trains for.")
@user_errors
def fit(image, model_dir, preset, max_size, min_size, iters, seed, xla, crop_size,
        random_path_bank, settings, process_per_scale, resume, overwrite, no_tensorboard,
        task, sr_factor):
    """Train on IMAGE (default: a photo that ships with scikit-image) into MODEL_DIR."""
    from .images import default_image_path
    from .trainer import make_trainer

    if image is None and not resume:
        image = default_image_path()
        click.echo(f"note: no IMAGE given; using the built-in photo {image}")
    overrides = _config_overrides(settings, preset, iters, max_size=max_size,
                                  min_size=min_size, jit_compile=xla, crop_size=crop_size,
                                  random_path_bank=random_path_bank)
    context = click.get_current_context()
    given = [name for name in ("preset", "seed", "task", "sr_factor")
             if context.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
    if resume and (overrides or given):
        raise SinGANError("--resume continues with the model's saved settings; drop "
                          "--preset/--seed/--task/--sr-factor/--max-size/--min-size/--iters/"
                          "--xla/--crop-size/--random-path-bank/--set")
    cfg = configs.preset(preset).replace(**overrides)
    trainer = make_trainer(model_dir, cfg, resume, preset=preset, seed=seed,
                           tensorboard=not no_tensorboard, task=task,
                           sr_factor=sr_factor if task == "sr" else None,
                           process_per_scale=process_per_scale)
    try:
        trainer.fit(image, resume=resume, overwrite=overwrite)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: finished scales are kept in {model_dir}; continue with "
                   f"`singan-tf fit -o {model_dir} --resume`", err=True)
        sys.exit(130)


@main.command("fit-many")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "models_dir", required=True, type=click.Path(path_type=Path),
              help="One model directory per image goes here (storage every node sees).")
@config_options
@click.option("--address", help="Ray cluster to join (default: start Ray on this machine).")
@click.option("--cpus-per-fit", type=click.IntRange(min=1), default=2, show_default=True,
              help="CPUs (and TensorFlow threads) per fit.")
@click.option("--gpus-per-fit", type=click.FloatRange(min=0), default=0, show_default=True)
@click.option("--max-retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="Ray retries of a fit whose worker died (each resumes).")
@click.option("--export", "export_base", type=click.Path(path_type=Path),
              help="Also export every finished model into this TF Serving layout.")
@user_errors
def fit_many_command(images, models_dir, preset, max_size, min_size, iters, settings, seed,
                     address, cpus_per_fit, gpus_per_fit, max_retries, export_base):
    """Fit one model per image (files or directories of images) as Ray tasks."""
    from .fit_many import fit_many

    config = configs.preset(preset).replace(**_config_overrides(
        settings, preset, iters, max_size=max_size, min_size=min_size))
    results = fit_many(images, models_dir, config, preset=preset, seed=seed, address=address,
                       cpus_per_fit=cpus_per_fit, gpus_per_fit=gpus_per_fit,
                       max_retries=max_retries, export_base=export_base, report=click.echo)
    click.echo(f"{'image':<32} {'status':<8} {'scales':>6} {'min':>6}  error")
    for r in results:
        click.echo(f"{Path(r['image']).name:<32} {r['status']:<8} {r['scales']:>6} "
                   f"{r['fit_seconds'] / 60:>6.1f}  {r['error'] or ''}")
    failed = sum(r["status"] == "failed" for r in results)
    click.echo(f"summary: {models_dir / 'fit-many.json'}")
    if failed:
        raise SinGANError(f"{failed} of {len(results)} image(s) failed (see the table above "
                          "and each model's fit.log)")


@main.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Directory for the PNG files.")
@click.option("-n", "--num", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--scale-h", type=POSITIVE, default=1.0, show_default=True,
              help="Output height as a multiple of the training height.")
@click.option("--scale-w", type=POSITIVE, default=1.0, show_default=True,
              help="Output width as a multiple of the training width.")
@click.option("--start-scale", type=click.IntRange(min=0), default=0, show_default=True,
              help="Keep the training image's layout below this scale.")
@click.option("--seed", type=SEED_RANGE, help="Same seed, same images.")
@MAX_PIXELS
@user_errors
def sample(model_dir, out_dir, num, scale_h, scale_w, start_scale, seed, max_pixels):
    """Write NUM random samples of a trained model as PNG files."""
    from .images import save_png
    from .seeds import resolve_seed
    from .singan import load

    model = load(model_dir)
    seed = resolve_seed(seed)
    batches = model.sample_batches(num, scale_h, scale_w, start_scale, seed, max_pixels)
    if out_dir.exists() and not out_dir.is_dir():
        raise SinGANError(f"{out_dir} exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    height, width = model.output_size(scale_h, scale_w)
    with click.progressbar(length=num, label="sampling", file=sys.stderr) as bar:
        for first, images in batches:
            for i, image in enumerate(images):
                save_png(out_dir / f"sample_{first + i:04d}.png", image)
            bar.update(len(images))
    click.echo(f"wrote {num} samples of {height}x{width} to {out_dir} (seed {seed})")


def _output_file(path: Path, suffixes) -> Path:
    if path.suffix.lower() not in suffixes:
        raise SinGANError(f"{path}: the output must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise SinGANError(f"{path} is a directory; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _show_notes(notes):
    for note in notes:
        click.echo(f"note: {note}")


START_SCALE = click.option("--start-scale", type=int, default=None,
                           help="Scale at which the image is injected (1..N-1).")
SEED = click.option("--seed", type=SEED_RANGE, help="Same seed, same output.")
MODEL_DIR = click.argument("model_dir", type=click.Path(path_type=Path))


@main.command()
@MODEL_DIR
@click.option("--paint", "paint_path", required=True, type=click.Path(path_type=Path),
              help="Clipart or painting to turn into a realistic image.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@START_SCALE
@click.option("--quantize", is_flag=True,
              help="Map the paint to the training image's 5 main colours and fine-tune G_K.")
@click.option("--finetune-iters", type=click.IntRange(min=1),
              help="Fine-tuning iterations with --quantize (default: half a scale's).")
@SEED
@user_errors
def paint2image(model_dir, paint_path, output, start_scale, quantize, finetune_iters, seed):
    """Turn a paint into an image in the style of the training image."""
    from .images import save_png
    from .singan import load
    from .tasks import paint2image as run_paint2image

    output = _output_file(output, [".png"])
    model = load(model_dir)
    result = run_paint2image(model, paint_path, 1 if start_scale is None else start_scale,
                             quantize, seed, finetune_iters)
    _show_notes(result.notes)
    save_png(output, result.image)
    if result.quantized_paint is not None:
        save_png(output.with_name(output.stem + "_quantized_paint.png"), result.quantized_paint)
    click.echo(f"wrote {output}")


def _blend_command(task, model_dir, image_path, mask_path, output, start_scale, seed):
    from .images import save_png
    from .singan import load
    from . import tasks

    output = _output_file(output, [".png"])
    model = load(model_dir)
    result = getattr(tasks, task)(model, image_path, mask_path, start_scale, seed)
    _show_notes(result.notes)
    raw = output.with_name(output.stem + "_raw.png")
    save_png(raw, result.raw)
    save_png(output, result.blended)
    click.echo(f"wrote {output} (blended inside the mask) and {raw} (generator output)")


def _blend_options(image_option: str, image_help: str):
    """The options edit and harmonize share: the model, the image to inject and its mask,
    the output, start scale and seed."""
    options = [main.command(), MODEL_DIR,
               click.option(image_option, "image_path", required=True,
                            type=click.Path(path_type=Path), help=image_help),
               click.option("--mask", required=True, type=click.Path(path_type=Path),
                            help=f"White where the change is (same size as {image_option})."),
               click.option("-o", "--output", required=True, type=click.Path(path_type=Path)),
               START_SCALE, SEED, user_errors]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


@_blend_options("--edited", "The training image with a crude edit.")
def edit(model_dir, image_path, mask, output, start_scale, seed):
    """Make a crude edit blend in; writes OUT.png and OUT_raw.png."""
    _blend_command("edit", model_dir, image_path, mask, output, start_scale, seed)


@_blend_options("--naive", "The training image with an object pasted in.")
def harmonize(model_dir, image_path, mask, output, start_scale, seed):
    """Match a pasted object to the training image's look; writes OUT.png and OUT_raw.png."""
    _blend_command("harmonize", model_dir, image_path, mask, output, start_scale, seed)


@main.command("super-resolve")
@MODEL_DIR
@click.option("--factor", type=POSITIVE, default=None,
              help="Upscaling factor (default: the one the model was trained for).")
@click.option("--input", "input_path", type=click.Path(path_type=Path),
              help="Image to upscale (default: the training image).")
@click.option("--back-projection/--no-back-projection", default=True, show_default=True,
              help="Correct each step so that shrinking it gives back its input (off: the "
                   "reference's output, with its colour casts).")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@SEED
@MAX_PIXELS
@user_errors
def super_resolve(model_dir, factor, input_path, back_projection, output, seed, max_pixels):
    """Upscale with the finest generator, about 2**(1/3) per step."""
    from .images import load_image, save_png
    from .limits import check_pixels
    from .singan import load
    from .tasks import super_resolve as run_super_resolve
    from .tasks.super_resolution import check_super_resolution

    output = _output_file(output, [".png"])
    model = load(model_dir)
    factor = check_super_resolution(model, factor)  # before reading --input
    image = None
    if input_path is not None:
        image, notes = load_image(input_path)
        _show_notes(notes)
    height, width = (round(length * factor) for length in
                     (image.shape[:2] if image is not None else model.sizes[-1]))
    check_pixels(height * width, max_pixels, f"a {height}x{width} result")
    result = run_super_resolve(model, factor, image, seed, back_projection)
    save_png(output, result)
    click.echo(f"wrote {output} ({result.shape[0]}x{result.shape[1]})")


@main.command()
@MODEL_DIR
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="OUT.gif (or OUT.mp4 with imageio-ffmpeg installed).")
@click.option("--start-scale", type=click.IntRange(min=0), default=2, show_default=True,
              help="Scales below keep the training image's layout.")
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Pull towards the reconstruction noise.")
@click.option("--beta", type=click.FloatRange(0, 1), default=0.9, show_default=True,
              help="Momentum of the walk.")
@click.option("--frames", type=click.IntRange(2, MAX_ANIMATION_FRAMES), default=100,
              show_default=True)
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=10, show_default=True)
@SEED
@user_errors
def animate(model_dir, output, start_scale, alpha, beta, frames, fps, seed):
    """A looping animation from a random walk in noise space."""
    from .atomic import atomic_file
    from .singan import load
    from .tasks import animation_frames, save_gif

    output = _output_file(output, [".gif", ".mp4"])
    model = load(model_dir)
    start_scale = min(start_scale, model.num_scales - 1)
    video = animation_frames(model, start_scale, alpha, beta, frames, seed)  # checks first
    if output.suffix.lower() == ".mp4":
        try:
            import imageio.v2 as imageio
        except ImportError:
            raise SinGANError("MP4 needs imageio-ffmpeg: pip install imageio imageio-ffmpeg; "
                              "or write a .gif") from None
        with atomic_file(output, suffix=".mp4") as tmp:
            try:
                imageio.mimwrite(tmp, video, fps=fps)
            except (RuntimeError, ValueError, OSError) as err:
                raise SinGANError(f"cannot write MP4 (is imageio-ffmpeg installed?): {err}") \
                    from None
    else:
        save_gif(video, output, fps)
    height, width = model.sizes[-1]
    click.echo(f"wrote {output} ({frames} frames, {height}x{width})")


@main.command()
@MODEL_DIR
@click.option("--base-path", required=True, type=click.Path(path_type=Path),
              help="Folder of served models (holds models.config).")
@click.option("--name", required=True, help="Model name in TF Serving.")
@click.option("--version", type=click.IntRange(min=1), help="Default: the next free number.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=SERVING_MAX_PIXELS,
              show_default=True,
              help="Largest output (pixels x samples) a request may ask for.")
@user_errors
def export(model_dir, base_path, name, version, max_pixels):
    """Write a SavedModel for TF Serving: BASE/NAME/VERSION and BASE/models.config."""
    from .export import export as run_export
    from .singan import load

    target = run_export(load(model_dir), base_path, name, version, max_pixels)
    click.echo(f"wrote {target} and {Path(base_path) / 'models.config'}")


@main.command()
@click.option("--model-config-file", required=True, type=click.Path(path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=8500, show_default=True,
              help="gRPC port.")
@click.option("--rest-api-port", type=click.IntRange(0, 65535), default=8501,
              show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on. 0.0.0.0 exposes the server to the network: "
                   "give it --tls-cert/--tls-key and --auth-token-file, or put a proxy "
                   "that provides them in front.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM certificate: serve gRPC and REST over TLS (with --tls-key).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM private key of --tls-cert.")
@click.option("--auth-token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding a token every request must send as "
                   "'authorization: Bearer TOKEN' (REST 401 / gRPC UNAUTHENTICATED).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=SERVING_MAX_PIXELS,
              show_default=True,
              help="Refuse requests for more output pixels x samples than this "
                   "(RESOURCE_EXHAUSTED / 413).")
@click.option("--max-request-bytes", type=click.IntRange(min=1024),
              default=SERVING_MAX_REQUEST_BYTES, show_default=True,
              help="Largest request body or gRPC message accepted (RESOURCE_EXHAUSTED / 413).")
@user_errors
def serve(model_config_file, port, rest_api_port, host, tls_cert, tls_key, auth_token_file,
          max_pixels, max_request_bytes):
    """Serve exported models over TF Serving's gRPC and REST APIs."""
    from .serving import ModelServer, Security

    security = Security.from_files(tls_cert, tls_key, auth_token_file)
    server = ModelServer(model_config_file, port, rest_api_port, host,
                         max_pixels, max_request_bytes=max_request_bytes,
                         security=security).start()
    click.echo(f"serving {', '.join(server.core.repository.base_paths)}: gRPC on "
               f"{host}:{server.port}, REST on {host}:{server.rest_port}"
               f"{' over TLS' if tls_cert else ''}"
               f"{', bearer token required' if auth_token_file else ''} (Ctrl-C stops)")
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()


@main.group()
def client():
    """Call a TF Serving endpoint (tensorflow_model_server or singan-tf serve)."""


@client.command("sample")
@click.option("--server", required=True, help="HOST:PORT of the gRPC endpoint.")
@click.option("--model", required=True)
@click.option("-n", "--num", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option("--seed", type=SEED_RANGE, default=0, show_default=True)
@click.option("--scale-h", type=POSITIVE, default=1.0, show_default=True)
@click.option("--scale-w", type=POSITIVE, default=1.0, show_default=True)
@click.option("--start-scale", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--version", type=click.IntRange(min=1))
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM certificate to trust: connect with TLS (a server run with --tls-cert).")
@click.option("--auth-token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the server's bearer token (serve --auth-token-file).")
@user_errors
def client_sample(server, model, num, out_dir, seed, scale_h, scale_w, start_scale, version,
                  tls_ca, auth_token_file):
    """Draw samples through the PredictionService gRPC API and write PNGs."""
    from .client import sample as remote_sample
    from .images import save_png
    from .serving import Security

    token = Security.from_files(token_file=auth_token_file).token
    images = remote_sample(server, model, num, seed, scale_h, scale_w, start_scale, version,
                           tls_ca=tls_ca and tls_ca.read_bytes(), token=token)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        save_png(out_dir / f"sample_{i:04d}.png", image)
    click.echo(f"wrote {len(images)} samples of {images.shape[1]}x{images.shape[2]} to {out_dir}")


@main.command()
@click.option("--real", "real_path", required=True, type=click.Path(path_type=Path),
              help="The training image.")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-n", "--num", type=click.IntRange(min=2), default=50, show_default=True,
              help="Samples to draw when SOURCE is a model directory.")
@click.option("--seed", type=SEED_RANGE, default=0, show_default=True)
@click.option("--inception-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Local InceptionV3 weights (.h5) for SIFID; never downloaded.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write JSON.")
@user_errors
def evaluate(real_path, source, num, seed, inception_weights, json_path):
    """Score samples (SOURCE: a model directory or a folder of images) against the real image."""
    from .metrics import evaluate_source

    result, origin, notes = evaluate_source(real_path, source, num, seed, inception_weights)
    for note in notes:
        click.echo(f"note: {note}")
    click.echo(f"{origin} against {real_path}")
    click.echo(f"diversity (gray): {result['diversity']:.4f}   (published SinGAN: 0.35-0.50)")
    click.echo(f"patch SWD:        {result['swd']:.4f}   (lower is closer to the real patches)")
    click.echo(f"patch SWD (ctr):  {result['swd_centered']:.4f}")
    noise = result["noise_sigma"]
    if result["niqe"] is None:
        click.echo(f"NIQE:             not computed: {result['niqe_error']}")
    else:
        click.echo(f"NIQE:             {result['niqe']['samples_mean']:.1f}   (real image: "
                   f"{result['niqe']['real']:.1f}; lower is more natural)")
    click.echo(f"noise level:      {noise['samples_mean']:.2f}   (real image: {noise['real']:.2f}; "
               "0..255 luma; NIQE counts only if not above the real image's)")
    if result["sifid"] is None:
        click.echo("SIFID:            skipped (pass --inception-weights PATH to compute it)")
    else:
        click.echo(f"SIFID:            {result['sifid']:.4f}")
    if json_path:
        json_path.write_text(json.dumps({"real": str(real_path), "source": str(source),
                                         **result}, indent=2))


@main.command()
@MODEL_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@user_errors
def info(model_dir, as_json):
    """Describe a model directory: scales, sizes, widths, noise amplitudes, training time."""
    from .model_dir import damaged_files, read_manifest
    from .progress import format_seconds

    manifest = read_manifest(model_dir)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    done, total = len(manifest["scales"]), manifest["num_scales"]
    problems = damaged_files(model_dir, manifest)
    state = "complete" if done == total else f"INCOMPLETE ({done} of {total} scales)"
    if problems:
        state = f"DAMAGED: {len(problems)} file problem(s), listed below"
    click.echo(f"model:      {model_dir} ({state})")
    click.echo(f"task:       {manifest['task']}")
    click.echo(f"preset:     {manifest['preset']} (seed {manifest['seed']})")
    config = configs.config_from_manifest(manifest)
    base = configs.reference_preset(config, manifest["preset"])
    changed = manifest.get("settings")
    if changed is None:  # a model from before the manifest recorded them: told against
        # today's preset, less the options it never saved (they did not exist yet)
        changed = {name: value for name, value in config.differences(
            configs.preset(base)).items() if name in manifest["config"]}
    if changed:
        settings = ", ".join(f"{name}={json.dumps(value)}" for name, value in changed.items())
        click.echo(f"settings:   {settings} (beyond {base})")
    click.echo(f"image:      {manifest['source_image']} "
               f"({manifest['source_size'][0]}x{manifest['source_size'][1]})")
    click.echo(f"scales:     {total}, factor {manifest['scale_factor']:.4f}")
    click.echo(f"trained in: {format_seconds(manifest['train_seconds'])}")
    click.echo(f"{'scale':>5}  {'size':>9}  {'width':>5}  {'noise_amp':>9}  {'time':>7}  "
               f"{'rec_loss':>8}  reconstruction")
    for n, size in enumerate(manifest["sizes"]):
        if n < done:
            s = manifest["scales"][n]
            click.echo(f"{n:>5}  {size[0]:>4}x{size[1]:<4}  {s['channels']:>5}  "
                       f"{s['noise_amp']:>9.4f}  {format_seconds(s['train_seconds']):>7}  "
                       f"{s['final_losses'].get('rec_loss', float('nan')):>8.4f}  "
                       f"{_reconstruction_summary(s)}")
        else:
            click.echo(f"{n:>5}  {size[0]:>4}x{size[1]:<4}  {'-':>5}  {'-':>9}  {'-':>7}  "
                       f"{'-':>8}  -")
    for n, attempts in sorted(manifest.get("failed_attempts", {}).items()):
        click.echo(f"scale {n} is retraining after {len(attempts)} diverged attempt(s)")
    relayout = manifest.get("relayout")
    if relayout:
        click.echo(f"stages 0 and 1 trained again with a {relayout['first_critic_layers']}-conv "
                   f"stage-0 critic: the first stage 1's samples lay "
                   f"{relayout['stage_1_layout_error']:.1f}x further from the photo than from "
                   f"one another")
    if problems:
        raise SinGANError("model is damaged:\n  " + "\n  ".join(problems))


def _reconstruction_summary(scale: dict) -> str:
    """PSNR of the scale's reconstruction against its real image, with retries and the
    stage-0 tries that drew another scene, and a colour drift or layout error above the
    trainer's warnings (health.py) if any."""
    if scale.get("rec_error") is None:
        return "- (not recorded by this model's version)"
    text = (f"{scale['rec_psnr_db']:.1f} dB (MSE {scale['rec_error']:.4f}, "
            f"input {scale['input_error']:.4f})")
    if scale.get("attempts", 1) > 1:
        text += f", after {scale['attempts'] - 1} diverged attempt(s)"
    if scale.get("rejected_layout_errors"):
        text += (f", kept of {len(scale['rejected_layout_errors']) + 1} tries (the others "
                 f"drew another scene)")
    if colour_turned(scale.get("colour_drift")):
        text += f"; moved the samples' colours by {scale['colour_drift']:.1f} levels"
    if layout_lost(scale.get("layout_error"), scale["index"]):
        text += (f"; samples {scale['layout_error']:.1f}x further from the photo than "
                 f"from one another")
    return text


if __name__ == "__main__":
    main()
