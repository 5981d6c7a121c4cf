"""The ConSinGAN family: its stage sizes, growing generator, stage GAN, trainer, loading,
export and CLI, on tiny images (3 stages of 16-40 px, 16 channels, a few dozen
iterations)."""
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import singan_tf
from singan_tf import machine
from singan_tf import model_dir as fmt
from singan_tf.cli import main
from singan_tf.config import parse_overrides
from singan_tf.consingan.config import CONSINGAN, ConSinGANConfig
from singan_tf.consingan.models import (ConSinGANStage, GrowingGenerator, copy_of, critic,
                                        upsample)
from singan_tf.consingan.stage_training import first_generator, stage_dataset
from singan_tf.consingan.trainer import LAYOUT_TRIES, ConSinGANTrainer
from singan_tf.errors import SinGANError
from singan_tf.health import (FIRST_STAGE_LAYOUT_WARNING, LAYOUT_WARNING, STAGE_TOLERANCE,
                              ScaleHealth, layout_error, layout_lost)
from singan_tf.models import gradient_penalty, windowed_gradient_penalty
from singan_tf.export import export
from singan_tf.pyramid import consingan_spec
from singan_tf.tasks import animate, paint2image

from conftest import make_image

# A few dozen iterations learn no layout, so stage 1 would often call for a relayout: that
# has its own test.
TINY = ConSinGANConfig(max_size=40, min_size=16, stages=3, channels=16, iters_per_stage=40,
                       relayout_critic_layers=0)


@pytest.fixture(scope="session")
def consingan_dir(tmp_path_factory, tiny_image):
    model_dir = tmp_path_factory.mktemp("consingan") / "tiny"
    singan_tf.fit(tiny_image, model_dir, TINY, seed=2, verbose=0, tensorboard=False)
    return model_dir


@pytest.fixture(scope="session")
def consingan_model(consingan_dir):
    return singan_tf.load(consingan_dir)


def test_stage_sizes_are_consingans():
    """ConSinGAN's spacing on a 188x250 image: denser at the fine end than geometric."""
    spec = consingan_spec(188, 250, 25, 250, 6)
    assert spec.sizes == ((25, 34), (32, 42), (42, 56), (63, 84), (126, 167), (188, 250))
    assert CONSINGAN.pyramid_spec(376, 500).sizes == spec.sizes  # shrunk to 250 first
    assert consingan_spec(30, 40, 16, 40, 2).sizes == ((16, 22), (30, 40))


def test_config_checks_its_values():
    with pytest.raises(SinGANError, match="critic's receptive field"):
        ConSinGANConfig(min_size=10)
    with pytest.raises(SinGANError, match="stages"):
        ConSinGANConfig(stages=1)
    with pytest.raises(SinGANError, match="unknown option"):
        CONSINGAN.replace(crop_size=64)
    with pytest.raises(SinGANError, match="dtype_policy must be one of"):
        CONSINGAN.replace(dtype_policy="float16")
    with pytest.raises(SinGANError, match="align_corners must be true or false"):
        CONSINGAN.replace(align_corners="yes")
    with pytest.raises(SinGANError, match="first_critic_layers must be a non-negative"):
        CONSINGAN.replace(first_critic_layers=-1)
    with pytest.raises(SinGANError, match="relayout_critic_layers must be a non-negative"):
        CONSINGAN.replace(relayout_critic_layers=-1)
    with pytest.raises(SinGANError, match=r"at least 19 \(.*, with first_critic_layers=9\)"):
        CONSINGAN.replace(min_size=16, first_critic_layers=9)
    assert [CONSINGAN.replace(first_critic_layers=9).critic_layers_at(k) for k in (0, 1)] == \
        [9, 5]
    # a relayout's stage-0 critic: as set, as deep as min_size takes, none where no deeper
    assert CONSINGAN.relayout_layers == 9
    assert TINY.replace(relayout_critic_layers=9).relayout_layers == 7  # 16 px: 15 px field
    assert CONSINGAN.replace(first_critic_layers=7).relayout_layers == 0
    assert CONSINGAN.replace(relayout_critic_layers=5).relayout_layers == 0
    # as --set gives them: JSON values, and bare strings
    assert parse_overrides(["dtype_policy=mixed_bfloat16", "lr_scale=0.2"]) == \
        {"dtype_policy": "mixed_bfloat16", "lr_scale": 0.2}
    assert CONSINGAN.iterations(4) == 2000 and CONSINGAN.iterations(5) == 500
    # the preset resizes as ConSinGAN; a manifest written before the option keeps TF's
    assert CONSINGAN.align_corners and not ConSinGANConfig.from_dict({}).align_corners
    assert list(CONSINGAN.trained_stages(4)) == [2, 3, 4]
    assert CONSINGAN.trains_head(2) and not CONSINGAN.trains_head(3)


