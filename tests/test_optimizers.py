import keras
import numpy as np
import pytest
import tensorflow as tf

from singan_tf.optimizers import FusedAdam


def _variables(rng):
    return [keras.Variable(rng.standard_normal(shape).astype("float32"))
            for shape in [(3, 3, 4, 5), (5,)]]


def test_fused_adam_takes_the_steps_keras_adam_takes():
    """Same weights and moments as keras.optimizers.Adam over a learning-rate cut, in a graph
    (as in the train step); a wrong bias correction or moment update drifts by ~1e-4."""
    rng = np.random.default_rng(0)
    reference, fused = _variables(rng), _variables(np.random.default_rng(0))

    def schedule():
        return keras.optimizers.schedules.PiecewiseConstantDecay([3], [5e-3, 5e-4])
    keras_adam = keras.optimizers.Adam(schedule(), beta_1=0.5, beta_2=0.999)
    fused_adam = FusedAdam(schedule(), beta_1=0.5, beta_2=0.999)
    keras_adam.build(reference)
    fused_adam.build(fused)
    apply_reference = tf.function(lambda grads: keras_adam.apply(grads, reference))
    apply_fused = tf.function(lambda gradients: fused_adam.apply(gradients, fused))
    start = [w.numpy() for w in fused]
    for _ in range(8):
        grads = [tf.constant(rng.standard_normal(w.shape).astype("float32")) for w in fused]
        apply_reference(grads)
        apply_fused(grads)
    assert int(fused_adam.iterations) == 8
    assert not np.allclose(start[0], fused[0].numpy(), atol=1e-3)  # it did move
    for ours, theirs in zip(fused + fused_adam.variables, reference + keras_adam.variables):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-6)


def test_fused_adam_round_trips_its_config():
    optimizer = FusedAdam(1e-3, beta_1=0.5, beta_2=0.99)
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(optimizer))
    assert isinstance(copy, FusedAdam)
    assert (copy.beta_1, copy.beta_2) == (0.5, 0.99)


def test_fused_adam_refuses_amsgrad():
    with pytest.raises(ValueError, match="amsgrad"):
        FusedAdam(amsgrad=True)
