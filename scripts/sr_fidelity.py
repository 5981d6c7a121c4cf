#!/usr/bin/env python3
"""How faithful super-resolution stays to its input, with and without back-projection.

    python scripts/sr_fidelity.py ../shared/images/generation/zebra.png --max-size 64 --out runs/sr_zebra

Fits a `fast` SR model (x4) on the image shrunk to --max-size (kept in OUT/model and reused),
upscales it x2 and x4 with back-projection on and off, and prints for each the PSNR of
the output shrunk back against the input (plain bicubic up and down for comparison) and
the RMS difference from bicubic upsampling (the detail the generator adds). Writes
OUT/x4.png: bicubic | reference SR (no back-projection) | SR with back-projection.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import singan_tf
from singan_tf.images import save_png, to_uint8
from singan_tf.tasks import super_resolve


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def bicubic(image, size):
    """Pillow's bicubic resize of a uint8 HxWx3 array to size (h, w), as the tests do."""
    return np.asarray(Image.fromarray(image).resize(size[::-1], Image.BICUBIC))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-size", type=int, default=64)
    parser.add_argument("--iters", type=int, default=singan_tf.FAST.iters_per_scale)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model_dir = args.out / "model"
    if (model_dir / "singan.json").exists():
        model = singan_tf.load(model_dir)
    else:
        cfg = singan_tf.FAST.replace(max_size=args.max_size, iters_per_scale=args.iters)
        model = singan_tf.fit(args.image, model_dir, cfg, seed=args.seed, task="sr",
                              sr_factor=4.0, verbose=0)
    low = to_uint8(model.reals[-1])
    size = low.shape[:2]
    print(f"input {size[0]}x{size[1]}, {model.num_scales} scales")
    print("factor | back-projection | shrunk-back PSNR dB | bicubic up+down dB | "
          "RMS from bicubic (0-255)")
    for factor in (2.0, 4.0):
        outputs = {}
        for back_projection in (False, True):
            high = super_resolve(model, factor, seed=args.seed, back_projection=back_projection)
            outputs[back_projection] = high
            upsampled = bicubic(low, high.shape[:2])
            plain = psnr(bicubic(upsampled, size), low)
            added = np.sqrt(np.mean((high.astype(np.float64) - upsampled) ** 2))
            print(f"x{factor:g} | {'on' if back_projection else 'off'} | "
                  f"{psnr(bicubic(high, size), low):.2f} | {plain:.2f} | {added:.1f}")
        if factor == 4.0:  # `upsampled` is the bicubic x4 of the last pass
            args.out.mkdir(parents=True, exist_ok=True)
            save_png(args.out / "x4.png",
                     np.concatenate([upsampled, outputs[False], outputs[True]], axis=1))
            print(f"wrote {args.out / 'x4.png'}: bicubic | back-projection off | on")


if __name__ == "__main__":
    main()