def test_auto_dtype_policy_follows_the_machine(monkeypatch):
    auto = CONSINGAN.replace(dtype_policy="auto")
    monkeypatch.setattr(machine, "isa_flags", lambda: ["avx2", "avx512f", "avx512_bf16"])
    assert machine.fast_bfloat16() == (not tf.config.list_physical_devices("GPU"))
    monkeypatch.setattr(machine, "fast_bfloat16", lambda: True)
    assert auto.compute_policy() == "mixed_bfloat16"
    monkeypatch.setattr(machine, "fast_bfloat16", lambda: False)
    assert auto.compute_policy() == "float32"
    assert auto.replace(dtype_policy="mixed_bfloat16").compute_policy() == "mixed_bfloat16"
    monkeypatch.setattr(machine, "isa_flags", lambda: ["avx2", "fma"])
    assert not machine.fast_bfloat16()
    monkeypatch.setattr(machine, "isa_flags", lambda: ["avx512f", "avx512_bf16", "amx_bf16"])
    assert not machine.fast_bfloat16()


def random_noises(generator, sizes, batch=2, seed=0):
    return [tf.random.stateless_normal(generator.noise_shape(k, size, batch), [seed, k])
            for k, size in enumerate(sizes)]


def test_growing_generator_draws_each_stages_size_and_saves(tmp_path):
    generator = GrowingGenerator(1, channels=8).grown().grown()
    sizes = [(16, 22), (22, 30), (30, 40)]
    out = generator(random_noises(generator, sizes))
    assert out.shape == (2, 30, 40, 3)
    assert float(tf.reduce_max(tf.abs(out))) <= 1.0
    wider = generator(random_noises(generator, [(16, 33), (22, 45), (30, 60)]))
    assert wider.shape == (2, 30, 60, 3)
    # a new stage starts as a copy of the last one
    for new, old in zip(generator.bodies[2].get_weights(), generator.bodies[1].get_weights()):
        np.testing.assert_array_equal(new, old)
    generator.save(tmp_path / "g.keras")
    loaded = keras.saving.load_model(tmp_path / "g.keras")
    noises = random_noises(generator, sizes, seed=5)
    np.testing.assert_allclose(loaded(noises), generator(noises), atol=1e-6)


def test_mixed_bfloat16_copies_compute_in_bfloat16_and_answer_in_float32():
    generator = GrowingGenerator(1, channels=8).grown()
    mixed = copy_of(generator, "mixed_bfloat16")
    assert mixed.bodies[1].layers[0].compute_dtype == "bfloat16"
    assert mixed.grown().tail.compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in mixed.weights)
    noises = random_noises(generator, [(16, 22), (22, 30)])
    out = mixed(noises)
    assert out.dtype == "float32"
    np.testing.assert_allclose(out, generator(noises), atol=0.05)  # bfloat16: 8-bit mantissa
    assert float(tf.reduce_max(tf.abs(out - generator(noises)))) > 0
    scores = copy_of(critic(8), "mixed_bfloat16")(out)
    assert scores.dtype == "float32" and scores.shape == (2, 12, 20, 1)


