"""Export a trained SinGAN as a SavedModel in the layout TF Serving loads.

    BASE/NAME/VERSION/saved_model.pb + variables/     and     BASE/models.config

Signatures (see serving/README.md): `serving_default` samples; `paint2image`, `edit`,
`harmonize` inject an image; `super_resolve` for models trained with --task sr. Every
image signature has a `*_bytes` twin taking encoded PNG/JPEG (REST clients send
{"b64": ...}). Inputs are checked in the graph, so a bad request fails with
INVALID_ARGUMENT in TF Serving itself, and output size is capped by `max_pixels`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from .atomic import atomic_directory, write_text
from .errors import SinGANError
from .limits import SERVING_MAX_PIXELS
from .pyramid import resize
from .tasks.editing import (EDIT_DILATION, HARMONIZE_DILATION, blend_mask, composite,
                            resize_mask)
from .trained_pyramid import SAMPLE_SIGNATURE, retargeted_size, to_uint8
from .tasks.super_resolution import upscale

CONFIG_NAME = "models.config"

IMAGE = tf.TensorSpec([1, None, None, 3], tf.uint8, name="image")
MASK = tf.TensorSpec([1, None, None], tf.uint8, name="mask")
IMAGE_BYTES = tf.TensorSpec([], tf.string, name="image_bytes")
MASK_BYTES = tf.TensorSpec([], tf.string, name="mask_bytes")
START_SCALE = tf.TensorSpec([], tf.int32, name="start_scale")
SEED = tf.TensorSpec([], tf.int64, name="seed")


def _decode(data, channels):
    return tf.io.decode_image(data, channels=channels, expand_animations=False)[None]


@dataclass(frozen=True)
class ServedFacts:
    """The SavedModel's contract with a server, named once: what `SinGANServable` stores
    and `serving.PredictionCore` reads to size-check a request before running it."""
    finest_size: tuple[int, int]
    max_output_pixels: int | None  # the limit checked inside the graph (None: older export)
    sr_factor: float | None        # super-resolution models only

    @classmethod
    def of(cls, loaded) -> "ServedFacts":
        limit = getattr(loaded, "max_output_pixels", None)
        factor = getattr(loaded, "sr_factor_variable", None)
        return cls(tuple(int(v) for v in loaded.finest_size.numpy()),
                   None if limit is None else int(limit.numpy()),
                   None if factor is None else float(factor.numpy()))


class SampleServable(tf.Module):
    """What goes into the SavedModel of a model that samples only (a ConSinGAN): its
    generator and the `serving_default` signature, with the request checks."""

    def __init__(self, model, max_pixels: int = SERVING_MAX_PIXELS):
        super().__init__(name="singan")
        self.pyramid = model.pyramid
        self.sizes = [tuple(s) for s in model.sizes]
        self.num_scales = model.num_scales
        self.max_pixels = int(max_pixels)
        # Servers read these (through ServedFacts) to size-check a request before running it.
        self.finest_size = tf.Variable(self.sizes[-1], trainable=False, name="finest_size")
        self.max_output_pixels = tf.Variable(self.max_pixels, trainable=False, dtype=tf.int64,
                                             name="max_output_pixels")

    # ------------------------------------------------------------- checks
    # Each check returns its assert ops; the work runs under tf.control_dependencies on
    # them, so a bad request fails with the check's message, not an error from the work.
    def _check_pixels(self, height, width, count=1):
        # float64: the product of large sides and counts cannot wrap as an int64 could
        pixels = tf.cast(height, tf.float64) * tf.cast(width, tf.float64) * \
            tf.cast(count, tf.float64)
        return [tf.debugging.assert_less_equal(
            pixels, tf.constant(self.max_pixels, tf.float64),
            f"request too large: more than {self.max_pixels} output pixels x samples")]

    def _check_start_scale(self, start_scale, lowest):
        return [tf.debugging.assert_greater_equal(start_scale, lowest,
                                                  f"start_scale must be >= {lowest}"),
                tf.debugging.assert_less(start_scale, self.num_scales,
                                         f"start_scale must be < {self.num_scales}")]

    # ----------------------------------------------------------- sampling
    @tf.function(input_signature=SAMPLE_SIGNATURE, autograph=False)
    def sample(self, seed, num_samples, scale_h, scale_w, start_scale):
        checks = [tf.debugging.assert_positive(num_samples, "num_samples must be positive"),
                  tf.debugging.assert_positive(scale_h, "scale_h must be positive"),
                  tf.debugging.assert_positive(scale_w, "scale_w must be positive")]
        checks += self._check_start_scale(start_scale, 0)
        with tf.control_dependencies(checks):
            size = retargeted_size(*self.sizes[-1], scale_h, scale_w)
            checks = self._check_pixels(size[0], size[1], num_samples)
        with tf.control_dependencies(checks):
            return self.pyramid.sample(seed, num_samples, scale_h, scale_w, start_scale)

    def signatures(self) -> dict:
        return {"serving_default": self.sample}


class SinGANServable(SampleServable):
    """What goes into a SinGAN's SavedModel: its Pyramid and the task graphs around it."""

    def __init__(self, model, max_pixels: int = SERVING_MAX_PIXELS):
        super().__init__(model, max_pixels)
        self.sr_factor = model.manifest.get("sr_factor") if model.manifest.get("task") == "sr" \
            else None
        if self.sr_factor:  # only SR models get (and trace) the SR signatures
            self.sr_factor_variable = tf.Variable(float(self.sr_factor), trainable=False,
                                                  name="sr_factor")
            self.super_resolve = tf.function(self._super_resolve, autograph=False,
                                             input_signature=[IMAGE, SEED])
            self.super_resolve_bytes = tf.function(self._super_resolve_bytes, autograph=False,
                                                   input_signature=[IMAGE_BYTES, SEED])

    # ---------------------------------------------------------- injection
    def _prepare(self, image):
        checks = [tf.debugging.assert_positive(tf.shape(image)[1] * tf.shape(image)[2],
                                               "empty image")]
        checks += self._check_pixels(tf.shape(image)[1], tf.shape(image)[2])
        with tf.control_dependencies(checks):
            return resize(tf.cast(image, tf.float32) / 127.5 - 1.0, self.sizes[-1])

    def _inject(self, image, start_scale, seed):
        with tf.control_dependencies(self._check_start_scale(start_scale, 1)):
            return self.pyramid.inject(image, start_scale, seed)

    def _blend(self, image, mask, start_scale, seed, dilation):
        same_size = tf.debugging.assert_equal(tf.shape(mask)[1:3], tf.shape(image)[1:3],
                                              "mask and image must be the same size")
        with tf.control_dependencies([same_size]):
            image = self._prepare(image)
        mask = resize_mask(tf.cast(mask, tf.float32) / 255.0, self.sizes[-1])
        out = self._inject(image, start_scale, seed)
        return {"image": to_uint8(composite(out, image, blend_mask(mask, dilation)))}

    @tf.function(input_signature=[IMAGE, START_SCALE, SEED], autograph=False)
    def paint2image(self, image, start_scale, seed):
        return {"image": to_uint8(self._inject(self._prepare(image), start_scale, seed))}

    @tf.function(input_signature=[IMAGE_BYTES, START_SCALE, SEED], autograph=False)
    def paint2image_bytes(self, image_bytes, start_scale, seed):
        return self.paint2image(_decode(image_bytes, 3), start_scale, seed)

    @tf.function(input_signature=[IMAGE, MASK, START_SCALE, SEED], autograph=False)
    def edit(self, image, mask, start_scale, seed):
        return self._blend(image, mask, start_scale, seed, EDIT_DILATION)

    @tf.function(input_signature=[IMAGE_BYTES, MASK_BYTES, START_SCALE, SEED], autograph=False)
    def edit_bytes(self, image_bytes, mask_bytes, start_scale, seed):
        return self.edit(_decode(image_bytes, 3), _decode(mask_bytes, 1)[..., 0], start_scale,
                         seed)

    @tf.function(input_signature=[IMAGE, MASK, START_SCALE, SEED], autograph=False)
    def harmonize(self, image, mask, start_scale, seed):
        return self._blend(image, mask, start_scale, seed, HARMONIZE_DILATION)

    @tf.function(input_signature=[IMAGE_BYTES, MASK_BYTES, START_SCALE, SEED], autograph=False)
    def harmonize_bytes(self, image_bytes, mask_bytes, start_scale, seed):
        return self.harmonize(_decode(image_bytes, 3), _decode(mask_bytes, 1)[..., 0],
                              start_scale, seed)

    # --------------------------------------------------- super-resolution
    def _super_resolve(self, image, seed):
        height, width = tf.shape(image)[1], tf.shape(image)[2]
        checks = self._check_pixels(tf.round(tf.cast(height, tf.float32) * self.sr_factor),
                                    tf.round(tf.cast(width, tf.float32) * self.sr_factor))
        with tf.control_dependencies(checks):
            image = tf.identity(image)
        x = upscale(self.pyramid, tf.cast(image, tf.float32) / 127.5 - 1.0, self.sr_factor,
                    seed)
        return {"image": to_uint8(x)}

    def _super_resolve_bytes(self, image_bytes, seed):
        return self.super_resolve(_decode(image_bytes, 3), seed)

    def signatures(self) -> dict:
        names = ["paint2image", "edit", "harmonize"]
        if self.sr_factor:
            names.append("super_resolve")
        signatures = super().signatures()
        for name in names:
            signatures[name] = getattr(self, name)
            signatures[f"{name}_bytes"] = getattr(self, f"{name}_bytes")
        return signatures


