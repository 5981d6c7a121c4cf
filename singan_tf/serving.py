"""A model server speaking TF Serving's APIs from the same export directories.

For machines without `tensorflow_model_server`: gRPC `PredictionService` (Predict,
GetModelMetadata) and `ModelService` (GetModelStatus) on the official servicer base
classes from tensorflow-serving-api, plus the REST API (`/v1/models/...`). Like TF
Serving it serves the newest version unless one is requested, and notices new version
directories while running. Errors carry TF Serving's codes (NOT_FOUND, INVALID_ARGUMENT).
"""
from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from PIL import Image
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from .errors import SinGANError
from .export import DEFAULT_MAX_PIXELS, read_models_config

HTTP_STATUS = {grpc.StatusCode.NOT_FOUND: HTTPStatus.NOT_FOUND,
               grpc.StatusCode.INVALID_ARGUMENT: HTTPStatus.BAD_REQUEST,
               grpc.StatusCode.INTERNAL: HTTPStatus.INTERNAL_SERVER_ERROR}


class ServingError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def not_found(message):
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def invalid(message):
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


@dataclass
class Servable:
    version: int
    path: Path
    loaded: object
    signature_defs: dict  # name -> SignatureDef proto (for metadata)


class ModelRepository:
    """The models of a models.config; versions are loaded on first use and cached."""

    def __init__(self, config_file, poll_seconds: float = 1.0):
        config_file = Path(config_file)
        if not config_file.is_file():
            raise SinGANError(f"model config file not found: {config_file}")
        config = read_models_config(config_file)
        self.base_paths = {}
        for entry in config.model_config_list.config:
            self.base_paths[entry.name] = self._resolve(entry.base_path, config_file.parent)
        if not self.base_paths:
            raise SinGANError(f"{config_file} lists no models")
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], Servable] = {}
        self._versions: dict[str, tuple[float, list[int]]] = {}

    @staticmethod
    def _resolve(base_path: str, config_dir: Path) -> Path:
        """TF Serving's Docker convention mounts the config's folder at /models."""
        path = Path(base_path)
        if path.is_dir():
            return path
        if base_path.startswith("/models/"):
            return config_dir / base_path[len("/models/"):]
        return config_dir / path

    def versions(self, name: str) -> list[int]:
        """Version directories holding a saved_model.pb, re-listed at most every poll_seconds."""
        if name not in self.base_paths:
            raise not_found(f"Servable not found for request: Latest({name})")
        checked, versions = self._versions.get(name, (0.0, []))
        if time.monotonic() - checked >= self.poll_seconds:
            base = self.base_paths[name]
            versions = sorted(int(p.name) for p in base.iterdir()
                              if p.name.isdigit() and (p / "saved_model.pb").is_file()) \
                if base.is_dir() else []
            self._versions[name] = (time.monotonic(), versions)
        return versions

    def get(self, name: str, version: int | None = None) -> Servable:
        versions = self.versions(name)
        if version is None:
            if not versions:
                raise not_found(f"Servable not found for request: Latest({name})")
            version = versions[-1]
        elif version not in versions:
            raise not_found(f"Servable not found for request: Specific({name}, {version})")
        with self._lock:
            key = (name, version)
            if key not in self._cache:
                path = self.base_paths[name] / str(version)
                proto = saved_model_pb2.SavedModel()
                proto.ParseFromString((path / "saved_model.pb").read_bytes())
                signature_defs = dict(proto.meta_graphs[0].signature_def)
                self._cache[key] = Servable(version, path, tf.saved_model.load(str(path)),
                                            signature_defs)
            return self._cache[key]


