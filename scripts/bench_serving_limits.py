#!/usr/bin/env python3
"""The server's memory under its limits: peak RSS for the largest allowed sample request
and for a flood of malformed ones, next to its baseline.

    python scripts/bench_serving_limits.py MODEL_DIR [--max-pixels N ...] [--flood 200]

Exports MODEL_DIR, then for each --max-pixels value starts `singan-tf serve --max-pixels N`
(plus any --serve-option) in a subprocess and reads its VmRSS / VmHWM (peak) from /proc: at
start, after the largest allowed request (about N output pixels of samples at the training
size, run --repeats times, the fastest reported in seconds; "after" is read a few seconds
later) and after a flood of hostile requests (huge declared tensors, lying tensor_content,
NaN, oversized and non-JSON REST bodies, bad Content-Length). Every hostile request must be
refused with its status code and the server must still answer afterwards.
"""
from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

sys.path.insert(0, str(Path(__file__).parent))
from bench_serving import request_for, start_server  # noqa: E402

import singan_tf  # noqa: E402
from singan_tf.export import export  # noqa: E402
from singan_tf.machine import describe  # noqa: E402


SETTLE_S = 4.0


def memory_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def hostile_grpc_requests():
    """Requests that must be refused without the server allocating their declared size."""
    def paint(image):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "bench"
        request.model_spec.signature_name = "paint2image"
        request.inputs["image"].CopyFrom(image)
        request.inputs["start_scale"].CopyFrom(tf.make_tensor_proto(1, dtype=tf.int32))
        request.inputs["seed"].CopyFrom(tf.make_tensor_proto(0, dtype=tf.int64))
        return request
    huge = tf.make_tensor_proto(7, dtype=tf.uint8)
    for size in (1, 20_000, 20_000, 3):
        huge.tensor_shape.dim.add(size=size)
    lying = tf.make_tensor_proto(np.zeros((1, 64, 64, 3), np.uint8))
    lying.tensor_content = lying.tensor_content[:-1]
    nan = request_for(1, 0)
    nan.inputs["scale_h"].CopyFrom(tf.make_tensor_proto(float("nan"), dtype=tf.float32))
    return [paint(huge), paint(lying), nan]


def hostile_http(port: int) -> list[bytes]:
    """Raw HTTP exchanges; returns each status line."""
    head = b"POST /v1/models/bench:predict HTTP/1.1\r\nHost: x\r\n"
    exchanges = [head + b"Content-Length: abc\r\n\r\n",
                 head + b"Content-Length: 9\r\n\r\nnot json!",
                 head + b"Content-Length: 999999999\r\n\r\n" + b"[" * 65536]
    statuses = []
    for data in exchanges:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
            try:
                connection.sendall(data)
                statuses.append(connection.recv(4096).split(b"\r\n")[0])
            except OSError as err:  # the server may close on a too-large body
                statuses.append(str(err).encode())
    return statuses


def rest_port_of(process_line: str) -> int:
    return int(process_line.rsplit("REST on ", 1)[1].split(":")[1].split()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--max-pixels", type=int, nargs="+", default=[2 ** 20, 4 * 2 ** 20])
    parser.add_argument("--flood", type=int, default=100, help="rounds of hostile requests")
    parser.add_argument("--serve-option", action="append", default=[],
                        help="passed to `singan-tf serve` (e.g. --serve-option=--max-request-bytes=1048576)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="times the largest request runs; its fastest is reported")
    args = parser.parse_args()

    model = singan_tf.load(args.model_dir)
    h, w = model.sizes[-1]
    base = Path(tempfile.mkdtemp(prefix="bench_limits_"))
    export(model, base, "bench")
    print(describe())
    print(f"model {args.model_dir}: {model.num_scales} scales, {h}x{w}")
    print(f"{'max pixels':>11} {'request':>16} {'base MiB':>9} {'peak MiB':>9} "
          f"{'after MiB':>9} {'flood peak':>10} {'after flood':>11} {'s':>6}")
    for max_pixels in args.max_pixels:
        process, port, line = start_server(base / "models.config",
                                           ["--max-pixels", str(max_pixels),
                                            *args.serve_option])
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}",
                                       [("grpc.max_receive_message_length", -1)]) as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                stub.Predict(request_for(1, 0), timeout=600)  # load the model
                baseline, _ = memory_mib(process.pid)
                num = max(1, max_pixels // (h * w))
                seconds = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    stub.Predict(request_for(num, 1), timeout=600)
                    seconds.append(time.perf_counter() - start)
                seconds = min(seconds)
                time.sleep(SETTLE_S)  # what the server keeps once the request is done
                after, peak = memory_mib(process.pid)
                refused = 0
                for _ in range(args.flood):
                    for request in hostile_grpc_requests():
                        try:
                            stub.Predict(request, timeout=60)
                        except grpc.RpcError as err:
                            refused += err.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                                      grpc.StatusCode.RESOURCE_EXHAUSTED)
                    statuses = hostile_http(rest_port_of(line))
                time.sleep(SETTLE_S)
                after_flood, flood_peak = memory_mib(process.pid)
                stub.Predict(request_for(1, 0), timeout=600)  # still serving
        finally:
            process.terminate()
            process.wait()
        print(f"{max_pixels:>11} {f'{num} x {h}x{w}':>16} {baseline:>9.0f} {peak:>9.0f} "
              f"{after:>9.0f} {flood_peak:>10.0f} {after_flood:>11.0f} {seconds:>6.1f}")
        print(f"    gRPC hostile requests refused with their code: {refused} of "
              f"{3 * args.flood}; last HTTP answers: {[s.decode() for s in statuses]}")


if __name__ == "__main__":
    main()
