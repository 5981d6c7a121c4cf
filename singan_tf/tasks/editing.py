"""Editing and harmonization: inject an edited / naively pasted image, keep the result only
inside the (dilated, blurred) mask, as the reference and the official code do."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import disk

from ..errors import SinGANError
from ..images import load_mask, resize_mask, to_uint8
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


def blend_mask(mask: np.ndarray, dilation: int, sigma: float = MASK_BLUR_SIGMA) -> np.ndarray:
    """Binary mask -> dilated by a disk -> Gaussian-blurred weights (zero beyond 4 sigma)."""
    binary = mask > 0.5
    if not binary.any():
        raise SinGANError("the mask is empty (all black): nothing to change")
    if binary.all():
        raise SinGANError("the mask covers the whole image; use paint2image (no mask) instead")
    dilated = ndimage.binary_dilation(binary, structure=disk(dilation))
    return np.clip(ndimage.gaussian_filter(dilated.astype(np.float32), sigma, truncate=4.0), 0, 1)


def default_start_scale(model, task: str) -> int:
    """Fine enough to keep the input's structure: N-3 for edits, N-2 for harmonization."""
    back = 3 if task == "edit" else 2
    return max(1, model.num_scales - 1 - back)


def _inject_and_blend(model, image_path, mask_path, start_scale, dilation, sigma, seed, what):
    notes = []
    image, original_size = load_reference(model, image_path, notes, what)
    mask = resize_mask(load_mask(mask_path, original_size, notes), image.shape[:2])
    weights = blend_mask(mask, dilation, sigma)[..., None]
    raw = inject(model, image, start_scale, seed=seed)[0]
    blended = weights * raw + (1 - weights) * image
    return BlendResult(to_uint8(raw), to_uint8(blended), weights[..., 0], notes)


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
