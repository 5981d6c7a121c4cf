"""PyramidTrainer, the model directory format and the loaded SinGAN."""
import json

import numpy as np
import tensorflow as tf
import pytest

import singan_tf
from singan_tf import ModelDirError, SinGANError
from singan_tf.model_dir import MANIFEST, scale_dir
from singan_tf.trainer import random_path_dataset

from conftest import TINY, write_image


def test_fit_writes_a_complete_model_directory(fitted_model_dir):
    manifest = json.loads((fitted_model_dir / MANIFEST).read_text())
    assert manifest["format_version"] == 1 and manifest["num_scales"] == 3
    assert [s["index"] for s in manifest["scales"]] == [0, 1, 2]
    assert manifest["scales"][0]["noise_amp"] == 1.0
    assert all(0 < s["noise_amp"] < 1 for s in manifest["scales"][1:])
    assert manifest["train_seconds"] > 0
    for n in range(3):
        assert (scale_dir(fitted_model_dir, n) / "generator.keras").is_file()
        assert (fitted_model_dir / "previews" / f"scale_{n:02d}.png").is_file()
        assert any((fitted_model_dir / "logs" / f"scale_{n:02d}").rglob("*tfevents*"))


def test_samples_shapes_seeds_and_sizes(fitted_model):
    model = fitted_model
    h, w = model.sizes[-1]
    images = model.sample(3, seed=5)
    assert images.shape == (3, h, w, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, model.sample(3, seed=5))
    assert not np.array_equal(images, model.sample(3, seed=6))
    assert not np.array_equal(images[0], images[1])  # samples of one call differ
    for scale_h, scale_w in [(1.5, 1.0), (0.75, 2.0)]:
        for start in range(model.num_scales):
            out = model.sample(2, scale_h, scale_w, start_scale=start, seed=1)
            assert out.shape == (2, round(h * scale_h), round(w * scale_w), 3)


def test_start_scale_keeps_the_layout(fitted_model):
    model = fitted_model
    real = model.reals[-1]
    def error(images):
        return np.abs(images.astype(np.float32) / 127.5 - 1 - real).mean()
    free = error(model.sample(4, start_scale=0, seed=2))
    anchored = error(model.sample(4, start_scale=model.num_scales - 1, seed=2))
    assert anchored < free


def test_reconstruction_is_close_to_the_real_image(fitted_model):
    rec = fitted_model.reconstruct().astype(np.float32) / 127.5 - 1
    assert np.abs(rec - fitted_model.reals[-1]).mean() < 0.25


def test_load_gives_the_same_samples_as_the_trained_object(fitted_model, fitted_model_dir):
    again = singan_tf.load(fitted_model_dir)
    np.testing.assert_array_equal(again.sample(2, seed=9), fitted_model.sample(2, seed=9))


def test_invalid_sample_arguments(fitted_model):
    for kwargs, message in [({"num": 0}, "positive"), ({"scale_h": 0}, "scale_h"),
                            ({"scale_w": -1.0}, "scale_w"), ({"start_scale": 3}, "0..2"),
                            ({"start_scale": -1}, "0..2"), ({"scale_h": 0.001}, "nothing")]:
        with pytest.raises(SinGANError, match=message):
            fitted_model.sample(**{"num": 1, **kwargs})


def test_missing_model_directories(tmp_path):
    with pytest.raises(ModelDirError, match="not found"):
        singan_tf.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelDirError, match="missing singan.json"):
        singan_tf.load(tmp_path / "empty")


@pytest.mark.parametrize("damage,message", [
    (lambda d: (scale_dir(d, 1) / "generator.keras").write_bytes(b"garbage"), "scale 1 .* corrupt"),
    (lambda d: (scale_dir(d, 2) / "z_opt.npy").unlink(), "missing .*02/z_opt.npy"),
    (lambda d: (d / "reals.npz").unlink(), "missing reals.npz"),
    (lambda d: (d / "reals.npz").write_bytes(b"garbage"), "reals.npz is corrupt"),
    (lambda d: (d / MANIFEST).write_text("{not json"), "singan.json is corrupt"),
    (lambda d: (d / MANIFEST).write_text('{"format": "singan-tf-model", "format_version": 1}'),
     "missing config, sizes, scales, num_scales"),
])
def test_corrupt_model_directories_name_the_problem(model_copy, damage, message):
    damage(model_copy)
    with pytest.raises(ModelDirError, match=message):
        singan_tf.load(model_copy)


def test_incomplete_fit_is_reported_with_how_to_resume(model_copy):
    manifest = json.loads((model_copy / MANIFEST).read_text())
    manifest["scales"] = manifest["scales"][:2]
    (model_copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SinGANError, match="2 of 3 scales.*--resume"):
        singan_tf.load(model_copy)


def test_output_directory_is_protected(tmp_path, tiny_image):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.txt").write_text("precious")
    with pytest.raises(ModelDirError, match="not empty"):
        singan_tf.fit(tiny_image, busy, TINY, verbose=0)
    with pytest.raises(ModelDirError, match="not a singan-tf model"):
        singan_tf.fit(tiny_image, busy, TINY, verbose=0, overwrite=True)
    assert (busy / "thesis.txt").read_text() == "precious"


def test_bad_image_leaves_nothing_behind(tmp_path):
    small = write_image(tmp_path / "small.png", 16, 16)
    with pytest.raises(singan_tf.ImageError, match="smaller than min_size"):
        singan_tf.fit(small, tmp_path / "out", TINY, verbose=0)
    assert not (tmp_path / "out").exists()


def test_random_path_bank_draws_from_inputs_computed_once(fitted_model):
    model = fitted_model
    real = tf.constant(model.reals[2][None])
    bank = random_path_dataset(real, model.sampler, 2, 3, seed=4, bank_size=5)
    fresh = random_path_dataset(real, model.sampler, 2, 3, seed=4)
    drawn = [prevs.numpy() for _, prevs in bank.take(8)]
    assert all(p.shape == (3, *model.sizes[2], 3) for p in drawn)
    distinct = {p.tobytes() for prevs in drawn for p in prevs}
    assert 1 < len(distinct) <= 5  # varied, but only the bank's five inputs
    again = [prevs.numpy() for _, prevs in bank.take(8)]
    np.testing.assert_array_equal(np.stack(drawn), np.stack(again))
    fresh_inputs = {p.tobytes() for _, prevs in fresh.take(8) for p in prevs.numpy()}
    assert len(fresh_inputs) == 24


def test_process_per_scale_trains_the_same_model(tmp_path, tiny_image, fitted_model):
    """One spawned process per scale (bounded memory) gives the in-process fit's samples."""
    model = singan_tf.PyramidTrainer(tmp_path / "m", TINY, seed=1, verbose=0,
                                     process_per_scale=True).fit(tiny_image)
    assert model.num_scales == 3
    np.testing.assert_array_equal(model.sample(2, seed=3), fitted_model.sample(2, seed=3))


def test_process_per_scale_reports_errors_and_refuses_callbacks(tmp_path, tiny_image):
    with pytest.raises(SinGANError, match="callbacks"):
        singan_tf.PyramidTrainer(tmp_path / "m", TINY, callbacks=[object()],
                                 process_per_scale=True)
    small = write_image(tmp_path / "small.png", 16, 16)
    trainer = singan_tf.PyramidTrainer(tmp_path / "out", TINY, verbose=0, process_per_scale=True)
    with pytest.raises(singan_tf.ImageError, match="smaller than min_size"):
        trainer.fit(small)
    assert not (tmp_path / "out").exists()
