"""Readers for the raw LRA files: ListOps and AAN TSVs, Pathfinder metadata + PNGs, IMDB reviews,
CIFAR-10 batches. Each returns plain Python/numpy records; a row that cannot be used goes to a
:class:`~replibench.data.tables.Rejects` with its reason, never silently dropped. A file whose
*structure* is wrong (missing header, wrong column names) raises :class:`DataError` instead,
because every row of it would be wrong.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replibench.data.tables import Rejects
from replibench.errors import DataError

LISTOPS_HEADER = ("Source", "Target")
LISTOPS_NUM_CLASSES = 10
AAN_NUM_COLUMNS = 5  # label, id1, id2, text1, text2 (no header)
#: the empty PNG of the release (s4 and S5 blacklist it); it is in the baseline set, not the hard one
PATHFINDER_KNOWN_EMPTY = "pathfinder32/curv_baseline/imgs/0/sample_172.png"
IMDB_FILE = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
IMDB_LABELS = {"neg": 0, "pos": 1}  # Hugging Face ``imdb`` ClassLabel order, used by s4
CIFAR_IMAGE_BYTES = 3 * 32 * 32


def _raise_csv_limit() -> None:
    # AAN documents are long; the default 128 KiB field limit would reject whole rows.
    if csv.field_size_limit() < (1 << 30):
        csv.field_size_limit(1 << 30)


@dataclass(frozen=True)
class ListOpsRow:
    source: str
    target: int


def read_listops_tsv(text: str, *, source: str, rejects: Rejects) -> list[ListOpsRow]:
    """Parse ``basic_{split}.tsv``: header ``Source<TAB>Target``, target an integer 0–9."""
    reader = csv.reader(io.StringIO(text), delimiter="\t")
    header = next(reader, None)
    if header is None or tuple(header) != LISTOPS_HEADER:
        raise DataError(f"{source}: header must be {list(LISTOPS_HEADER)}, found {header}")
    rows: list[ListOpsRow] = []
    for line_number, fields in enumerate(reader, start=2):
        if len(fields) != 2:
            rejects.add(source=source, row=line_number, reason=f"expected 2 columns, found {len(fields)}",
                        raw="\t".join(fields)[:500])
            continue
        try:
            target = int(fields[1])
        except ValueError:
            target = -1
        if not 0 <= target < LISTOPS_NUM_CLASSES:
            rejects.add(source=source, row=line_number, reason=f"Target {fields[1]!r} is not an integer 0-9",
                        raw=fields[1][:500])
            continue
        rows.append(ListOpsRow(fields[0], target))
    return rows


@dataclass(frozen=True)
class AANRow:
    label: int
    id1: str
    id2: str
    text1: str
    text2: str


def read_aan_tsv(text: str, *, source: str, rejects: Rejects) -> list[AANRow]:
    """Parse ``new_aan_pairs.{train,eval,test}.tsv``: 5 tab-separated columns, no header.

    The label is written as a float (``"1.0"``); LRA and s4 cast it to int. Quoting follows the
    CSV convention (s4 reads these files with the Hugging Face csv loader, i.e. pandas).
    """
    _raise_csv_limit()
    rows: list[AANRow] = []
    for line_number, fields in enumerate(csv.reader(io.StringIO(text), delimiter="\t"), start=1):
        if len(fields) != AAN_NUM_COLUMNS:
            rejects.add(source=source, row=line_number,
                        reason=f"expected {AAN_NUM_COLUMNS} columns, found {len(fields)}",
                        raw="\t".join(fields)[:500])
            continue
        try:
            label_value = float(fields[0])
        except ValueError:
            label_value = float("nan")
        if label_value not in (0.0, 1.0):
            rejects.add(source=source, row=line_number, reason=f"label {fields[0]!r} is not 0 or 1",
                        raw=fields[0][:500])
            continue
        rows.append(AANRow(int(label_value), fields[1], fields[2], fields[3], fields[4]))
    return rows


@dataclass(frozen=True)
class PathfinderMeta:
    image_path: str  # relative to the difficulty folder, e.g. "imgs/0/sample_0.png"
    label: int
    metadata_file: str
    line: int


def read_pathfinder_metadata(text: str, *, source: str, rejects: Rejects) -> list[PathfinderMeta]:
    """Parse one ``metadata/<shard>.npy`` file: plain text despite the extension, one line per
    image, whitespace-separated: sub-folder, file name, index, **label (4th field)**, …"""
    entries: list[PathfinderMeta] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 4 or fields[3] not in ("0", "1"):
            rejects.add(source=source, row=line_number, reason="expected >= 4 fields with label 0/1 in the 4th",
                        raw=line[:500])
            continue
        entries.append(PathfinderMeta(f"{fields[0]}/{fields[1]}", int(fields[3]), source, line_number))
    return entries


def metadata_sort_key(name: str) -> int:
    """s4 reads metadata files sorted by the integer shard number (``metadata/12.npy`` → 12)."""
    stem = Path(name).stem
    if not stem.isdigit():
        raise DataError(f"{name}: metadata file name must be <integer>.npy")
    return int(stem)


def decode_grayscale_png(data: bytes, *, resolution: int) -> tuple[np.ndarray | None, str | None]:
    """PNG bytes → ``(resolution, resolution)`` uint8 array in mode ``L`` (as s4's PIL
    ``convert("L")``), or ``(None, reason)`` when the image is empty, undecodable or mis-sized."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        return None, "empty PNG file (0 bytes)"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            array = np.asarray(image.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        return None, f"PNG does not decode: {type(error).__name__}: {error}"
    if array.shape != (resolution, resolution):
        return None, f"image is {array.shape[1]}x{array.shape[0]}, expected {resolution}x{resolution}"
    return array, None