def compiled_stage(generator, sizes, trained_stages, train_head, dtype_policy="float32",
                   critic_layers=5, **options):
    keras.utils.set_random_seed(0)  # the critic's initial weights
    stage_critic = copy_of(critic(8, critic_layers), dtype_policy)
    stage = ConSinGANStage(copy_of(generator, dtype_policy), stage_critic,
                           sizes, trained_stages, train_head, seed=0, **options)
    adam = lambda: keras.optimizers.Adam(5e-4, beta_1=0.5)  # noqa: E731
    stage.compile(adam(), [adam() for _ in stage.trained_parts()])
    return stage


def fit_steps(stage, real, steps):
    dataset = stage_dataset(real)
    assert not dataset.options().autotune.enabled  # it made steps 1.9x slower on a Zen 4
    return stage.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)


@pytest.mark.parametrize("dtype_policy", ["float32", "mixed_bfloat16"])
def test_stage_0_learns_to_reconstruct_the_coarsest_image(dtype_policy):
    real = tf.constant(make_image(16, 22)[None] / 127.5 - 1.0, tf.float32)
    keras.utils.set_random_seed(0)
    stage = compiled_stage(GrowingGenerator(1, channels=8), [(16, 22)], [0], True,
                           dtype_policy)
    stage.z_opts[0].assign(real)  # ConSinGAN's stage 0 reconstructs from the image itself
    before = float(tf.reduce_mean(tf.square(stage.reconstruct() - real)))
    history = fit_steps(stage, real, 300)
    after = float(tf.reduce_mean(tf.square(stage.reconstruct() - real)))
    assert after < 0.6 * before
    assert set(history.history) == {"d_loss", "g_loss", "rec_loss", "gp"}


@pytest.mark.parametrize("top, left, rows, cols", [(6, 9, (16, 20), (19, 23)),
                                                   (0, 0, (0, 14), (0, 14)),
                                                   (16, 18, (26, 40), (28, 42))])
def test_a_windowed_gradient_penalty_is_exact_over_its_window(monkeypatch, top, left, rows,
                                                               cols):
    """A 40x42 image under a 4 px window: the critic (5 convs, pad 5) reads 24 px squares,
    whose terms are exact 10 px in from each side, or up to the image's edge."""
    model = critic(8)
    model.set_weights([tf.random.stateless_normal(w.shape, [3, i]) * 0.3  # gradients ~1
                       for i, w in enumerate(model.get_weights())])
    real, fake = (tf.random.stateless_normal((1, 40, 42, 3), [seed, 0]) for seed in (1, 2))
    mixed = 0.3 * real + 0.7 * fake
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        scores = model(mixed)
    norms = tf.norm(tape.gradient(scores, mixed), axis=-1)[0]
    expected = tf.reduce_mean(tf.square(norms[rows[0]:rows[1], cols[0]:cols[1]] - 1.0))
    starts = iter([top, left])
    monkeypatch.setattr(keras.random, "randint", lambda *args, **kwargs: next(starts))
    windowed = windowed_gradient_penalty(model, real, fake, 0.3, 4, None)
    np.testing.assert_allclose(windowed, expected, rtol=1e-5)
    whole = windowed_gradient_penalty(model, real, fake, 0.3, 40, None)
    np.testing.assert_allclose(whole, gradient_penalty(model, real, fake, 0.3), rtol=1e-6)


def assert_a_fit_is_seeded_and_learns(new_stage, real, steps):
    """`new_stage()` builds a compiled stage ready to fit `real` (an option under test):
    its samples have the image's shape, its reconstruction error falls, and a second fit
    from the same seed draws the same reconstruction and samples."""
    def fitted():
        keras.utils.set_random_seed(0)
        stage = new_stage()
        before = float(tf.reduce_mean(tf.square(stage.reconstruct() - real)))
        fit_steps(stage, real, steps)
        return before, stage.reconstruct(), stage.generator(stage.random_noises(2))

    before, reconstruction, samples = fitted()
    assert samples.shape == (2, *real.shape[1:])
    assert float(tf.reduce_mean(tf.square(reconstruction - real))) < 0.6 * before
    _, again, samples_again = fitted()
    np.testing.assert_array_equal(again, reconstruction)
    np.testing.assert_array_equal(samples_again, samples)


