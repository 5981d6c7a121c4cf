#!/usr/bin/env python3
"""Does oneDNN change a SinGAN train step on this CPU? One scale, several oneDNN settings.

    python scripts/onednn_check.py                       # synthetic scale, the usual variants
    python scripts/onednn_check.py --model runs/rocket --scale 3 --iters 300 --kernels

Each variant runs in its own process (oneDNN reads its settings at start-up) on the same
weights, inputs and seeds: first one step's losses and gradients without applying them,
then `--iters` real training iterations (the `fast` preset's train step, with the scale's
window and frozen-BatchNorm setting), then the reconstruction error. The reference is
oneDNN off (TensorFlow's Eigen kernels). With `--model DIR --scale N` the scale starts from
DIR's real image and the weights of scale N-1, as in the fit that wrote DIR. `--kernels`
lists the oneDNN implementations each variant ran (ONEDNN_VERBOSE). Prints the CPU model
and ISA flags first. docs/performance.md ("oneDNN on AMD Zen 4") has the findings.
"""
from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

VARIANTS = {
    "onednn-off": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "default": {},
    "isa-avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "isa-avx512-core": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "isa-avx512-bf16": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"},
}
REFERENCE = "onednn-off"


def child(args) -> None:
    """One variant: write losses, gradients, the rec_loss trajectory and the final error."""
    import keras
    import tensorflow as tf

    from singan_tf import FAST
    from singan_tf import model_dir as fmt
    from singan_tf.scale_training import build_scale, compile_scale
    from singan_tf.trained_pyramid import Pyramid

    cfg, n = FAST.replace(steps_per_execution=1), args.scale
    keras.utils.set_random_seed(0)
    if args.model:
        manifest = fmt.read_manifest(args.model)
        size = tuple(manifest["sizes"][n])
        frozen = Pyramid(fmt.load_trained_scales(args.model, manifest)).coarser(n)
        real = tf.constant(fmt.load_reals(args.model, manifest["num_scales"])[n][None])
        rec_prev = frozen.reconstruction_input(n, size)
        scale = build_scale(cfg, n, size, seed=0)
        if cfg.inherits_weights(n):
            scale.generator.set_weights(frozen.scales[-1].generator.get_weights())
            scale.discriminator.set_weights(
                fmt.load_discriminator(args.model, n - 1).get_weights())
    else:
        size = tuple(args.size)
        scale = build_scale(cfg, n, size, seed=0)
        yy, xx = np.mgrid[0:size[0], 0:size[1]] / 8.0
        real = tf.constant(np.stack([np.sin(xx), np.cos(yy), np.sin(xx + yy)], -1)[None]
                           .astype(np.float32) * 0.8)
        rec_prev = tf.image.resize(tf.image.resize(real, [s // 2 for s in size]), size)
    amp = cfg.noise_amp_init * float(tf.sqrt(tf.reduce_mean(tf.square(real - rec_prev))))
    scale.noise_amp.assign(amp)
    scale.rec_prev.assign(rec_prev)
    compile_scale(scale, cfg, args.iters)
    prevs = tf.concat([rec_prev] * cfg.critic_steps, axis=0)
    window = scale._random_window()
    crop = lambda x: scale._crop(x, window)  # noqa: E731
    out = {}
    with tf.GradientTape(persistent=True) as tape:
        fake = scale._generate([scale._noisy(crop(prevs)[:1]), crop(prevs)[:1]], True,
                               window)
        d_loss, gp = scale.critic_loss(crop(real), fake)
        g_loss, rec_loss = scale.generator_loss(crop(real), crop(prevs)[:1], window,
                                                None)
    out.update(fake=fake.numpy(), d_loss=d_loss.numpy(), gp=gp.numpy(), g_loss=g_loss.numpy(),
               rec_loss=rec_loss.numpy())
    for name, loss, model in (("d", d_loss, scale.discriminator), ("g", g_loss, scale.generator)):
        for var, grad in zip(model.trainable_variables,
                             tape.gradient(loss, model.trainable_variables)):
            out[f"grad_{name}/{var.path}"] = grad.numpy()
    trajectory = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: trajectory.append(float(logs["rec_loss"])))
    data = tf.data.Dataset.from_tensors((real, prevs)).repeat()
    scale.fit(data, epochs=1, steps_per_epoch=args.iters, verbose=0, callbacks=[record])
    rec = scale.reconstruct()
    out["trajectory"] = np.array(trajectory)
    out["final_rec_error"] = float(tf.reduce_mean(tf.square(rec - real)))
    out["input_error"] = float(tf.reduce_mean(tf.square(rec_prev - real)))
    np.savez(args.child, **out)


def kernels(verbose_output: str) -> collections.Counter:
    """(primitive, implementation, direction) -> executions, from ONEDNN_VERBOSE lines."""
    counts = collections.Counter()
    for line in verbose_output.splitlines():
        fields = line.split(",")
        if line.startswith("onednn_verbose") and "exec" in fields[:4] and len(fields) > 8:
            start = fields.index("exec")
            counts[(fields[start + 2], fields[start + 3], fields[start + 4])] += 1
    return counts


def compare(results: dict) -> None:
    reference = results[REFERENCE]
    print(f"\nagainst {REFERENCE} (max |difference| / max |reference| per tensor; "
          "tensors that are zero but for rounding left out):")
    print(f"{'variant':<18} {'losses':>9} {'G grads':>9} {'D grads':>9} {'fake':>9}  "
          f"{'rec_loss at 10%, 50%, end':<28} final rec error (input)")
    for name, result in results.items():
        def worst(prefix):
            keys = [k for k in reference if k.startswith(prefix)]
            largest = max(float(np.abs(reference[k]).max()) for k in keys)
            # A conv bias before a BatchNorm has a gradient of zero but for rounding (the
            # batch mean removes it): relative to that, any difference is huge.
            return max(float(np.abs(result[k] - reference[k]).max()
                             / (np.abs(reference[k]).max() + 1e-12)) for k in keys
                       if np.abs(reference[k]).max() > 1e-6 * largest)
        losses = max(abs(float(result[k]) - float(reference[k])) / (abs(float(reference[k])) + 1e-12)
                     for k in ("d_loss", "gp", "g_loss", "rec_loss"))
        path = result["trajectory"]
        marks = ", ".join(f"{path[int(f * (len(path) - 1))]:.4f}" for f in (0.1, 0.5, 1.0))
        print(f"{name:<18} {losses:>9.2e} {worst('grad_g/'):>9.2e} {worst('grad_d/'):>9.2e} "
              f"{worst('fake'):>9.2e}  {marks:<28} {float(result['final_rec_error']):.5f} "
              f"({float(result['input_error']):.5f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model directory to take the scale from")
    parser.add_argument("--scale", type=int, default=3, help="scale index (default 3)")
    parser.add_argument("--size", type=int, nargs=2, default=[57, 85],
                        help="H W of a synthetic scale (default: the rocket's scale 3)")
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--kernels", action="store_true", help="list oneDNN's kernels")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    from singan_tf import machine

    print(f"CPU: {machine.describe()}")
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    names = [v for v in args.variants.split(",") if v]
    if REFERENCE not in names:
        names.insert(0, REFERENCE)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            path = Path(tmp) / f"{name}.npz"
            env = {**os.environ, **VARIANTS[name], "TF_CPP_MIN_LOG_LEVEL": "2"}
            if args.kernels:
                env["ONEDNN_VERBOSE"] = "1"
            command = [sys.executable, __file__, "--child", str(path), "--scale",
                       str(args.scale), "--iters", str(args.iters), "--size",
                       *map(str, args.size)] + (["--model", str(args.model)] if args.model else [])
            run = subprocess.run(command, env=env, capture_output=True, text=True)
            if run.returncode:
                sys.exit(f"variant {name} failed:\n{run.stderr[-3000:]}")
            print(f"{name}: done", flush=True)
            if args.kernels:
                for (kind, impl, direction), count in sorted(kernels(run.stdout).items()):
                    print(f"    {kind:<16} {impl:<28} {direction:<18} x{count}")
            with np.load(path) as data:
                results[name] = dict(data)
    compare(results)


if __name__ == "__main__":
    main()