@dataclass(frozen=True)
class Review:
    split: str  # "train" | "test"
    review_id: int
    rating: int
    label: int  # 0 neg, 1 pos
    text: str


def parse_imdb_member(name: str, data: bytes, *, rejects: Rejects) -> Review | None:
    """One ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` file → :class:`Review`.

    Names that are not labelled reviews (``unsup/``, ``urls_*.txt``, vocab files) return None
    without a reject: they are not rows of this dataset. A review that is not UTF-8 is rejected.
    """
    match = IMDB_FILE.search(name)
    if match is None:
        return None
    split, polarity, review_id, rating = match.groups()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        rejects.add(source=name, row=1, reason=f"not UTF-8: {error}", raw=None)
        return None
    return Review(split, int(review_id), int(rating), IMDB_LABELS[polarity], text)


def iter_imdb_folder(root: str | Path) -> Iterator[tuple[str, bytes]]:
    """``(relative name, bytes)`` of every file below an unpacked ``aclImdb`` folder, sorted."""
    root = Path(root)
    for path in sorted(root.rglob("*.txt")):
        yield path.relative_to(root).as_posix(), path.read_bytes()


def read_imdb(members: Iterable[tuple[str, bytes]], *, rejects: Rejects) -> dict[str, list[Review]]:
    """Group labelled reviews by split, ordered by (label, review id) for stable example ids."""
    by_split: dict[str, list[Review]] = {"train": [], "test": []}
    for name, data in members:
        review = parse_imdb_member(name, data, rejects=rejects)
        if review is not None:
            by_split[review.split].append(review)
    for reviews in by_split.values():
        reviews.sort(key=lambda r: (r.label, r.review_id))
    return by_split


def read_cifar_batch(data: bytes, *, source: str) -> tuple[np.ndarray, np.ndarray]:
    """A pickled CIFAR-10 batch → ``(images (N, 32, 32, 3) uint8, labels (N,) int64)``.

    Unpickled with :func:`~replibench.families.lra.datasets.unpickle.load_numpy_pickle` (numpy arrays and
    plain containers only). Rows are stored channel-major (1024 R, 1024 G, 1024 B), row-major.
    """
    from replibench.families.lra.datasets.unpickle import load_numpy_pickle

    batch = load_numpy_pickle(data, source=source)
    if not isinstance(batch, dict):
        raise DataError(f"{source}: expected a dict, found {type(batch).__name__}")
    batch = {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in batch.items()}
    missing = [key for key in ("data", "labels") if key not in batch]
    if missing:
        raise DataError(f"{source}: missing keys {missing}; found {sorted(batch)}")
    images = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != CIFAR_IMAGE_BYTES:
        raise DataError(f"{source}: data must be uint8 (N, {CIFAR_IMAGE_BYTES}), found {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DataError(f"{source}: labels must be {images.shape[0]} integers 0-9")
    return images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels
