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


REPLACED_SUFFIX = ".replaced"


def replaced_copy(path) -> Path:
    """Where atomic_directory keeps the directory it replaces until the new one is in."""
    path = Path(path)
    return path.with_name(f".{path.name}{REPLACED_SUFFIX}")


@contextlib.contextmanager
def atomic_directory(path):
    """Yield a fresh temporary directory beside `path`, renamed onto it if the block
    succeeds; removed otherwise. A directory already at `path` is renamed aside first and
    deleted only once the new one is in place, so a kill at any instant leaves one of the
    two whole (`existing_directory` reads the aside copy, `restore_replaced` puts it back)."""
    path = Path(path)
    aside = replaced_copy(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(aside, ignore_errors=True)  # a stale copy from a killed replace
            os.replace(path, aside)
        os.replace(tmp, path)
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        restore_replaced(path)


def existing_directory(path) -> Path:
    """`path`, or the copy a replace killed between its two renames left aside."""
    path = Path(path)
    aside = replaced_copy(path)
    return aside if not path.exists() and aside.is_dir() else path


def restore_replaced(path) -> None:
    """Put back the directory a replace renamed aside and never replaced."""
    path = Path(path)
    source = existing_directory(path)
    if source != path:
        os.replace(source, path)


def restore_all_replaced(folder) -> None:
    """restore_replaced for every directory in `folder` that has a copy aside."""
    for child in Path(folder).iterdir():
        if child.name.startswith(".") and child.name.endswith(REPLACED_SUFFIX):
            restore_replaced(child.with_name(child.name[1:-len(REPLACED_SUFFIX)]))


def write_text(path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text)
