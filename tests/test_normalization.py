import io
import zipfile

import h5py
import numpy as np
import keras
import pytest
import tensorflow as tf

from singan_tf import model_dir as fmt
from singan_tf.models import Discriminator, Generator
from singan_tf.normalization import BatchRenormalization


def _layer(moving_mean=0.5, moving_variance=4.0, channels=4, **kwargs):
    layer = BatchRenormalization(momentum=0.9, epsilon=1e-5, **kwargs)
    layer.build((None, 6, 7, channels))
    layer.gamma.assign(np.linspace(0.5, 2.0, channels))
    layer.beta.assign(np.linspace(-1.0, 1.0, channels))
    layer.moving_mean.assign(tf.fill([channels], moving_mean))
    layer.moving_variance.assign(tf.fill([channels], moving_variance))
    return layer


def _batch(seed=0, mean=0.3, std=1.5):
    return tf.constant(np.random.default_rng(seed).normal(mean, std, (2, 6, 7, 4)),
                       tf.float32)


def test_renormalized_values_are_those_of_the_moving_statistics():
    layer, x = _layer(), _batch()  # r = 1.5 / 2 and d = -0.1 are inside the clipping
    expected = layer(x, training=False).numpy()
    np.testing.assert_allclose(layer(x, training=True, renormalize=True).numpy(), expected,
                               atol=1e-5)


def test_renormalized_gradient_is_the_batch_normalization_gradient_times_r():
    """The gradient sees the batch's normalization (what keeps G's weights in check),
    scaled by the non-differentiated r; the moving normalization's would be constant."""
    x = _batch()
    weights = tf.constant(np.random.default_rng(1).normal(size=(4,)), tf.float32)
    layers = {"batch": _layer(), "renorm": _layer(), "moving": _layer()}
    calls = {"batch": dict(training=True), "renorm": dict(training=True, renormalize=True),
             "moving": dict(training=False)}
    gradients = {}
    for name, layer in layers.items():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(layer(x, **calls[name]) - 0.7) * weights)
        gradients[name] = tape.gradient(loss, x).numpy()
    # d loss / d out is the same for renorm and moving (same values): compare through it.
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = _layer()(x, training=False)
    outer = (2 * (out - 0.7) * weights).numpy()
    with tf.GradientTape() as tape:
        tape.watch(x)
        batch = _layer()(x, training=True)
    batch_jvp = tape.gradient(batch, x, output_gradients=tf.constant(outer)).numpy()
    variance = tf.math.reduce_variance(x, axis=[0, 1, 2]).numpy()
    r = np.sqrt((variance + 1e-5) / (4.0 + 1e-5))
    assert np.all(np.abs(r - 1) > 0.1)  # the comparison below can tell r from 1
    np.testing.assert_allclose(gradients["renorm"], batch_jvp * r, rtol=1e-4, atol=1e-5)
    assert not np.allclose(gradients["renorm"], gradients["moving"], atol=1e-3)


def test_corrections_are_clipped_when_the_statistics_are_far_off():
    layer, x = _layer(moving_mean=0.0, moving_variance=400.0), _batch(std=1.0)
    out = layer(x, training=True, renormalize=True).numpy()
    mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
    normalized = (x - mean) / tf.sqrt(variance + 1e-5)
    expected = (normalized / 3.0 + (mean / 20.0)) * layer.gamma + layer.beta  # r at 1/3
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-4)


def test_moving_statistics_step_towards_the_batch_at_the_renorm_momentum():
    layer, x = _layer(), _batch()
    mean, variance = (v.numpy() for v in tf.nn.moments(x, axes=[0, 1, 2]))
    layer(x, training=True, renormalize=True)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.99 * 0.5 + 0.01 * mean, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.99 * 4.0 + 0.01 * variance,
                               rtol=1e-5)


@pytest.mark.parametrize("training", [False, True])
def test_without_renormalize_it_is_batch_normalization(training):
    layer, x = _layer(), _batch()
    reference = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    np.testing.assert_allclose(layer(x, training=training).numpy(),
                               reference(x, training=training).numpy(), atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(),
                               reference.moving_variance.numpy(), rtol=1e-6)


def test_generator_weights_are_those_of_batch_normalization():
    """Renormalization adds no weights (so a generator saved before it has all of them)."""
    generator = Generator(8)
    zeros = tf.zeros((1, 20, 20, 3))
    generator([zeros, zeros])
    norms = [layer for layer in generator.blocks if isinstance(layer, BatchRenormalization)]
    assert len(norms) == 4 and all(len(layer.weights) == 4 for layer in norms)
    restored = BatchRenormalization.from_config(norms[0].get_config())
    assert restored.renorm_clipping == norms[0].renorm_clipping
    assert restored.renorm_momentum == 0.99


def _as_written_before_renormalization(path):
    """Rewrite a generator file as session 8's code wrote it: Keras names a list's layers
    after their class, and G's BatchNorm layers were keras.layers.BatchNormalization."""
    with zipfile.ZipFile(path) as archive:
        files = {item.filename: archive.read(item) for item in archive.infolist()}
    weights = io.BytesIO(files["model.weights.h5"])
    with h5py.File(weights, "r+") as store:
        for name in list(store["blocks"]):
            if name.startswith("batch_renormalization"):
                store["blocks"].move(name, name.replace("batch_renormalization",
                                                        "batch_normalization"))
    files["model.weights.h5"] = weights.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def test_a_generator_saved_before_renormalization_loads(tmp_path):
    generator, critic = Generator(8), Discriminator(8)
    noisy = tf.random.stateless_normal((1, 20, 20, 3), seed=(1, 2))
    generator([noisy, noisy])
    critic(noisy)
    for layer in generator.blocks:  # moving statistics that are not the initial ones
        if isinstance(layer, BatchRenormalization):
            layer.moving_mean.assign(tf.random.stateless_normal(layer.moving_mean.shape, (3, 4)))
    fmt.save_scale(tmp_path, 0, generator, critic, np.zeros((1, 20, 20, 3), np.float32))
    saved = fmt.scale_dir(tmp_path, 0) / "generator.keras"
    _as_written_before_renormalization(saved)
    with pytest.raises(ValueError):  # what Keras alone makes of such a file
        keras.saving.load_model(saved, compile=False)

    loaded = fmt.load_scale(tmp_path, 0).generator
    for before, after in zip(generator.weights, loaded.weights):
        np.testing.assert_array_equal(before.numpy(), after.numpy())
    np.testing.assert_array_equal(generator([noisy, noisy]).numpy(),
                                  loaded([noisy, noisy]).numpy())