def _image_size(data: bytes) -> tuple[int, int]:
    """Height and width from an encoded image's header, without decoding its pixels."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.height, image.width
    except Exception:
        raise invalid("image_bytes is not a PNG or JPEG image") from None


def _graph_error(message: str) -> str:
    """The failed assertion's own text out of TF's multi-line "Graph execution error"."""
    match = re.search(r"assertion failed: \[([^\]]*)\]", message)
    if match:
        return match.group(1)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return next((line for line in reversed(lines) if not line.startswith("[[")), message)


class PredictionCore:
    """Signature lookup, input checks, the size limit and the call: shared by gRPC and REST."""

    def __init__(self, repository: ModelRepository, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.repository = repository
        self.max_pixels = max_pixels

    def signature(self, servable: Servable, name: str):
        name = name or "serving_default"
        if name not in servable.loaded.signatures:
            raise not_found(f"Serving signature key \"{name}\" not found.")
        return name, servable.loaded.signatures[name]

    def predict(self, model: str, version: int | None, signature_name: str, inputs: dict):
        servable = self.repository.get(model, version)
        signature_name, function = self.signature(servable, signature_name)
        specs = function.structured_input_signature[1]
        missing = sorted(set(specs) - set(inputs))
        if missing:
            raise invalid(f"missing input(s) {', '.join(missing)} for signature "
                          f"{signature_name} (expects {', '.join(sorted(specs))})")
        unknown = sorted(set(inputs) - set(specs))
        if unknown:
            raise invalid(f"unknown input(s) {', '.join(unknown)} for signature {signature_name}")
        tensors = {}
        for key, spec in specs.items():
            value = np.asarray(inputs[key])
            if spec.dtype == tf.string:
                ok = value.dtype.kind in "SOU"
            else:
                ok = value.dtype == spec.dtype.as_numpy_dtype
            if not ok:
                raise invalid(f"input {key} must be {spec.dtype.name}, got {value.dtype}")
            if not spec.shape.is_compatible_with(value.shape):
                raise invalid(f"input {key} must have shape {spec.shape}, got {list(value.shape)}")
            tensors[key] = tf.constant(value, dtype=spec.dtype)
        self._check_size(servable, signature_name, inputs)
        try:
            outputs = function(**tensors)
        except tf.errors.InvalidArgumentError as err:
            raise invalid(_graph_error(err.message)) from None
        return servable.version, signature_name, {k: v.numpy() for k, v in outputs.items()}

    def _check_size(self, servable, signature_name, inputs) -> None:
        """Refuse work over the limit before running it (never an out-of-memory crash)."""
        if signature_name == "serving_default":
            h, w = (int(v) for v in servable.loaded.finest_size.numpy())
            count = int(inputs["num_samples"])
            pixels = count * round(h * float(inputs["scale_h"])) * round(w * float(inputs["scale_w"]))
        else:
            if "image_bytes" in inputs:
                h, w = _image_size(bytes(np.asarray(inputs["image_bytes"]).item()))
            else:
                h, w = np.asarray(inputs["image"]).shape[1:3]
            pixels = h * w
            if signature_name.startswith("super_resolve"):
                pixels *= float(servable.loaded.sr_factor_variable.numpy()) ** 2
            else:
                fh, fw = (int(v) for v in servable.loaded.finest_size.numpy())
                pixels = max(pixels, fh * fw)
        if pixels > self.max_pixels:
            raise invalid(f"request too large: {pixels} output pixels x samples exceeds the "
                          f"limit of {self.max_pixels}")

    def status(self, model: str, version: int | None):
        versions = self.repository.versions(model)
        if version is not None:
            if version not in versions:
                raise not_found(f"Servable not found for request: Specific({model}, {version})")
            versions = [version]
        if not versions:
            raise not_found(f"Servable not found for request: Latest({model})")
        return versions


# ------------------------------------------------------------------- gRPC
def _version(model_spec):
    return model_spec.version.value if model_spec.HasField("version") else None


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: PredictionCore):
        self.core = core

    def Predict(self, request, context):
        try:
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            version, signature, outputs = self.core.predict(
                request.model_spec.name, _version(request.model_spec),
                request.model_spec.signature_name, inputs)
        except ServingError as err:
            context.abort(err.code, err.message)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = signature
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):
        try:
            if list(request.metadata_field) != ["signature_def"]:
                raise invalid("metadata_field must be [\"signature_def\"]")
            servable = self.core.repository.get(request.model_spec.name,
                                                _version(request.model_spec))
        except ServingError as err:
            context.abort(err.code, err.message)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = servable.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in servable.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature_def)
        response.metadata["signature_def"].Pack(signature_map)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: PredictionCore):
        self.core = core

    def GetModelStatus(self, request, context):
        try:
            versions = self.core.status(request.model_spec.name, _version(request.model_spec))
        except ServingError as err:
            context.abort(err.code, err.message)
        response = get_model_status_pb2.GetModelStatusResponse()
        for version in versions:
            status = response.model_version_status.add()
            status.version = version
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response


# ------------------------------------------------------------------- REST
def _from_json(value):
    """JSON values -> numpy-ready values; {"b64": ...} -> bytes."""
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            return base64.b64decode(value["b64"])
        raise invalid("objects in tensors must be {\"b64\": ...}")
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _json_array(value, spec):
    value = _from_json(value)
    if spec.dtype == tf.string:
        return np.asarray(value, dtype=object)
    array = np.asarray(value)
    if spec.dtype.is_integer and array.dtype.kind == "f":
        raise invalid(f"expected integers for a {spec.dtype.name} input")
    if array.dtype.kind not in "biuf":
        raise invalid(f"expected numbers for a {spec.dtype.name} input")
    return array.astype(spec.dtype.as_numpy_dtype)


def _to_json(array: np.ndarray):
    if array.dtype.kind in "OS":
        return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()}, otypes=[object])(
            array).tolist()
    return array.tolist()


class RestHandler(BaseHTTPRequestHandler):
    core: PredictionCore  # set on the subclass made by make_rest_server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet: one line per request is noise in a terminal
        pass

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self):
        """/v1/models/NAME[/versions/V][/metadata | :predict] -> (name, version, action)."""
        path = self.path.split("?")[0]
        action = None
        if path.endswith(":predict"):
            path, action = path[: -len(":predict")], "predict"
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[:2] != ["v1", "models"]:
            raise not_found(f"no such endpoint: {self.path}")
        name, rest, version = parts[2], parts[3:], None
        if rest[:1] == ["versions"] and len(rest) >= 2:
            if not rest[1].isdigit():
                raise invalid(f"version must be an integer, got {rest[1]}")
            version, rest = int(rest[1]), rest[2:]
        if rest == ["metadata"] and action is None:
            action = "metadata"
        elif rest:
            raise not_found(f"no such endpoint: {self.path}")
        return name, version, action or "status"

    def _handle(self, method):
        try:
            name, version, action = self._route()
            if method == "GET" and action == "status":
                versions = self.core.status(name, version)
                self._send(200, {"model_version_status": [
                    {"version": str(v), "state": "AVAILABLE",
                     "status": {"error_code": "OK", "error_message": ""}} for v in versions]})
            elif method == "GET" and action == "metadata":
                servable = self.core.repository.get(name, version)
                self._send(200, {"model_spec": {"name": name, "version": str(servable.version),
                                                "signature_name": ""},
                                 "metadata": {"signature_def": {"signature_def": {
                                     k: json_format.MessageToDict(v)
                                     for k, v in servable.signature_defs.items()}}}})
            elif method == "POST" and action == "predict":
                self._send(200, self._predict(name, version))
            else:
                raise not_found(f"{method} {self.path} is not supported")
        except ServingError as err:
            self._send(HTTP_STATUS.get(err.code, 500), {"error": err.message})

    def _predict(self, name, version):
        length = int(self.headers.get("Content-Length", 0))
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError as err:
            raise invalid(f"request body is not JSON: {err}") from None
        if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
            raise invalid("the body needs exactly one of \"instances\" or \"inputs\"")
        servable = self.core.repository.get(name, version)
        signature_name, function = self.core.signature(servable, body.get("signature_name", ""))
        specs = function.structured_input_signature[1]
        if "inputs" in body:
            given = body["inputs"]
            if not isinstance(given, dict):
                if len(specs) != 1:
                    raise invalid("\"inputs\" must name each input of this signature")
                given = {next(iter(specs)): given}
            inputs = {k: _json_array(v, specs[k]) if k in specs else v for k, v in given.items()}
        else:
            instances = body["instances"]
            if not isinstance(instances, list) or not instances or \
                    not all(isinstance(i, dict) for i in instances):
                raise invalid("\"instances\" must be a non-empty list of objects")
            inputs = {}
            for key in set().union(*instances):
                if key not in specs:
                    inputs[key] = None
                    continue
                column = np.stack([_json_array(i.get(key), specs[key]) for i in instances])
                # Signatures with scalar inputs take one instance as the scalars themselves.
                inputs[key] = column[0] if specs[key].shape.rank == 0 and len(column) == 1 \
                    else column
        _, _, outputs = self.core.predict(name, version, signature_name, inputs)
        if "inputs" in body:
            values = {k: _to_json(v) for k, v in outputs.items()}
            return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
        rows = [{k: _to_json(v[i]) for k, v in outputs.items()}
                for i in range(len(next(iter(outputs.values()))))]
        return {"predictions": [next(iter(r.values())) if len(r) == 1 else r for r in rows]}

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")


class ModelServer:
    """gRPC and REST servers over one repository. Ports 0 pick free ports (tests)."""

    def __init__(self, config_file, port: int = 8500, rest_api_port: int = 8501,
                 host: str = "127.0.0.1", max_pixels: int = DEFAULT_MAX_PIXELS,
                 poll_seconds: float = 1.0, workers: int = 8):
        self.core = PredictionCore(ModelRepository(config_file, poll_seconds), max_pixels)
        self.grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self.core), self.grpc_server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.core),
                                                                  self.grpc_server)
        self.port = self.grpc_server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise SinGANError(f"cannot listen on {host}:{port} (in use?)")
        handler = type("Handler", (RestHandler,), {"core": self.core})
        try:
            self.rest_server = ThreadingHTTPServer((host, rest_api_port), handler)
        except OSError as err:
            raise SinGANError(f"cannot listen on {host}:{rest_api_port}: {err}") from None
        self.rest_port = self.rest_server.server_address[1]
        self._rest_thread = threading.Thread(target=self.rest_server.serve_forever, daemon=True)

    def start(self) -> "ModelServer":
        self.grpc_server.start()
        self._rest_thread.start()
        return self

    def stop(self) -> None:
        self.rest_server.shutdown()
        self.rest_server.server_close()
        self.grpc_server.stop(grace=None)

    def wait(self) -> None:
        self.grpc_server.wait_for_termination()
