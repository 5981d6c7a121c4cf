"""How much output one piece of work may make, checked before the work starts.

Sampling memory grows with the output's pixels: about 440 bytes per output pixel for a
32-channel model (the `fast` preset; measured, docs/performance.md "Memory of sampling"),
about four times that for the paper's 128-channel finest scales.
"""
from __future__ import annotations

from .errors import SinGANError

CLI_MAX_PIXELS = 16 * 2 ** 20      # per generated batch of the CLI: ~7 GiB at 32 channels
SERVING_MAX_PIXELS = 2 * 2 ** 20   # per request: a served 32-channel model stays under 2 GiB
SERVING_MAX_REQUEST_BYTES = 32 * 2 ** 20  # a 4K PNG, or a raw 1920x1080 image as int_val
MAX_ANIMATION_FRAMES = 10_000      # the GIF writer keeps every frame (1 byte per pixel)


def check_pixels(pixels: int, limit: int, what: str, option: str = "--max-pixels") -> None:
    """Refuse `what` (e.g. "a 4000x3000 sample") when its output exceeds `limit` pixels."""
    if pixels > limit:
        raise SinGANError(f"{what} is {pixels:,} output pixels, over the limit of {limit:,} "
                          f"(about 440 bytes of memory each at 32 channels); {option} "
                          "raises the limit")
