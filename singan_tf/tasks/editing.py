"""Editing and harmonization: inject an edited / naively pasted image, keep the result only
inside the (dilated, blurred) mask, as the reference and the official code do."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ..errors import SinGANError
from ..images import load_mask, to_uint8
from .injection import inject, load_reference

EDIT_DILATION = 20          # px disk, reference "editing"
HARMONIZE_DILATION = 7      # px disk, reference "harmonization"
MASK_BLUR_SIGMA = 5.0


@dataclass
class BlendResult:
    raw: np.ndarray        # uint8 HxWx3: the generator output everywhere
    blended: np.ndarray    # uint8 HxWx3: raw inside the mask, the input outside
    mask: np.ndarray       # float HxW in [0, 1]: the blend weight actually used
    notes: list


def _disk(radius: int) -> np.ndarray:
    """Structuring element for tf.nn.dilation2d: 0 inside the disk, very negative outside."""
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return np.where(yy ** 2 + xx ** 2 <= radius ** 2, 0.0, -1e9).astype(np.float32)[..., None]


def _gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy.ndimage.gaussian_filter's kernel (radius int(truncate * sigma + 0.5))."""
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).astype(np.float32)


def resize_mask(mask, size):
    """[1, h, w] in [0, 1] -> [1, H, W], bilinear with antialiasing: the CLI's edits and
    the exported signatures resize masks alike."""
    return tf.image.resize(tf.cast(mask, tf.float32)[..., None], size, "bilinear",
                           antialias=True)[..., 0]


def blend_mask(mask, dilation: int, sigma: float = MASK_BLUR_SIGMA):
    """Blend weights from a mask [1, H, W] in [0, 1]: binarized, dilated by a disk of
    `dilation` px, Gaussian-blurred (scipy's kernel, zero beyond 4 sigma), in TF ops, so
    the CLI and the exported edit/harmonize signatures run the same code. An empty or
    full mask fails an assertion (the CLI checks first for a clearer message)."""
    binary = tf.cast(mask > 0.5, tf.float32)[..., None]
    checks = [
        tf.debugging.assert_greater(tf.reduce_max(binary), 0.0, "the mask is empty (all black)"),
        tf.debugging.assert_less(tf.reduce_min(binary), 1.0, "the mask covers the whole image")]
    with tf.control_dependencies(checks):
        binary = tf.identity(binary)
    dilated = tf.nn.dilation2d(binary, _disk(dilation), [1, 1, 1, 1], "SAME", "NHWC",
                               [1, 1, 1, 1])
    kernel = _gaussian_kernel(sigma)
    pad = len(kernel) // 2
    x = tf.pad(dilated, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="SYMMETRIC")
    x = tf.nn.conv2d(x, kernel.reshape(-1, 1, 1, 1), 1, "VALID")
    x = tf.nn.conv2d(x, kernel.reshape(1, -1, 1, 1), 1, "VALID")
    return tf.clip_by_value(x[..., 0], 0.0, 1.0)


def composite(generated, image, weights):
    """The regenerated image where `weights` [N, H, W] is 1, the input where it is 0."""
    weights = tf.cast(weights, tf.float32)[..., None]
    return weights * generated + (1.0 - weights) * image


def default_start_scale(model, task: str) -> int:
    """Fine enough to keep the input's structure: N-3 for edits, N-2 for harmonization."""
    back = 3 if task == "edit" else 2
    return max(1, model.num_scales - 1 - back)


def _inject_and_blend(model, image_path, mask_path, start_scale, dilation, sigma, seed, what):
    notes = []
    image, original_size = load_reference(model, image_path, notes, what)
    mask = load_mask(mask_path, original_size, notes, max_side=max(image.shape[:2]))
    mask = resize_mask(mask[None], image.shape[:2])
    binary = mask.numpy() > 0.5
    if not binary.any():
        raise SinGANError("the mask is empty (all black): nothing to change")
    if binary.all():
        raise SinGANError("the mask covers the whole image; use paint2image (no mask) instead")
    weights = blend_mask(mask, dilation, sigma)
    raw = inject(model, image, start_scale, seed=seed)
    blended = composite(raw, image[None], weights).numpy()[0]
    return BlendResult(to_uint8(raw[0]), to_uint8(blended), weights[0].numpy(), notes)


def edit(model, edited_path, mask_path, start_scale=None, seed=None,
         dilation=EDIT_DILATION, sigma=MASK_BLUR_SIGMA) -> BlendResult:
    """Make a crude edit look natural: regenerate inside the mask from `start_scale` up.

    dilation (px) and sigma are the reference's for ~250 px images; scale them with yours.
    """
    start_scale = default_start_scale(model, "edit") if start_scale is None else start_scale
    return _inject_and_blend(model, edited_path, mask_path, start_scale, dilation, sigma, seed,
                             "edited image")


def harmonize(model, naive_path, mask_path, start_scale=None, seed=None,
              dilation=HARMONIZE_DILATION, sigma=MASK_BLUR_SIGMA) -> BlendResult:
    """Match a pasted object's texture and colour to the training image."""
    start_scale = default_start_scale(model, "harmonize") if start_scale is None else start_scale
    return _inject_and_blend(model, naive_path, mask_path, start_scale, dilation, sigma, seed,
                             "naive image")
