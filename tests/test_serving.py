"""Export, the TF-Serving-compatible server and the client, over loopback."""
import base64
import io
import json
import shutil
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from PIL import Image
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from singan_tf import SinGANError, client
from singan_tf.cli import main
from singan_tf.export import export, read_models_config
from singan_tf.images import to_uint8
from singan_tf.serving import ModelServer
from singan_tf.tasks import edit, harmonize, paint2image
from singan_tf.tasks.editing import blend_mask


MAX_REQUEST_BYTES = 1_000_000


@pytest.fixture(scope="module")
def exported(fitted_model, tmp_path_factory):
    base = tmp_path_factory.mktemp("served")
    export(fitted_model, base, "tiny")
    return base


@pytest.fixture(scope="module")
def server(exported):
    server = ModelServer(exported / "models.config", port=0, rest_api_port=0, host="127.0.0.1",
                         max_pixels=200_000, poll_seconds=0.0,
                         max_request_bytes=MAX_REQUEST_BYTES).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def sample_request(model="tiny", signature="serving_default", version=None, **values):
    inputs = {"seed": (1, tf.int64), "num_samples": (2, tf.int32), "scale_h": (1.0, tf.float32),
              "scale_w": (1.0, tf.float32), "start_scale": (0, tf.int32)}
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for key, (value, dtype) in inputs.items():
        value = values.get(key, value)
        if value is not None:
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
    return request


def rest(server, path, body=None):
    url = f"http://127.0.0.1:{server.rest_port}{path}"
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=60) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_export_layout_and_config(exported, fitted_model):
    version_dir = exported / "tiny" / "1"
    assert (version_dir / "saved_model.pb").is_file() and (version_dir / "variables").is_dir()
    config = read_models_config(exported / "models.config")
    assert [(c.name, c.base_path) for c in config.model_config_list.config] == [
        ("tiny", "/models/tiny")]
    loaded = tf.saved_model.load(str(version_dir))
    assert set(loaded.signatures) == {"serving_default", "paint2image", "paint2image_bytes",
                                      "edit", "edit_bytes", "harmonize", "harmonize_bytes"}
    out = loaded.signatures["serving_default"](
        seed=tf.constant(4, tf.int64), num_samples=tf.constant(3), scale_h=tf.constant(1.5),
        scale_w=tf.constant(1.0), start_scale=tf.constant(1))["images"].numpy()
    np.testing.assert_array_equal(out, fitted_model.sample(3, 1.5, 1.0, 1, seed=4))


def test_export_refuses_bad_names_and_taken_versions(exported, fitted_model):
    with pytest.raises(SinGANError, match="model name"):
        export(fitted_model, exported, "bad/name")
    with pytest.raises(SinGANError, match="exists"):
        export(fitted_model, exported, "tiny", version=1)


def test_sr_export_has_super_resolve(sr_model, tmp_path):
    target = export(sr_model, tmp_path, "sr")
    loaded = tf.saved_model.load(str(target))
    low = to_uint8(sr_model.reals[-1])
    out = loaded.signatures["super_resolve"](image=tf.constant(low[None]),
                                             seed=tf.constant(0, tf.int64))["image"].numpy()
    from singan_tf.tasks import super_resolve
    same_input = low.astype(np.float32) / 127.5 - 1
    expected = super_resolve(sr_model, 2.0, same_input, seed=0)
    # The same ops, as a graph (grappler fuses some) and eagerly: float rounding may move a
    # pixel by one level.
    assert np.abs(out[0].astype(int) - expected).max() <= 1
    assert np.mean(out[0] != expected) < 0.001
    png = io.BytesIO()
    Image.fromarray(low).save(png, format="PNG")
    by_bytes = loaded.signatures["super_resolve_bytes"](
        image_bytes=tf.constant(png.getvalue()), seed=tf.constant(0, tf.int64))["image"].numpy()
    np.testing.assert_array_equal(by_bytes, out)


