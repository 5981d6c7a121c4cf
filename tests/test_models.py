import numpy as np
import pytest
import keras
import tensorflow as tf
from keras import ops

from singan_tf.config import SinGANConfig
from singan_tf.errors import SinGANError
from singan_tf.models import (Discriminator, Generator, InferenceGenerator, SinGANScale,
                              gradient_penalty)
from singan_tf.scale_training import build_scale, compile_scale
from singan_tf.trained_pyramid import TrainedScale

from conftest import make_image


@pytest.mark.parametrize("height,width", [(25, 25), (27, 41), (33, 20)])
def test_generator_keeps_size_and_critic_is_a_patch_map(height, width):
    generator, critic = Generator(8), Discriminator(8)
    prev = tf.random.normal((2, height, width, 3))
    out = generator([prev, prev])
    assert out.shape == (2, height, width, 3)
    assert critic(out).shape == (2, height - 10, width - 10, 1)  # 11x11 receptive field


def test_generator_is_residual_on_prev():
    generator = Generator(8)
    prev = tf.random.normal((1, 30, 30, 3))
    out = generator([prev, prev])
    # tanh(...) + prev: the difference is bounded by 1 in every pixel.
    assert float(tf.reduce_max(tf.abs(out - prev))) <= 1.0


def test_gradient_penalty_is_per_pixel_norm_of_input_gradient():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=3).astype(np.float32)
    real = rng.normal(size=(1, 5, 7, 3)).astype(np.float32)
    fake = rng.normal(size=(1, 5, 7, 3)).astype(np.float32)

    def critic(x, training=False):  # D(x) = sum_c w_c x_c^2 per pixel; dD/dx = 2 w x
        return tf.reduce_sum(weights * tf.square(x), axis=-1, keepdims=True)

    mix = 0.3
    gp = gradient_penalty(critic, tf.constant(real), tf.constant(fake), mix)
    mixed = mix * real + (1 - mix) * fake
    norms = np.sqrt(((2 * weights * mixed) ** 2).sum(axis=-1))
    assert float(gp) == pytest.approx(((norms - 1) ** 2).mean(), rel=1e-5)


def test_gradient_penalty_does_not_depend_on_image_size():
    weights = tf.constant([[[[0.6], [0.0], [0.0]]]])  # 1x1 conv: gradient w at every pixel

    def critic(x, training=False):
        return tf.nn.conv2d(x, weights, 1, "VALID")

    for size in (4, 16):
        real = tf.random.normal((1, size, size, 3))
        gp = gradient_penalty(critic, real, tf.zeros_like(real), 0.5)
        assert float(gp) == pytest.approx((0.6 - 1) ** 2, rel=1e-5)  # a per-image norm would grow


def _scale(size=(32, 32), seed=0, steps_per_execution=5, critic_steps=1, generator_steps=1,
           batch_norm=True, **kwargs):
    """A small scale; one critic and one generator step per iteration unless a test needs
    more (tracing the step dominates these tests, and grows with the steps)."""
    keras.utils.set_random_seed(seed)
    model = SinGANScale(Generator(16, batch_norm=batch_norm), Discriminator(16), size,
                        noise_channels=1, seed=seed,
                        critic_steps=critic_steps, generator_steps=generator_steps, **kwargs)
    model.compile(d_optimizer=keras.optimizers.Adam(5e-4, beta_1=0.5),
                  g_optimizer=keras.optimizers.Adam(5e-4, beta_1=0.5),
                  jit_compile=False, steps_per_execution=steps_per_execution)
    return model


def _dataset(real, critic_steps=1):
    prevs = tf.zeros((critic_steps, *real.shape[1:]))
    return tf.data.Dataset.from_tensors((real, prevs)).repeat()


