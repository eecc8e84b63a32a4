"""Safe extraction from tar and zip archives.

Refused, with an :class:`UnsafeArchiveError` naming the archive and the member: absolute paths,
members that would land outside the target folder (``..`` or drive letters), symbolic and hard
links, device files and FIFOs. :func:`extract_members` streams only the members a task needs, so a
user never unpacks an 18 GB archive to get one folder.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from replibench.errors import DataError, UnsafeArchiveError


def safe_member_path(archive: str, member_name: str, target: Path) -> Path:
    """Return where ``member_name`` lands under ``target``, or raise if it would escape it."""
    name = member_name.replace("\\", "/")
    pure = PurePosixPath(name)
    if name.startswith("/") or pure.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {member_name!r} has an absolute path; refused")
    if any(part == ".." for part in pure.parts):
        raise UnsafeArchiveError(f"{archive}: member {member_name!r} would escape the target folder; refused")
    destination = (target / Path(*pure.parts)).resolve() if pure.parts else target.resolve()
    root = target.resolve()
    if destination != root and root not in destination.parents:
        raise UnsafeArchiveError(f"{archive}: member {member_name!r} resolves outside {target}; refused")
    return destination


def iter_tar_members(path: str | os.PathLike[str], select: Callable[[str], bool] | None = None
                     ) -> Iterator[tuple[tarfile.TarInfo, "tarfile.ExFileObject"]]:
    """Stream regular-file members of a (possibly compressed) tar, one pass, in archive order.

    Yields ``(info, file object)`` for members whose name passes ``select``; unsafe members raise
    :class:`UnsafeArchiveError` even when not selected, because an archive holding them is suspect.
    """
    archive = str(path)
    try:
        with tarfile.open(path, mode="r|*") as tar:  # streaming mode: no random access, no full index
            for info in tar:
                _check_tar_member(archive, info)
                if info.isdir():
                    continue
                if select is not None and not select(info.name):
                    continue
                handle = tar.extractfile(info)
                if handle is None:  # pragma: no cover - regular files always have a handle
                    continue
                yield info, _CheckedMember(archive, info.name, handle)
            _check_clean_end(archive, tar)
    except (tarfile.TarError, EOFError, OSError, zlib_error()) as error:
        raise DataError(f"{archive}: corrupt or truncated archive: {error}") from error


class _CheckedMember(io.RawIOBase):
    """A member's file object whose read errors (the archive ends or is garbled inside the member)
    are :class:`DataError` naming the archive and member, like errors between members. Without it a
    consumer copying the member got a bare ``tarfile.ReadError`` outside :func:`iter_tar_members`."""

    def __init__(self, archive: str, name: str, handle) -> None:
        super().__init__()
        self._archive, self._name, self._handle = archive, name, handle

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return self._handle.read(size)
        except (tarfile.TarError, EOFError, OSError, zlib_error()) as error:
            raise DataError(f"{self._archive}: corrupt or truncated archive inside member {self._name!r}: "
                            f"{error}") from error

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


def _check_clean_end(archive: str, tar: tarfile.TarFile) -> None:
    """tarfile treats a garbled header after the first member as the end of the archive; a real
    end is only zero padding. Read the rest (which also runs the compressor's CRC check)."""
    offset = tar.offset
    while chunk := tar.fileobj.read(1 << 20):
        if chunk.strip(b"\0"):
            raise DataError(f"{archive}: garbled tar header near byte {offset} (data after the last readable "
                            "member): the archive is corrupt")
        offset += len(chunk)


def _check_tar_member(archive: str, info: tarfile.TarInfo) -> None:
    safe_member_path(archive, info.name, Path("/nonexistent-root"))
    if info.issym() or info.islnk():
        raise UnsafeArchiveError(f"{archive}: member {info.name!r} is a link to {info.linkname!r}; refused")
    if info.ischr() or info.isblk() or info.isfifo() or info.isdev():
        raise UnsafeArchiveError(f"{archive}: member {info.name!r} is a device or FIFO; refused")
    if not (info.isfile() or info.isdir()):
        raise UnsafeArchiveError(f"{archive}: member {info.name!r} has unsupported type {info.type!r}; refused")


def extract_members(
    path: str | os.PathLike[str],
    target: str | os.PathLike[str],
    select: Callable[[str], bool] | None = None,
) -> list[Path]:
    """Extract the selected regular files of a tar or zip archive under ``target``, safely.

    All or nothing: members are written to a temporary folder beside ``target`` and moved under
    ``target`` only once the whole archive has passed every check (an unsafe member or a corrupt
    end anywhere leaves ``target`` exactly as it was, and the temporary folder is removed). Returns
    the extracted paths under ``target`` in archive order.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".extracting", dir=target.parent))
    try:
        staged = _extract_into(path, staging, select)
        return _move_into(staging, staged, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract_into(path: str | os.PathLike[str], staging: Path, select: Callable[[str], bool] | None) -> list[Path]:
    """Write the selected members under ``staging``; raise on any unsafe member or corrupt end."""
    archive = str(path)
    written: list[Path] = []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                destination = safe_member_path(archive, info.filename, staging)
                mode = (info.external_attr >> 16) & 0o170000
                if mode and mode not in (0o100000, 0o040000):  # not a regular file or folder
                    raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a link or special file; refused")
                if info.is_dir() or (select is not None and not select(info.filename)):
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(destination, "wb") as out:
                    shutil.copyfileobj(src, out)
                written.append(destination)
        return written
    for info, handle in iter_tar_members(path, select):
        destination = safe_member_path(archive, info.name, staging)
        destination.parent.mkdir(parents=True, exist_ok=True)
        with open(destination, "wb") as out:
            shutil.copyfileobj(handle, out)
        written.append(destination)
    return written


def _move_into(staging: Path, staged: list[Path], target: Path) -> list[Path]:
    """Move the staged files to the same relative paths under ``target`` (created if missing):
    one rename of the whole folder when ``target`` does not exist yet, else one rename per file."""
    staging = staging.resolve()
    final = [target / path.relative_to(staging) for path in staged]
    if not target.exists():
        os.replace(staging, target)
        return final
    for source, destination in zip(staged, final):
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, destination)
    return final
