"""Feeding an image into the pyramid at scale n >= 1: the mechanism behind paint-to-image,
editing and harmonization (reference: "Using a trained model")."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..images import image_size, load_image, to_uint8
from ..pyramid import resize
from ..seeds import resolve_seed


def check_injection_scale(model, start_scale: int) -> None:
    """Injection blurs the image to the scale below start_scale, so it needs one: 1..N-1."""
    model.require_pyramid("injecting an image (paint2image, edit, harmonize)")
    model.check_start_scale(start_scale, lowest=1, what=" for injection")


def load_reference(model, path, notes: list, what: str = "image"):
    """Read an image to inject, resized to the finest training size (with a note if it was).

    Returns the image and its size in the file, against which a mask is checked. A large
    file is shrunk while it is read (`load_image`'s max_side), never held at full size.
    """
    target = tuple(model.sizes[-1])
    image, conversion_notes = load_image(path, max_side=max(target))
    notes.extend(conversion_notes)
    original_size = image_size(path)
    if original_size != target:
        notes.append(f"{what} is {original_size[0]}x{original_size[1]}; resized to the "
                     f"model's {target[0]}x{target[1]}")
        image = resize(tf.constant(image[None]), target)[0].numpy()
    return image, original_size


def inject(model, image: np.ndarray, start_scale: int, seed: int | None = None,
           num: int = 1, pyramid=None) -> np.ndarray:
    """Run scales start_scale..N on `image` (float HxWx3 in [-1, 1], finest size): see
    `Pyramid.inject`. Returns float [num, H, W, 3]. `pyramid` replaces the model's (e.g.
    with a fine-tuned generator)."""
    check_injection_scale(model, start_scale)
    pyramid = pyramid or model.pyramid
    out = pyramid.inject(tf.constant(image[None], tf.float32), start_scale,
                         resolve_seed(seed), num)
    return out.numpy()


def inject_uint8(*args, **kwargs) -> np.ndarray:
    return to_uint8(inject(*args, **kwargs))
