#!/usr/bin/env python3
"""Serving overhead: latency and throughput of sampling, in-process vs gRPC on loopback.

    python scripts/bench_serving.py runs/rocket [--requests 40] [--json bench_serving.json]

Exports MODEL_DIR to a temporary TF Serving layout, then times the same SavedModel
signature (a) called in-process and (b) through `singan-tf serve` in a subprocess via the
official PredictionServiceStub, for n=1 and n=16 samples at the training size.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

import singan_tf
from singan_tf.export import export


def request_for(num, seed):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "bench"
    for key, value, dtype in [("seed", seed, tf.int64), ("num_samples", num, tf.int32),
                              ("scale_h", 1.0, tf.float32), ("scale_w", 1.0, tf.float32),
                              ("start_scale", 0, tf.int32)]:
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
    return request


def timings(call, requests, warmup=3):
    for i in range(warmup):
        call(i)
    seconds = []
    start = time.perf_counter()
    for i in range(requests):
        t = time.perf_counter()
        call(warmup + i)
        seconds.append(time.perf_counter() - t)
    return np.array(seconds), time.perf_counter() - start


def start_server(config_file, options=()):
    """`singan-tf serve` in a subprocess: (process, gRPC port, its start-up line)."""
    command = [str(Path(sys.executable).with_name("singan-tf")), "serve", "--model-config-file",
               str(config_file), "--port", "0", "--rest-api-port", "0", "--host", "127.0.0.1",
               *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    match = re.search(r"gRPC on [\d.]+:(\d+)", line)
    if not match:
        process.kill()
        raise SystemExit(f"server did not start: {line}")
    return process, int(match.group(1)), line


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    model = singan_tf.load(args.model_dir)
    base = Path(tempfile.mkdtemp(prefix="bench_serving_"))
    version_dir = export(model, base, "bench")
    loaded = tf.saved_model.load(str(version_dir))
    sample = loaded.signatures["serving_default"]
    process, port, _ = start_server(base / "models.config")
    results = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for num in (1, 16):
                def in_process(seed, num=num):
                    return sample(seed=tf.constant(seed, tf.int64), num_samples=tf.constant(num),
                                  scale_h=tf.constant(1.0), scale_w=tf.constant(1.0),
                                  start_scale=tf.constant(0))["images"].numpy()

                def over_grpc(seed, num=num):
                    return stub.Predict(request_for(num, seed), timeout=120)

                for mode, call in (("in-process", in_process), ("gRPC", over_grpc)):
                    seconds, total = timings(call, args.requests)
                    results.append({"mode": mode, "n": num,
                                    "p50_ms": 1000 * float(np.percentile(seconds, 50)),
                                    "p99_ms": 1000 * float(np.percentile(seconds, 99)),
                                    "samples_per_s": num * args.requests / total})
    finally:
        process.terminate()
        process.wait()

    h, w = model.sizes[-1]
    print(f"model {args.model_dir} ({model.num_scales} scales, {h}x{w}), "
          f"{args.requests} requests each")
    print(f"{'mode':>10} {'n':>3} {'p50 ms':>9} {'p99 ms':>9} {'samples/s':>10}")
    for r in results:
        print(f"{r['mode']:>10} {r['n']:>3} {r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f} "
              f"{r['samples_per_s']:>10.1f}")
    for num in (1, 16):
        local, remote = [r for r in results if r["n"] == num]
        print(f"n={num}: gRPC/in-process p50 = {remote['p50_ms'] / local['p50_ms']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model_dir), "size": [h, w],
                                         "requests": args.requests, "results": results},
                                        indent=2))


if __name__ == "__main__":
    main()
