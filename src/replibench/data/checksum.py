"""File checksums in the forms upstreams publish.

A checksum is written ``"<algorithm>:<hex>"`` with algorithm one of ``sha256``, ``md5`` or
``git-sha1`` (the SHA-1 of a git blob object, ``sha1(b"blob <size>\\0" + content)``, which is all
that a GitHub tree publishes for files such as MP-20's CSVs).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

ALGORITHMS = ("sha256", "md5", "git-sha1")
#: hex digits of a complete digest of each algorithm
DIGEST_LENGTHS = {"sha256": 64, "md5": 32, "git-sha1": 40}
_CHUNK_BYTES = 1 << 20


def parse_checksum(checksum: str) -> tuple[str, str]:
    """Split ``"sha256:ab12…"`` into ``("sha256", "ab12…")``; reject unknown algorithms and digests
    that are not hexadecimal or not of the algorithm's full length."""
    algorithm, sep, digest = checksum.partition(":")
    if not sep or algorithm not in ALGORITHMS or not digest:
        raise ValueError(f"checksum {checksum!r}: expected '<algorithm>:<hex>' with algorithm in {ALGORITHMS}")
    digest = digest.lower()
    if any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"checksum {checksum!r}: digest is not hexadecimal")
    if len(digest) != DIGEST_LENGTHS[algorithm]:
        raise ValueError(f"checksum {checksum!r}: a {algorithm} digest has {DIGEST_LENGTHS[algorithm]} hex digits, "
                         f"this one has {len(digest)}")
    return algorithm, digest


def file_digest(path: str | os.PathLike[str], algorithm: str) -> str:
    """Hex digest of a file's bytes with ``algorithm`` (see :data:`ALGORITHMS`), streamed."""
    path = Path(path)
    if algorithm == "git-sha1":
        hasher = hashlib.sha1()
        hasher.update(b"blob %d\0" % path.stat().st_size)
    elif algorithm in ("sha256", "md5"):
        hasher = hashlib.new(algorithm)
    else:
        raise ValueError(f"unknown checksum algorithm {algorithm!r}; expected one of {ALGORITHMS}")
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file (what data cards and provenance record)."""
    return file_digest(path, "sha256")


def verify_checksum(path: str | os.PathLike[str], checksum: str) -> tuple[bool, str]:
    """Return ``(matches, actual_checksum)`` for ``path`` against ``"<algorithm>:<hex>"``."""
    algorithm, expected = parse_checksum(checksum)
    actual = file_digest(path, algorithm)
    return actual == expected, f"{algorithm}:{actual}"
