"""PyramidTrainer, the model directory format and the loaded SinGAN."""
import json
import math
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import pytest

import singan_tf
from singan_tf import ModelDirError, SinGANError
from singan_tf.model_dir import MANIFEST, load_discriminator, scale_dir
from singan_tf.errors import ScaleDivergedError
from singan_tf.health import COLOUR_DRIFT_WARNING, ScaleHealth, colour_distance, colour_drift, psnr
from singan_tf.scale_training import random_path_dataset
from singan_tf.trainer import RETRY_LR_FACTORS, PyramidTrainer

from conftest import TINY, write_image


def test_fit_writes_a_complete_model_directory(fitted_model_dir):
    manifest = json.loads((fitted_model_dir / MANIFEST).read_text())
    assert manifest["format_version"] == 1 and manifest["num_scales"] == 3
    assert [s["index"] for s in manifest["scales"]] == [0, 1, 2]
    assert manifest["scales"][0]["noise_amp"] == 1.0
    for scale in manifest["scales"][1:]:  # 0.1x the RMSE of the scale's input
        assert scale["noise_amp"] == pytest.approx(0.1 * math.sqrt(scale["input_error"]), 1e-4)
    assert manifest["train_seconds"] > 0
    drifts = [scale["colour_drift"] for scale in manifest["scales"]]
    assert drifts[0] is None  # scale 0 has no input to compare
    assert all(math.isfinite(d) and d < COLOUR_DRIFT_WARNING for d in drifts[1:])
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


def test_reconstruction_is_close_to_the_real_image(fitted_model, fitted_model_dir):
    rec = fitted_model.reconstruct().astype(np.float32) / 127.5 - 1
    real = fitted_model.reals[-1]
    error = float(np.mean(np.square(rec - real)))
    # A collapsed fit (issue 11) reconstructs at ~7 dB; this one at ~20 dB, closer to the
    # image than its own mean colour by far, and every scale improved on its input.
    assert psnr(error) > 16.0
    assert error < 0.3 * float(np.mean(np.square(real - real.mean(axis=(0, 1)))))
    scales = json.loads((fitted_model_dir / MANIFEST).read_text())["scales"]
    assert all(s["rec_error"] < s["input_error"] and s["attempts"] == 1 for s in scales)
    assert scales[-1]["rec_error"] == pytest.approx(error, abs=2e-3)  # uint8 rounding


def test_load_gives_the_same_samples_as_the_trained_object(fitted_model, fitted_model_dir):
    again = singan_tf.load(fitted_model_dir)
    np.testing.assert_array_equal(again.sample(2, seed=9), fitted_model.sample(2, seed=9))


