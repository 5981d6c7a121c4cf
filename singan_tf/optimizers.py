"""Adam on TensorFlow's fused kernel: the same update as keras.optimizers.Adam, fewer ops.

Keras 3 writes Adam's update as about twenty small ops per variable (casts, powers, two
moment updates, the step), and a SinGAN train step applies it to 18 variables six times
per iteration: a third of the step's ops, on scales whose cost is per-op overhead, not
arithmetic (docs/performance.md). TensorFlow's `ResourceApplyAdam` kernel does the same
update of one variable and its two moments in one op (the kernel tf.keras 2's Adam used):

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
    w <- w - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
"""
from __future__ import annotations

import keras
import tensorflow as tf

from .models import PACKAGE


@keras.saving.register_keras_serializable(PACKAGE)
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam (no amsgrad), each variable updated by one fused op."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("FusedAdam has no amsgrad; use keras.optimizers.Adam")

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]), beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype),
            beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype))


def _handle(variable):
    """The resource handle of a Keras or a tf.Variable."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle
