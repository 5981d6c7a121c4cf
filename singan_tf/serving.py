"""A model server speaking TF Serving's APIs from the same export directories.

For machines without `tensorflow_model_server`: gRPC `PredictionService` (Predict,
GetModelMetadata) and `ModelService` (GetModelStatus) on the official servicer base
classes from tensorflow-serving-api, plus the REST API (`/v1/models/...`). Like TF
Serving it serves the newest version unless one is requested, and notices new version
directories while running. Errors carry TF Serving's codes (NOT_FOUND, INVALID_ARGUMENT).
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import io
import json
import logging
import re
import ssl
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from aiohttp import http_exceptions, web
from google.protobuf import json_format
from PIL import Image
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from .errors import SinGANError
from .export import ServedFacts, read_models_config
from .limits import SERVING_MAX_PIXELS, SERVING_MAX_REQUEST_BYTES
from .request_decoding import (RequestError, from_json, from_tensor_proto, invalid,
                               not_found, too_large)
from .trained_pyramid import retargeted_size

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 60.0                  # to receive a REST body: a stalled client is cut off

HTTP_STATUS = {grpc.StatusCode.NOT_FOUND: HTTPStatus.NOT_FOUND,
               grpc.StatusCode.INVALID_ARGUMENT: HTTPStatus.BAD_REQUEST,
               grpc.StatusCode.RESOURCE_EXHAUSTED: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
               grpc.StatusCode.INTERNAL: HTTPStatus.INTERNAL_SERVER_ERROR}
INTERNAL_ERROR = "internal error (logged by the server)"


@dataclass
class Servable:
    version: int
    path: Path
    loaded: object
    signature_defs: dict  # name -> SignatureDef proto (for metadata)
    facts: ServedFacts    # sizes and limits, for checks before running


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
                loaded = tf.saved_model.load(str(path))
                self._cache[key] = Servable(version, path, loaded, signature_defs,
                                            ServedFacts.of(loaded))
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
    """Signature lookup, input decoding and checks, the size limit and the call: shared by
    gRPC and REST."""

    def __init__(self, repository: ModelRepository, max_pixels: int = SERVING_MAX_PIXELS,
                 max_request_bytes: int = SERVING_MAX_REQUEST_BYTES):
        self.repository = repository
        self.max_pixels = max_pixels
        self.max_request_bytes = max_request_bytes

    def signature(self, servable: Servable, name: str):
        name = name or "serving_default"
        if name not in servable.loaded.signatures:
            raise not_found(f"Serving signature key \"{name}\" not found.")
        return name, servable.loaded.signatures[name]

    def predict(self, model: str, version: int | None, signature_name: str, raw_inputs: dict,
                decode):
        """Run a signature on `raw_inputs` (protos or JSON values), each turned into an array
        by `decode(value, spec, name, max_elements)` (see request_decoding)."""
        servable = self.repository.get(model, version)
        signature_name, function = self.signature(servable, signature_name)
        specs = function.structured_input_signature[1]
        missing = sorted(set(specs) - set(raw_inputs))
        if missing:
            raise invalid(f"missing input(s) {', '.join(missing)} for signature "
                          f"{signature_name} (expects {', '.join(sorted(specs))})")
        unknown = sorted(set(raw_inputs) - set(specs))
        if unknown:
            raise invalid(f"unknown input(s) {', '.join(unknown)} for signature {signature_name}")
        # No input holds more values than the request could carry bytes.
        inputs = {key: decode(raw_inputs[key], spec, key, self.max_request_bytes)
                  for key, spec in specs.items()}
        self._check_size(servable, signature_name, inputs)
        try:
            outputs = function(**{key: tf.constant(value, dtype=specs[key].dtype)
                                  for key, value in inputs.items()})
        except tf.errors.InvalidArgumentError as err:
            raise invalid(_graph_error(err.message)) from None
        return servable.version, signature_name, {k: v.numpy() for k, v in outputs.items()}

    def _check_size(self, servable, signature_name, inputs) -> None:
        """Refuse work over the limit (the server's, or the export's if lower) before
        running it."""
        facts = servable.facts
        if signature_name == "serving_default":
            h, w = retargeted_size(*facts.finest_size, float(inputs["scale_h"]),
                                   float(inputs["scale_w"])).numpy()
            pixels = int(inputs["num_samples"]) * int(h) * int(w)
        else:
            if "image_bytes" in inputs:
                h, w = _image_size(bytes(np.asarray(inputs["image_bytes"]).item()))
            else:
                h, w = np.asarray(inputs["image"]).shape[1:3]
            pixels = h * w
            if signature_name.startswith("super_resolve"):
                pixels *= (facts.sr_factor or 1.0) ** 2
            else:
                pixels = max(pixels, facts.finest_size[0] * facts.finest_size[1])
        limit = min(self.max_pixels, facts.max_output_pixels or self.max_pixels)
        if pixels > limit:
            raise too_large(f"request too large: {pixels} output pixels x samples exceeds "
                            f"the limit of {limit}")

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


def _answer(context, work):
    """work()'s response, or the request's own error code; a bug is logged and answered
    INTERNAL, never UNKNOWN with a traceback."""
    try:
        return work()
    except RequestError as err:
        code, message = err.code, err.message
    except Exception:
        log.exception("internal error answering a gRPC request")
        code, message = grpc.StatusCode.INTERNAL, INTERNAL_ERROR
    context.abort(code, message)


class _CoreServicer:
    """A gRPC servicer answering from the PredictionCore."""

    def __init__(self, core: PredictionCore):
        self.core = core


class PredictionService(_CoreServicer, prediction_service_pb2_grpc.PredictionServiceServicer):

    def Predict(self, request, context):
        return _answer(context, lambda: self._predict(request))

    def _predict(self, request):
        version, signature, outputs = self.core.predict(
            request.model_spec.name, _version(request.model_spec),
            request.model_spec.signature_name, dict(request.inputs), from_tensor_proto)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = signature
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):
        return _answer(context, lambda: self._metadata(request))

    def _metadata(self, request):
        if list(request.metadata_field) != ["signature_def"]:
            raise invalid("metadata_field must be [\"signature_def\"]")
        servable = self.core.repository.get(request.model_spec.name, _version(request.model_spec))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = servable.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in servable.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature_def)
        response.metadata["signature_def"].Pack(signature_map)
        return response


class ModelService(_CoreServicer, model_service_pb2_grpc.ModelServiceServicer):

    def GetModelStatus(self, request, context):
        return _answer(context, lambda: self._status(request))

    def _status(self, request):
        versions = self.core.status(request.model_spec.name, _version(request.model_spec))
        response = get_model_status_pb2.GetModelStatusResponse()
        for version in versions:
            status = response.model_version_status.add()
            status.version = version
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response


# ------------------------------------------------------------------- REST
def _to_json(array: np.ndarray):
    if array.dtype.kind in "OS":
        return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()}, otypes=[object])(
            array).tolist()
    return array.tolist()


def _route(path: str):
    """/v1/models/NAME[/versions/V][/metadata | :predict] -> (name, version, action)."""
    action = None
    if path.endswith(":predict"):
        path, action = path[: -len(":predict")], "predict"
    parts = path.strip("/").split("/")
    if len(parts) < 3 or parts[:2] != ["v1", "models"]:
        raise not_found(f"no such endpoint: {path}")
    name, rest, version = parts[2], parts[3:], None
    if rest[:1] == ["versions"] and len(rest) >= 2:
        if not rest[1].isdigit() or len(rest[1]) > 18:
            raise invalid(f"version must be a positive integer, got {rest[1]}")
        version, rest = int(rest[1]), rest[2:]
    if rest == ["metadata"] and action is None:
        action = "metadata"
    elif rest:
        raise not_found(f"no such endpoint: {path}")
    return name, version, action or "status"


class _AnsweredClientErrors(logging.Filter):
    """aiohttp answers a malformed request (a bad Content-Length, ...) with 400 itself and
    then logs it as an error with a traceback: the client's mistake, not the server's."""

    def filter(self, record):
        return not (record.exc_info and
                    isinstance(record.exc_info[1], http_exceptions.BadHttpMessage))


logging.getLogger("aiohttp.server").addFilter(_AnsweredClientErrors())


@dataclass(frozen=True)
class Security:
    """TLS from a PEM certificate and key (both protocols), and an optional bearer token
    every request must carry (`authorization: Bearer TOKEN`, REST header or gRPC
    metadata): for deployments without a mesh or proxy that provides them."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    token: str | None = None

    @classmethod
    def from_files(cls, tls_cert=None, tls_key=None, token_file=None) -> "Security":
        if (tls_cert is None) != (tls_key is None):
            raise SinGANError("TLS needs both a certificate and its key")
        token = None
        if token_file is not None:
            token = Path(token_file).read_text().strip()
            if not token:
                raise SinGANError(f"the token file {token_file} is empty")
        return cls(tls_cert and Path(tls_cert), tls_key and Path(tls_key), token)

    def ssl_context(self):
        if self.tls_cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as err:
            raise SinGANError(f"cannot load the TLS certificate or key: {err}") from None
        return context

    def grpc_credentials(self):
        if self.tls_cert is None:
            return None
        self.ssl_context()  # the same clear error for a bad certificate or key
        return grpc.ssl_server_credentials(
            [(self.tls_key.read_bytes(), self.tls_cert.read_bytes())])

    def authorized(self, header: str | None) -> bool:
        """Constant-time check of an `authorization` value (always true without a token)."""
        if self.token is None:
            return True
        return hmac.compare_digest((header or "").encode(), f"Bearer {self.token}".encode())


