"""Training progress: Keras' own progress bar per scale, with it/s and an ETA for the whole fit."""
from __future__ import annotations

import math
import sys
import time

import keras


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class ScaleProgress(keras.callbacks.Callback):
    """A bar for one scale: losses, iterations per second, and time left for the whole fit.

    `later_work` is the cost of the scales still to come relative to this one (trained
    pixels x width^2 x iterations), so the fit ETA = this scale's time left + later_work x
    this scale's time.
    """

    def __init__(self, title: str, iterations: int, later_work: float, verbose: int = 1):
        super().__init__()
        self.title = title
        self.iterations = iterations
        self.later_work = later_work
        self.verbose = verbose
        self.bar = None

    def on_train_begin(self, logs=None):
        if self.verbose:
            print(self.title, flush=True)
        # Live bar on a terminal; one line per scale in logs and CI.
        interactive = sys.stdout.isatty()
        self.bar = keras.utils.Progbar(self.iterations, verbose=1 if interactive else 2,
                                       unit_name="it",
                                       stateful_metrics=["d_loss", "g_loss", "rec_loss", "gp",
                                                         "it/s", "fit_eta_min"])
        self.start = time.perf_counter()
        self.first_done = None

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1
        now = time.perf_counter()
        # Rate from the second execution on, so XLA compile time does not skew it.
        if self.first_done is None:
            self.first_done, self.first_time = done, now
            rate = done / max(now - self.start, 1e-9)
        else:
            rate = (done - self.first_done) / max(now - self.first_time, 1e-9)
        left = (self.iterations - done) / rate
        fit_left = left + self.later_work * self.iterations / rate
        if self.verbose:
            values = [(k, float(v)) for k, v in (logs or {}).items()]
            values += [("it/s", rate), ("fit_eta_min", fit_left / 60)]
            self.bar.update(done, values=values)


class StopOnNonFinite(keras.callbacks.Callback):
    """Stop a scale's training at the first NaN or infinite loss: the weights are lost
    already, and the health check after training (health.py) reports and retrains it."""

    def on_train_batch_end(self, batch, logs=None):
        if any(not math.isfinite(float(value)) for value in (logs or {}).values()):
            self.model.stop_training = True
