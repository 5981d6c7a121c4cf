#!/usr/bin/env python3
"""Fit a preset on each LSUN reference image, draw samples, and score them against the
published SinGAN and ConSinGAN samples with the reference metrics script.

    python scripts/quality_lsun.py --lsun ../shared/reference/lsun \\
        --eval ../shared/eval/singan_eval.py --out runs/lsun [--preset fast] [--images 0,1]

Long (minutes per image): run it in the background, not in CI. Each fit and its samples
are kept under OUT, so a second run only does what is missing. Every fit runs as its own
`singan-tf fit` process (its wall clock and peak RSS are recorded); the table's "train min"
is the manifest's training time of every scale, including those an interrupted earlier run
trained. SWD and diversity come from the reference script; NIQE and the noise level from
singan_tf.naturalness (which agrees with the reference script's --niqe, tested), for ours,
both published models and the real image itself. The published samples are JPEGs (so is
the photo) and ours PNGs, and JPEG's quantization smooths the grain that both numbers read
(on LSUN 6 ours scored noise 3.90 and NIQE 56.6 as PNGs, 3.59 and 61.8 encoded as theirs),
so ours are also scored encoded as the published samples are (`niqe_as_published`,
`noise_sigma_as_published`): compare those with the published models. Writes
OUT/table.md (one row per image, ours next to the published models), OUT/results.json and
a contact sheet per image, OUT/sheets/NAME.jpg: a row each for ours, SinGAN and ConSinGAN,
every row the real image and then 4 samples.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, JpegImagePlugin

from singan_tf import naturalness
from singan_tf.images import contact_sheet

PUBLISHED = ("singan", "consingan")
CLI = [sys.executable, "-m", "singan_tf"]  # this interpreter's singan-tf
METRICS = ("swd", "swd_centered", "diversity", "niqe", "noise_sigma")
AS_PUBLISHED = ("niqe_as_published", "noise_sigma_as_published")  # ours only
SHEET_SAMPLES = 4


def run(command) -> float:
    """Run a command to completion; return its peak RSS in MiB (from wait4's rusage)."""
    print("$", " ".join(map(str, command)), flush=True)
    process = subprocess.Popen([str(c) for c in command])
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {command}")
    return usage.ru_maxrss / 1024


def fit_and_sample(real: Path, out: Path, args) -> dict:
    """Model and samples for one image, at the real image's exact size."""
    model_dir, sample_dir = out / "models" / real.stem, out / "samples" / real.stem
    record_path = out / "models" / f"{real.stem}.json"
    if not (model_dir / "singan.json").exists() or not record_path.exists():
        command = [*CLI, "fit", real, "-o", model_dir, "--preset", args.preset,
                   "--seed", args.seed, "--no-tensorboard",
                   *[f"--{option}" for option in args.fit_option]]
        if (model_dir / "singan.json").exists():  # an interrupted earlier run
            command = [*CLI, "fit", "-o", model_dir, "--resume", "--no-tensorboard"]
        start = time.perf_counter()
        peak_rss = run(command)
        record_path.write_text(json.dumps({"run_seconds": time.perf_counter() - start,
                                           "peak_rss_mib_largest_process": peak_rss}))
    manifest = json.loads((model_dir / "singan.json").read_text())
    if len(list(sample_dir.glob("*.png"))) < args.num:
        height, width = manifest["sizes"][-1]
        real_width, real_height = Image.open(real).size
        run([*CLI, "sample", model_dir, "-o", sample_dir, "-n", args.num,
             "--seed", args.seed, "--scale-h", real_height / height,
             "--scale-w", real_width / width])
    return {**json.loads(record_path.read_text()), "train_seconds": manifest["train_seconds"]}


def score(eval_script: Path, real: Path, fakes, json_path: Path) -> dict:
    """The reference script's metrics for one set of samples (cached in json_path)."""
    if not json_path.exists():
        run([sys.executable, eval_script, "--real", real, "--fake", *fakes, "--json", json_path])
    result = json.loads(json_path.read_text())
    return {"swd": result["swd"]["mean"], "swd_centered": result["swd_centered"]["mean"],
            "diversity": result["diversity"]["gray"],
            **grain([load_rgb(path) for path in fakes])}


def grain(images, suffix="") -> dict:
    """Mean NIQE and noise level of images in [0, 1], keyed niqe{suffix} and
    noise_sigma{suffix}."""
    return {f"niqe{suffix}": float(np.mean([naturalness.niqe(i) for i in images])),
            f"noise_sigma{suffix}": float(np.mean([naturalness.noise_sigma(i)
                                                   for i in images]))}


def load_rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")) / 255.0


def encoded_like(path, published: Path) -> np.ndarray:
    """The image at `path` after a JPEG round trip with `published`'s quantization tables
    and chroma subsampling, in [0, 1]."""
    reference, buffer = Image.open(published), io.BytesIO()
    Image.open(path).convert("RGB").save(buffer, "JPEG", qtables=reference.quantization,
                                         subsampling=JpegImagePlugin.get_sampling(reference))
    return load_rgb(buffer)


def write_sheet(real: Path, rows: dict, path: Path) -> None:
    """One row per model: the real image, then its first SHEET_SAMPLES samples."""
    real_image = np.asarray(Image.open(real).convert("RGB"))
    strips = []
    for name, fakes in rows.items():
        images = [real_image] + [np.asarray(Image.open(f).convert("RGB"))
                                 for f in fakes[:SHEET_SAMPLES]]
        labels = ["real"] + [f"{name} {i + 1}" for i in range(len(images) - 1)]
        strips.append(contact_sheet(images, labels))
    width = max(strip.shape[1] for strip in strips)
    sheet = np.concatenate([np.pad(strip, ((0, 0), (0, width - strip.shape[1]), (0, 0)),
                                   constant_values=255) for strip in strips])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path, quality=92)


