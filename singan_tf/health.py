"""Is a freshly trained scale healthy? The check that keeps a fit from failing silently.

A scale is trained to turn its reconstruction input (the coarser scale's reconstruction,
upsampled) into the real image. A diverged scale (NaN weights, or a collapse like the one
reported on an AMD Zen 4 CPU, docs/performance.md) is far worse than that input, and every
finer scale inherits the damage. So a scale fails the check when its reconstruction error
is not finite, or more than `TOLERANCE` times the larger of the error of what it was given
(scale 0 is given zeros; its baseline is the error of the image's mean colour, what a
constant output would score) and a floor:

- A windowed scale of a real fit (G normalized by frozen statistics: the collapse's
  mechanism) gets `ROUNDING_FLOOR`, so that inputs close to perfect do not turn rounding
  noise into failures. The rocket's finest scale once collapsed to 24.8 dB from an input at
  28.9 dB (2.6x the error; a green rocket), while no healthy windowed scale of the ~870
  scales in the fits on record was worse than 1.9x its input.
- A scale trained on the whole image (G normalized by the image's own statistics) gets
  `LOOSE_FLOOR` (nothing under MSE 0.1, 16 dB, fails): a healthy one may trade some
  reconstruction for the adversarial loss (LSUN 1's scale 1 after a scale 0 with the
  paper's fixed noise: 22.5 dB from an input at 26.2, 2.4x), a diverged one ends near 6 dB.
  So does any scale trained fewer than `SHORT_FIT_ITERATIONS` iterations, with `TOLERANCE`:
  it may be under-trained, not broken (a 30-iteration super-resolution test scale leaves a
  29 dB input at 20 dB).
- A ConSinGAN stage is given the coarser stages' reconstruction, upsampled, and checked
  strictly, with `STAGE_TOLERANCE`: a stage that added nothing would score about that
  input's error (its body adds to the upsampled maps), so one that scores worse broke what
  it was given. In the fits of LSUN 3 and 8 on record (sessions 34-36), every stage above 0
  that looked right ended at 0.06-0.45x its input's error; a stage 3 that melted a church
  into a blur ended at 1.9x, and a finest stage that smeared its facade (31.0 dB where
  other fits reach 35-36) at 1.07x (docs/performance.md, session 36).

A scale can also pass that check and still turn the samples' colours (a teal cast over a
church, session 24: 1.5x its input's error). `colour_drift` measures how far a scale moved
its samples' colours away from the photo's; above `COLOUR_DRIFT_WARNING` the trainer warns.

A ConSinGAN stage can pass it too while its samples draw another scene: its reconstruction
path is right, its sampling path not. LSUN 1 with seed 0 drew forest above and below a
river of sky from stage 0 on, while stages 1-3 reconstructed the photo at 35-36 dB.
`layout_error` asks whether the photo could be one of the samples; above `LAYOUT_WARNING`
(`FIRST_STAGE_LAYOUT_WARNING` at stage 0) the ConSinGAN trainer warns, and retrains
stage 0 from new weights; where stage 1 has lost it, stages 0 and 1 with a deeper stage-0
critic (consingan/trainer.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TOLERANCE = 2.0
STAGE_TOLERANCE = 1.0
ROUNDING_FLOOR = 1e-3
LOOSE_FLOOR = 0.05
SHORT_FIT_ITERATIONS = 200
# Levels of 0..255. The three colour casts on record scored 7.6-9.2 on 16 samples (teal
# and pink at the finest scale, green and magenta fringes at scale 1); the scales above 0
# of 18 other LSUN fits at most 3.4 (docs/performance.md).
COLOUR_DRIFT_WARNING = 5.0
# layout_error of 16 samples of ConSinGAN fits cut after 2..6 stages (docs/performance.md,
# session 41): 0.13-1.08 on the healthy fits of LSUN 1-5, one other church layout
# included; 6.4-12.8 for LSUN 1's forest-river-forest, 4.0 for a church drawn as a texture.
LAYOUT_WARNING = 2.0
# Stage 0 alone draws rougher samples (noise of amplitude 1 at the coarsest size): 1.6-3.7
# on the stage 0s of all ten LSUN images that keep the photo's layout (session 42), 10.3-12.3
# on the two that drew LSUN 1 as forest-river-forest.
FIRST_STAGE_LAYOUT_WARNING = 6.0
SPREAD_FLOOR = 0.25
_QUANTILES = np.linspace(0.005, 0.995, 199)


def mse(a, b) -> float:
    return float(np.mean(np.square(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def psnr(error: float) -> float:
    """PSNR in dB of a mean squared error measured on images in [-1, 1]."""
    if not math.isfinite(error):
        return math.nan
    return 10 * math.log10(4.0 / error) if error > 0 else math.inf


def colour_distance(images, real) -> float:
    """How far the colours of `images` ([..., 3] in [-1, 1]) lie from `real`'s, in levels of
    0..255: per channel, the distance between the two distributions (1-D Wasserstein, on
    quantiles) of its excess over the other two, which a colour cast moves and brightness
    or contrast hardly do; the largest of the three."""
    def excesses(x):
        x = np.clip(np.asarray(x, np.float64), -1, 1).reshape(-1, 3) * 127.5
        return [x[:, c] - (x.sum(axis=1) - x[:, c]) / 2 for c in range(3)]
    return max(float(np.mean(np.abs(np.quantile(a, _QUANTILES) - np.quantile(b, _QUANTILES))))
               for a, b in zip(excesses(images), excesses(real)))


def layout_error(samples, real) -> float:
    """How much further `samples` ([N, h, w, 3], N >= 2) lie from the photo `real`
    ([h, w, 3]) of their size than from one another (mean squared errors, pixel by
    pixel): about 1 when the photo could be one of them, whatever their diversity or
    texture. Their spread counts as at least `SPREAD_FLOOR` times the photo's variance, so
    that near-identical samples a little off the photo do not count as another scene."""
    samples, real = np.asarray(samples, np.float64), np.asarray(real, np.float64)
    flat = np.mean(np.square(real - real.mean(axis=(0, 1))))  # a flat image's error
    off_photo = np.mean(np.square(samples - real))
    spread = 2 * np.mean(np.var(samples, axis=0, ddof=1))  # the mean over pairs
    return float(off_photo / max(spread, SPREAD_FLOOR * flat, 1e-12))


def layout_lost(error, stage: int) -> bool:
    """Whether stage `stage`'s recorded layout error calls for the warning (None: a SinGAN
    scale, or a model written before the check existed)."""
    limit = FIRST_STAGE_LAYOUT_WARNING if stage == 0 else LAYOUT_WARNING
    return error is not None and error > limit


def colour_drift(outputs, inputs, real) -> float:
    """How much a scale moved its samples' colours away from the photo's: the colour
    distance of its outputs minus that of their inputs (the same samples one scale coarser,
    upsampled), so that what the coarser scales drew, layout included, cancels out."""
    return colour_distance(outputs, real) - colour_distance(inputs, real)


def colour_turned(drift) -> bool:
    """Whether a scale's recorded colour drift calls for the warning (None: scale 0, or a
    model written before the check existed)."""
    return drift is not None and drift > COLOUR_DRIFT_WARNING


@dataclass(frozen=True)
class ScaleHealth:
    """Reconstruction error of one scale next to the error of its input (both MSE, [-1, 1]),
    and the floor under that input's error and the tolerance that the check uses (see the
    module docstring)."""

    rec_error: float
    input_error: float
    floor: float
    tolerance: float = TOLERANCE

    @classmethod
    def measure(cls, real, reconstruction, rec_input, scale: int, iterations: int,
                strict: bool, tolerance: float = TOLERANCE) -> "ScaleHealth":
        """`strict`: the check's floor is ROUNDING_FLOOR rather than LOOSE_FLOOR (windowed
        SinGAN scales and ConSinGAN stages). A scale that trained only briefly gets the
        loose floor and TOLERANCE whatever it asks for."""
        real = np.asarray(real).reshape(-1, 3)
        baseline = (real.mean(axis=0) if scale == 0
                    else np.asarray(rec_input).reshape(-1, 3))
        if iterations < SHORT_FIT_ITERATIONS:  # may be under-trained, not broken
            strict, tolerance = False, TOLERANCE
        return cls(mse(np.asarray(reconstruction).reshape(-1, 3), real), mse(baseline, real),
                   ROUNDING_FLOOR if strict else LOOSE_FLOOR, tolerance)

    @property
    def healthy(self) -> bool:
        return (math.isfinite(self.rec_error)
                and self.rec_error <= self.tolerance * max(self.input_error, self.floor))

    def describe(self) -> str:
        return (f"reconstruction error {self.rec_error:.4g} ({psnr(self.rec_error):.1f} dB) "
                f"against {self.input_error:.4g} for its input")

    def to_dict(self) -> dict:
        """For the manifest: strict JSON, so a non-finite error is written as null."""
        def finite(value):
            return value if math.isfinite(value) else None
        return {"rec_error": finite(self.rec_error), "input_error": finite(self.input_error),
                "rec_psnr_db": finite(round(psnr(self.rec_error), 2))}