def test_training_lowers_reconstruction_loss_and_runs_callbacks():
    real = tf.constant(np.random.default_rng(1).uniform(-1, 1, (1, 32, 32, 3)), tf.float32)
    model = _scale(steps_per_execution=25, critic_steps=3, generator_steps=3)  # the full step
    model.z_opt.assign(tf.random.normal((1, 32, 32, 1)))
    before = float(tf.reduce_mean(tf.square(model.reconstruct(training=True) - real)))
    seen = []
    callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(logs))
    history = model.fit(_dataset(real, critic_steps=3), epochs=4, steps_per_epoch=50,
                        verbose=0, shuffle=False, callbacks=[callback])
    assert set(history.history) == {"d_loss", "g_loss", "rec_loss", "gp"}
    assert len(seen) == 4
    after = history.history["rec_loss"][-1]
    assert after < 0.5 * before


def test_scale_round_trips_through_keras_saving(tmp_path):
    real = tf.random.uniform((1, 24, 28, 3), -1, 1)
    model = _scale(size=(24, 28), alpha=5.0, critic_steps=2, generator_steps=1)
    model.noise_amp.assign(0.25)
    model.z_opt.assign(tf.random.normal((1, 24, 28, 1)))
    model.fit(_dataset(real, critic_steps=2), epochs=1, steps_per_epoch=5, verbose=0,
              shuffle=False)
    path = tmp_path / "scale.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SinGANScale)
    assert (loaded.alpha, loaded.critic_steps, loaded.generator_steps) == (5.0, 2, 1)
    assert float(loaded.noise_amp) == 0.25
    np.testing.assert_array_equal(loaded.reconstruct().numpy(), model.reconstruct().numpy())
    # The optimizers come back with their state, so training can continue.
    assert int(loaded.d_optimizer.iterations) == int(model.d_optimizer.iterations) == 10
    loaded.fit(_dataset(real, critic_steps=2), epochs=1, steps_per_epoch=5, verbose=0,
               shuffle=False)
    assert int(loaded.d_optimizer.iterations) == 20


def test_random_windows_keep_shapes_and_lower_the_reconstruction_loss():
    """As in the trainer, G first learns on whole images (BatchNorm statistics included),
    then goes on from those weights on 32 px windows, or on the whole image to compare."""
    real = tf.constant(make_image(40, 48)[None] / 127.5 - 1, tf.float32)
    z_opt = tf.random.stateless_normal((1, 40, 48, 1), (5, 6))
    start = _scale(size=(40, 48), steps_per_execution=25)
    start.z_opt.assign(z_opt)
    start.fit(_dataset(real), epochs=1, steps_per_epoch=50, verbose=0, shuffle=False)
    errors, histories = {}, {}
    for crop_size in (0, 32):
        model = _scale(size=(40, 48), steps_per_execution=25, crop_size=crop_size)
        model.generator.set_weights(start.generator.get_weights())
        model.discriminator.set_weights(start.discriminator.get_weights())
        model.z_opt.assign(z_opt)
        histories[crop_size] = model.fit(_dataset(real), epochs=4, steps_per_epoch=100,
                                         verbose=0, shuffle=False).history["rec_loss"]
        reconstruction = model.reconstruct()
        assert reconstruction.shape == (1, 40, 48, 3)  # trained on windows, applies to all
        errors[crop_size] = float(tf.reduce_mean(tf.square(reconstruction - real)))
    window = _scale(size=(40, 48), crop_size=32)._random_window()
    assert (window[2], window[3]) == (32, 32) and 0 <= int(window[0]) <= 8
    assert histories[32][-1] < 0.75 * histories[32][0]  # the windows' loss falls
    # The whole image stays reconstructed, though less well than by whole-image training
    # at this toy size (32 px windows of 40x48 are mostly border): measured 1.5-2x.
    assert errors[32] < 2.5 * errors[0]


def _batchnorm_input_variances(generator, noisy):
    """Per BatchNorm of G: the variance of what it is given on `noisy` (inference mode)."""
    x = generator._padded(noisy)
    variances = []
    for layer in generator.blocks:
        if isinstance(layer, keras.layers.BatchNormalization):
            variances.append(tf.math.reduce_variance(x, axis=[0, 1, 2]).numpy())
        x = layer(x, training=False)
    return variances


