#!/usr/bin/env python3
"""Training and sampling speed of a preset on one image, against this machine's matmul peak.

    python scripts/benchmark.py ../shared/images/generation/colusseum.png --preset fast --fit
    python scripts/benchmark.py IMAGE --preset paper --timed-iters 2 --scales 9

Per scale (a ConSinGAN preset: per stage): size, width, compile seconds, ms per iteration
(after warm-up), GFLOP/s and its ratio to the fp32 matmul GFLOP/s measured in the same run.
Then the projected fit time (compile + iterations, every scale) and, with --fit, the
measured wall clock and peak RSS (all its processes together) of `singan-tf fit`, split
into the scales' training and the rest, then sampling ms per image (1x and 2x size, n=1 and
n=16) of the fitted model, or of an existing one with --model DIR (which also times the
finest scale's random-path inputs, fresh and from a bank).
Writes JSON with --json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf

import singan_tf
from singan_tf import machine
from singan_tf.consingan.stage_training import (build_stage, first_generator, new_critic,
                                                stage_dataset)
from singan_tf.images import load_image
from singan_tf.model_dir import read_manifest
from singan_tf.scale_training import (build_scale, compile_scale, random_path_dataset,
                                     without_autotuning)


ONEDNN_SETTINGS = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "ONEDNN_DEFAULT_FPMATH_MODE")


def stack_flops(height, width, channels, out_channels, cfg, padded, layers):
    """One forward of a SinGAN conv stack of `layers` valid convs (head 3->C, body C->C,
    tail C->out). G's input is zero-padded by what the convs remove; D's is not."""
    k = cfg.kernel_size
    pad = cfg.receptive_pad_of(layers)
    h, w = (height + 2 * pad, width + 2 * pad) if padded else (height, width)
    ins = [3] + [channels] * (layers - 1)
    outs = [channels] * (layers - 1) + [out_channels]
    flops = 0
    for channels_in, channels_out in zip(ins, outs):
        h, w = h - (k - 1), w - (k - 1)
        flops += 2 * k * k * channels_in * channels_out * h * w
    return flops


def iteration_flops(size, width, cfg, n):
    """One training iteration: critic steps (G fwd, D on real/fake, gradient penalty with
    double backprop) and generator steps (fake and reconstruction through G, D, backward).
    Counted as critic ~ F_G + 15 F_D and generator ~ 6 F_G + 3 F_D (backward = 2x forward)."""
    size = cfg.training_size(size, n)
    forward_g = stack_flops(*size, width, 3, cfg, padded=True, layers=cfg.layers(n))
    forward_d = stack_flops(*size, width, 1, cfg, padded=False, layers=cfg.critic_layers(n))
    return (cfg.critic_steps * (forward_g + 15 * forward_d)
            + cfg.generator_steps * (6 * forward_g + 3 * forward_d))


def conv_flops(height, width, in_channels, out_channels, kernel_size=3):
    return 2 * kernel_size ** 2 * in_channels * out_channels * height * width


def stage_iteration_flops(cfg, sizes):
    """One ConSinGAN iteration at the last of `sizes`: one fake, critic steps of ~15 F_D
    each (real, fake, gradient penalty with double backprop), and one generator gradient
    ~6 F_G + 3 F_D (fake and reconstruction through G, the fake through D, backward =
    2x forward). F_G counts each stage's convs at its size; F_D the valid convs' outputs."""
    c, (height, width) = cfg.channels, sizes[-1]
    forward_g = (conv_flops(*sizes[0], 3, c) + conv_flops(height, width, c, 3)
                 + sum(cfg.convs_per_stage * conv_flops(h, w, c, c) for h, w in sizes))
    layers = cfg.critic_layers_at(len(sizes) - 1)
    widths = [3] + [c] * (layers - 1) + [1]
    forward_d = sum(conv_flops(height - 2 * (i + 1), width - 2 * (i + 1), *widths[i:i + 2])
                    for i in range(layers))
    return cfg.critic_steps * 15 * forward_d + 6 * forward_g + 3 * forward_d


def matmul_gflops(n=2048, repeats=20):
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    multiply = tf.function(lambda: tf.matmul(a, b))
    multiply().numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        out = multiply()
    out.numpy()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def time_steps(model, data, timed_iters):
    """(seconds of the first step, which traces the train step; seconds per later step)."""
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=timed_iters, verbose=0, shuffle=False)
    return compile_seconds, (time.perf_counter() - start) / timed_iters


def time_scale(cfg, n, size, timed_iters):
    scale = build_scale(cfg, n, size, seed=0)
    compile_scale(scale, cfg.replace(steps_per_execution=1), iterations=1)
    real = tf.random.uniform((1, *size, 3), -1, 1)
    data = tf.data.Dataset.from_tensors((real, tf.zeros((cfg.critic_steps, *size, 3)))).repeat()
    return time_steps(scale, without_autotuning(data), timed_iters)


def time_stage(cfg, k, sizes, timed_iters):
    """A ConSinGAN stage's step, built as the trainer builds it, on random weights."""
    keras.utils.set_random_seed(0)
    generator = first_generator(cfg)
    for _ in range(k):
        generator = generator.grown()
    stage = build_stage(cfg.replace(steps_per_execution=1), k, sizes, generator,
                        new_critic(cfg, k), seed=0, iterations=1)
    real = tf.random.uniform((1, *sizes[k], 3), -1, 1)
    return time_steps(stage, stage_dataset(real), timed_iters)


