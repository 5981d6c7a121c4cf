"""Property-based tests of request decoding: whatever a client sends, the answer is an
array of exactly the declared values or a RequestError with a TF Serving code, never an
exception of another kind, and never a tensor larger than the limit."""
import grpc
import numpy as np
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from singan_tf.request_decoding import RequestError, from_json, from_tensor_proto

IMAGE = tf.TensorSpec([1, None, None, 3], tf.uint8)
SCALE = tf.TensorSpec([], tf.float32)
COUNT = tf.TensorSpec([], tf.int32)
LIMIT = 10_000
CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}


def decoded_or_refused(decode, *args):
    try:
        return decode(*args)
    except RequestError as err:
        assert err.code in CODES and err.message
        return None


@settings(max_examples=300, deadline=None)
@given(dims=st.lists(st.integers(-3, 40_000), max_size=5),
       values=st.lists(st.integers(-2 ** 31, 2 ** 31 - 1), max_size=50),
       content=st.one_of(st.none(), st.binary(max_size=200)),
       dtype=st.sampled_from([tf.uint8, tf.int32, tf.float32, tf.string]))
def test_any_tensor_proto_is_decoded_exactly_or_refused(dims, values, content, dtype):
    proto = tf.make_tensor_proto(0, dtype=dtype if dtype != tf.string else tf.uint8)
    proto.dtype = dtype.as_datatype_enum
    proto.ClearField("int_val")
    proto.tensor_shape.ClearField("dim")
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    if content is not None:
        proto.tensor_content = content
    elif dtype == tf.float32:
        proto.float_val.extend(float(v) for v in values)
    elif dtype != tf.string:
        proto.int_val.extend(values)
    array = decoded_or_refused(from_tensor_proto, proto, IMAGE, "image", LIMIT)
    if array is not None:
        assert array.dtype == np.uint8 and list(array.shape) == dims
        assert array.size <= LIMIT and array.shape[0] == 1 and array.shape[3] == 3
        if content is None:
            np.testing.assert_array_equal(array.ravel(), values)  # no wrap, no broadcast


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
              st.fixed_dictionaries({"b64": st.text(max_size=8)})),
    lambda children: st.lists(children, max_size=4), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(value=json_values, spec=st.sampled_from([IMAGE, SCALE, COUNT]))
def test_any_json_value_is_decoded_exactly_or_refused(value, spec):
    array = decoded_or_refused(from_json, value, spec, "x", LIMIT)
    if array is not None:
        assert array.dtype == spec.dtype.as_numpy_dtype
        assert spec.shape.is_compatible_with(array.shape)
        if spec.dtype.is_floating:
            assert np.all(np.isfinite(array))
        else:
            np.testing.assert_array_equal(array, np.asarray(value, dtype=np.int64))
