"""Remote file specs and a careful downloader.

Every file a dataset needs is declared once as a :class:`RemoteFile` (upstream URL at a pinned
commit, path under a mirror, size, published checksum). :func:`fetch` streams it with a progress
bar, resumes a partial file with an HTTP Range request, retries transient failures with
exponential back-off, and renames the ``.part`` file onto the destination only after the checksum
matches. A mismatching file is moved aside (``<name>.bad-<digest>``), never used.

A *mirror* (``data.mirror`` in the config) replaces the upstream URL by
``<mirror>/<mirror_path>``; the checksum is the same, so a mirror cannot change the data. A mirror
is an ``http://``/``https://`` base URL or an existing folder (:func:`check_mirror`); other schemes
(``ftp:``, ``file:``, …) are refused.

A response is never allowed to grow past what the file can be: the spec's ``size`` when known,
else :data:`UNKNOWN_SIZE_LIMIT_BYTES`. A server streaming without ``Content-Length`` (or forever)
is cut off there with a :class:`~replibench.errors.DataError`, so it cannot fill the disk.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from replibench.data.checksum import parse_checksum, sha256_file, verify_checksum
from replibench.errors import ChecksumError, DataError

log = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 16
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Most bytes accepted for a file whose exact size is not declared (``RemoteFile.size is None``):
#: twice the largest such file (``lra_release.gz``, ~8.2 GB), so a runaway response stops there.
UNKNOWN_SIZE_LIMIT_BYTES = 16 << 30
_MIRROR_SCHEMES = ("http", "https")


def check_mirror(mirror: str) -> None:
    """Refuse a mirror that is neither an ``http://``/``https://`` URL nor an existing folder.

    Raises:
        DataError: naming the mirror, what was found and what is allowed.
    """
    parsed = urlparse(mirror)
    if parsed.scheme.lower() in _MIRROR_SCHEMES:
        if not parsed.netloc:
            raise DataError(f"mirror {mirror!r} has no host; expected e.g. https://mirror.example.org/replibench")
        if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in mirror):
            raise DataError(f"mirror URL {mirror!r} contains whitespace or control characters; percent-encode them")
        return
    if Path(mirror).is_dir():
        return
    if parsed.scheme:
        raise DataError(f"mirror {mirror!r}: scheme {parsed.scheme + ':'!r} is not supported; a mirror is an "
                        "http:// or https:// URL or the path of an existing folder (for a local folder give its "
                        "path, not a file: URL)")
    raise DataError(f"mirror folder {mirror!r} does not exist (a mirror is an http:// or https:// URL or an "
                    "existing folder laid out as <mirror>/<dataset folder>/<file>)")


def _mirror_is_folder(mirror: str | None) -> bool:
    return bool(mirror) and urlparse(mirror).scheme.lower() not in _MIRROR_SCHEMES


@dataclass(frozen=True)
class RemoteFile:
    """One file a dataset downloads.

    Attributes:
        name: file name on disk, e.g. ``"ETTh1.csv"``.
        url: upstream URL, pinned to a commit or release so the bytes cannot change.
        mirror_path: path below a mirror base URL, e.g. ``"ett/ETTh1.csv"``.
        size: size in bytes where known (checked before the checksum), else ``None``.
        checksum: ``"sha256:…"``, ``"md5:…"`` or ``"git-sha1:…"``, as upstream publishes it; ``None``
            when upstream publishes none — then the user must pin one (``data.checksums`` in
            config.yaml) before the file can be fetched: nothing is ever used unverified.
        license: SPDX-like licence name recorded in the data card.
    """

    name: str
    url: str
    mirror_path: str
    size: int | None
    checksum: str | None
    license: str = ""

    def __post_init__(self) -> None:
        if self.checksum is not None:
            parse_checksum(self.checksum)  # fail at declaration time, not at download time
        if "/" in self.name or self.name in ("", ".", ".."):
            raise ValueError(f"RemoteFile name {self.name!r} must be a plain file name")

    def source_url(self, mirror: str | None = None) -> str:
        """The URL (or local path) to fetch from: upstream, or ``<mirror>/<mirror_path>``."""
        if not mirror:
            return self.url
        return mirror.rstrip("/") + "/" + self.mirror_path.lstrip("/")


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch` did: where the file is, where it came from and its SHA-256."""

    path: Path
    source: str
    sha256: str
    bytes: int
    downloaded: bool  # False when a verified file was already in place
    resumed_from: int  # bytes already present in a .part file when the transfer started