@pytest.mark.parametrize("renormalize", [False, True])
def test_windowed_batchnorm_statistics_are_frozen_or_renormalized(renormalize):
    """A windowed scale normalizes with G's moving statistics: frozen by default, or
    renormalized, which moves them with the weights. A fresh G's (variance 1) are ~100x
    too large for what its layers give, as inherited ones go stale."""
    real = tf.constant(make_image(40, 48)[None] / 127.5 - 1, tf.float32)
    model = _scale(size=(40, 48), crop_size=32, steps_per_execution=100,
                   renormalize_windows=renormalize)
    model.z_opt.assign(tf.random.stateless_normal((1, 40, 48, 1), (5, 6)))
    rec_input = model.z_opt + model.rec_prev
    norms = [layer for layer in model.generator.blocks
             if isinstance(layer, keras.layers.BatchNormalization)]
    stale = _batchnorm_input_variances(model.generator, rec_input)
    assert all(np.median(1.0 / v) > 10 for v in stale)
    before = float(tf.reduce_mean(tf.square(model.reconstruct() - real)))
    model.fit(_dataset(real), epochs=1, steps_per_epoch=500 if renormalize else 100,
              verbose=0, shuffle=False)
    actual = _batchnorm_input_variances(model.generator, rec_input)
    for norm, variance in zip(norms, actual):
        ratio = np.median(norm.moving_variance.numpy() / variance)
        if renormalize:
            assert 0.3 < ratio < 3, ratio
        else:
            np.testing.assert_array_equal(norm.moving_variance.numpy(), 1.0)
    if renormalize:  # the whole image, normalized by those statistics, is reconstructed
        after = float(tf.reduce_mean(tf.square(model.reconstruct() - real)))
        assert after < 0.5 * before, (before, after)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_random_windows_are_deterministic_under_a_seed(batch_norm):
    real = tf.random.stateless_uniform((1, 36, 36, 3), (3, 4), -1, 1)
    weights = []
    for _ in range(2):
        model = _scale(size=(36, 36), seed=7, crop_size=20, batch_norm=batch_norm)
        model.fit(_dataset(real), epochs=1, steps_per_epoch=10, verbose=0, shuffle=False)
        weights.append(model.generator.get_weights())
    for first, second in zip(*weights):
        np.testing.assert_array_equal(first, second)


def test_a_window_larger_than_the_image_trains_on_the_whole_image():
    model = _scale(size=(30, 34), crop_size=64)
    assert model._random_window() is None


def test_redrawn_reconstruction_noise_pulls_any_noise_towards_the_image():
    """redraw_z_opt (the official code at scale 0): the reconstruction loss sees new noise
    every iteration, so G learns to bring unseen noise close to the image; with the fixed
    z_opt it only learns that one input."""
    real = tf.constant(make_image(32, 32)[None] / 127.5 - 1, tf.float32)
    unseen = tf.random.stateless_normal((4, 32, 32, 1), (8, 9))
    errors, rec_errors = {}, {}
    for redraw in (False, True):
        model = _scale(steps_per_execution=25, redraw_z_opt=redraw)
        model.z_opt.assign(tf.random.stateless_normal((1, 32, 32, 1), (5, 6)))
        model.fit(_dataset(real), epochs=4, steps_per_epoch=50, verbose=0, shuffle=False)
        zeros = tf.zeros((4, 32, 32, 3))
        outputs = model.generator([unseen + zeros, zeros])
        errors[redraw] = float(tf.reduce_mean(tf.square(outputs - real)))
        rec_errors[redraw] = float(tf.reduce_mean(tf.square(model.reconstruct() - real)))
        assert model.get_config()["redraw_z_opt"] is redraw
    # Measured 0.64-0.67x on unseen noise; the one fixed input is learned 2.4-8x better
    # without redraws.
    assert errors[True] < 0.8 * errors[False]
    assert rec_errors[False] < rec_errors[True]