def test_a_windowed_gradient_penalty_fit_is_seeded_and_learns():
    real = tf.constant(make_image(16, 22)[None] / 127.5 - 1.0, tf.float32)

    def new_stage():
        stage = compiled_stage(GrowingGenerator(1, channels=8), [(16, 22)], [0], True,
                               gp_window=1)  # reads 16x21 of 16x22: windowed across
        stage.z_opts[0].assign(real)
        return stage

    assert_a_fit_is_seeded_and_learns(new_stage, real, 300)


def test_corner_aligned_upsampling_is_seeded_learns_and_is_kept(tmp_path):
    """align_corners (ConSinGAN's resize): a two-stage fit keeps its shapes, is seeded and
    reconstructs better; the generator keeps the option when grown, copied and saved."""
    generator = first_generator(TINY.replace(channels=8, align_corners=True)).grown()
    assert generator.align_corners and copy_of(generator).align_corners
    generator.save(tmp_path / "g.keras")
    assert keras.saving.load_model(tmp_path / "g.keras").align_corners
    sizes = [(16, 22), (22, 30)]
    noises = random_noises(generator, sizes)
    half_pixel = copy_of(generator)
    half_pixel.align_corners = False
    assert not np.allclose(generator(noises), half_pixel(noises), rtol=1e-3, atol=0)
    real = tf.constant(make_image(22, 30)[None] / 127.5 - 1.0, tf.float32)

    def new_stage():
        stage = compiled_stage(generator, sizes, [0, 1], True)
        stage.z_opts[0].assign(tf.image.resize(real, sizes[0]))
        stage.z_opts[1].assign(tf.random.stateless_normal(stage.z_opts[1].shape, [1, 2]))
        stage.noise_amps.assign([1.0, 0.1])
        return stage

    assert_a_fit_is_seeded_and_learns(new_stage, real, 200)


def test_only_the_trained_parts_change():
    real = tf.constant(make_image(22, 30)[None] / 127.5 - 1.0, tf.float32)
    stage = compiled_stage(GrowingGenerator(1, channels=8).grown(), [(16, 22), (22, 30)],
                           [1], False)
    assert stage.trained_parts() == [stage.generator.bodies[1], stage.generator.tail]
    parts = [stage.generator.head, *stage.generator.bodies, stage.generator.tail]
    before = [[w.copy() for w in part.get_weights()] for part in parts]
    fit_steps(stage, real, 5)
    changed = [any(not np.array_equal(a, b) for a, b in zip(part.get_weights(), old))
               for part, old in zip(parts, before)]
    assert changed == [False, False, True, True]


def test_fit_draws_samples_of_the_trained_size(consingan_model, consingan_dir):
    manifest = json.loads((consingan_dir / "singan.json").read_text())
    assert manifest["family"] == "consingan" and manifest["preset"] == "consingan"
    assert [s["size"] for s in manifest["scales"]] == [[16, 19], [24, 28], [34, 40]]
    assert manifest["scales"][0]["noise_amp"] == 1.0
    assert all(0 < s["noise_amp"] < 1 for s in manifest["scales"][1:])
    assert sorted(p.name for p in (consingan_dir / "previews").iterdir()) == \
        ["scale_00.png", "scale_01.png", "scale_02.png"]
    samples = consingan_model.sample(3, seed=4)
    assert samples.shape == (3, 34, 40, 3) and samples.dtype == np.uint8
    assert not np.array_equal(samples[0], samples[1])
    np.testing.assert_array_equal(consingan_model.sample(3, seed=4), samples)
    assert consingan_model.sample(2, scale_w=1.5, seed=4).shape == (2, 34, 60, 3)
    # from start_scale on new noise; below it the photo's reconstruction noise
    kept = consingan_model.sample(2, start_scale=2, seed=4)
    assert np.abs(kept.astype(int) - samples[:2]).mean() > 0
    assert consingan_model.reconstruct().shape == (34, 40, 3)
    assert all(0 < s["layout_error"] < math.inf for s in manifest["scales"])