UNAUTHENTICATED = "missing or wrong bearer token (authorization: Bearer TOKEN)"


class _BearerTokenInterceptor(grpc.ServerInterceptor):
    """gRPC side of `Security.token`: a call without the token is UNAUTHENTICATED."""

    def __init__(self, security: Security):
        self.security = security

        def deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED)
        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation, details):
        header = dict(details.invocation_metadata or ()).get("authorization")
        return continuation(details) if self.security.authorized(header) else self._deny


class RestApi:
    """TF Serving's REST API (`/v1/models/...`) on aiohttp, which brings HTTP parsing,
    keep-alive and the body limit (413); predictions run on a thread pool. Runs its own
    event loop in a background thread; the port is bound on construction."""

    def __init__(self, core: PredictionCore, host: str, port: int, workers: int,
                 security: Security = Security()):
        self.core = core
        self.security = security
        self.pool = futures.ThreadPoolExecutor(max_workers=workers)
        app = web.Application(client_max_size=core.max_request_bytes)
        app.router.add_route("*", "/{path:.*}", self._handle)
        ssl_context = security.ssl_context()
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        try:
            self.loop.run_until_complete(
                web.TCPSite(self.runner, host, port, ssl_context=ssl_context).start())
        except OSError as err:
            self.loop.run_until_complete(self.runner.cleanup())
            raise SinGANError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
        self.port = self.runner.addresses[0][1]
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
        self.pool.shutdown()

    async def _shutdown(self) -> None:
        """Close the listener, then cancel what is left (idle keep-alive connections)."""
        await self.runner.cleanup()
        left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    async def _handle(self, request: web.Request) -> web.Response:
        if not self.security.authorized(request.headers.get("Authorization")):
            return web.json_response({"error": UNAUTHENTICATED}, status=HTTPStatus.UNAUTHORIZED,
                                     headers={"WWW-Authenticate": "Bearer"})
        try:
            name, version, action = _route(request.path)
            if request.method == "GET" and action == "status":
                body = self._status(name, version)
            elif request.method == "GET" and action == "metadata":
                body = self._metadata(name, version)
            elif request.method == "POST" and action == "predict":
                if (request.content_length or 0) > self.core.max_request_bytes:
                    raise web.HTTPRequestEntityTooLarge(self.core.max_request_bytes,
                                                        request.content_length)
                data = await asyncio.wait_for(request.read(), REQUEST_TIMEOUT_S)
                body = await self.loop.run_in_executor(self.pool, self._predict, name, version,
                                                       data)
            else:
                raise not_found(f"{request.method} {request.path} is not supported")
            return web.json_response(body)
        except RequestError as err:
            return web.json_response({"error": err.message}, status=HTTP_STATUS[err.code])
        except web.HTTPRequestEntityTooLarge:
            return web.json_response(
                {"error": f"request body over the limit of {self.core.max_request_bytes} bytes"},
                status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        except asyncio.TimeoutError:
            return web.json_response({"error": "timed out receiving the request body"},
                                     status=HTTPStatus.REQUEST_TIMEOUT)
        except Exception:
            log.exception("internal error answering %s %s", request.method, request.path)
            return web.json_response({"error": INTERNAL_ERROR},
                                     status=HTTPStatus.INTERNAL_SERVER_ERROR)

    def _status(self, name, version):
        versions = self.core.status(name, version)
        return {"model_version_status": [
            {"version": str(v), "state": "AVAILABLE",
             "status": {"error_code": "OK", "error_message": ""}} for v in versions]}

    def _metadata(self, name, version):
        servable = self.core.repository.get(name, version)
        return {"model_spec": {"name": name, "version": str(servable.version),
                               "signature_name": ""},
                "metadata": {"signature_def": {"signature_def": {
                    k: json_format.MessageToDict(v) for k, v in servable.signature_defs.items()}}}}

    def _predict(self, name, version, data: bytes):
        try:
            body = json.loads(data or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise invalid(f"request body is not JSON: {err}") from None
        if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
            raise invalid("the body needs exactly one of \"instances\" or \"inputs\"")
        signature_name = body.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise invalid("signature_name must be a string")
        servable = self.core.repository.get(name, version)
        signature_name, function = self.core.signature(servable, signature_name)
        specs = function.structured_input_signature[1]
        if "inputs" in body:
            raw = body["inputs"]
            if not isinstance(raw, dict):
                if len(specs) != 1:
                    raise invalid("\"inputs\" must name each input of this signature")
                raw = {next(iter(specs)): raw}
        else:
            raw = self._columns(body["instances"], specs)
        # The version whose signature shaped `raw`, even if a newer one appeared since.
        _, _, outputs = self.core.predict(name, servable.version, signature_name, raw,
                                          from_json)
        if "inputs" in body:
            values = {k: _to_json(v) for k, v in outputs.items()}
            return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
        rows = [{k: _to_json(v[i]) for k, v in outputs.items()}
                for i in range(len(next(iter(outputs.values()))))]
        return {"predictions": [next(iter(r.values())) if len(r) == 1 else r for r in rows]}

    @staticmethod
    def _columns(instances, specs) -> dict:
        """The row format: one object per instance -> one list per input. A signature with
        scalar inputs takes a single instance as the scalars themselves."""
        if not isinstance(instances, list) or not instances or \
                not all(isinstance(i, dict) for i in instances):
            raise invalid("\"instances\" must be a non-empty list of objects")
        columns = {}
        for key in set().union(*instances):
            if not all(key in i for i in instances):
                raise invalid(f"input {key} is missing from some instances")
            column = [i[key] for i in instances]
            scalar = key in specs and specs[key].shape.rank == 0 and len(column) == 1
            columns[key] = column[0] if scalar else column
        return columns


class ModelServer:
    """gRPC and REST servers over one repository. Ports 0 pick free ports (tests)."""

    def __init__(self, config_file, port: int = 8500, rest_api_port: int = 8501,
                 host: str = "127.0.0.1", max_pixels: int = SERVING_MAX_PIXELS,
                 poll_seconds: float = 1.0, workers: int = 8,
                 max_request_bytes: int = SERVING_MAX_REQUEST_BYTES,
                 security: Security = Security()):
        self.core = PredictionCore(ModelRepository(config_file, poll_seconds), max_pixels,
                                   max_request_bytes)
        self.grpc_server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers),
            interceptors=[_BearerTokenInterceptor(security)] if security.token else None,
            options=[("grpc.max_receive_message_length", max_request_bytes)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self.core), self.grpc_server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.core),
                                                                  self.grpc_server)
        credentials = security.grpc_credentials()
        try:
            self.port = (self.grpc_server.add_secure_port(f"{host}:{port}", credentials)
                         if credentials else self.grpc_server.add_insecure_port(f"{host}:{port}"))
        except RuntimeError:  # grpcio raises here when the port is taken
            self.port = 0
        if self.port == 0:
            raise SinGANError(f"cannot listen on {host}:{port} (in use?)")
        self.rest = RestApi(self.core, host, rest_api_port, workers, security)
        self.rest_port = self.rest.port

    def start(self) -> "ModelServer":
        self.grpc_server.start()
        self.rest.start()
        return self

    def stop(self) -> None:
        self.rest.stop()
        self.grpc_server.stop(grace=None)

    def wait(self) -> None:
        self.grpc_server.wait_for_termination()
