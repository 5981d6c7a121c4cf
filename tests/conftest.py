"""Shared fixtures: tiny synthetic images and one small model fitted once per session."""
import shutil

import numpy as np
import pytest
from PIL import Image

import singan_tf

# 3 scales of 24-48 px (the finest trained on 32 px windows), a few dozen iterations of one
# critic and one generator step: seconds per scale, mostly tracing (which grows with the
# steps; test_models trains the full 3 + 3 step).
TINY = singan_tf.FAST.replace(max_size=40, min_size=24, iters_per_scale=100, coarse_scales=0,
                              crop_size=32, steps_per_execution=10, critic_steps=1,
                              generator_steps=1)


def make_image(height=40, width=48, seed=0) -> np.ndarray:
    """A small RGB picture with structure at several scales (stripes, a disc, noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    stripes = (np.sin(xx / 3.0) > 0) * 150 + 50
    disc = ((yy - height / 2) ** 2 + (xx - width / 3) ** 2 < (height / 4) ** 2) * 200
    noise = rng.integers(0, 60, (height, width))
    return np.stack([stripes, disc + 30, noise + xx * 2], axis=-1).clip(0, 255).astype(np.uint8)


def write_image(path, height=40, width=48, mode="RGB", seed=0):
    image = Image.fromarray(make_image(height, width, seed))
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_image(tmp_path_factory):
    return write_image(tmp_path_factory.mktemp("images") / "tiny.png")


@pytest.fixture(scope="session")
def fitted_model_dir(tmp_path_factory, tiny_image):
    """A finished 3-scale model directory; copy it before changing anything in it."""
    model_dir = tmp_path_factory.mktemp("models") / "tiny"
    singan_tf.fit(tiny_image, model_dir, TINY, seed=1, verbose=0)
    return model_dir


@pytest.fixture(scope="session")
def fitted_model(fitted_model_dir):
    return singan_tf.load(fitted_model_dir)


@pytest.fixture
def model_copy(fitted_model_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(fitted_model_dir, target)
    return target


@pytest.fixture(scope="session")
def sr_model(tmp_path_factory, tiny_image):
    """A 3-scale model trained for x2 super-resolution (24x28 training image)."""
    model_dir = tmp_path_factory.mktemp("models") / "sr"
    return singan_tf.fit(tiny_image, model_dir, TINY.replace(max_size=28), seed=2, verbose=0,
                         task="sr", sr_factor=2.0)
