#!/usr/bin/env python3
"""Run every task of a trained model on the shared photos; one contact-sheet PNG per task.

    python scripts/demo_tasks.py --images ../shared/images --out runs/demo [--max-size 128] [--iters 300]

Trains one `fast` model per training photo (kept in OUT/models, reused on a second run),
then writes OUT/<task>.png and prints how long each step took.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

import singan_tf
from singan_tf import tasks
from singan_tf.images import contact_sheet, load_image, save_png, to_uint8
from singan_tf.tasks.paint import main_colours, quantize

TIMINGS: list[tuple[str, float]] = []


def timed(label, fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    TIMINGS.append((label, time.perf_counter() - start))
    print(f"{label}: {TIMINGS[-1][1]:.1f}s", flush=True)
    return result


def train(image, out, cfg, **kwargs):
    model_dir = out / "models" / (image.stem + ("_sr" if kwargs.get("task") == "sr" else ""))
    if (model_dir / "singan.json").exists():
        try:
            return singan_tf.load(model_dir)
        except singan_tf.SinGANError:
            return singan_tf.fit(None, model_dir, cfg, resume=True, verbose=0)
    return timed(f"fit {model_dir.name}", singan_tf.fit, image, model_dir, cfg, verbose=0,
                 **kwargs)


def as_uint8(path, size):
    image = Image.fromarray(to_uint8(load_image(path)[0]))
    return np.asarray(image.resize((size[1], size[0]), Image.BICUBIC))


def fit_height(images, height):
    """Resize to one height so a sheet of mixed sizes lines up."""
    return [np.asarray(Image.fromarray(im).resize((round(im.shape[1] * height / im.shape[0]),
                                                   height), Image.BICUBIC)) for im in images]


def make_paint(model, path):
    """A flat-colour 'paint' of the training image: 5 main colours, smoothed into regions."""
    real = model.reals[-1]
    flat = quantize(real, main_colours(real))
    flat = ndimage.median_filter(flat, size=(9, 9, 1))
    save_png(path, to_uint8(flat))
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=Path("../shared/images"))
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("--max-size", type=int, default=singan_tf.FAST.max_size)
    parser.add_argument("--iters", type=int, default=singan_tf.FAST.iters_per_scale)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = singan_tf.FAST.replace(max_size=args.max_size, iters_per_scale=args.iters)
    images = args.images

    # Random samples at several sizes and start scales.
    model = train(images / "generation" / "colusseum.png", args.out, cfg)
    h = model.sizes[-1][0]
    sheet = [to_uint8(model.reals[-1])]
    labels = ["real"]
    for scale_h, scale_w, start in [(1, 1, 0), (1, 1, 0), (1, 1.5, 0), (1, 1, 2)]:
        sheet.append(timed(f"sample {scale_h}x{scale_w} from {start}", model.sample, 1,
                           scale_h, scale_w, start, seed=len(sheet))[0])
        labels.append(f"{scale_w}x wide, start {start}" if scale_w != 1 else f"start {start}")
    save_png(args.out / "generation.png", contact_sheet(fit_height(sheet, h), labels))

    # Harmonization: the painting, the naive paste, the harmonized result.
    for name in ("scream", "pencil_tree"):
        model = train(images / "harmonization" / f"{name}.jpg", args.out, cfg)
        naive = images / "harmonization" / f"{name}_naive.jpg"
        mask = images / "harmonization" / f"{name}_naive_mask.jpg"
        starts = [model.num_scales - 3, model.num_scales - 2]
        results = [timed(f"harmonize {name} from {s}", tasks.harmonize, model, naive, mask, s,
                         seed=0) for s in starts]
        sheet = [to_uint8(model.reals[-1]), as_uint8(naive, model.sizes[-1])]
        sheet += [r.blended for r in results]
        save_png(args.out / f"harmonization_{name}.png", contact_sheet(
            sheet, ["training image", "naive paste"] + [f"start {s}" for s in starts]))

    # Editing.
    model = train(images / "editing" / "stone.png", args.out, cfg)
    edited = images / "editing" / "stone_edit_1.png"
    mask = images / "editing" / "stone_edit_1_mask.png"
    starts = [model.num_scales - 4, model.num_scales - 3]
    results = [timed(f"edit stone from {s}", tasks.edit, model, edited, mask, s, seed=0)
               for s in starts]
    sheet = [to_uint8(model.reals[-1]), as_uint8(edited, model.sizes[-1])]
    for r in results:
        sheet += [r.raw, r.blended]
    save_png(args.out / "editing.png", contact_sheet(sheet, ["training image", "crude edit"] + [
        f"{kind} {s}" for s in starts for kind in ("raw", "blended")]))

    # Paint to image (the paint is made from the stone photo's main colours).
    paint = make_paint(model, args.out / "stone_paint.png")
    plain = timed("paint2image", tasks.paint2image, model, paint, 1, seed=0)
    quantized = timed("paint2image --quantize", tasks.paint2image, model, paint, 1, True,
                      seed=0, verbose=0)
    save_png(args.out / "paint2image.png", contact_sheet(
        [to_uint8(model.reals[-1]), as_uint8(paint, model.sizes[-1]), plain.image,
         quantized.image], ["training image", "paint", "start 1", "start 1, quantized"]))

    # Animation: a strip of frames (and the GIF beside it).
    model = train(images / "animation" / "lightning1.png", args.out, cfg)
    frames = timed("animate 40 frames", tasks.animate, model, 2, frames=40, seed=0)
    tasks.save_gif(frames, args.out / "animation.gif", fps=10)
    save_png(args.out / "animation.png",
             contact_sheet(list(frames[::8]), [f"frame {i}" for i in range(0, 40, 8)]))

    # Super-resolution x4 of a small copy of the zebra photo.
    model = train(images / "generation" / "zebra.png", args.out,
                  cfg.replace(max_size=min(args.max_size, 96)), task="sr", sr_factor=4.0)
    high = timed("super-resolve x4", tasks.super_resolve, model, 4.0, seed=0)
    low = to_uint8(model.reals[-1])
    bicubic = np.asarray(Image.fromarray(low).resize(high.shape[1::-1], Image.BICUBIC))
    save_png(args.out / "super_resolution.png", contact_sheet(
        [np.asarray(Image.fromarray(low).resize(high.shape[1::-1], Image.NEAREST)), bicubic,
         high], ["input (nearest x4)", "bicubic x4", "SinGAN x4"]))

    print("\nstep timings (s):")
    for label, seconds in TIMINGS:
        print(f"  {label:40s} {seconds:8.1f}")


if __name__ == "__main__":
    main()
