"""singan-tf: SinGAN (Rott Shaham et al., ICCV 2019) in TensorFlow 2 / Keras 3."""
import os
import sys
import tempfile


def _import_tensorflow_quietly():
    """TF 2.21 prints C++ notes (CUDA probe, oneDNN) before any log level applies; they
    bury our own messages, so its first import runs with stderr captured. If the import
    fails, what it printed is shown before the error, so nothing real is hidden."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices()  # the CUDA probe, while stderr is captured
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


_import_tensorflow_quietly()

from .config import FAST, PAPER, PRESETS, QUALITY, SinGANConfig, preset  # noqa: E402
from .errors import ImageError, ModelDirError, SinGANError  # noqa: E402
from .models import Discriminator, Generator, SinGANScale  # noqa: E402
from .singan import SinGAN, load  # noqa: E402
from .trainer import PyramidTrainer, fit  # noqa: E402
from .fit_many import fit_many  # noqa: E402

__version__ = "0.1.0"
__all__ = ["fit_many", "FAST", "PAPER", "PRESETS", "QUALITY", "SinGANConfig", "preset", "ImageError", "ModelDirError",
           "SinGANError", "Discriminator", "Generator", "SinGANScale", "SinGAN", "load",
           "PyramidTrainer", "fit", "__version__"]
