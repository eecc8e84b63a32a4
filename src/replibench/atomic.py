"""Atomic file writes: an interrupted job never leaves a file that looks complete.

Every writer in replibench goes through :func:`atomic_path`: the data is written to a temporary
file in the destination folder (same filesystem, so the final ``os.replace`` is atomic) and only
renamed onto the destination once it is complete and flushed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _new_file_mode() -> int:
    """0o666 less the umask: the mode ``open()`` gives a new file (``mkstemp`` gives 0o600, which
    would leave results, leaderboards and figures unreadable to the colleagues sharing a cluster)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_NEW_FILE_MODE = _new_file_mode()  # read once at import: os.umask is process-wide, not thread-safe


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; rename it onto ``destination`` on success.

    On any exception the temporary file is removed and ``destination`` is left untouched.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
    os.close(fd)
    tmp_path = Path(tmp_name)
    os.chmod(tmp_path, _NEW_FILE_MODE)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:  # make the bytes durable before the rename
            os.fsync(handle.fileno())
        os.replace(tmp_path, destination)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text_atomic(destination: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``destination`` atomically."""
    with atomic_path(destination) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(destination: str | os.PathLike[str], payload: Any) -> None:
    """Write ``payload`` as indented, key-sorted JSON atomically (stable bytes for stable inputs)."""
    write_text_atomic(destination, json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n")