def test_inference_generator_is_the_generator_with_batchnorm_folded():
    generator = Generator(16)
    inputs = tf.random.stateless_normal((2, 20, 24, 3), (1, 2))
    generator([inputs, inputs], training=True)  # moving statistics move off 0 / 1
    for layer in generator.blocks:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(tf.random.stateless_normal(layer.moving_mean.shape, (3, 4)))
            layer.moving_variance.assign(
                tf.random.stateless_uniform(layer.moving_variance.shape, (5, 6), 0.5, 2.0))
    folded = InferenceGenerator(generator)
    expected = generator([inputs, inputs], training=False)
    np.testing.assert_allclose(folded([inputs, inputs]), expected, atol=1e-5)
    generator.tail.bias.assign(generator.tail.bias + 1.0)  # a snapshot: unaffected
    np.testing.assert_allclose(folded([inputs, inputs]), expected, atol=1e-5)


def test_a_generator_without_batchnorm_is_plain_convs_and_folds_to_itself():
    generator = Generator(16, batch_norm=False)
    inputs = tf.random.stateless_normal((2, 20, 24, 3), (1, 2))
    out = generator([inputs, inputs], training=True)
    assert out.shape == inputs.shape
    assert not any(isinstance(layer, keras.layers.BatchNormalization)
                   for layer in generator.blocks)
    assert len(generator.get_weights()) == 10  # kernel and bias of 5 convs
    # Without BatchNorm, training and inference mode are one function.
    np.testing.assert_array_equal(out, generator([inputs, inputs], training=False))
    np.testing.assert_allclose(InferenceGenerator(generator)([inputs, inputs]), out, atol=1e-5)
    restored = Generator.from_config(generator.get_config())
    assert restored.batch_norm is False
    # He-normal blocks keep the signal's scale (N(0, 0.02) shrinks it ~3x per block).
    head = generator.blocks[0].kernel.numpy()
    assert 0.5 < head.std() * np.sqrt(27 / 2) < 1.5


@pytest.mark.parametrize("generator_bn,discriminator_bn", [(True, False), (False, True)])
def test_the_config_chooses_batchnorm_per_network(generator_bn, discriminator_bn):
    cfg = SinGANConfig(generator_batchnorm=generator_bn,
                       discriminator_batchnorm=discriminator_bn)
    scale = build_scale(cfg, 0, (32, 32))
    for network, batch_norm in [(scale.generator, generator_bn),
                                (scale.discriminator, discriminator_bn)]:
        assert network.batch_norm is batch_norm
        norms = [layer for layer in network.blocks
                 if isinstance(layer, keras.layers.BatchNormalization)]
        assert len(norms) == (4 if batch_norm else 0)
    critic = scale.discriminator
    images = tf.random.stateless_normal((2, 24, 24, 3), (3, 4))
    if not discriminator_bn:  # one function in training and inference, as ConSinGAN's
        np.testing.assert_array_equal(critic(images, training=True), critic(images))
    assert Discriminator.from_config(critic.get_config()).batch_norm is discriminator_bn


def test_a_scale_without_batchnorm_learns_to_reconstruct():
    real = tf.constant(make_image(32, 32)[None] / 127.5 - 1, tf.float32)
    model = _scale(steps_per_execution=25, batch_norm=False)
    model.z_opt.assign(tf.random.stateless_normal((1, 32, 32, 1), (5, 6)))
    before = float(tf.reduce_mean(tf.square(model.reconstruct() - real)))
    model.fit(_dataset(real), epochs=1, steps_per_epoch=100, verbose=0, shuffle=False)
    after = float(tf.reduce_mean(tf.square(model.reconstruct() - real)))
    assert after < 0.5 * before, (before, after)


def test_a_joint_critic_batch_lets_the_critic_see_contrast():
    """D's BatchNorm in training mode normalizes each call's batch by its own statistics.
    Scored apart, a real image and a copy of it at half the contrast (and shifted) are the
    same to D up to BatchNorm's epsilon; scored as one batch (joint_critic_batch), they
    are not."""
    real = tf.constant(make_image(32, 32)[None] / 127.5 - 1, tf.float32)
    faded = 0.5 * real + 0.1
    gaps = {}
    for joint in (False, True):
        model = _scale(joint_critic_batch=joint)  # the same seed: the same D
        real_score, fake_score = model._critic_scores(real, faded)
        gaps[joint] = abs(float(real_score) - float(fake_score))
        assert model.get_config()["joint_critic_batch"] is joint
    assert gaps[True] > 100 * gaps[False], gaps  # measured 0.18 against 1.3e-4
    # Only above the coarse scales, where the layout is already set.
    cfg = SinGANConfig(discriminator_joint_batchnorm=True, coarse_scales=2)
    assert [build_scale(cfg, n, (32, 32)).joint_critic_batch for n in range(4)] == [
        False, False, True, True]