def test_a_resumed_fit_draws_what_an_uninterrupted_one_does(consingan_model, tiny_image,
                                                            tmp_path):
    """Seeded: a fit stopped after two stages and resumed gives the same model."""
    trainer = singan_tf.trainer.make_trainer(tmp_path / "m", TINY, seed=2, verbose=0,
                                             tensorboard=False)
    assert trainer.fit(tiny_image, max_new_scales=2) is None
    with pytest.raises(SinGANError, match="holds a consingan model"):
        singan_tf.PyramidTrainer(tmp_path / "m", verbose=0).fit(resume=True)
    resumed = singan_tf.trainer.make_trainer(tmp_path / "m", resume=True, verbose=0,
                                             tensorboard=False).fit(resume=True)
    np.testing.assert_array_equal(resumed.sample(2, seed=1), consingan_model.sample(2, seed=1))


def test_a_deeper_stage_0_critic_is_seeded_resumable_and_learns(tiny_image, tmp_path):
    """first_critic_layers: stage 0 trains a deeper critic and stage 1 a new one of the
    usual depth; a fit stopped after stage 0 and resumed (from the deeper critic) gives the
    same model; stage 0 with a deeper critic is seeded and learns to reconstruct."""
    config = TINY.replace(stages=2, first_critic_layers=7)

    def fit(directory, **kwargs):
        return singan_tf.trainer.make_trainer(tmp_path / directory, config, seed=2, verbose=0,
                                              tensorboard=False, **kwargs)
    whole = fit("whole").fit(tiny_image)
    saved = [fmt.load_scale(tmp_path / "whole", k).discriminator for k in (0, 1)]
    assert [stage_critic.num_layers for stage_critic in saved] == [7, 5]
    assert fit("cut").fit(tiny_image, max_new_scales=1) is None
    resumed = fit("cut", resume=True).fit(resume=True)
    np.testing.assert_array_equal(resumed.sample(2, seed=1), whole.sample(2, seed=1))
    assert whole.sample(2, seed=1).shape == (2, 34, 40, 3)
    real = tf.constant(make_image(16, 22)[None] / 127.5 - 1.0, tf.float32)

    def new_stage():
        stage = compiled_stage(GrowingGenerator(1, channels=8), [(16, 22)], [0], True,
                               critic_layers=7)
        stage.z_opts[0].assign(real)
        return stage

    assert_a_fit_is_seeded_and_learns(new_stage, real, 600)


def test_a_mixed_bfloat16_fit_saves_float32_models(tiny_image, tmp_path):
    """Mixed precision is how stages train, not part of the model: what is saved, loaded,
    resumed from and sampled computes in float32."""
    config = TINY.replace(stages=2, iters_per_stage=10, dtype_policy="mixed_bfloat16")
    model = singan_tf.fit(tiny_image, tmp_path / "m", config, seed=2, verbose=0,
                          tensorboard=False)
    manifest = json.loads((tmp_path / "m" / "singan.json").read_text())
    assert manifest["config"]["dtype_policy"] == "mixed_bfloat16"
    assert {s["dtype_policy"] for s in manifest["scales"]} == {"mixed_bfloat16"}
    loaded = singan_tf.load(tmp_path / "m")
    for generator in [model.pyramid.generator, loaded.pyramid.generator]:
        assert {layer.compute_dtype for layer in generator.bodies[1].layers} == {"float32"}
    np.testing.assert_array_equal(loaded.sample(2, seed=3), model.sample(2, seed=3))


def test_each_stage_is_checked_against_the_coarser_reconstruction_upsampled(consingan_dir):
    manifest = json.loads((consingan_dir / "singan.json").read_text())
    reals = fmt.load_reals(consingan_dir, 3)
    amps = [s["noise_amp"] for s in manifest["scales"]]
    for k in (1, 2):
        below = fmt.load_scale(consingan_dir, k - 1, discriminator=False).generator
        z_opts = [np.load(fmt.scale_dir(consingan_dir, j) / "z_opt.npy") for j in range(k)]
        given = upsample(below([a * z for a, z in zip(amps, z_opts)]), reals[k].shape[:2])
        error = float(np.mean(np.square(given.numpy()[0] - reals[k])))
        assert manifest["scales"][k]["input_error"] == pytest.approx(error, rel=1e-4)


