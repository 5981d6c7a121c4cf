#!/usr/bin/env python3
"""Minimal clients for a served SinGAN, using only the official APIs (no singan_tf import).

    python serving/client.py grpc --server localhost:8500 --model rocket -n 4 -o samples/
    python serving/client.py rest --server localhost:8501 --model rocket -n 4 -o samples/

Works against the real tensorflow_model_server and against `singan-tf serve`.
"""
import argparse
import json
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image


def sample_grpc(server, model, num, seed):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "serving_default"
    request.inputs["seed"].CopyFrom(tf.make_tensor_proto(seed, dtype=tf.int64))
    request.inputs["num_samples"].CopyFrom(tf.make_tensor_proto(num, dtype=tf.int32))
    request.inputs["scale_h"].CopyFrom(tf.make_tensor_proto(1.0, dtype=tf.float32))
    request.inputs["scale_w"].CopyFrom(tf.make_tensor_proto(1.0, dtype=tf.float32))
    request.inputs["start_scale"].CopyFrom(tf.make_tensor_proto(0, dtype=tf.int32))
    with grpc.insecure_channel(server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=60)
    return tf.make_ndarray(response.outputs["images"])


def sample_rest(server, model, num, seed):
    body = {"inputs": {"seed": seed, "num_samples": num, "scale_h": 1.0, "scale_w": 1.0,
                       "start_scale": 0}}
    request = urllib.request.Request(f"http://{server}/v1/models/{model}:predict",
                                     data=json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=60) as reply:
        return np.array(json.loads(reply.read())["outputs"], dtype=np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("api", choices=["grpc", "rest"])
    parser.add_argument("--server", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("-n", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", type=Path, required=True)
    args = parser.parse_args()
    sample = sample_grpc if args.api == "grpc" else sample_rest
    images = sample(args.server, args.model, args.n, args.seed)
    args.o.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(args.o / f"sample_{i:04d}.png")
    print(f"wrote {len(images)} images of {images.shape[1]}x{images.shape[2]} to {args.o}")


if __name__ == "__main__":
    main()
