"""Is a freshly trained scale healthy? The check that keeps a fit from failing silently.

A scale is trained to turn its reconstruction input (the coarser scale's reconstruction,
upsampled) into the real image. A healthy scale's reconstruction is closer to the real
image than that input; a diverged one (NaN weights, or the collapse seen on an AMD Zen 4
CPU, docs/performance.md) is far worse, and every finer scale inherits the damage. So a
scale fails the check when its reconstruction error is not finite, or more than
`TOLERANCE` times the error of what it was given (scale 0 is given zeros; its baseline is
the error of the image's mean colour, what a constant output would score). An error floor
keeps inputs close to perfect from turning rounding noise into failures (`ROUNDING_FLOOR`).
A scale trained fewer than `SHORT_FIT_ITERATIONS` iterations gets a far higher floor,
`SHORT_FIT_FLOOR` (nothing under MSE 0.1, 16 dB, fails): it may be under-trained, not
broken (a 30-iteration super-resolution test scale leaves a 29 dB input at 20 dB). A real
fit's scale does not get it: the finest scale of the rocket once collapsed to 24.8 dB from
an input at 28.9 dB (2.6x the error; a green rocket), which a 16 dB floor let pass, while
no healthy scale of the ~870 in the fits on record was worse than 1.9x its input
(docs/performance.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TOLERANCE = 2.0
ROUNDING_FLOOR = 1e-3
SHORT_FIT_FLOOR = 0.05
SHORT_FIT_ITERATIONS = 200


def mse(a, b) -> float:
    return float(np.mean(np.square(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def psnr(error: float) -> float:
    """PSNR in dB of a mean squared error measured on images in [-1, 1]."""
    if not math.isfinite(error):
        return math.nan
    return 10 * math.log10(4.0 / error) if error > 0 else math.inf


@dataclass(frozen=True)
class ScaleHealth:
    """Reconstruction error of one scale next to the error of its input (both MSE, [-1, 1]),
    and the floor under that input's error that the check uses (see the module docstring)."""

    rec_error: float
    input_error: float
    floor: float

    @classmethod
    def measure(cls, real, reconstruction, rec_input, scale: int,
                iterations: int) -> "ScaleHealth":
        real = np.asarray(real).reshape(-1, 3)
        baseline = (real.mean(axis=0) if scale == 0
                    else np.asarray(rec_input).reshape(-1, 3))
        floor = SHORT_FIT_FLOOR if iterations < SHORT_FIT_ITERATIONS else ROUNDING_FLOOR
        return cls(mse(np.asarray(reconstruction).reshape(-1, 3), real), mse(baseline, real),
                   floor)

    @property
    def healthy(self) -> bool:
        return (math.isfinite(self.rec_error)
                and self.rec_error <= TOLERANCE * max(self.input_error, self.floor))

    def describe(self) -> str:
        return (f"reconstruction error {self.rec_error:.4g} ({psnr(self.rec_error):.1f} dB) "
                f"against {self.input_error:.4g} for its input")

    def to_dict(self) -> dict:
        """For the manifest: strict JSON, so a non-finite error is written as null."""
        def finite(value):
            return value if math.isfinite(value) else None
        return {"rec_error": finite(self.rec_error), "input_error": finite(self.input_error),
                "rec_psnr_db": finite(round(psnr(self.rec_error), 2))}