def test_invalid_sample_arguments(fitted_model):
    for kwargs, message in [({"num": 0}, "positive"), ({"scale_h": 0}, "scale_h"),
                            ({"scale_w": float("inf")}, "finite positive"),
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


def _edit_manifest(model_dir, **changes):
    manifest = json.loads((model_dir / MANIFEST).read_text())
    (model_dir / MANIFEST).write_text(json.dumps({**manifest, **changes}))


@pytest.mark.parametrize("damage,message", [
    (lambda d: (scale_dir(d, 1) / "generator.keras").write_bytes(b"garbage"), "scale 1 .* corrupt"),
    (lambda d: (scale_dir(d, 2) / "z_opt.npy").unlink(), "missing .*02/z_opt.npy"),
    (lambda d: (d / "reals.npz").unlink(), "missing reals.npz"),
    (lambda d: (d / "reals.npz").write_bytes(b"garbage"), "reals.npz is corrupt"),
    (lambda d: (d / MANIFEST).write_text("{not json"), "singan.json is corrupt"),
    (lambda d: (d / MANIFEST).write_text('{"format": "singan-tf-model", "format_version": 1}'),
     "missing config, sizes, scales, num_scales"),
    (lambda d: _edit_manifest(d, num_scales="3"), "num_scales must be a positive integer"),
    (lambda d: _edit_manifest(d, sizes=[[24, 28], [30, "x"]]), "sizes must be 3 .* pairs"),
    (lambda d: _edit_manifest(d, scales=[{"noise_amp": "loud"}]), "scale 0 has no valid noise"),
    (lambda d: _edit_manifest(d, config={"max_size": -5}), "bad config: .*max_size"),
    (lambda d: _edit_manifest(d, settings=["crop_size"]), "settings must be an object"),
    (lambda d: _edit_manifest(d, config={"max_size": 40, "newer_option": True}),
     r"bad config: .*unknown option\(s\) \['newer_option'\]"),
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


def test_rewriting_a_generator_whose_scale_lost_a_file_says_so_and_changes_nothing(model_copy):
    from singan_tf import model_dir as fmt
    generator = fmt.load_scale(model_copy, 0).generator
    (scale_dir(model_copy, 0) / "z_opt.npy").unlink()
    before = sorted(p.name for p in (model_copy / "scales").iterdir())
    with pytest.raises(ModelDirError, match=r"incomplete: missing .*00.z_opt\.npy"):
        fmt.rewrite_generator(model_copy, 0, generator)
    assert sorted(p.name for p in (model_copy / "scales").iterdir()) == before
    assert sorted(p.name for p in scale_dir(model_copy, 0).iterdir()) == [
        "discriminator.keras", "generator.keras"]


def test_a_finished_scale_survives_a_rewrite_that_fails_or_is_killed(model_copy, monkeypatch):
    """Concurrent stages rewrite finished scales: the old files go aside first and are
    deleted only once the new ones are in, so no instant leaves a scale without files."""
    from singan_tf import atomic, model_dir as fmt
    directory = scale_dir(model_copy, 1)
    expected = singan_tf.load(model_copy).sample(2, seed=3)
    old = fmt.load_scale(model_copy, 1)

    def fail_renaming_the_new_one_in(src, dst, replace=os.replace):
        if Path(src).name.startswith(".01-"):
            raise OSError("disk gone")
        replace(src, dst)
    monkeypatch.setattr(atomic.os, "replace", fail_renaming_the_new_one_in)
    with pytest.raises(OSError, match="disk gone"):
        fmt.save_scale(model_copy, 1, old.generator, old.discriminator, old.z_opt + 1)
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(directory / "z_opt.npy"), old.z_opt)
    assert sorted(p.name for p in directory.parent.iterdir()) == ["00", "01", "02"]

    # A kill between the two renames leaves the old scale aside: loading reads it there,
    # and a resume puts it back.
    os.replace(directory, atomic.replaced_copy(directory))
    np.testing.assert_array_equal(singan_tf.load(model_copy).sample(2, seed=3), expected)
    fmt.remove_partial_scales(model_copy)
    assert sorted(p.name for p in directory.parent.iterdir()) == ["00", "01", "02"]
    np.testing.assert_array_equal(singan_tf.load(model_copy).sample(2, seed=3), expected)

    # A rewrite that succeeds replaces the files and leaves nothing aside.
    fmt.save_scale(model_copy, 1, old.generator, old.discriminator, old.z_opt + 1)
    np.testing.assert_array_equal(np.load(directory / "z_opt.npy"), old.z_opt + 1)
    assert sorted(p.name for p in directory.parent.iterdir()) == ["00", "01", "02"]


def test_output_directory_is_protected(tmp_path, tiny_image):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.txt").write_text("precious")
    with pytest.raises(ModelDirError, match="not empty"):
        singan_tf.fit(tiny_image, busy, TINY, verbose=0)
    with pytest.raises(ModelDirError, match="not a singan-tf model"):
        singan_tf.fit(tiny_image, busy, TINY, verbose=0, overwrite=True)
    (busy / "singan.json").write_text('{"my": "settings"}')  # the name alone proves nothing
    with pytest.raises(ModelDirError, match="refusing to overwrite .* not a singan-tf manifest"):
        singan_tf.fit(tiny_image, busy, TINY, verbose=0, overwrite=True)
    assert (busy / "thesis.txt").read_text() == "precious"
    assert (busy / "singan.json").read_text() == '{"my": "settings"}'


def test_overwrite_deletes_only_what_the_model_owns(model_copy, tiny_image):
    (model_copy / "notes.txt").write_text("mine")
    (model_copy / "scales" / "README").write_text("inside a model folder: the model's")
    (model_copy / "samples").mkdir()
    (model_copy / "samples" / "best.png").write_bytes(b"png")
    before = json.loads((model_copy / MANIFEST).read_text())
    PyramidTrainer(model_copy, TINY.replace(iters_per_scale=10), verbose=0,
                   tensorboard=False).fit(tiny_image, overwrite=True, max_new_scales=1)
    assert (model_copy / "notes.txt").read_text() == "mine"
    assert (model_copy / "samples" / "best.png").read_bytes() == b"png"
    assert not (model_copy / "scales" / "README").exists()
    assert not (model_copy / "logs").exists()  # the old fit's logs went with it
    after = json.loads((model_copy / MANIFEST).read_text())
    assert after["config"]["iters_per_scale"] == 10 != before["config"]["iters_per_scale"]


def test_a_second_writer_fails_at_once(model_copy, tiny_image):
    """While one fit holds the directory, a resume or overwrite of it is refused."""
    from singan_tf import model_dir as fmt
    with fmt.writer_lock(model_copy):
        for kwargs in ({"resume": True}, {"image": tiny_image, "overwrite": True}):
            with pytest.raises(ModelDirError, match=r"being written by another fit \(pid \d+\)"):
                PyramidTrainer(model_copy, TINY, verbose=0, tensorboard=False).fit(**kwargs)
    assert json.loads((model_copy / MANIFEST).read_text())["scales"]  # untouched
    # Released: the next writer gets in (a finished model resumes to "already trained").
    PyramidTrainer(model_copy, TINY, verbose=0, tensorboard=False).fit(resume=True)


def test_bad_image_leaves_nothing_behind(tmp_path):
    small = write_image(tmp_path / "small.png", 16, 16)
    with pytest.raises(singan_tf.ImageError, match="smaller than min_size"):
        singan_tf.fit(small, tmp_path / "out", TINY, verbose=0)
    assert not (tmp_path / "out").exists()


def test_random_path_bank_draws_from_inputs_computed_once(fitted_model):
    model = fitted_model
    real = tf.constant(model.reals[2][None])
    bank = random_path_dataset(real, model.pyramid.coarser(2), 3, seed=4, bank_size=5)
    fresh = random_path_dataset(real, model.pyramid.coarser(2), 3, seed=4)
    assert not bank.options().autotune.enabled  # it made fast's steps up to 1.8x slower
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


class Sabotage(keras.callbacks.Callback):
    """Breaks the generator of the scale being trained in its first `attempts` attempts."""

    def __init__(self, trainer_ref, attempts=1, when="end", value=5.0):
        super().__init__()
        self.trainer_ref, self.attempts, self.when, self.value = trainer_ref, attempts, when, value
        self.executions = {}  # attempt -> executions of the train step seen
        self.renormalizes = {}  # attempt -> did its scale renormalize G's BatchNorm

    def _break(self):
        if self.trainer_ref[0].current_attempt < self.attempts:
            # A large tail bias saturates tanh: a finite, flat-colour collapse (as on Zen 4).
            self.model.generator.tail.bias.assign(tf.fill([3], self.value))

    def on_train_begin(self, logs=None):
        self.renormalizes[self.trainer_ref[0].current_attempt] = self.model.renormalize_windows
        if self.when == "begin":
            self._break()

    def on_train_batch_end(self, batch, logs=None):
        attempt = self.trainer_ref[0].current_attempt
        self.executions[attempt] = self.executions.get(attempt, 0) + 1

    def on_train_end(self, logs=None):
        if self.when == "end":
            self._break()


@pytest.fixture
def last_scale_untrained(model_copy):
    """The tiny model with its finest scale not trained yet: resuming trains only that."""
    manifest = json.loads((model_copy / MANIFEST).read_text())
    manifest["scales"].pop()
    (model_copy / MANIFEST).write_text(json.dumps(manifest))
    shutil.rmtree(scale_dir(model_copy, 2))
    return model_copy


def resume_with_sabotage(model_dir, **sabotage):
    holder = []
    callback = Sabotage(holder, **sabotage)
    trainer = PyramidTrainer(model_dir, verbose=1, tensorboard=False, callbacks=[callback])
    holder.append(trainer)
    return trainer, callback


def test_coarse_scales_draw_their_own_noise_amplitude(last_scale_untrained):
    manifest = json.loads((last_scale_untrained / MANIFEST).read_text())
    manifest["config"].update(coarse_scales=3, coarse_noise_amp_init=0.3)
    (last_scale_untrained / MANIFEST).write_text(json.dumps(manifest))
    PyramidTrainer(last_scale_untrained, verbose=0, tensorboard=False).fit(resume=True)
    scale = json.loads((last_scale_untrained / MANIFEST).read_text())["scales"][2]
    assert scale["noise_amp"] == pytest.approx(0.3 * math.sqrt(scale["input_error"]), 1e-4)


def test_windows_can_renormalize_from_the_first_attempt(last_scale_untrained):
    manifest = json.loads((last_scale_untrained / MANIFEST).read_text())
    manifest["config"].update(renormalize_windows=True)
    (last_scale_untrained / MANIFEST).write_text(json.dumps(manifest))
    trainer, callback = resume_with_sabotage(last_scale_untrained, attempts=0)
    trainer.fit(resume=True)
    assert callback.renormalizes == {0: True}


def test_a_diverged_scale_is_detected_and_retrained(last_scale_untrained, capsys):
    trainer, callback = resume_with_sabotage(last_scale_untrained, attempts=1)
    model = trainer.fit(resume=True)
    out = capsys.readouterr().out
    assert "warning: scale 2 diverged" in out and "attempt 2 of 3" in out
    assert callback.renormalizes == {0: False, 1: True}  # the retry renormalizes
    manifest = json.loads((last_scale_untrained / MANIFEST).read_text())
    assert [s["attempts"] for s in manifest["scales"]] == [1, 1, 2]
    assert manifest["scales"][2]["rec_error"] < manifest["scales"][2]["input_error"]
    assert "failed_attempts" not in manifest
    real = model.reals[-1]
    rec = model.reconstruct().astype(np.float32) / 127.5 - 1
    assert psnr(float(np.mean(np.square(rec - real)))) > 16.0  # the healthy retrain was kept


def test_a_fit_stopped_during_a_retry_resumes_at_the_next_attempt(last_scale_untrained,
                                                                   capsys):
    """Training is deterministic on a CPU: repeating the recorded failure would waste it."""
    manifest = json.loads((last_scale_untrained / MANIFEST).read_text())
    manifest["failed_attempts"] = {"2": [{"seed": 1, "lr_factor": RETRY_LR_FACTORS[0]}]}
    (last_scale_untrained / MANIFEST).write_text(json.dumps(manifest))
    trainer, callback = resume_with_sabotage(last_scale_untrained, attempts=0)
    trainer.fit(resume=True)
    assert list(callback.renormalizes) == [1]  # only the second attempt ran
    assert "attempt 2" in capsys.readouterr().out
    manifest = json.loads((last_scale_untrained / MANIFEST).read_text())
    assert manifest["scales"][2]["attempts"] == 2 and "failed_attempts" not in manifest


def test_a_scale_that_turns_the_colours_is_reported(last_scale_untrained, capsys,
                                                     monkeypatch):
    """No tiny fit turns its colours, so the threshold is lowered below any drift."""
    monkeypatch.setattr("singan_tf.health.COLOUR_DRIFT_WARNING", -math.inf)
    PyramidTrainer(last_scale_untrained, verbose=1, tensorboard=False).fit(resume=True)
    assert ("warning: scale 2 moved the samples' colours away from the photo's"
            in capsys.readouterr().out)


def test_colour_drift_sees_a_cast_but_not_brightness_or_layout():
    rng = np.random.default_rng(0)
    real = np.clip(rng.normal(0, 0.4, (32, 32, 3)), -1, 1)
    teal = real + np.array([-0.06, 0.06, 0.06])  # red 8 levels of 255 down, green and blue up
    assert colour_distance(real, real) == 0
    assert colour_distance(np.clip(real + 0.1, -1, 1), real) < 1.5  # brighter, same colours
    assert colour_distance(real[::-1, ::-1], real) == 0  # the same colours elsewhere
    assert colour_drift(teal, real, real) > COLOUR_DRIFT_WARNING
    assert colour_drift(real, teal, real) < 0  # a scale that removes a cast


def test_a_scale_that_keeps_diverging_stops_the_fit_and_keeps_finished_scales(
        last_scale_untrained):
    model_dir = last_scale_untrained
    trainer, callback = resume_with_sabotage(model_dir, attempts=99, when="begin",
                                             value=float("nan"))
    with pytest.raises(ScaleDivergedError, match=r"scale 2 diverged in all 3 attempts.*--resume"):
        trainer.fit(resume=True)
    # NaN losses end each attempt after its first execution (10 steps), not all 3.
    assert callback.executions == {0: 1, 1: 1, 2: 1}
    manifest = json.loads((model_dir / MANIFEST).read_text())
    assert len(manifest["scales"]) == 2 and not scale_dir(model_dir, 2).exists()
    failed = manifest["failed_attempts"]["2"]
    assert [a["lr_factor"] for a in failed] == list(RETRY_LR_FACTORS)
    assert len({a["seed"] for a in failed}) == 3 and failed[0]["rec_error"] is None
    with pytest.raises(SinGANError, match="incomplete"):
        singan_tf.load(model_dir)
    model = PyramidTrainer(model_dir, verbose=0).fit(resume=True)  # no sabotage now
    assert model.num_scales == 3
    assert "failed_attempts" not in json.loads((model_dir / MANIFEST).read_text())


@pytest.mark.parametrize("windowed", [False, True])
def test_health_check_thresholds(windowed):
    real = np.linspace(-1, 1, 16 * 16 * 3).reshape(16, 16, 3)
    blurred_input = real * 0.9
    assert ScaleHealth.measure(real, real * 0.95, blurred_input, 1, 300, windowed).healthy
    assert not ScaleHealth.measure(real, np.ones_like(real), blurred_input, 1, 300,
                                   windowed).healthy
    assert not ScaleHealth.measure(real, real * np.nan, blurred_input, 1, 300, windowed).healthy
    # Scale 0 is given zeros; its baseline is the image's mean colour.
    assert ScaleHealth.measure(real, real * 0.5, np.zeros_like(real), 0, 300, windowed).healthy
    assert not ScaleHealth.measure(real, -real, np.zeros_like(real), 0, 300, windowed).healthy


def test_health_check_tells_a_collapse_from_a_short_fit_or_a_whole_image_trade():
    """The rocket's collapsed finest (windowed) scale: MSE 0.0133 (24.8 dB) from an input at
    0.0051; LSUN 1's healthy whole-image scale 1: MSE 0.0227 (22.5 dB) from 0.0095."""
    real = np.zeros((16, 16, 3))
    given, reconstruction = real + np.sqrt(0.0051), real + np.sqrt(0.0133)
    assert not ScaleHealth.measure(real, reconstruction, given, 7, 300, True).healthy
    assert ScaleHealth.measure(real, reconstruction, given, 7, 30, True).healthy  # under-trained
    assert ScaleHealth.measure(real, real + np.sqrt(0.0060), given, 7, 300, True).healthy
    # An input close to perfect: rounding noise around it is no failure.
    assert ScaleHealth.measure(real, real + np.sqrt(1.5e-3), real + 1e-3, 7, 300, True).healthy
    # A whole-image scale trades some reconstruction for realism; only ~16 dB fails it.
    given, reconstruction = real + np.sqrt(0.0095), real + np.sqrt(0.0227)
    assert ScaleHealth.measure(real, reconstruction, given, 1, 2000, False).healthy
    assert not ScaleHealth.measure(real, reconstruction, given, 1, 2000, True).healthy
    assert not ScaleHealth.measure(real, real + np.sqrt(0.25), given, 1, 2000, False).healthy


def test_an_os_error_in_the_scale_process_is_reported_as_itself(last_scale_untrained):
    (last_scale_untrained / "previews" / "scale_02.png").unlink()
    (last_scale_untrained / "previews" / "scale_02.png").mkdir()  # a path in the way
    trainer = PyramidTrainer(last_scale_untrained, verbose=0, tensorboard=False,
                             process_per_scale=True)
    with pytest.raises(SinGANError, match=r"training the next scale failed: .*scale_02\.png"):
        trainer.fit(resume=True)


def test_scale_0_can_reconstruct_from_the_real_image(tmp_path, tiny_image):
    """ConSinGAN's scale 0: the coarsest real image is its reconstruction input, noise of
    three channels its random input; the model samples, reloads and reconstructs."""
    cfg = TINY.replace(max_size=32, iters_per_scale=60, redraw_coarsest_z_opt=False,
                       real_coarsest_z_opt=True)
    model = singan_tf.fit(tiny_image, tmp_path / "m", cfg, seed=3, verbose=0,
                          tensorboard=False)
    z_opt = model.pyramid.scales[0].z_opt
    np.testing.assert_array_equal(z_opt, model.reals[0][None])
    assert model.pyramid.noise_channels(0) == 3
    # G_0 and D_0 without BatchNorm (see SinGANConfig.generator_normalized), G_1 and D_1 with
    assert [s.generator.batch_norm for s in model.pyramid.scales[:2]] == [False, True]
    critics = [load_discriminator(tmp_path / "m", n) for n in range(2)]
    assert [critic.batch_norm for critic in critics] == [False, True]
    scale_0 = json.loads((tmp_path / "m" / MANIFEST).read_text())["scales"][0]
    assert scale_0["rec_error"] < 0.2 * scale_0["input_error"]  # 0.008 against 0.217
    images = model.sample(2, seed=4)
    assert images.shape == (2, *model.sizes[-1], 3)
    assert not np.array_equal(images[0], images[1])
    np.testing.assert_array_equal(singan_tf.load(tmp_path / "m").sample(2, seed=4), images)


def test_coarse_scales_can_train_together_with_the_ones_below(tmp_path, tiny_image):
    """coarse_joint_stages=2: the next scales train G_0 along (rewriting its generator),
    and the model that loads from disk is the one training left in memory."""
    cfg = TINY.replace(iters_per_scale=60, coarse_scales=3, coarse_joint_stages=2)
    trainer = PyramidTrainer(tmp_path / "m", cfg, seed=2, verbose=0, tensorboard=False)
    assert trainer.fit(tiny_image, max_new_scales=1) is None  # scale 0 alone

    def g_0():  # the conv kernels of the saved G_0 (its BatchNorm statistics aside)
        generator = keras.saving.load_model(scale_dir(tmp_path / "m", 0) / "generator.keras")
        return [layer.kernel.numpy() for layer in [*generator.blocks, generator.tail]
                if isinstance(layer, keras.layers.Conv2D)]

    alone = g_0()
    d_0_file = scale_dir(tmp_path / "m", 0) / "discriminator.keras"
    d_0 = d_0_file.read_bytes()
    model = PyramidTrainer(tmp_path / "m", verbose=0, tensorboard=False).fit(resume=True)
    assert max(float(np.abs(a - b).max()) for a, b in zip(alone, g_0())) > 0
    assert d_0_file.read_bytes() == d_0  # G_0 rewritten, its critic's file kept as it was
    np.testing.assert_array_equal(singan_tf.load(tmp_path / "m").sample(2, seed=3),
                                  model.sample(2, seed=3))
    scales = json.loads((tmp_path / "m" / MANIFEST).read_text())["scales"]
    assert [s["index"] for s in scales] == [0, 1, 2]
    assert all(s["rec_error"] < s["input_error"] for s in scales)


@pytest.mark.parametrize("deep_critic, critic_depths", [(True, [5, 7, 5]), (False, [5, 5, 5])])
def test_the_coarse_scales_can_have_deeper_networks(tmp_path, tiny_image, deep_critic,
                                                    critic_depths):
    """coarse_num_layers: the coarse scales from shallow_coarse_scales on have G of that
    many convs, and D too unless coarse_deep_critic=false; a scale whose depth differs from
    the one below starts from fresh networks (it cannot inherit other shapes). The scales
    above 0 reconstruct better than their inputs, and a fit is deterministic under its
    seed (checked where both G and D change depth). (Scale 0, 60 iterations at the default
    depth, ends about at its zeros' error: 0.222 against 0.219 on an Intel Xeon with AMX,
    just under it on a Zen 4.)"""
    cfg = TINY.replace(iters_per_scale=60, coarse_scales=2, shallow_coarse_scales=1,
                       coarse_num_layers=7, coarse_deep_critic=deep_critic)
    model = singan_tf.fit(tiny_image, tmp_path / "m", cfg, seed=3, verbose=0,
                          tensorboard=False)
    assert [s.generator.num_layers for s in model.pyramid.scales] == [5, 7, 5]
    critics = [load_discriminator(tmp_path / "m", n) for n in range(3)]
    assert [critic.num_layers for critic in critics] == critic_depths
    assert not cfg.inherits_weights(1) and not cfg.inherits_weights(2)
    scales = json.loads((tmp_path / "m" / MANIFEST).read_text())["scales"]
    assert all(s["rec_error"] < s["input_error"] for s in scales[1:])
    images = model.sample(2, seed=4)
    assert images.shape == (2, *model.sizes[-1], 3)
    if deep_critic:  # the case with every depth change; one refit keeps CI short
        again = singan_tf.fit(tiny_image, tmp_path / "again", cfg, seed=3, verbose=0,
                              tensorboard=False)
        np.testing.assert_array_equal(again.sample(2, seed=4), images)


def test_deeper_coarse_networks_leave_the_layout_scales_shallow_and_need_room():
    cfg = TINY.replace(coarse_scales=4, coarse_num_layers=9)
    assert [cfg.layers(n) for n in range(5)] == [5, 5, 9, 9, 5]
    assert [cfg.inherits_weights(n) for n in range(1, 5)] == [True, False, True, False]
    with pytest.raises(SinGANError, match="min_size must be at least 19"):
        TINY.replace(min_size=17, coarse_scales=3, coarse_num_layers=9)
    TINY.replace(min_size=17, coarse_scales=2, coarse_num_layers=9)  # no deep scale
    with pytest.raises(SinGANError, match="crop_size must be 0 .off. or at least 15"):
        TINY.replace(coarse_scales=3, shallow_coarse_scales=1, coarse_num_layers=7, crop_size=12)
    with pytest.raises(SinGANError, match="min_size must be at least 11"):
        TINY.replace(min_size=9, coarse_scales=4, shallow_coarse_scales=0, coarse_num_layers=3)
    with pytest.raises(SinGANError, match="at least 3"):
        TINY.replace(coarse_num_layers=2)
    with pytest.raises(SinGANError, match="non-negative integer"):
        TINY.replace(coarse_num_layers="7")
    shallow_critic = TINY.replace(coarse_scales=4, coarse_num_layers=9, coarse_deep_critic=False)
    assert [shallow_critic.critic_layers(n) for n in range(5)] == [5] * 5
    TINY.replace(min_size=17, coarse_scales=3, coarse_num_layers=9, coarse_deep_critic=False)
    with pytest.raises(SinGANError, match="true or false"):
        TINY.replace(coarse_deep_critic="false")
