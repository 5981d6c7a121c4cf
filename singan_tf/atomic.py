"""One home for atomic writes: an output is written under a temporary dot-name beside its
target and renamed into place only when complete, so a reader (a polling server, a resumed
fit) never sees half of it, and a failed or interrupted command leaves nothing behind."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def temporary_name(name: str, suffix: str = "") -> str:
    """The dot-name a file is written under before it is renamed to `name`."""
    return f".{name}.tmp{suffix}"


@contextlib.contextmanager
def atomic_file(path, suffix: str = ""):
    """Yield a temporary path to write `path`'s content to (`suffix` for writers that add
    their own, as np.savez adds .npz); renamed onto `path` if the block succeeds."""
    path = Path(path)
    tmp = path.with_name(temporary_name(path.name, suffix))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path):
    """Yield a fresh temporary directory beside `path`, renamed onto it if the block
    succeeds (replacing a stale one); removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        yield tmp
        if path.exists():  # left by a run killed between a rename and its bookkeeping
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text)