def time_sampling(model, repeats=5):
    rows = []
    for scale in (1.0, 2.0):
        for num in (1, 16):
            model.sample(num, scale, scale, seed=0)  # trace once per shape
            start = time.perf_counter()
            for i in range(repeats):
                model.sample(num, scale, scale, seed=i)
            per_image = (time.perf_counter() - start) / repeats / num
            rows.append({"size": f"{scale:g}x", "n": num, "ms_per_image": 1000 * per_image,
                         "images_per_s": 1 / per_image})
    return rows


def time_random_path(model, banks=(0, 64), iterations=30):
    """ms per iteration for the finest scale's random-path inputs, fresh or from a bank."""
    scale = model.num_scales - 1
    real = tf.constant(model.reals[scale][None])
    rows = []
    for bank in banks:
        start = time.perf_counter()
        inputs = iter(random_path_dataset(real, model.pyramid.coarser(scale),
                                          model.config.critic_steps, seed=1, bank_size=bank))
        next(inputs)
        setup = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(iterations):
            next(inputs)
        rows.append({"bank": bank, "setup_s": setup,
                     "ms_per_iter": 1000 * (time.perf_counter() - start) / iterations})
    return rows


def tree_rss_mib(root_pid: int) -> float:
    """Resident memory of a process and all its descendants, from /proc."""
    parents, rss = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            statm = (entry / "statm").read_text()
        except OSError:  # gone meanwhile
            continue
        pid = int(entry.name)
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        rss[pid] = int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")
    tree, grew = {root_pid}, True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return sum(rss.get(pid, 0) for pid in tree) / 2 ** 20