def test_the_joint_penalty_holds_the_joint_critics_own_function():
    """The joint critic scores a fake beside the real image (one BatchNorm batch); with
    joint_penalty the gradient penalty is taken of that same function of the mix, which
    differs from D's slope on the mix alone (what the penalty holds without it)."""
    real = tf.constant(make_image(32, 32)[None] / 127.5 - 1, tf.float32)
    fake = 0.5 * real + 0.1 * tf.random.stateless_normal(real.shape, (1, 2))
    mixed = 0.3 * real + 0.7 * fake
    model = _scale(joint_critic_batch=True, joint_penalty=True)
    assert model.get_config()["joint_penalty"] is True
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        scores = model.discriminator(tf.concat([real, mixed], 0), training=True)[1:]
    norms = tf.sqrt(tf.reduce_sum(tf.square(tape.gradient(scores, mixed)), -1) + 1e-12)
    expected = float(tf.reduce_mean(tf.square(norms - 1.0)))
    assert float(model._penalty(real, fake, 0.3)) == pytest.approx(expected, rel=1e-5)
    apart = float(_scale(joint_critic_batch=True)._penalty(real, fake, 0.3))
    assert abs(apart - expected) > 0.01 * expected, (apart, expected)  # 0.588 against 0.614
    # Where the joint critic is: above the coarse scales, and only with it.
    cfg = SinGANConfig(discriminator_joint_batchnorm=True, joint_gradient_penalty=True,
                       coarse_scales=2)
    assert [build_scale(cfg, n, (32, 32)).joint_penalty for n in range(4)] == [
        False, False, True, True]
    with pytest.raises(SinGANError, match="joint_gradient_penalty needs"):
        SinGANConfig(joint_gradient_penalty=True)


@pytest.mark.parametrize("joint_penalty", [False, True])
def test_a_scale_with_a_joint_critic_batch_trains_deterministically_and_reconstructs(
        joint_penalty):
    real = tf.constant(make_image(32, 32)[None] / 127.5 - 1, tf.float32)
    z_opt = tf.random.stateless_normal((1, 32, 32, 1), (5, 6))
    weights = []
    for _ in range(2):
        model = _scale(steps_per_execution=25, joint_critic_batch=True,
                       joint_penalty=joint_penalty)
        model.z_opt.assign(z_opt)
        before = float(tf.reduce_mean(tf.square(model.reconstruct() - real)))
        model.fit(_dataset(real), epochs=1, steps_per_epoch=100, verbose=0, shuffle=False)
        after = float(tf.reduce_mean(tf.square(model.reconstruct(training=True) - real)))
        assert after < 0.5 * before, (before, after)
        assert model(tf.zeros((2, 32, 32, 3))).shape == (2, 32, 32, 3)
        weights.append(model.generator.get_weights())
    for first, second in zip(*weights):
        np.testing.assert_array_equal(first, second)


def test_the_coarse_scales_can_weigh_reconstruction_apart():
    """coarse_alpha keeps the coarse scales at their weight when alpha rises above them."""
    cfg = SinGANConfig(coarse_scales=2, alpha=50.0, coarse_alpha=10.0)
    assert [build_scale(cfg, n, (32, 32)).alpha for n in range(4)] == [10.0, 10.0, 50.0, 50.0]
    assert [SinGANConfig(coarse_scales=2).reconstruction_weight(n) for n in range(4)] == [10.0] * 4
    with pytest.raises(SinGANError, match="coarse_alpha must be non-negative"):
        SinGANConfig(coarse_alpha=-1.0)