def markdown_table(rows, means, preset) -> str:
    models = ["ours"] + list(PUBLISHED)
    names = {"ours": f"singan-tf {preset}", "singan": "SinGAN", "consingan": "ConSinGAN"}
    head = ["image", "train min"] + [f"{metric} {names[m]}" for metric in METRICS for m in models]
    head += [f"{metric} {names['ours']}" for metric in AS_PUBLISHED]
    head += ["niqe real", "noise_sigma real"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    digits = {"swd": 4, "swd_centered": 4, "diversity": 3, "niqe": 1, "noise_sigma": 2,
              "niqe_as_published": 1, "noise_sigma_as_published": 2}

    def cells(entry):
        return ([f"{entry[m][metric]:.{digits[metric]}f}" for metric in METRICS for m in models]
                + [f"{entry['ours'][metric]:.{digits[metric]}f}" for metric in AS_PUBLISHED]
                + [f"{entry['real'][metric]:.{digits[metric]}f}"
                   for metric in ("niqe", "noise_sigma")])

    for row in rows:
        lines.append(f"| {row['image']} | {row['train_seconds'] / 60:.1f} | "
                     + " | ".join(cells(row)) + " |")
    lines.append(f"| **mean** | {means['train_seconds'] / 60:.1f} | "
                 + " | ".join(f"**{c}**" for c in cells(means)) + " |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lsun", type=Path, required=True,
                        help="folder with real/, singan/ and consingan/ (published samples)")
    parser.add_argument("--eval", type=Path, required=True, help="singan_eval.py")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--fit-option", action="append", default=[], metavar="OPTION",
                        help="extra `singan-tf fit` option without its dashes, e.g. crop-size=96")
    parser.add_argument("--images", help="comma-separated image names (default: all)")
    parser.add_argument("--num", type=int, default=10, help="samples per image (published: 10)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    reals = sorted((args.lsun / "real").glob("*.jpg"), key=lambda p: int(p.stem))
    if args.images:
        wanted = set(args.images.split(","))
        reals = [r for r in reals if r.stem in wanted]
    scores_dir = args.out / "scores"
    scores_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for real in reals:
        record = fit_and_sample(real, args.out, args)
        ours = sorted((args.out / "samples" / real.stem).glob("*.png"))[:args.num]
        real_image = load_rgb(real)
        row = {"image": real.name, **record,
               "real": {"niqe": naturalness.niqe(real_image),
                        "noise_sigma": naturalness.noise_sigma(real_image)},
               "ours": score(args.eval, real, ours, scores_dir / f"{real.stem}_ours.json")}
        published = {model: sorted((args.lsun / model).glob(f"{real.stem}_*.jpg"))
                     for model in PUBLISHED}
        row["ours"].update(grain([encoded_like(path, published["consingan"][0])
                                  for path in ours], suffix="_as_published"))
        for model, fakes in published.items():
            row[model] = score(args.eval, real, fakes, scores_dir / f"{real.stem}_{model}.json")
        write_sheet(real, {f"ours ({args.preset})": ours, "SinGAN": published["singan"],
                           "ConSinGAN": published["consingan"]},
                    args.out / "sheets" / f"{real.stem}.jpg")
        rows.append(row)
        print(json.dumps(row), flush=True)
    means = {"train_seconds": float(np.mean([r["train_seconds"] for r in rows]))}
    for model in ["ours", *PUBLISHED]:
        means[model] = {metric: float(np.mean([r[model][metric] for r in rows]))
                        for metric in METRICS + (AS_PUBLISHED if model == "ours" else ())}
    means["real"] = {metric: float(np.mean([r["real"][metric] for r in rows]))
                     for metric in ("niqe", "noise_sigma")}
    table = markdown_table(rows, means, args.preset)
    (args.out / "table.md").write_text(table)
    (args.out / "results.json").write_text(json.dumps({"rows": rows, "mean": means}, indent=2))
    print(table)


if __name__ == "__main__":
    sys.exit(main())
