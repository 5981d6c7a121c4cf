"""Calling a TF Serving endpoint (the real one or `singan-tf serve`) with the official stubs."""
from __future__ import annotations

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from .errors import SinGANError


def sample(server: str, model: str, num: int = 1, seed: int = 0, scale_h: float = 1.0,
           scale_w: float = 1.0, start_scale: int = 0, version: int | None = None,
           timeout: float = 60.0, tls_ca: bytes | None = None,
           token: str | None = None) -> np.ndarray:
    """uint8 [num, H, W, 3] from the `serving_default` signature at HOST:PORT.

    tls_ca: PEM certificate(s) to trust for a TLS server (`serve --tls-cert`); token: the
    bearer token of a server started with `--auth-token-file`."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "serving_default"
    if version is not None:
        request.model_spec.version.value = version
    for key, value, dtype in [("seed", seed, tf.int64), ("num_samples", num, tf.int32),
                              ("scale_h", scale_h, tf.float32), ("scale_w", scale_w, tf.float32),
                              ("start_scale", start_scale, tf.int32)]:
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
    channel = (grpc.insecure_channel(server) if tls_ca is None else
               grpc.secure_channel(server, grpc.ssl_channel_credentials(tls_ca)))
    metadata = None if token is None else [("authorization", f"Bearer {token}")]
    with channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as err:
            raise SinGANError(f"{server}: {err.code().name}: {err.details()}") from None
    return tf.make_ndarray(response.outputs["images"])