def test_blend_mask_matches_scipy():
    """The TF blend weights against the reference's recipe written with scipy."""
    from scipy import ndimage
    from skimage.morphology import disk
    mask = np.zeros((40, 50), np.float32)
    mask[10:20, 12:30] = 1
    for dilation, sigma in [(2, 1.0), (7, 5.0)]:
        dilated = ndimage.binary_dilation(mask > 0.5, structure=disk(dilation))
        expected = np.clip(ndimage.gaussian_filter(dilated.astype(np.float32), sigma,
                                                   truncate=4.0), 0, 1)
        np.testing.assert_allclose(blend_mask(tf.constant(mask[None]), dilation, sigma)[0],
                                   expected, atol=1e-5)


def test_served_injection_tasks_match_the_cli(stub, fitted_model, edit_png, tmp_path):
    """Same seed, same files: the served paint2image, edit and harmonize signatures and the
    Python API (what the CLI runs) give the same image, within one level where float
    rounding differs."""
    image, mask = edit_png
    (tmp_path / "image.png").write_bytes(image)
    (tmp_path / "mask.png").write_bytes(mask)
    image_path, mask_path = tmp_path / "image.png", tmp_path / "mask.png"
    tasks = {
        "paint2image_bytes": lambda: paint2image(fitted_model, image_path, 1, seed=5).image,
        "edit_bytes": lambda: edit(fitted_model, image_path, mask_path, start_scale=1,
                                   seed=5).blended,
        "harmonize_bytes": lambda: harmonize(fitted_model, image_path, mask_path,
                                             start_scale=1, seed=5).blended,
    }
    for signature, run_locally in tasks.items():
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "tiny"
        request.model_spec.signature_name = signature
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(image))
        if signature != "paint2image_bytes":
            request.inputs["mask_bytes"].CopyFrom(tf.make_tensor_proto(mask))
        request.inputs["start_scale"].CopyFrom(tf.make_tensor_proto(1, dtype=tf.int32))
        request.inputs["seed"].CopyFrom(tf.make_tensor_proto(5, dtype=tf.int64))
        served = tf.make_ndarray(stub.Predict(request, timeout=60).outputs["image"])[0]
        difference = np.abs(served.astype(int) - run_locally().astype(int))
        assert difference.max() <= 1, (signature, difference.max())


def test_grpc_predict_matches_in_process_sampling(stub, fitted_model):
    response = stub.Predict(sample_request(seed=11, num_samples=3), timeout=60)
    images = tf.make_ndarray(response.outputs["images"])
    np.testing.assert_array_equal(images, fitted_model.sample(3, seed=11))
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"


