"""Batch Renormalization (Ioffe, 2017) for G's BatchNorm on windowed scales.

A windowed scale trains on one random crop of the image per iteration. Normalizing each
window by its own statistics trains a G whose colours drift on the whole image; normalizing
by the statistics inherited from the coarser scale, frozen, lets G's weights grow unchecked
until tanh saturates and the scale collapses now and then (issue 11, docs/performance.md).
Batch Renormalization takes the values of normalizing by the moving statistics, lets the
gradient see the window's normalization, and moves the statistics with the weights: no
scale trained so has collapsed, but samples came out softer or grainier (32 channels) or
no better (64), so the trainer uses it to retrain a collapsed scale, or from the first
attempt when asked (`renormalize_windows`).
"""
from __future__ import annotations

import keras
from keras import ops

WINDOW_CLIPPING = {"rmin": 1 / 3, "rmax": 3.0, "dmax": 5.0}  # the paper's final limits
WINDOW_MOMENTUM = 0.99  # the moving statistics average ~100 windows


class BatchRenormalization(keras.layers.BatchNormalization):
    """BatchNormalization that renormalizes a batch when called with `renormalize=True` in
    training: the batch's normalization times r = std / moving_std plus d = (mean -
    moving_mean) / moving_std, both clipped (`renorm_clipping`) and not differentiated,
    then the moving statistics a step (1 - `renorm_momentum`) towards the batch's. Called
    otherwise it is BatchNormalization, weights included (generators saved before it, whose
    weights Keras filed under BatchNormalization's name, are renamed on load: model_dir).

    Not Keras's `renorm=True`: that renormalizes every training call (whole-image scales
    normalize by the image's own statistics), and adds three statistics per layer that
    start at 0 and 1 instead of from the inherited moving ones, changing the saved weights.
    """

    def __init__(self, renorm_clipping=None, renorm_momentum=WINDOW_MOMENTUM, **kwargs):
        kwargs.pop("renorm", None)
        super().__init__(renorm=False, renorm_clipping=renorm_clipping or WINDOW_CLIPPING,
                         renorm_momentum=renorm_momentum, **kwargs)

    def call(self, inputs, training=None, mask=None, renormalize=False):
        if not (training and renormalize):
            return super().call(inputs, training=training, mask=mask)
        axes = [i for i in range(len(inputs.shape)) if i != self.axis % len(inputs.shape)]
        mean, variance = ops.moments(inputs, axes=axes)
        moving_std = ops.sqrt(self.moving_variance + self.epsilon)
        clip = self.renorm_clipping
        r = ops.stop_gradient(ops.clip(ops.sqrt(variance + self.epsilon) / moving_std,
                                       clip["rmin"], clip["rmax"]))
        d = ops.stop_gradient(ops.clip((mean - self.moving_mean) / moving_std,
                                       -clip["dmax"], clip["dmax"]))
        step = 1.0 - self.renorm_momentum
        self.moving_mean.assign(self.moving_mean + step * (mean - self.moving_mean))
        self.moving_variance.assign(self.moving_variance + step * (variance
                                                                   - self.moving_variance))
        return ops.batch_normalization(inputs, mean, variance, axis=self.axis,
                                       offset=d * self.gamma + self.beta,
                                       scale=r * self.gamma, epsilon=self.epsilon)