def test_stage_health_thresholds():
    """Recorded ConSinGAN stages (MSE): LSUN 3's stage 3 that melted the church, 0.00514
    from an input at 0.00266, passes SinGAN's tolerance and fails the stages'; LSUN 8's
    healthy finest stage, 0.00184 from 0.00444, passes."""
    real = np.zeros((16, 16, 3))
    given = real + np.sqrt(0.00266)
    melted = real + np.sqrt(0.00514)
    assert ScaleHealth.measure(real, melted, given, 3, 2000, True).healthy
    assert not ScaleHealth.measure(real, melted, given, 3, 2000, True, STAGE_TOLERANCE).healthy
    assert ScaleHealth.measure(real, melted, given, 3, 100, True, STAGE_TOLERANCE).healthy  # brief
    assert ScaleHealth.measure(real, real + np.sqrt(0.00184), real + np.sqrt(0.00444), 5, 500,
                               True, STAGE_TOLERANCE).healthy


class BreakStage(keras.callbacks.Callback):
    """Saturates the tail of stage `stage`'s generator at the end of its first attempt."""

    def __init__(self, trainer_ref, stage):
        super().__init__()
        self.trainer_ref, self.stage = trainer_ref, stage

    def on_train_end(self, logs=None):
        trainer = self.trainer_ref[0]
        if trainer.current_scale == self.stage and trainer.current_attempt == 0:
            self.model.generator.tail.bias.assign(tf.fill([3], 5.0))


@pytest.mark.parametrize("dtype_policy", ["float32", "mixed_bfloat16"])
def test_a_broken_stage_is_detected_and_retrained_in_float32(tiny_image, tmp_path, capsys,
                                                             dtype_policy):
    holder = []
    config = TINY.replace(stages=2, dtype_policy=dtype_policy)
    trainer = singan_tf.trainer.make_trainer(tmp_path / "m", config, seed=2, verbose=1,
                                             tensorboard=False,
                                             callbacks=[BreakStage(holder, stage=1)])
    holder.append(trainer)
    model = trainer.fit(tiny_image)
    out = capsys.readouterr().out
    assert "warning: stage 1 diverged" in out
    assert ("the learning rate, in float32 (attempt 2" in out) == (dtype_policy != "float32")
    manifest = json.loads((tmp_path / "m" / "singan.json").read_text())
    assert [s["attempts"] for s in manifest["scales"]] == [1, 2]
    assert [s["dtype_policy"] for s in manifest["scales"]] == [dtype_policy, "float32"]
    assert manifest["scales"][1]["rec_error"] < manifest["scales"][1]["input_error"]
    assert model.num_scales == 2


def test_layout_error_tells_the_photos_layout_from_another_scene():
    """A landscape as LSUN 1: sky over forest over river. Samples with the bands swapped
    (forest above and below the sky, as that fit's) score above the warning; samples of
    the photo's scene, or of a texture like the photo, about 1 or less."""
    sky, forest, river = [0.3, 0.5, 0.9], [-0.5, 0.1, -0.6], [0.8, 0.7, 0.6]
    photo = np.tile(np.repeat(np.array([sky, forest, river]), 10, axis=0)[:, None], (1, 20, 1))
    rng = np.random.default_rng(0)
    alike = photo + rng.normal(0, 0.05, (4, *photo.shape))
    swapped = photo[np.r_[10:20, 0:10, 10:20]] + rng.normal(0, 0.05, (4, *photo.shape))
    texture = rng.normal(0, 0.3, (5, *photo.shape))  # the photo is the first
    assert layout_error(np.stack([photo, photo]), photo) == 0
    assert layout_error(alike, photo) < 0.1
    assert layout_error(texture[1:], texture[0]) == pytest.approx(1, abs=0.1)
    assert layout_error(swapped, photo) > LAYOUT_WARNING
    # stage 0's rougher samples are held to a looser bound
    assert not layout_lost(LAYOUT_WARNING + 1, 0) and layout_lost(LAYOUT_WARNING + 1, 1)
    assert layout_lost(FIRST_STAGE_LAYOUT_WARNING + 1, 0) and not layout_lost(None, 1)


