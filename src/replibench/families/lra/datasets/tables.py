"""Parquet schemas, split rules and the writer shared by every LRA dataset.

Three table shapes, one per kind of input:

* token tasks (ListOps, Text): ``example_id, input_ids list<int32>, length, label``;
* Retrieval: the same plus a second document ``input_ids2, length2``;
* pixel tasks (Image, Pathfinder, Path-X): ``example_id, pixels list<uint8>`` (row-major,
  ``resolution²`` values, raw 0–255 intensities; the task normalises them as s4 does), ``label``.

``example_id`` is the row's position in the source order (before splitting), so predictions can
be traced back to a source row. Every dataset folder also holds ``card.json`` (sources, rows,
vocabulary, whether the data is *generated*) and ``rejects.parquet``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from replibench.data.tables import Rejects, write_data_card, write_parquet_atomic

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: s4 splits Pathfinder/Path-X 80/10/10 and CIFAR train 90/10 with torch.random_split, seed 42
S4_SPLIT_SEED = 42
PATHFINDER_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)  # train, val, test
CIFAR_VAL_FRACTION = 0.1

FAMILY = "lra"
CITATION_LRA = "Tay et al., Long Range Arena: A Benchmark for Efficient Transformers, ICLR 2021"


def token_schema():
    import pyarrow as pa

    return pa.schema([
        pa.field("example_id", pa.int64(), nullable=False),
        pa.field("input_ids", pa.list_(pa.int32()), nullable=False),
        pa.field("length", pa.int32(), nullable=False),
        pa.field("label", pa.int64(), nullable=False),
    ])


def pair_schema():
    import pyarrow as pa

    return pa.schema([
        pa.field("example_id", pa.int64(), nullable=False),
        pa.field("input_ids", pa.list_(pa.int32()), nullable=False),
        pa.field("length", pa.int32(), nullable=False),
        pa.field("input_ids2", pa.list_(pa.int32()), nullable=False),
        pa.field("length2", pa.int32(), nullable=False),
        pa.field("label", pa.int64(), nullable=False),
    ])


def pixel_schema():
    import pyarrow as pa

    return pa.schema([
        pa.field("example_id", pa.int64(), nullable=False),
        pa.field("pixels", pa.list_(pa.uint8()), nullable=False),
        pa.field("label", pa.int64(), nullable=False),
    ])


def s4_random_split(n: int, fractions: Sequence[float], seed: int = S4_SPLIT_SEED) -> list[np.ndarray]:
    """Index arrays of ``torch.utils.data.random_split`` as s4 calls it.

    s4 computes ``val = int(f_val * n)``, ``test = int(f_test * n)``, ``train = n - val - test``
    (Pathfinder) or ``train = int(n * (1 - f_val))`` (CIFAR), draws ``randperm(n)`` from
    ``torch.Generator().manual_seed(seed)`` and cuts it into consecutive pieces.
    """
    import torch

    if len(fractions) == 3:
        val, test = int(fractions[1] * n), int(fractions[2] * n)
        lengths = [n - val - test, val, test]
    elif len(fractions) == 2:
        train = int(n * fractions[0])
        lengths = [train, n - train]
    else:
        raise ValueError(f"fractions must have 2 or 3 entries, got {fractions}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    cuts = np.cumsum(lengths)[:-1]
    return list(np.split(order, cuts))


def token_table(example_ids: Sequence[int], sequences: Sequence[Sequence[int]], labels: Sequence[int]):
    import pyarrow as pa

    return pa.table({
        "example_id": pa.array(example_ids, pa.int64()),
        "input_ids": pa.array(sequences, pa.list_(pa.int32())),
        "length": pa.array([len(s) for s in sequences], pa.int32()),
        "label": pa.array(labels, pa.int64()),
    })


def pair_table(example_ids, sequences, sequences2, labels):
    import pyarrow as pa

    return pa.table({
        "example_id": pa.array(example_ids, pa.int64()),
        "input_ids": pa.array(sequences, pa.list_(pa.int32())),
        "length": pa.array([len(s) for s in sequences], pa.int32()),
        "input_ids2": pa.array(sequences2, pa.list_(pa.int32())),
        "length2": pa.array([len(s) for s in sequences2], pa.int32()),
        "label": pa.array(labels, pa.int64()),
    })


def pixel_table(example_ids: np.ndarray, images: np.ndarray, labels: np.ndarray):
    """``images`` (N, H, W) uint8 → rows of flattened row-major pixels."""
    import pyarrow as pa

    n = images.shape[0]
    flat = np.ascontiguousarray(images.reshape(n, -1))
    offsets = np.arange(0, flat.size + 1, flat.shape[1], dtype=np.int32)
    pixels = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(flat.reshape(-1), pa.uint8()))
    return pa.table({
        "example_id": pa.array(np.asarray(example_ids, dtype=np.int64)),
        "pixels": pixels,
        "label": pa.array(np.asarray(labels, dtype=np.int64)),
    })


def write_dataset(
    out: str | Path,
    *,
    dataset: str,
    tables: dict[str, Any],
    schema,
    rejects: Rejects,
    sources: list[dict[str, Any]],
    generated: bool,
    license: str,
    citation: str,
    notes: dict[str, Any],
) -> dict[str, Any]:
    """Write ``{split}.parquet`` for every split, ``rejects.parquet`` and ``card.json``.

    ``generated`` is recorded in the card and in each Parquet file's schema metadata
    (``replibench.generated``) so that results built from generated data can say so.
    """
    out = Path(out)
    missing = [split for split in SPLITS if split not in tables]
    if missing:
        raise ValueError(f"{dataset}: splits {missing} were not built")
    flag = b"true" if generated else b"false"
    for split, table in tables.items():
        tagged_schema = schema.with_metadata({b"replibench.generated": flag, b"replibench.dataset": dataset.encode()})
        write_parquet_atomic(table, out / f"{split}.parquet", schema=tagged_schema)
    rejects.write(out / "rejects.parquet")
    if len(rejects):
        print(f"{dataset}: {len(rejects)} rejected rows\n{rejects.summary()}")
    return write_data_card(
        out / "card.json", dataset=dataset, family=FAMILY, sources=sources,
        rows={split: int(table.num_rows) for split, table in tables.items()},
        rejected_rows=len(rejects), license=license, citation=citation,
        notes={"generated": generated, **notes},
    )
