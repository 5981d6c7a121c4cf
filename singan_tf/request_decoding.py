"""Request tensors (gRPC TensorProto or REST JSON) -> numpy arrays, checked before decoding.

`tf.make_ndarray` trusts a TensorProto: a 40-byte request that *declares* 500M doubles and
carries one value is broadcast to 4 GB. Here the dtype and declared shape are checked
against the signature first, the element count against a limit, and the values carried
must be exactly the ones declared; floats must be finite and integers must fit their dtype
(numpy would wrap 2**32 + 1 to 1 in an int32). Every failure is a `RequestError` with the
TF Serving code to answer: INVALID_ARGUMENT, or RESOURCE_EXHAUSTED for a too-large request.
"""
from __future__ import annotations

import base64
import binascii
import math

import grpc
import numpy as np
import tensorflow as tf


class RequestError(Exception):
    """A request the server refuses: a gRPC status code and a one-line message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def not_found(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.NOT_FOUND, message)


def invalid(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def too_large(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, message)


# The TensorProto field that carries each dtype's values when tensor_content is empty.
_VALUE_FIELDS = {tf.float32: "float_val", tf.float64: "double_val", tf.int64: "int64_val",
                 tf.int32: "int_val", tf.int16: "int_val", tf.int8: "int_val",
                 tf.uint8: "int_val", tf.uint16: "int_val", tf.bool: "bool_val"}


def _dtype_name(enum: int) -> str:
    try:
        return tf.dtypes.as_dtype(enum).name
    except TypeError:
        return f"dtype {enum}"


def _checked_shape(dims, spec: tf.TensorSpec, name: str, max_elements: int) -> list[int]:
    dims = [int(d) for d in dims]
    if any(d < 0 for d in dims):
        raise invalid(f"input {name} declares a negative dimension: {dims}")
    if not spec.shape.is_compatible_with(dims):
        raise invalid(f"input {name} must have shape {spec.shape}, got {dims}")
    if math.prod(dims) > max_elements:
        raise too_large(f"input {name} declares {math.prod(dims)} values, more than the "
                        f"limit of {max_elements}")
    return dims


def check_values(array: np.ndarray, spec: tf.TensorSpec, name: str) -> np.ndarray:
    """The array as spec's dtype: floats finite after the cast, integers within range."""
    if spec.dtype == tf.string:
        return array
    if spec.dtype.is_integer:
        info = np.iinfo(spec.dtype.as_numpy_dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise invalid(f"input {name} is out of range for {spec.dtype.name} "
                          f"[{info.min}, {info.max}]")
    with np.errstate(over="ignore"):  # a float64 beyond float32 becomes inf: refused below
        array = array.astype(spec.dtype.as_numpy_dtype)
    if spec.dtype.is_floating and not np.all(np.isfinite(array)):
        raise invalid(f"input {name} must be finite {spec.dtype.name} values")
    return array


def from_tensor_proto(proto, spec: tf.TensorSpec, name: str, max_elements: int) -> np.ndarray:
    """A gRPC request's tensor as spec's dtype, or RequestError; nothing is decoded (or
    allocated) before its dtype, shape and size have been checked."""
    if proto.dtype != spec.dtype.as_datatype_enum:
        raise invalid(f"input {name} must be {spec.dtype.name}, got {_dtype_name(proto.dtype)}")
    if proto.tensor_shape.unknown_rank:
        raise invalid(f"input {name} must have shape {spec.shape}, got an unknown rank")
    dims = _checked_shape((d.size for d in proto.tensor_shape.dim), spec, name, max_elements)
    count = math.prod(dims)
    if spec.dtype == tf.string:
        values = proto.string_val
        if len(values) != count:
            raise invalid(f"input {name} declares {count} values but carries {len(values)}")
        return np.array(list(values), dtype=object).reshape(dims)
    dtype = np.dtype(spec.dtype.as_numpy_dtype).newbyteorder("<")  # TF's wire order
    if proto.tensor_content:
        if len(proto.tensor_content) != count * dtype.itemsize:
            raise invalid(f"input {name}: tensor_content holds {len(proto.tensor_content)} "
                          f"bytes, {count} x {dtype.itemsize} declared")
        array = np.frombuffer(proto.tensor_content, dtype=dtype).reshape(dims)
    else:
        values = getattr(proto, _VALUE_FIELDS[spec.dtype])
        if len(values) != count:
            raise invalid(f"input {name} declares {count} values but carries {len(values)}")
        wide = np.float64 if spec.dtype.is_floating else np.int64 if spec.dtype.is_integer \
            else np.bool_
        array = np.fromiter(values, dtype=wide, count=count).reshape(dims)
    return check_values(array, spec, name)


def from_json(value, spec: tf.TensorSpec, name: str, max_elements: int) -> np.ndarray:
    """A REST request's tensor (nested lists, numbers, {"b64": ...}) as spec's dtype."""
    if spec.dtype == tf.string:
        array = np.array(_decode_b64(value, name), dtype=object)
    else:
        if not _numbers_only(value):
            raise invalid(f"input {name} must hold only numbers ({spec.dtype.name})")
        try:
            array = np.array(value)
        except ValueError:
            raise invalid(f"input {name} is not a rectangular array") from None
        if spec.dtype.is_integer and array.dtype.kind not in "iub":
            raise invalid(f"input {name} must hold integers ({spec.dtype.name})")
    if array.dtype == object and spec.dtype != tf.string:
        raise invalid(f"input {name} is not a rectangular array")
    _checked_shape(array.shape, spec, name, max_elements)
    return check_values(array, spec, name)


def _numbers_only(value) -> bool:
    if isinstance(value, list):
        return all(_numbers_only(v) for v in value)
    return isinstance(value, (int, float))


def _decode_b64(value, name):
    if isinstance(value, list):
        return [_decode_b64(v, name) for v in value]
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise invalid(f"input {name} is not valid base64") from None
    raise invalid(f"input {name} must be {{\"b64\": \"...\"}} (binary data)")