def next_version(model_base: Path) -> int:
    versions = [int(p.name) for p in model_base.iterdir() if p.name.isdigit()] \
        if model_base.is_dir() else []
    return max(versions, default=0) + 1


def export(model, base_path, name: str, version: int | None = None,
           max_pixels: int = SERVING_MAX_PIXELS) -> Path:
    """Write BASE/NAME/VERSION and add NAME to BASE/models.config. Returns the version dir."""
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise SinGANError(f"model name {name!r}: use letters, digits, '-', '_' and '.'")
    base_path = Path(base_path)
    model_base = base_path / name
    model_base.mkdir(parents=True, exist_ok=True)
    version = next_version(model_base) if version is None else version
    if version < 1:
        raise SinGANError(f"version must be a positive integer, got {version}")
    target = model_base / str(version)
    if target.exists():
        raise SinGANError(f"{target} exists; pick another --version or omit it")
    # A ConSinGAN samples only (see SinGAN.require_pyramid).
    servable = (SinGANServable if model.family == "singan" else SampleServable)(model,
                                                                                max_pixels)
    # Renamed into place: a server polling BASE/NAME never sees half a model.
    with atomic_directory(target) as tmp:
        tf.saved_model.save(servable, str(tmp), signatures=servable.signatures())
    update_models_config(base_path, name)
    return target


def read_models_config(path: Path) -> model_server_config_pb2.ModelServerConfig:
    config = model_server_config_pb2.ModelServerConfig()
    if path.exists():
        try:
            text_format.Parse(path.read_text(), config)
        except text_format.ParseError as err:
            raise SinGANError(f"{path} is not a valid models.config: {err}") from None
    return config


def update_models_config(base_path: Path, name: str) -> Path:
    """Add NAME (base_path /models/NAME, the TF Serving Docker mount) unless listed."""
    path = Path(base_path) / CONFIG_NAME
    config = read_models_config(path)
    entries = config.model_config_list.config
    if not any(entry.name == name for entry in entries):
        entry = entries.add()
        entry.name = name
        entry.base_path = f"/models/{name}"
        entry.model_platform = "tensorflow"
    write_text(path, text_format.MessageToString(config))
    return path
