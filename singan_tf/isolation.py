"""Training one scale in a fresh process, so a fit's peak memory is that of one scale.

TensorFlow keeps about 150 MiB for every traced train function until its process exits
(measured: each new SinGANScale trained for 10 steps adds that much, by `model.fit` or a
bare `tf.function`, and neither `gc.collect` nor clearing the eager kernel cache returns
it). A 10-scale fit in one process therefore peaks near 3 GiB. With
`PyramidTrainer(process_per_scale=True)` the parent prepares the model directory and a
short-lived child per scale resumes it, trains one scale, saves it atomically and exits.
Children are spawned, so a script using it needs the usual `if __name__ == "__main__":`
guard around its own work (the child imports the script's main module).
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys

from .errors import SinGANError


def train_next_scale_in_child(trainer_class, options: dict) -> None:
    """Resume the fit in `options["model_dir"]` for one scale, in a spawned process, by
    `trainer_class(**options)` (PyramidTrainer or a subclass)."""
    context = multiprocessing.get_context("spawn")  # a clean interpreter, not a fork
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_train_one_scale,
                            args=(trainer_class, options, sender, os.getpid()),
                            daemon=True)
    child.start()
    sender.close()
    try:
        status, value = receiver.recv()
    except EOFError:  # it died without a word (killed, out of memory)
        status, value = "died", None
    except KeyboardInterrupt:
        child.join(30)  # it got the same Ctrl-C; let it stop cleanly
        raise
    finally:
        receiver.close()
    child.join()
    if status == "error":
        raise value
    if status == "os-error":  # disk full, permissions, a path in the way: the user's to fix
        raise SinGANError(f"training the next scale failed: {value}; finished scales are "
                          f"kept in {options['model_dir']}: continue with resume")
    if status == "interrupted":
        raise KeyboardInterrupt
    if status == "died":
        raise SinGANError(f"the process training the next scale died (exit code "
                          f"{child.exitcode}); finished scales are kept in "
                          f"{options['model_dir']}: continue with resume")


def _train_one_scale(trainer_class, options, sender, parent_pid):
    _exit_with_parent(parent_pid)
    try:
        trainer = trainer_class(**options)
        trainer.announce = False
        trainer.owns_lock = False
        trainer.fit(resume=True, max_new_scales=1)
        sender.send(("ok", None))
    except SinGANError as error:
        sender.send(("error", error))
    except OSError as error:
        sender.send(("os-error", str(error)))
    except KeyboardInterrupt:
        sender.send(("interrupted", None))


def _exit_with_parent(parent_pid: int) -> None:
    """A child must not outlive its parent: a killed fit followed by a resume would
    otherwise race an orphan writing the same scale."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
