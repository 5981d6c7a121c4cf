"""User-facing errors: the CLI turns these into a one-line message and exit code 1."""


class SinGANError(Exception):
    """A problem the user can fix (bad input, bad option, bad model directory)."""


class ImageError(SinGANError):
    """An input image is missing, unreadable or unusable."""


class ModelDirError(SinGANError):
    """A model directory is missing, incomplete, corrupt or would be overwritten."""


class ScaleDivergedError(SinGANError):
    """A scale kept diverging when retrained; the finished scales are kept for resume."""
