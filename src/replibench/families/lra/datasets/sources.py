"""Where the six LRA tasks come from: remote file specs and the release archive's layout.

* ListOps, Retrieval (AAN), Pathfinder and Path-X are in Google's official release archive
  ``lra_release.gz`` (a gzipped tar, ~8.2 GB, ~18.6 GB unpacked; LRA README and issue #12).
  Nobody has published a checksum for it (searched the LRA README, issues and user scripts), so
  :data:`LRA_RELEASE_ARCHIVE` carries none and the download refuses to run until the user pins
  one in ``config.yaml`` (``data.checksums``, key ``lra/lra_release.gz``) — we never invent a
  checksum. The bucket serves an
  MD5 in the ``x-goog-hash`` response header of a HEAD request; a site that can reach the bucket
  can record it and set ``"md5:<hex>"``.
* Text is IMDB (``aclImdb_v1.tar.gz``, Maas et al. 2011); Image is CIFAR-10 (the python tarball).
  Both have published checksums (below, with their sources).

Only the members a task needs are streamed out of the release archive, in one pass, with the
safety rules of :mod:`replibench.data.archive` (no links, no absolute or escaping paths).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from replibench.data.download import RemoteFile
from replibench.errors import DataError

LRA_RELEASE_URL = "https://storage.googleapis.com/long-range-arena/lra_release.gz"
#: approximate size (user report in LRA issue #12); not exact, so not used as a check
LRA_RELEASE_APPROX_BYTES = 8_230_000_000

#: IMDB: md5 as torchtext/torchvision-style loaders publish it; sha256 and size from the
#: Hugging Face ``imdb`` dataset_infos ``download_checksums`` (84,125,825 bytes)
IMDB_ARCHIVE = RemoteFile(
    name="aclImdb_v1.tar.gz",
    url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    mirror_path="lra/aclImdb_v1.tar.gz",
    size=84_125_825,
    checksum="sha256:c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
    license="research use; cite Maas et al. (ACL 2011); no licence stated",
)
IMDB_ARCHIVE_MD5 = "md5:7c2ac02c03563afcf9b574c7e56c153a"

#: CIFAR-10 python version: md5 published on the dataset page and used by torchvision;
#: 170,498,071 bytes
CIFAR10_ARCHIVE = RemoteFile(
    name="cifar-10-python.tar.gz",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    mirror_path="lra/cifar-10-python.tar.gz",
    size=170_498_071,
    checksum="md5:c58f30108f718f92721af3b95e74349a",
    license="no licence stated; cite Krizhevsky (2009)",
)
#: md5 of each pickled batch inside the tarball (torchvision's table), checked after extraction
CIFAR10_BATCH_MD5: dict[str, str] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
CIFAR10_TRAIN_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")


#: the release archive: no checksum is published (see the module docstring), so its spec carries
#: none; the download refuses to run until the user pins one in ``config.yaml`` under
#: ``data.checksums`` with the key :data:`LRA_RELEASE_MIRROR_PATH`
LRA_RELEASE_MIRROR_PATH = "lra/lra_release.gz"
LRA_RELEASE_ARCHIVE = RemoteFile(
    name="lra_release.gz",
    url=LRA_RELEASE_URL,
    mirror_path=LRA_RELEASE_MIRROR_PATH,
    size=None,
    checksum=None,
    license="Apache-2.0 (LRA); AAN, Pathfinder: see their sources",
)


def lra_release_remote(checksum: str | None) -> RemoteFile:
    """The release archive as a fetchable :class:`RemoteFile`, once a checksum for it is known.

    Raises:
        DataError: ``checksum`` is None — no checksum is published, and downloading 8 GB without
            one would make every later number unverifiable.
    """
    import dataclasses

    if not checksum:
        raise DataError(
            f"{LRA_RELEASE_URL}: no checksum is published for lra_release.gz; pin one in config.yaml as "
            f"data: {{checksums: {{'{LRA_RELEASE_MIRROR_PATH}': 'md5:<hex>'}}}} before downloading it"
        )
    return dataclasses.replace(LRA_RELEASE_ARCHIVE, checksum=checksum)


# --- layout of the release (A. Gu in LRA issue #38; s4 README; S5 loader paths) ----------------
#: inner folder that holds the copies the s4 and S5 code bases use
RELEASE_ROOT = "lra_release/lra_release/"

#: members each task needs, as path prefixes below the archive root
RELEASE_PREFIXES: dict[str, tuple[str, ...]] = {
    "listops": (RELEASE_ROOT + "listops-1000/basic_",),
    "retrieval": (RELEASE_ROOT + "tsv_data/new_aan_pairs.",),
    "pathfinder": (RELEASE_ROOT + "pathfinder32/curv_contour_length_14/",),
    "path-x": (RELEASE_ROOT + "pathfinder128/curv_contour_length_14/",),
}


def release_member_filter(task: str) -> Callable[[str], bool]:
    """A predicate on archive member names selecting what ``task`` needs (see RELEASE_PREFIXES)."""
    if task not in RELEASE_PREFIXES:
        raise DataError(f"task {task!r} is not in lra_release.gz; tasks there: {sorted(RELEASE_PREFIXES)}")
    prefixes = RELEASE_PREFIXES[task]

    def select(name: str) -> bool:
        clean = name[2:] if name.startswith("./") else name
        return clean.startswith(prefixes)

    return select


def iter_release_members(archive: str | os.PathLike[str], task: str) -> Iterator[tuple[str, bytes]]:
    """Stream ``(member name, bytes)`` of the members ``task`` needs, in archive order, one pass."""
    return iter_archive_members(archive, release_member_filter(task))


def iter_archive_members(archive: str | os.PathLike[str], select: Callable[[str], bool],
                         *, verify_stream: bool = True) -> Iterator[tuple[str, bytes]]:
    """Stream ``(member name, bytes)`` of the selected regular files of a (compressed) tar.

    Uses :func:`replibench.data.archive.iter_tar_members`, so an unsafe member anywhere in the
    archive aborts with :class:`~replibench.errors.UnsafeArchiveError`. A member that cannot be
    read fully, or a truncated/corrupt compressed stream, raises :class:`DataError` naming it.

    ``tarfile`` ends iteration *silently* at a garbled header after the first one, so a corrupt
    archive could pass for a short one. With ``verify_stream`` (default) a gzip archive is then
    decompressed to its end once more, which checks the gzip CRC and length.
    """
    import tarfile
    import zlib

    from replibench.data.archive import iter_tar_members

    current = "<archive header>"
    try:
        for info, handle in iter_tar_members(archive, select):
            current = info.name
            data = handle.read()
            if len(data) != info.size:
                raise DataError(f"{archive}: member {info.name!r} has {len(data)} bytes, header says {info.size}")
            yield info.name, data
        if verify_stream:
            _verify_gzip_stream(archive)
    except (OSError, EOFError, tarfile.TarError, zlib.error) as error:
        raise DataError(f"{archive}: truncated or corrupt at or after member {current!r}: {error}") from error


def _verify_gzip_stream(archive: str | os.PathLike[str]) -> None:
    """Decompress a gzip file to its end (raises on a CRC/length mismatch); no-op otherwise."""
    import gzip

    with open(archive, "rb") as raw:
        if raw.read(2) != b"\x1f\x8b":
            return
    with gzip.open(archive, "rb") as stream:
        while stream.read(1 << 24):
            pass