def test_a_stage_0_that_leaves_the_photos_layout_is_retrained_and_reported(tiny_image,
                                                                          tmp_path, capsys,
                                                                          monkeypatch):
    """The threshold is lowered below any error, so every try counts as another scene:
    stage 0 is trained LAYOUT_TRIES times from new weights, the try nearest the photo is
    kept, and each stage is reported. Whether a tiny fit's samples keep its photo's layout
    after a few iterations is not what this checks."""
    monkeypatch.setattr("singan_tf.health.LAYOUT_WARNING", -math.inf)
    monkeypatch.setattr("singan_tf.health.FIRST_STAGE_LAYOUT_WARNING", -math.inf)
    model = singan_tf.fit(tiny_image, tmp_path / "m", TINY.replace(stages=2, iters_per_stage=10),
                          seed=2, verbose=1, tensorboard=False)
    out = capsys.readouterr().out
    retries = [line for line in out.splitlines() if "retraining it from new weights" in line]
    assert len(retries) == LAYOUT_TRIES - 1
    assert retries[-1].endswith(f"(try {LAYOUT_TRIES} of {LAYOUT_TRIES})")
    assert "warning: stage 0's samples lie" in out and "further from the photo" in out
    assert "look at previews/scale_01.png" in out
    stage_0, stage_1 = json.loads((tmp_path / "m" / "singan.json").read_text())["scales"]
    tries = stage_0["rejected_layout_errors"] + [stage_0["layout_error"]]
    assert len(tries) == LAYOUT_TRIES and stage_0["layout_error"] == min(tries)
    assert len(set(tries)) > 1  # new weights each try
    assert stage_1["rejected_layout_errors"] == []  # only stage 0 draws the layout
    assert model.sample(2, seed=1).shape == (2, 34, 40, 3)


def test_a_stage_0_retrained_into_the_photos_layout_still_tells_the_user(tiny_image,
                                                                         tmp_path, capsys,
                                                                         monkeypatch):
    """Two tries score as another scene, the third passes: it is kept, the others are
    recorded, and the log says so (the kept one may be a jumble the check cannot see)."""
    scores = iter([12.3, 12.8, 1.4, 0.5])  # stage 0's three tries, then stage 1
    monkeypatch.setattr("singan_tf.consingan.trainer.layout_error", lambda *_: next(scores))
    singan_tf.fit(tiny_image, tmp_path / "m", TINY.replace(stages=2, iters_per_stage=10),
                  seed=2, verbose=1, tensorboard=False)
    out = capsys.readouterr().out
    assert "stage 0 drew another scene in 2 of 3 tries; kept one 1.4x" in out
    assert "samples lie" not in out.split("kept one")[1]  # no warning about the kept one
    stage_0, stage_1 = json.loads((tmp_path / "m" / "singan.json").read_text())["scales"]
    assert stage_0["rejected_layout_errors"] == [12.3, 12.8]
    assert (stage_0["layout_error"], stage_1["layout_error"]) == (1.4, 0.5)


def test_a_stage_1_that_leaves_the_photos_layout_trains_stages_0_and_1_again(tiny_image,
                                                                           tmp_path, capsys,
                                                                           monkeypatch):
    """Stage 1 scores as another scene the first time: stages 0 and 1 train again, once,
    with the deepest stage-0 critic the coarsest stage takes (7 convs for 16 px); the
    manifest's config and record say so, and a fit stopped right after that decision and
    resumed gives the same model."""
    config = TINY.replace(stages=3, iters_per_stage=10, relayout_critic_layers=9)
    stage_1_size = tuple(config.pyramid_spec(34, 40).sizes[1])

    def trainer(directory, stage_1_scores, **kwargs):
        scores = iter(stage_1_scores)
        monkeypatch.setattr("singan_tf.consingan.trainer.layout_error", lambda samples, real:
                            next(scores) if tuple(real.shape[:2]) == stage_1_size else 0.5)
        return singan_tf.trainer.make_trainer(tmp_path / directory, config, seed=2, verbose=1,
                                              tensorboard=False, **kwargs)
    whole = trainer("whole", [9.0, 0.5]).fit(tiny_image)
    out = capsys.readouterr().out
    assert out.count("training stages 0 and 1 again with a 7-conv stage-0 critic") == 1
    assert out.count("stage 2/3:") == 2 and out.count("stage 3/3:") == 1
    manifest = json.loads((tmp_path / "whole" / "singan.json").read_text())
    assert manifest["config"]["first_critic_layers"] == 7
    assert manifest["relayout"] == {"stage_1_layout_error": 9.0, "stage_0_layout_error": 0.5,
                                    "first_critic_layers": 7}
    assert [stage["layout_error"] for stage in manifest["scales"]] == [0.5, 0.5, 0.5]
    assert fmt.load_scale(tmp_path / "whole", 0).discriminator.num_layers == 7

    class Stopped(Exception):
        pass
    relayout = ConSinGANTrainer._relayout

    def relayout_and_stop(self, *args):
        relayout(self, *args)
        raise Stopped
    monkeypatch.setattr(ConSinGANTrainer, "_relayout", relayout_and_stop)
    with pytest.raises(Stopped):
        trainer("cut", [9.0]).fit(tiny_image)
    assert "stages 0 and 1 again" in capsys.readouterr().out
    monkeypatch.setattr(ConSinGANTrainer, "_relayout", relayout)
    resumed = trainer("cut", [0.5], resume=True).fit(resume=True)
    assert "resuming at stage 0" in capsys.readouterr().out
    np.testing.assert_array_equal(resumed.sample(2, seed=1), whole.sample(2, seed=1))


def test_tasks_that_need_scales_say_so(consingan_model, tiny_image):
    with pytest.raises(SinGANError, match="needs a SinGAN model"):
        paint2image(consingan_model, tiny_image, start_scale=1)
    with pytest.raises(SinGANError, match="needs a SinGAN model"):
        animate(consingan_model, frames=2)


def test_export_serves_the_same_samples(consingan_model, tmp_path):
    target = export(consingan_model, tmp_path, "growing")
    loaded = tf.saved_model.load(str(target))
    assert set(loaded.signatures) == {"serving_default"}
    out = loaded.signatures["serving_default"](
        seed=tf.constant(4, tf.int64), num_samples=tf.constant(3), scale_h=tf.constant(1.0),
        scale_w=tf.constant(1.0), start_scale=tf.constant(0))["images"]
    np.testing.assert_array_equal(out.numpy(), consingan_model.sample(3, seed=4))


def test_cli_fits_and_samples_a_consingan(tmp_path, tiny_image):
    model = tmp_path / "model"
    settings = ["--set", "stages=3", "--set", "channels=16"]
    result = CliRunner().invoke(main, ["fit", str(tiny_image), "-o", str(model), "--preset",
                                       "consingan", "--max-size", "40", "--min-size", "16",
                                       "--iters", "20", "--no-tensorboard", *settings])
    assert result.exit_code == 0, result.output
    assert "training 3 of 3 stages" in result.output  # each in a process of its own
    info = CliRunner().invoke(main, ["info", str(model)])
    assert info.exit_code == 0 and "(complete)" in info.output, info.output
    assert "preset:     consingan" in info.output
    assert "iters_per_stage=20" in info.output and "fine_iters_per_stage=0" in info.output
    out = tmp_path / "samples"
    result = CliRunner().invoke(main, ["sample", str(model), "-o", str(out), "-n", "2"])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.png"))) == 2
