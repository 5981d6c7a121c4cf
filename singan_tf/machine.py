"""What CPU this is, printed with every figure and every fit's diagnosis: oneDNN picks its
kernels by ISA (AVX2, AVX-512, AMX), and results and speed depend on which it picked."""
from __future__ import annotations

import platform
from pathlib import Path

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
             "amx_tile", "amx_bf16")


def _cpuinfo() -> dict:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor is enough
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_model() -> str:
    return _cpuinfo().get("model name") or platform.processor() or "unknown CPU"


def isa_flags() -> list[str]:
    """The ISA extensions oneDNN dispatches on that this CPU has."""
    flags = set(_cpuinfo().get("flags", "").split())
    return [flag for flag in ISA_FLAGS if flag in flags]


def fast_bfloat16() -> bool:
    """Whether training in bfloat16 is likely to pay here: the CPU has native bfloat16
    dot products (AVX512_BF16) without AMX, and TensorFlow sees no GPU (untested there).

    Not with AMX: there oneDNN computes bfloat16 weight gradients with its AMX kernel
    (brgconv_bwd_w), which returned NaN from finite inputs mid-training on an Intel Xeon
    (docs/performance.md, session 43), while float32 trained the same stages."""
    flags = set(isa_flags())
    if "avx512_bf16" not in flags or "amx_bf16" in flags:
        return False
    import tensorflow as tf  # only here: the rest of this module is read without it
    return not tf.config.list_physical_devices("GPU")


def describe() -> str:
    """One line: model, vendor and ISA flags, e.g. for a benchmark's header."""
    info = _cpuinfo()
    return (f"{cpu_model()} ({info.get('vendor_id', '?')}); "
            f"ISA: {' '.join(isa_flags()) or 'none of ' + ', '.join(ISA_FLAGS)}")
