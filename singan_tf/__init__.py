"""singan-tf: SinGAN (Rott Shaham et al., ICCV 2019) in TensorFlow 2 / Keras 3."""
import os
import sys


def _import_tensorflow_quietly():
    """TF 2.21 prints C++ notes (CUDA probe, oneDNN) before any log level applies; they
    bury our own messages, so its first import runs with stderr sent to /dev/null."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf
        tf.config.list_physical_devices()  # the CUDA probe, while stderr is still quiet
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_tensorflow_quietly()

from .config import FAST, PAPER, PRESETS, SinGANConfig, preset  # noqa: E402
from .errors import ImageError, ModelDirError, SinGANError  # noqa: E402
from .models import Discriminator, Generator, SinGANScale  # noqa: E402
from .singan import SinGAN, load  # noqa: E402
from .trainer import PyramidTrainer, fit  # noqa: E402

__version__ = "0.1.0"
__all__ = ["FAST", "PAPER", "PRESETS", "SinGANConfig", "preset", "ImageError", "ModelDirError",
           "SinGANError", "Discriminator", "Generator", "SinGANScale", "SinGAN", "load",
           "PyramidTrainer", "fit", "__version__"]