def fetch(
    remote: RemoteFile,
    destination: str | os.PathLike[str],
    *,
    mirror: str | None = None,
    retries: int = 5,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
    progress: bool = True,
    pinned_checksum: str | None = None,
) -> FetchResult:
    """Download ``remote`` to ``destination`` and verify it; see the module docstring.

    ``pinned_checksum`` is the user's checksum for a file whose upstream publishes none
    (``remote.checksum is None``); it is ignored for files with a published checksum.

    Raises:
        ChecksumError: the complete file does not have ``remote.checksum`` (or ``remote.size``).
        DataError: the source answered with a permanent error, or all retries failed.
    """
    destination = Path(destination)
    if mirror:
        check_mirror(mirror)
    destination.parent.mkdir(parents=True, exist_ok=True)
    source = remote.source_url(mirror)
    checksum = remote.checksum or pinned_checksum
    if checksum is None:
        raise ChecksumError(
            f"{remote.name}: upstream publishes no checksum for {remote.url}; verify the file yourself and pin "
            f"it in config.yaml as data: {{checksums: {{'{remote.mirror_path}': 'sha256:<hex>'}}}} "
            "(nothing is downloaded unverified)"
        )
    parse_checksum(checksum)
    if destination.exists():
        matches, _ = verify_checksum(destination, checksum)
        if matches:
            log.info("%s: already present and verified", destination)
            return FetchResult(destination, source, sha256_file(destination), destination.stat().st_size, False, 0)
        log.warning("%s: present but checksum differs; downloading again", destination)
        _move_aside(destination, destination)

    partial = destination.with_name(destination.name + ".part")
    resumed_from = partial.stat().st_size if partial.exists() else 0
    if _mirror_is_folder(mirror):
        _copy_local(source, partial)
    else:
        _download_http(remote, source, partial, retries=retries, backoff_s=backoff_s,
                       timeout_s=timeout_s, progress=progress)

    size = partial.stat().st_size
    if remote.size is not None and size != remote.size:
        bad = _move_aside(partial, destination)
        raise ChecksumError(
            f"{remote.name}: downloaded from {source} has {size} bytes, expected {remote.size}; "
            f"the bytes were moved to {bad} and not used"
        )
    matches, actual = verify_checksum(partial, checksum)
    if not matches:
        bad = _move_aside(partial, destination)
        raise ChecksumError(
            f"{remote.name}: checksum mismatch for {source}: expected {checksum}, got {actual}; "
            f"the bytes were moved to {bad} and not used"
        )
    digest = sha256_file(partial)
    os.replace(partial, destination)
    log.info("%s: verified %s (sha256:%s)", destination, checksum, digest)
    return FetchResult(destination, source, digest, size, True, resumed_from)


def _copy_local(source: str, partial: Path) -> None:
    """Copy from a folder mirror (``<folder>/<dataset folder>/<file>``)."""
    path = Path(source)
    if not path.is_file():
        raise DataError(f"mirror file {path} does not exist (mirror layout is <mirror>/<dataset folder>/<file>)")
    shutil.copyfile(path, partial)


def _download_http(
    remote: RemoteFile, source: str, partial: Path, *, retries: int, backoff_s: float,
    timeout_s: float, progress: bool,
) -> None:
    """Stream ``source`` into ``partial``, resuming and retrying; return when the body is complete."""
    import requests
    from tqdm import tqdm

    last_error = "no attempt made"
    for attempt in range(retries + 1):
        if attempt:
            delay = min(backoff_s * 2 ** (attempt - 1), 60.0)
            log.warning("%s: attempt %d/%d failed (%s); retrying in %.1f s",
                        remote.name, attempt, retries + 1, last_error, delay)
            time.sleep(delay)
        offset = partial.stat().st_size if partial.exists() else 0
        if remote.size is not None and offset > remote.size:
            partial.unlink()  # longer than the real file: it cannot be a prefix of it
            offset = 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with requests.get(source, headers=headers, stream=True, timeout=timeout_s) as response:
                if response.status_code == 416 and offset and offset == remote.size:
                    return  # the partial file already holds every byte
                if response.status_code == 416:
                    partial.unlink(missing_ok=True)
                    last_error = "HTTP 416 (range not satisfiable); restarting from byte 0"
                    continue
                if response.status_code in _RETRYABLE_STATUS:
                    last_error = f"HTTP {response.status_code}"
                    continue
                if response.status_code not in (200, 206):
                    raise DataError(
                        f"{remote.name}: {source} answered HTTP {response.status_code} {response.reason}; "
                        "check the URL or the data.mirror setting"
                    )
                mode = "ab" if response.status_code == 206 and offset else "wb"
                start = offset if mode == "ab" else 0
                if mode == "wb" and offset:
                    log.info("%s: server ignored the Range request; starting over", remote.name)
                length = response.headers.get("Content-Length")
                total = start + int(length) if length is not None else remote.size
                limit = remote.size if remote.size is not None else UNKNOWN_SIZE_LIMIT_BYTES
                written = start
                with open(partial, mode) as handle, tqdm(
                    total=total, initial=start, unit="B", unit_scale=True, desc=remote.name,
                    disable=not progress, mininterval=1.0,
                ) as bar:
                    for chunk in response.iter_content(_CHUNK_BYTES):
                        handle.write(chunk)
                        bar.update(len(chunk))
                        written += len(chunk)
                        if written > limit:  # at most one chunk past the limit is ever on disk
                            break
                if written > limit:
                    partial.unlink(missing_ok=True)
                    what = (f"the declared size, {remote.size} bytes" if remote.size is not None else
                            f"the limit for a file of undeclared size, {UNKNOWN_SIZE_LIMIT_BYTES} bytes")
                    raise DataError(
                        f"{remote.name}: {source} sent more than {what} (stopped after {written} bytes"
                        f"{'' if length is not None else '; the response had no Content-Length'}); "
                        "the bytes were deleted — check the URL or the data.mirror setting"
                    )
                received = partial.stat().st_size
                if total is not None and received < total:
                    last_error = f"connection closed after {received} of {total} bytes"
                    continue
                return
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
            last_error = f"{type(error).__name__}: {error}"
    raise DataError(f"{remote.name}: download from {source} failed after {retries + 1} attempts: {last_error}")


def _move_aside(path: Path, destination: Path) -> Path:
    """Rename unverified bytes to ``<destination>.bad-<sha256 prefix>`` so they are never used."""
    bad = destination.with_name(f"{destination.name}.bad-{sha256_file(path)[:12]}")
    os.replace(path, bad)
    return bad