def test_grpc_metadata_and_status(server, stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "tiny"
    response = stub.GetModelMetadata(request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert set(signatures.signature_def["serving_default"].inputs) == {
        "seed", "num_samples", "scale_h", "scale_w", "start_scale"}
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = "tiny"
        status = models.GetModelStatus(status_request, timeout=30)
        assert [(s.version, s.state) for s in status.model_version_status] == [
            (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
        status_request.model_spec.name = "nope"
        with pytest.raises(grpc.RpcError) as err:
            models.GetModelStatus(status_request, timeout=30)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("request_kwargs,code,message", [
    ({"model": "nope"}, grpc.StatusCode.NOT_FOUND, "nope"),
    ({"version": 7}, grpc.StatusCode.NOT_FOUND, "Specific(tiny, 7)"),
    ({"signature": "dance"}, grpc.StatusCode.NOT_FOUND, "dance"),
    ({"start_scale": None}, grpc.StatusCode.INVALID_ARGUMENT, "missing input(s) start_scale"),
    ({"start_scale": 3}, grpc.StatusCode.INVALID_ARGUMENT, "start_scale must be < 3"),
    ({"num_samples": 0}, grpc.StatusCode.INVALID_ARGUMENT, "num_samples must be positive"),
    ({"num_samples": 10_000}, grpc.StatusCode.RESOURCE_EXHAUSTED, "request too large"),
    ({"scale_h": float("nan")}, grpc.StatusCode.INVALID_ARGUMENT, "scale_h must be finite"),
    ({"scale_w": float("inf")}, grpc.StatusCode.INVALID_ARGUMENT, "scale_w must be finite"),
    ({"scale_h": -1.0}, grpc.StatusCode.INVALID_ARGUMENT, "scale_h must be positive"),
])
def test_grpc_errors_and_the_server_keeps_serving(stub, fitted_model, request_kwargs, code,
                                                  message):
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(sample_request(**request_kwargs), timeout=60)
    assert err.value.code() == code and message in err.value.details()
    good = tf.make_ndarray(stub.Predict(sample_request(seed=3), timeout=60).outputs["images"])
    np.testing.assert_array_equal(good, fitted_model.sample(2, seed=3))


def test_grpc_wrong_dtype_and_shape(stub):
    request = sample_request()
    request.inputs["seed"].CopyFrom(tf.make_tensor_proto(1.5, dtype=tf.float32))
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(request, timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "int64" in err.value.details()
    request = sample_request()
    request.inputs["num_samples"].CopyFrom(tf.make_tensor_proto([1, 2], dtype=tf.int32))
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(request, timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "shape" in err.value.details()


def test_rest_api(server, fitted_model, edit_png):
    status, body = rest(server, "/v1/models/tiny")
    assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
    assert rest(server, "/v1/models/tiny/versions/1")[0] == 200
    assert rest(server, "/v1/models/tiny/versions/9")[0] == 404
    status, body = rest(server, "/v1/models/tiny/metadata")
    assert status == 200 and "edit_bytes" in body["metadata"]["signature_def"]["signature_def"]
    values = {"seed": 5, "num_samples": 2, "scale_h": 1.0, "scale_w": 1.0, "start_scale": 0}
    expected = fitted_model.sample(2, seed=5)
    status, body = rest(server, "/v1/models/tiny:predict", {"inputs": values})
    assert status == 200
    np.testing.assert_array_equal(np.array(body["outputs"], np.uint8), expected)
    status, body = rest(server, "/v1/models/tiny/versions/1:predict", {"instances": [values]})
    assert status == 200
    np.testing.assert_array_equal(np.array(body["predictions"], np.uint8), expected)
    image, mask = edit_png
    status, body = rest(server, "/v1/models/tiny:predict", {
        "signature_name": "harmonize_bytes",
        "inputs": {"image_bytes": {"b64": base64.b64encode(image).decode()},
                   "mask_bytes": {"b64": base64.b64encode(mask).decode()},
                   "start_scale": 1, "seed": 0}})
    assert status == 200 and np.array(body["outputs"]).shape == (1, 34, 40, 3)


def test_rest_errors(server):
    values = {"seed": 5, "num_samples": 2, "scale_h": 1.0, "scale_w": 1.0, "start_scale": 0}
    cases = [
        ("/v1/models/nope:predict", {"inputs": values}, 404, "nope"),
        ("/v1/models/tiny:predict", {"inputs": values, "signature_name": "x"}, 404, "\"x\""),
        ("/v1/models/tiny:predict", {"inputs": {**values, "seed": 1.5}}, 400, "integers"),
        ("/v1/models/tiny:predict", {"inputs": {k: v for k, v in values.items() if k != "seed"}},
         400, "missing input(s) seed"),
        ("/v1/models/tiny:predict", {"inputs": {**values, "num_samples": 10_000}}, 413,
         "too large"),
        ("/v1/models/tiny:predict", {"inputs": {**values, "num_samples": 2 ** 32 + 1}}, 400,
         "out of range for int32"),
        ("/v1/models/tiny:predict", {"inputs": {**values, "start_scale": 2 ** 32}}, 400,
         "out of range for int32"),
        ("/v1/models/tiny:predict", {"inputs": {**values, "scale_h": float("nan")}}, 400,
         "finite"),
        ("/v1/models/tiny:predict", {"inputs": {**values, "seed": "7"}}, 400, "only numbers"),
        ("/v1/models/tiny:predict", {"signature_name": "paint2image", "inputs": {
            "image": [[[[1, 2, 3]], [[4, 5]]]], "start_scale": 1, "seed": 0}}, 400,
         "rectangular"),
        ("/v1/models/tiny:predict", {"signature_name": "edit_bytes", "inputs": {
            "image_bytes": {"b64": "not base64!"}, "mask_bytes": {"b64": "eA=="},
            "start_scale": 1, "seed": 0}}, 400, "not valid base64"),
        ("/v1/models/tiny/versions/99999999999999999999:predict", {"inputs": values}, 400,
         "version"),
        ("/v1/models/tiny:predict", {"instances": []}, 400, "instances"),
        ("/v1/models/tiny:predict", {"inputs": values, "instances": [values]}, 400, "exactly one"),
        ("/v1/models/tiny:predict", {"signature_name": "edit_bytes", "inputs": {
            "image_bytes": {"b64": "bm90IGFuIGltYWdl"}, "mask_bytes": {"b64": "eA=="},
            "start_scale": 1, "seed": 0}}, 400, "not a PNG or JPEG"),
    ]
    for path, body, code, message in cases:
        status, reply = rest(server, path, body)
        assert status == code and message in reply["error"], (path, reply)
    assert rest(server, "/v1/models/tiny:predict", {"inputs": values})[0] == 200


@pytest.fixture
def edit_png(fitted_model):
    image = to_uint8(fitted_model.reals[-1]).copy()
    image[8:18, 10:22] = [230, 20, 20]
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[8:18, 10:22] = 255
    encoded = []
    for array in (image, mask):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    return encoded


def test_concurrent_clients_all_get_correct_answers(server, fitted_model):
    expected = {seed: fitted_model.sample(1, seed=seed) for seed in range(8)}

    def client_loop(seed):
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for _ in range(10):
                reply = stub.Predict(sample_request(seed=seed, num_samples=1), timeout=60)
                if not np.array_equal(tf.make_ndarray(reply.outputs["images"]), expected[seed]):
                    return False
        return True

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(client_loop, range(8)))


def test_new_version_is_served_without_restart(server, exported, fitted_model, stub):
    shutil.copytree(exported / "tiny" / "1", exported / "tiny" / "2")
    try:
        assert stub.Predict(sample_request(), timeout=60).model_spec.version.value == 2
        assert stub.Predict(sample_request(version=1), timeout=60).model_spec.version.value == 1
    finally:
        shutil.rmtree(exported / "tiny" / "2")


def test_cli_export_and_client(server, fitted_model_dir, fitted_model, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(fitted_model_dir), "--base-path",
                                  str(tmp_path / "m"), "--name", "x"])
    assert result.exit_code == 0 and (tmp_path / "m" / "x" / "1" / "saved_model.pb").exists()
    result = runner.invoke(main, ["client", "sample", "--server", f"127.0.0.1:{server.port}",
                                  "--model", "tiny", "-n", "2", "--seed", "8", "-o",
                                  str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    got = np.stack([np.asarray(Image.open(tmp_path / "s" / f"sample_{i:04d}.png"))
                    for i in range(2)])
    np.testing.assert_array_equal(got, fitted_model.sample(2, seed=8))
    result = runner.invoke(main, ["client", "sample", "--server", f"127.0.0.1:{server.port}",
                                  "--model", "nope", "-o", str(tmp_path / "s")])
    assert result.exit_code == 1 and "NOT_FOUND" in result.output
    assert client.sample(f"127.0.0.1:{server.port}", "tiny", 1, seed=8).shape == (1, 34, 40, 3)


def test_super_resolve_is_served_with_its_exact_size_limit(sr_model, tmp_path):
    export(sr_model, tmp_path, "sr")
    low = to_uint8(sr_model.reals[-1])  # 24x28, x2 -> 48x56 = 2688 output pixels
    for limit, ok in ((2688, True), (2687, False)):
        server = ModelServer(tmp_path / "models.config", port=0, rest_api_port=0,
                             max_pixels=limit).start()
        assert server.rest.runner.addresses[0][0] == "127.0.0.1"  # safe by default
        try:
            status, body = rest(server, "/v1/models/sr:predict", {
                "signature_name": "super_resolve",
                "inputs": {"image": low[None].tolist(), "seed": 0}})
        finally:
            server.stop()
        assert (status == 200) == ok, body
        if ok:
            assert np.array(body["outputs"]).shape == (1, 48, 56, 3)


def _predict_raw(stub, signature, **protos):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.model_spec.signature_name = signature
    for key, proto in protos.items():
        request.inputs[key].CopyFrom(proto)
    return stub.Predict(request, timeout=60)


def _peak_rss_mib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_grpc_tensors_are_checked_before_they_are_decoded(stub, fitted_model):
    """Hostile TensorProtos: a tiny request declaring a huge tensor allocates nothing, and
    a payload that disagrees with its declaration is refused."""
    int32 = lambda v: tf.make_tensor_proto(v, dtype=tf.int32)  # noqa: E731
    huge = tf.make_tensor_proto(7, dtype=tf.uint8)
    for size in (1, 20_000, 20_000, 3):
        huge.tensor_shape.dim.add(size=size)  # declares 1.2e9 values, carries one
    before = _peak_rss_mib()
    with pytest.raises(grpc.RpcError) as err:
        _predict_raw(stub, "paint2image", image=huge, start_scale=int32(1),
                     seed=tf.make_tensor_proto(0, dtype=tf.int64))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _peak_rss_mib() - before < 200  # tf.make_ndarray would have taken 1.2 GB

    cases = []
    short = tf.make_tensor_proto(np.zeros((1, 8, 8, 3), np.uint8))
    short.tensor_content = short.tensor_content[:-1]  # not 8*8*3 bytes
    cases.append(("tensor_content holds 191 bytes", short))
    extra = tf.make_tensor_proto(np.zeros((1, 2, 2, 3), np.uint8))
    extra.ClearField("tensor_content")
    extra.int_val.extend([5] * 13)  # 12 declared
    cases.append(("declares 12 values but carries 13", extra))
    wrapped = tf.make_tensor_proto(np.zeros((1, 2, 2, 3), np.uint8))
    wrapped.ClearField("tensor_content")
    wrapped.int_val.extend([300] * 12)  # does not fit uint8
    cases.append(("out of range for uint8", wrapped))
    negative = tf.make_tensor_proto(np.zeros((1, 2, 2, 3), np.uint8))
    negative.tensor_shape.dim[1].size = -2
    cases.append(("negative dimension", negative))
    for message, image in cases:
        with pytest.raises(grpc.RpcError) as err:
            _predict_raw(stub, "paint2image", image=image, start_scale=int32(1),
                         seed=tf.make_tensor_proto(0, dtype=tf.int64))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, message
        assert message in err.value.details()
    # Over the message limit: grpc itself refuses it.
    big = tf.make_tensor_proto(np.zeros((1, 600, 600, 3), np.uint8))  # 1.08 MB
    with pytest.raises(grpc.RpcError) as err:
        _predict_raw(stub, "paint2image", image=big, start_scale=int32(1),
                     seed=tf.make_tensor_proto(0, dtype=tf.int64))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    good = tf.make_ndarray(stub.Predict(sample_request(seed=3), timeout=60).outputs["images"])
    np.testing.assert_array_equal(good, fitted_model.sample(2, seed=3))


def _raw_http(server, head: bytes, body: bytes = b"") -> bytes:
    import socket
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=30) as connection:
        connection.sendall(head + b"\r\n\r\n" + body)
        return connection.recv(65536)


def test_rest_malformed_http_and_oversized_bodies_are_answered(server):
    predict = b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\n"
    for length in (b"abc", b"-1"):
        reply = _raw_http(server, predict + b"Content-Length: " + length)
        assert reply.split(b" ")[1] == b"400", reply[:80]  # aiohttp's own answer
    status, reply = rest(server, "/v1/models/tiny:predict",
                         {"inputs": {"seed": [0] * MAX_REQUEST_BYTES}})
    assert status == 413 and "limit" in reply["error"]
    # A declared length over the limit is refused at once, before any body arrives.
    reply = _raw_http(server, predict + b"Content-Length: 999999999", b"[" * 1000)
    assert reply.split(b" ")[1] == b"413" and b"limit" in reply
    reply = _raw_http(server, predict + b"Content-Length: 9", b"not json!")
    assert reply.split(b" ")[1] == b"400" and b"not JSON" in reply
    values = {"seed": 5, "num_samples": 1, "scale_h": 1.0, "scale_w": 1.0, "start_scale": 0}
    assert rest(server, "/v1/models/tiny:predict", {"inputs": values})[0] == 200


def test_a_bug_is_answered_internal_and_logged(server, stub, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")
    monkeypatch.setattr(server.core.repository, "get", broken)
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(sample_request(), timeout=60)
    assert err.value.code() == grpc.StatusCode.INTERNAL and "a bug" not in err.value.details()
    status, reply = rest(server, "/v1/models/tiny/metadata")
    assert status == 500 and reply == {"error": "internal error (logged by the server)"}
    assert sum(r.exc_info is not None and "a bug" in str(r.exc_info[1])
               for r in caplog.records) == 2


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (openssl)."""
    import subprocess
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return folder / "cert.pem", folder / "key.pem"


def test_tls_and_bearer_token_on_both_protocols(exported, fitted_model, certificate, tmp_path):
    import ssl
    from singan_tf.serving import Security
    cert, key = certificate
    (tmp_path / "token").write_text("s3cret\n")
    security = Security.from_files(cert, key, tmp_path / "token")
    server = ModelServer(exported / "models.config", port=0, rest_api_port=0,
                         security=security).start()
    try:
        credentials = grpc.ssl_channel_credentials(cert.read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{server.port}", credentials) as channel:
            secure = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for metadata in (None, [("authorization", "Bearer wrong")]):
                with pytest.raises(grpc.RpcError) as err:
                    secure.Predict(sample_request(), timeout=60, metadata=metadata)
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            reply = secure.Predict(sample_request(seed=3), timeout=60,
                                   metadata=[("authorization", "Bearer s3cret")])
            np.testing.assert_array_equal(tf.make_ndarray(reply.outputs["images"]),
                                          fitted_model.sample(2, seed=3))
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:  # plain text
            with pytest.raises(grpc.RpcError):
                prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                    sample_request(), timeout=10, metadata=[("authorization", "Bearer s3cret")])
        context = ssl.create_default_context(cafile=str(cert))
        url = f"https://127.0.0.1:{server.rest_port}/v1/models/tiny"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url, context=context, timeout=30)
        assert err.value.code == 401 and "bearer token" in json.loads(err.value.read())["error"]
        request = urllib.request.Request(url, headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(request, context=context, timeout=30) as reply:
            assert reply.status == 200
        # The CLI client, with the certificate to trust and the token file; then without
        # the token: one error line.
        call = ["client", "sample", "--server", f"127.0.0.1:{server.port}", "--model", "tiny",
                "-n", "2", "--seed", "3", "-o", str(tmp_path / "remote"), "--tls-ca", str(cert)]
        result = CliRunner().invoke(main, call + ["--auth-token-file", str(tmp_path / "token")])
        assert result.exit_code == 0, result.output
        written = [np.asarray(Image.open(tmp_path / "remote" / f"sample_{i:04d}.png"))
                   for i in range(2)]
        np.testing.assert_array_equal(np.stack(written), fitted_model.sample(2, seed=3))
        result = CliRunner().invoke(main, call)
        assert result.exit_code == 1 and "UNAUTHENTICATED" in result.output
    finally:
        server.stop()
    with pytest.raises(SinGANError, match="both a certificate and its key"):
        Security.from_files(cert, None)


def test_the_export_limit_is_checked_by_the_server_before_running(fitted_model, tmp_path):
    """The pixel limit baked into an export (ServedFacts) is checked up front when it is
    lower than the server's: RESOURCE_EXHAUSTED, not an error from inside the graph."""
    export(fitted_model, tmp_path, "small", max_pixels=2000)  # one 34x40 sample: 1360
    server = ModelServer(tmp_path / "models.config", port=0, rest_api_port=0).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.Predict(sample_request(model="small", num_samples=2), timeout=60)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "limit of 2000" in err.value.details()
            reply = stub.Predict(sample_request(model="small", num_samples=1), timeout=60)
            assert tf.make_ndarray(reply.outputs["images"]).shape == (1, 34, 40, 3)
    finally:
        server.stop()