def run_tracking_memory(command, interval=0.2):
    """Run a command; its wall clock and the peak of its process tree's summed RSS (a
    per-process peak would miss a parent and child that are resident together)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, tree_rss_mib(process.pid))
        time.sleep(interval)
    if process.returncode:
        raise SystemExit(f"fit failed with exit code {process.returncode}")
    return time.perf_counter() - start, peak


def split_fit_time(model, wall_seconds):
    """Where a measured fit's time went: each scale's `train_seconds` from the manifest
    (random-path inputs, tracing, iterations, health check) and the rest (starting a
    process per scale, loading the coarser scales, previews, saving). Returns the former."""
    scale_seconds = [s["train_seconds"] for s in read_manifest(model)["scales"]]
    inside = sum(scale_seconds)
    print(f"  inside the scales' training: {inside / 60:.1f} min (per scale, s: "
          f"{', '.join(f'{s:.0f}' for s in scale_seconds)}); around it: "
          f"{(wall_seconds - inside) / 60:.1f} min", flush=True)
    return scale_seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--preset", default="fast", choices=sorted(singan_tf.PRESETS))
    parser.add_argument("--timed-iters", type=int, default=20)
    parser.add_argument("--scales", help="comma-separated scale indices (default: all)")
    parser.add_argument("--fit", action="store_true", help="also run and time the real fit")
    parser.add_argument("--model", type=Path, help="time sampling of this trained model")
    parser.add_argument("--xla", action=argparse.BooleanOptionalAction, default=None,
                        help="XLA-compile the train step (default: the preset's choice)")
    parser.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                        help="override a config option, e.g. --set crop_size=64 (repeatable)")
    parser.add_argument("--grappler", action=argparse.BooleanOptionalAction, default=True,
                        help="TensorFlow's graph optimizer on the traced step (--no-grappler "
                             "turns its meta-optimizer off)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not args.grappler:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

    cfg = singan_tf.preset(args.preset).replace(**singan_tf.config.parse_overrides(args.set))
    if args.xla is not None:
        if cfg.family != "singan":
            parser.error(f"--xla is an option of SinGAN's presets, not of {args.preset}")
        cfg = cfg.replace(jit_compile=args.xla)
    array, _ = load_image(args.image)
    spec = cfg.pyramid_spec(*array.shape[:2])
    scales = range(spec.num_scales) if not args.scales else [int(s) for s in args.scales.split(",")]
    peak = matmul_gflops()
    overrides = "".join(f" {item}" for item in args.set)
    onednn = {k: os.environ[k] for k in ONEDNN_SETTINGS if k in os.environ}
    print(f"CPU: {machine.describe()}; oneDNN settings: {onednn or 'defaults'}; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    xla = f"XLA {'on' if cfg.jit_compile else 'off'}, " if cfg.family == "singan" else ""
    level = "stage" if cfg.family == "consingan" else "scale"
    print(f"{args.image}: {spec.num_scales} {level}s, preset {args.preset}{overrides}, "
          f"{xla}grappler {'on' if args.grappler else 'off'}; "
          f"fp32 matmul peak here: {peak:.0f} GFLOP/s", flush=True)
    if scales:
        print(f"{level:>5} {'size':>9} {'window':>9} {'width':>5} {'compile s':>9} "
              f"{'ms/it':>9} {'GFLOP/it':>9} {'GFLOP/s':>8} {'of peak':>7}", flush=True)
    rows = []
    for n in scales:
        size = spec.sizes[n]
        if cfg.family == "consingan":  # every stage trains on its whole image
            width, window = cfg.channels, size
            compile_seconds, seconds = time_stage(cfg, n, spec.sizes, args.timed_iters)
            flops = stage_iteration_flops(cfg, spec.sizes[:n + 1])
        else:
            width, window = cfg.channels(n), cfg.training_size(size, n)
            compile_seconds, seconds = time_scale(cfg, n, size, args.timed_iters)
            flops = iteration_flops(size, width, cfg, n)
        rows.append({"scale": n, "size": list(size), "window": list(window), "width": width,
                     "compile_s": compile_seconds, "ms_per_iter": 1000 * seconds,
                     "gflop_per_iter": flops / 1e9, "gflops": flops / seconds / 1e9,
                     "fraction_of_matmul_peak": flops / seconds / 1e9 / peak})
        r = rows[-1]
        print(f"{n:>5} {size[0]:>4}x{size[1]:<4} {window[0]:>4}x{window[1]:<4} {width:>5} "
              f"{compile_seconds:>9.1f} {r['ms_per_iter']:>9.1f} {r['gflop_per_iter']:>9.2f} "
              f"{r['gflops']:>8.1f} "
              f"{r['fraction_of_matmul_peak']:>7.0%}", flush=True)
    result = {"image": str(args.image), "preset": args.preset, "config": cfg.to_dict(),
              "cpu": machine.cpu_model(), "isa_flags": machine.isa_flags(),
              "onednn_settings": onednn, "matmul_gflops": peak,
              "scales": rows}
    if not args.scales and rows:
        projected = sum(r["compile_s"] + r["ms_per_iter"] / 1000 * cfg.iterations(r["scale"])
                        for r in rows)
        result["projected_fit_s"] = projected
        print(f"projected fit: {projected / 60:.1f} min (each {level}'s iterations, compile "
              "included, random-path input excluded)")
    if args.fit:
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "singan_tf", "fit", str(args.image), "-o",
                       f"{tmp}/model", "--preset", args.preset, "--no-tensorboard",
                       *[f"--set={item}" for item in args.set]]
            if args.xla is not None:
                command.append("--xla" if args.xla else "--no-xla")
            seconds, peak_tree = run_tracking_memory(command)
            result["measured_fit_s"], result["fit_peak_rss_mib"] = seconds, peak_tree
            print(f"measured fit (`singan-tf fit`): {seconds / 60:.1f} min, peak RSS of its "
                  f"processes together {peak_tree:.0f} MiB", flush=True)
            result["fit_scale_seconds"] = split_fit_time(Path(tmp) / "model", seconds)
            result["sampling"] = time_sampling(singan_tf.load(f"{tmp}/model"))
    elif args.model:
        model = singan_tf.load(args.model)
        result["sampling"] = time_sampling(model)
        result["random_path"] = time_random_path(model)
        for r in result["random_path"]:
            print(f"random-path inputs, bank {r['bank']:>2}: {r['ms_per_iter']:6.1f} ms per "
                  f"iteration (setup {r['setup_s']:.1f} s)")
    if "sampling" in result:
        for r in result["sampling"]:
            print(f"sampling {r['size']} n={r['n']:>2}: {r['ms_per_image']:7.1f} ms/image "
                  f"({r['images_per_s']:.1f} images/s)")
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this benchmark process: {result['peak_rss_mib']:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