def _joint_scale(lower_lr, seed=0):
    """A 32x32 scale training along with a 24x24 generator below it (lr `lower_lr`)."""
    keras.utils.set_random_seed(seed)
    lower = Generator(16)
    model = SinGANScale(Generator(16), Discriminator(16), (32, 32), noise_channels=3,
                        seed=seed, critic_steps=1, generator_steps=1,
                        lower_generators=[lower], lower_sizes=[(24, 24)],
                        lower_noise_amps=[0.5], lower_noise_channels=[1])
    model.compile(d_optimizer=keras.optimizers.Adam(5e-4, beta_1=0.5),
                  g_optimizer=keras.optimizers.Adam(5e-4, beta_1=0.5),
                  lower_g_optimizers=[keras.optimizers.Adam(lower_lr, beta_1=0.5)],
                  jit_compile=False, steps_per_execution=25)
    model.noise_amp.assign(0.1)
    model.lower_z_opts[0].assign(tf.random.stateless_normal((1, 24, 24, 1), (1, 2)))
    return model


def test_a_lower_generator_trains_along_at_its_own_rate(tmp_path):
    """ConSinGAN's concurrent stages: the chain lower G -> upsample -> G reconstructs, the
    lower G learns at its optimizer's rate (0: not at all), and it all saves and reloads."""
    real = tf.constant(make_image(32, 32)[None] / 127.5 - 1, tf.float32)
    prevs = tf.zeros((1, 24, 24, 3))  # the lower generator's input
    data = tf.data.Dataset.from_tensors((real, prevs)).repeat()
    weights = {}
    for lower_lr in (0.0, 5e-5, 5e-5):
        model = _joint_scale(lower_lr)
        lower = model.lower_generators[0]
        start = [v.numpy() for v in lower.trainable_variables]  # not BatchNorm's statistics
        before = float(tf.reduce_mean(tf.square(model.reconstruct() - real)))
        model.fit(data, epochs=1, steps_per_epoch=100, verbose=0, shuffle=False)
        after = float(tf.reduce_mean(tf.square(model.reconstruct(training=True) - real)))
        assert after < 0.5 * before, (lower_lr, before, after)
        moved = max(float(np.abs(a - b).max())
                    for a, b in zip(start, [v.numpy() for v in lower.trainable_variables]))
        assert (moved > 0) == (lower_lr > 0), (lower_lr, moved)
        assert model(prevs).shape == (1, 32, 32, 3)
        weights.setdefault(lower_lr, []).append(model.get_weights())
    for first, second in zip(*weights[5e-5]):  # seeded: the same run twice
        np.testing.assert_array_equal(first, second)
    model.save(tmp_path / "joint.keras")
    loaded = keras.saving.load_model(tmp_path / "joint.keras")
    assert loaded.lower_sizes == [(24, 24)] and loaded.lower_noise_amps == [0.5]
    np.testing.assert_array_equal(loaded.reconstruct().numpy(), model.reconstruct().numpy())
    with pytest.raises(ValueError, match="1 lower generators need as many optimizers"):
        model.compile(d_optimizer=keras.optimizers.Adam(), g_optimizer=keras.optimizers.Adam())


def test_lower_generators_train_as_copies_at_a_rate_scaled_per_scale_down():
    cfg = SinGANConfig(coarse_scales=3, coarse_joint_stages=3, joint_lr_scale=0.1)
    lower = [TrainedScale(Generator(32), 0.5, np.zeros((1, h, h, c), np.float32), (h, h))
             for h, c in [(20, 1), (24, 3)]]
    for scale in lower:
        scale.generator([tf.zeros((1, 4, 4, 3))] * 2)
        scale.generator.trainable = False
    model = build_scale(cfg, 2, (28, 28), lower_scales=lower)
    compile_scale(model, cfg, iterations=100)
    rates = [float(ops.convert_to_tensor(o.learning_rate)) for o in model.lower_g_optimizers]
    assert rates == pytest.approx([5e-6, 5e-5])  # two scales down, one scale down
    assert model.input_size == (20, 20) and model.redraw_z_opt == cfg.redraws_z_opt(0)
    for copy, original in zip(model.lower_generators, lower):
        assert copy is not original.generator and copy.trainable
        for a, b in zip(copy.get_weights(), original.generator.get_weights()):
            np.testing.assert_array_equal(a, b)
