"""Parquet outputs of preprocessing: explicit schemas, a rejects file, and a data card.

Contract for every dataset's ``preprocess``: rows that cannot be parsed are never dropped
silently. They are collected in a :class:`Rejects` (source file, 1-based line/row number, reason,
raw text), written to ``rejects.parquet`` (even when empty, so "no rejects" is a fact on disk),
counted in the data card and printed.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replibench.atomic import atomic_path, write_json_atomic


def rejects_schema():  # -> pa.Schema (pyarrow imported lazily)
    """Schema of every ``rejects.parquet``."""
    import pyarrow as pa

    return pa.schema([
        pa.field("source", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=True),
    ])


@dataclass
class Rejects:
    """Collects rows that could not be parsed, with the reason, for ``rejects.parquet``."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, *, source: str, row: int, reason: str, raw: str | None = None) -> None:
        """Record one rejected row: ``row`` is the 1-based line (CSV) or record number."""
        self.entries.append({"source": source, "row": int(row), "reason": reason, "raw": raw})

    def __len__(self) -> int:
        return len(self.entries)

    def summary(self, limit: int = 5) -> str:
        """Human-readable first ``limit`` rejects, for logs and error messages."""
        lines = [f"{e['source']} row {e['row']}: {e['reason']}" for e in self.entries[:limit]]
        if len(self.entries) > limit:
            lines.append(f"... and {len(self.entries) - limit} more")
        return "\n".join(lines)

    def write(self, path: str | os.PathLike[str]) -> None:
        import pyarrow as pa

        table = pa.Table.from_pylist(self.entries, schema=rejects_schema())
        write_parquet_atomic(table, path)


def conform_table(table, schema, *, source: str):  # (pa.Table, pa.Schema) -> pa.Table
    """Return ``table`` with exactly ``schema``'s columns, order and types, or raise a clear error.

    Only lossless casts are allowed (``safe=True``); a missing or extra column is an error.
    """
    import pyarrow as pa

    from replibench.errors import DataError

    missing = [name for name in schema.names if name not in table.column_names]
    extra = [name for name in table.column_names if name not in schema.names]
    if missing or extra:
        raise DataError(f"{source}: columns do not match the schema (missing {missing}, unexpected {extra})")
    table = table.select(schema.names)
    try:
        return table.cast(schema, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise DataError(f"{source}: cannot cast to the declared schema: {error}") from error


def write_parquet_atomic(table, path: str | os.PathLike[str], schema=None) -> None:
    """Write a pyarrow table to Parquet atomically; with ``schema``, conform to it first."""
    import pyarrow.parquet as pq

    if schema is not None:
        table = conform_table(table, schema, source=str(path))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_data_card(
    path: str | os.PathLike[str],
    *,
    dataset: str,
    family: str,
    sources: list[dict[str, Any]],
    rows: dict[str, int],
    rejected_rows: int,
    license: str,
    citation: str,
    notes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the small JSON data card beside a dataset's Parquet files and return it.

    ``sources`` lists each raw input with ``name``, ``url`` and ``sha256`` (what provenance and the
    results' ``data_sha256`` are built from); ``rows`` counts rows per output table or split.
    """
    card = {
        "dataset": dataset,
        "family": family,
        "sources": sources,
        "rows": rows,
        "rejected_rows": int(rejected_rows),
        "license": license,
        "citation": citation,
        "notes": notes or {},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    write_json_atomic(path, card)
    return card


def read_data_card(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``card.json`` from a preprocessed dataset folder."""
    import json

    path = Path(directory) / "card.json"
    return json.loads(path.read_text(encoding="utf-8"))
