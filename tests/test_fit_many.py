"""fit-many on a local Ray with 2 CPUs: tiny images, tiny fits (marked slow: Ray and a
TensorFlow import per worker and per scale process)."""
import json

import grpc
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from tensorflow_serving.apis import prediction_service_pb2_grpc

import singan_tf
from singan_tf.cli import main
from singan_tf.fit_many import fit_many, model_names
from singan_tf.serving import ModelServer

from conftest import TINY, write_image

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_model_names_are_unique():
    assert model_names(["a/x.png", "b/x.jpg", "y.png", "c/x.png"]) == ["x", "x-2", "y", "x-3"]


def test_fit_many_isolates_failures_skips_finished_and_exports(local_ray, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    write_image(images / "a.png", 40, 48)
    write_image(images / "b.png", 44, 40, seed=3)
    (images / "c.png").write_text("not an image")
    models = tmp_path / "models"

    results = fit_many([images], models, TINY, preset="custom", cpus_per_fit=1)
    assert [(r["status"], r["scales"]) for r in results] == [("done", 3), ("done", 3),
                                                              ("failed", 0)]
    assert "not an image" in results[2]["error"]
    assert not (models / "c").exists()  # a failed image leaves no directory behind
    assert json.loads((models / "fit-many.json").read_text()) == results
    for name in ("a", "b"):
        assert "scale 3/3" in (models / name / "fit.log").read_text()
        assert singan_tf.load(models / name).sample(1, seed=0).shape[0] == 1

    # The CLI rerun skips both finished models, fails c again (exit 1) and exports a and b.
    result = CliRunner().invoke(main, ["fit-many", str(images), "-o", str(models),
                                       "--cpus-per-fit", "1", "--export",
                                       str(tmp_path / "served")])
    assert result.exit_code == 1 and "1 of 3 image(s) failed" in result.output
    statuses = [r["status"] for r in json.loads((models / "fit-many.json").read_text())]
    assert statuses == ["skipped", "skipped", "failed"]
    server = ModelServer(tmp_path / "served" / "models.config", port=0, rest_api_port=0).start()
    try:
        from test_serving import sample_request
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for name in ("a", "b"):
                reply = stub.Predict(sample_request(model=name, num_samples=1), timeout=60)
                images_out = tf.make_ndarray(reply.outputs["images"])
                expected = singan_tf.load(models / name).sample(1, seed=1)
                np.testing.assert_array_equal(images_out, expected)
    finally:
        server.stop()


def test_without_ray_fit_many_says_how_to_install_it(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "ray", None)
    write_image(tmp_path / "a.png")
    result = CliRunner().invoke(main, ["fit-many", str(tmp_path / "a.png"), "-o",
                                       str(tmp_path / "m")])
    assert result.exit_code == 1 and 'pip install "singan-tf[ray]"' in result.output
    assert "Traceback" not in result.output


def test_a_killed_worker_is_retried_and_resumes(local_ray, tmp_path):
    """SIGKILL the Ray worker running a fit (the pid in the model's lock file) once its
    first scale is done: Ray retries the task, which resumes instead of starting over."""
    import os
    import signal
    import threading
    import time
    write_image(tmp_path / "a.png", 40, 48)
    model = tmp_path / "models" / "a"
    results = []
    run = threading.Thread(target=lambda: results.extend(
        fit_many([tmp_path / "a.png"], tmp_path / "models", TINY, preset="custom",
                 cpus_per_fit=1, max_retries=2, report=lambda line: None)))
    run.start()
    deadline = time.time() + 300
    while time.time() < deadline:
        manifest = model / "singan.json"
        if manifest.exists() and len(json.loads(manifest.read_text())["scales"]) >= 1:
            break
        time.sleep(0.1)
    holder = (model / ".singan.lock").read_text().split()
    assert holder[0] == "pid"
    os.kill(int(holder[1]), signal.SIGKILL)
    run.join(600)
    assert [(r["status"], r["scales"]) for r in results] == [("done", 3)]
    log = (model / "fit.log").read_text()
    assert "resuming at scale" in log  # the retry went on from the finished scales
