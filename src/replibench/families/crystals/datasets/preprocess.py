"""CDVAE-style CSVs → ``{split}.parquet`` (explicit schema) + ``rejects.parquet`` + ``card.json``.

MP-20, Perov-5, Carbon-24 (CDVAE) and MPTS-52 (DiffCSP) share the layout — an unnamed index column,
``material_id``, ``cif`` and property columns — and differ in their property columns, which each
dataset's :class:`~.sources.CrystalDatasetSpec` names (MPTS-52 adds the integer ``year`` and the
boolean ``theoretical``, kept so that its chronological split can be checked).

Every CSV row is parsed and canonicalised as CDVAE does (:mod:`.canonical`); a row that cannot be
used is recorded in ``rejects.parquet`` with its 1-based record number (data rows after the header,
counting a multi-line CIF cell as one record) and the reason, never dropped silently. Work is spread
over ``workers`` processes; the output is identical to a serial run (order preserved).
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Any

from replibench.data.checksum import sha256_file
from replibench.data.numbers import parse_decimal
from replibench.data.tables import Rejects, write_data_card, write_parquet_atomic
from replibench.families.crystals.datasets.sources import FAMILY, CrystalDatasetSpec, dataset_spec, upstream_url
from replibench.errors import DataError
from replibench.parallel import ordered_map

_RAW_TEXT_LIMIT = 4000  # characters of a rejected row kept in rejects.parquet
_MP20_SPACEGROUP_COLUMN = "spacegroup.number"


#: crystal graphs preprocessing can add (option ``crystal_graph``): CDVAE's ``graph_method: crystalnn``
CRYSTAL_GRAPHS = ("crystalnn",)


def crystal_schema(dataset: str, *, crystal_graph: str | None = None):  # -> pa.Schema
    """The Parquet schema of every split of ``dataset``; the models side relies on the first 10 columns.

    With ``crystal_graph="crystalnn"`` (a CDVAE run uses the dataset) every row also holds CDVAE's
    CrystalNN graph of the canonical cell: ``crystalnn_edges`` (2E atom indices, (source, target)
    pairs) and ``crystalnn_images`` (3E: the periodic image of each target), as
    ``cdvae/common/data_utils.py`` ``build_crystal_graph`` builds it.

    ``frac_coords`` is row-major (3N), wrapped to [0, 1); ``lattice`` holds the row vectors a, b, c
    (Å) of the canonical lattice; ``source_row`` is the 1-based CSV record number and
    ``source_index`` the CSV's unnamed index column (the row's index in CDVAE's original table).
    """
    import pyarrow as pa

    spec = dataset_spec(dataset)
    fields = [
        pa.field("material_id", pa.string(), nullable=False),
        pa.field("cif", pa.string(), nullable=False),
        pa.field("num_atoms", pa.int32(), nullable=False),
        pa.field("atomic_numbers", pa.list_(pa.int8()), nullable=False),
        pa.field("frac_coords", pa.list_(pa.float64()), nullable=False),
        pa.field("lattice", pa.list_(pa.float64(), 9), nullable=False),
        pa.field("lengths", pa.list_(pa.float64(), 3), nullable=False),
        pa.field("angles", pa.list_(pa.float64(), 3), nullable=False),
        pa.field("formula", pa.string(), nullable=False),
    ]
    fields += [pa.field(name, pa.float64(), nullable=True) for name in spec.float_properties]
    fields += [pa.field(name, pa.int32(), nullable=True) for name in spec.int_columns]
    fields += [pa.field(name, pa.bool_(), nullable=True) for name in spec.bool_columns]
    if dataset == "mp-20":
        fields.append(pa.field("spacegroup_number", pa.int32(), nullable=True))
    if crystal_graph is not None:
        fields += [pa.field("crystalnn_edges", pa.list_(pa.int32()), nullable=False),
                   pa.field("crystalnn_images", pa.list_(pa.int8()), nullable=False)]
    fields += [
        pa.field("source_row", pa.int64(), nullable=False),
        pa.field("source_index", pa.int64(), nullable=True),
    ]
    return pa.schema(fields)


def _parse_optional_float(text: str) -> float | None:
    """CSV cell → float, ``None`` for an empty/NaN cell; ``ValueError`` for anything else."""
    text = text.strip()
    if text == "" or text.lower() in ("nan", "none", "null", "na"):
        return None
    value = parse_decimal(text)  # not float(): it reads "1_000" as 1000 and " inf " as infinity
    return value


def _parse_optional_int(text: str) -> int | None:
    """CSV cell → int, ``None`` for an empty/NaN cell. ``2019.0`` reads as 2019 (pandas writes an
    integer column that holds a NaN as floats); a value with a fraction (``2019.5``) or any other
    text is a ``ValueError``, never rounded."""
    text = text.strip()
    if text == "" or text.lower() in ("nan", "none", "null", "na"):
        return None
    try:
        return int(text)
    except ValueError:
        value = parse_decimal(text)
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{text!r} is not an integer") from None
        return int(value)


def _parse_optional_bool(text: str) -> bool | None:
    """CSV cell → bool (``True``/``False`` as pandas writes them, any case, or ``1``/``0``), ``None``
    for an empty/NaN cell; ``ValueError`` for anything else."""
    text = text.strip().lower()
    if text in ("", "nan", "none", "null", "na"):
        return None
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError(f"{text!r} is not a boolean (expected True or False)")


def _read_rows(path: Path, spec: CrystalDatasetSpec, split: str, rejects: Rejects) -> list[dict[str, Any]]:
    """Read one CSV into plain row dicts (cells as text); reject rows with unusable property cells."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{path}: cannot read split {split!r} as CSV: {error}") from error
    required = ["material_id", "cif", *spec.float_properties, *spec.int_columns, *spec.bool_columns]
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: split {split!r} lacks columns {missing}; expected at least {required}, "
            f"found {list(frame.columns)}"
        )
    if len(frame) == 0:
        raise DataError(f"{path}: split {split!r} has no data rows; expected at least one crystal")
    index_column = frame.columns[0] if frame.columns[0].startswith("Unnamed") or frame.columns[0] == "" else None
    rows = []
    first_row: dict[str, int] = {}  # material_id → row of its first occurrence
    for position, record in enumerate(frame.to_dict(orient="records")):
        row_number = position + 1
        raw = f"material_id={record['material_id']}\n{record['cif'][:_RAW_TEXT_LIMIT]}"
        properties: dict[str, float | None] = {}
        try:
            for name in spec.float_properties:
                properties[name] = _parse_optional_float(record[name])
            source_index = int(record[index_column]) if index_column and record[index_column] != "" else None
            spacegroup = None
            if spec.name == "mp-20" and record.get(_MP20_SPACEGROUP_COLUMN, "") != "":
                spacegroup = int(record[_MP20_SPACEGROUP_COLUMN])
            extra: dict[str, Any] = {"spacegroup_number": spacegroup} if spec.name == "mp-20" else {}
            for name in spec.int_columns:
                try:
                    extra[name] = _parse_optional_int(record[name])
                except ValueError as error:
                    raise ValueError(f"column {name!r}: {error}") from error
            for name in spec.bool_columns:
                try:
                    extra[name] = _parse_optional_bool(record[name])
                except ValueError as error:
                    raise ValueError(f"column {name!r}: {error}") from error
        except ValueError as error:
            rejects.add(source=str(path), row=row_number, reason=f"unparseable number: {error}", raw=raw)
            continue
        if properties[spec.target_property] is None:
            rejects.add(
                source=str(path), row=row_number,
                reason=f"target property {spec.target_property!r} is missing or NaN", raw=raw,
            )
            continue
        if record["material_id"].strip() == "":
            rejects.add(source=str(path), row=row_number, reason="empty material_id", raw=raw)
            continue
        if record["material_id"] in first_row:  # one crystal counted twice would weigh twice in every metric
            rejects.add(source=str(path), row=row_number, raw=raw,
                        reason=f"duplicate material_id {record['material_id']!r}: already at row "
                               f"{first_row[record['material_id']]}; each crystal must appear once")
            continue
        first_row[record["material_id"]] = row_number
        rows.append({
            "row": row_number, "material_id": record["material_id"], "cif": record["cif"],
            "properties": properties, "source_index": source_index, "extra": extra,
            "niggli": spec.niggli, "primitive": spec.primitive,
        })
    return rows


def _without_other_split_ids(rows: list[dict[str, Any]], path: Path, split: str,
                            seen_in: dict[str, tuple[Path, str, int]], rejects: Rejects) -> list[dict[str, Any]]:
    """Reject rows whose material_id another split's file already holds (a crystal in two splits
    leaks the test set into training); record this split's ids in ``seen_in``. The smoke preset
    reads one file as two splits: a file never conflicts with itself."""
    kept = []
    for row in rows:
        earlier = seen_in.get(row["material_id"])
        if earlier is not None and earlier[0] != path:
            rejects.add(source=str(path), row=row["row"], raw=f"material_id={row['material_id']}",
                        reason=f"duplicate material_id {row['material_id']!r}: already in split {earlier[1]!r} "
                               f"({earlier[0].name} row {earlier[2]}); a crystal may be in one split only")
            continue
        seen_in.setdefault(row["material_id"], (path, split, row["row"]))
        kept.append(row)
    return kept


def canonicalise_row(row: dict[str, Any]) -> tuple[str, Any]:
    """Worker: one row → ``("ok", columns)`` or ``("reject", reason)``. Pure, so parallel == serial."""
    from replibench.families.crystals.canonical import build_crystal, structure_columns

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = build_crystal(row["cif"], niggli=row["niggli"], primitive=row["primitive"])
            columns = structure_columns(structure)
    except Exception as error:  # pymatgen raises many types for a bad CIF; each becomes a reject
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return "reject", f"CIF could not be built: {type(error).__name__}: {message}"[:500]
    if row.get("crystal_graph") == "crystalnn":
        from replibench.families.crystals.crystal_graph import crystalnn_graph

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                edge_index, to_jimages = crystalnn_graph(structure)
        except Exception as error:  # CDVAE's preprocessing would stop here; we keep the reason instead
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            return "reject", f"CrystalNN graph could not be built: {type(error).__name__}: {message}"[:500]
        columns["crystalnn_edges"] = [int(v) for v in edge_index.T.reshape(-1)]  # (E, 2) pairs, row-major
        columns["crystalnn_images"] = [int(v) for v in to_jimages.reshape(-1)]
    return "ok", columns


def preprocess(
    raw_csv_by_split: dict[str, Path], out_dir: Path, *, dataset: str, workers: int = 1,
    crystal_graph: str | None = None,
) -> dict[str, Any]:
    """Write ``{split}.parquet``, ``rejects.parquet`` and ``card.json`` into ``out_dir``; return the card.

    ``raw_csv_by_split`` maps split names (``train``/``val``/``test``) to CSV paths; the smoke preset
    passes val.csv as ``train`` (see :func:`smoke_split_files`). Raises :class:`DataError` for a
    missing column, an empty split, or a split whose every row was rejected.
    """
    import pyarrow as pa

    spec = dataset_spec(dataset)
    out_dir = Path(out_dir)
    if crystal_graph is not None and crystal_graph not in CRYSTAL_GRAPHS:
        raise DataError(f"{dataset}: preprocess option crystal_graph={crystal_graph!r}; expected one of {CRYSTAL_GRAPHS}")
    schema = crystal_schema(dataset, crystal_graph=crystal_graph)
    rejects = Rejects()
    split_rows: dict[str, int] = {}
    split_notes: dict[str, Any] = {}
    sources = []
    tables = {}
    seen_in: dict[str, tuple[Path, str, int]] = {}  # material_id → (file, split, row) that kept it first
    for split, path in raw_csv_by_split.items():
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{dataset}: split {split!r} file {path} does not exist")
        before = len(rejects)
        rows = _read_rows(path, spec, split, rejects)
        rows = _without_other_split_ids(rows, path, split, seen_in, rejects)
        rows = [{**row, "crystal_graph": crystal_graph} for row in rows]
        results = ordered_map(canonicalise_row, rows, workers=workers)
        columns: dict[str, list] = {name: [] for name in schema.names}
        for row, (status, payload) in zip(rows, results):
            if status == "reject":
                raw = f"material_id={row['material_id']}\n{row['cif'][:_RAW_TEXT_LIMIT]}"
                rejects.add(source=str(path), row=row["row"], reason=payload, raw=raw)
                continue
            record = {"material_id": row["material_id"], "cif": row["cif"], **payload,
                      **row["properties"], **row["extra"],
                      "source_row": row["row"], "source_index": row["source_index"]}
            for name in schema.names:
                columns[name].append(record[name])
        kept = len(columns["material_id"])
        rejected = len(rejects) - before
        if kept == 0:
            raise DataError(
                f"{path}: every row of split {split!r} was rejected ({rejected}); first reasons:\n"
                + Rejects(rejects.entries[before:]).summary()
            )
        tables[split] = pa.Table.from_pydict(columns, schema=schema)
        split_rows[split] = kept
        digest = sha256_file(path)
        split_notes[split] = {"file": str(path.name), "sha256": digest, "rows_kept": kept, "rows_rejected": rejected}
        sources.append({"name": path.name, "split": split, "url": upstream_url(dataset, split), "sha256": digest})
    for split, table in tables.items():
        write_parquet_atomic(table, out_dir / f"{split}.parquet", schema)
    rejects.write(out_dir / "rejects.parquet")
    print(f"{dataset}: {sum(split_rows.values())} rows kept, {len(rejects)} rejected"
          + (f"\n{rejects.summary()}" if len(rejects) else ""), file=sys.stdout)
    return write_data_card(
        out_dir / "card.json",
        dataset=dataset,
        family=FAMILY,
        sources=sources,
        rows=split_rows,
        rejected_rows=len(rejects),
        license=spec.license,
        citation=spec.citation,
        notes={
            "splits": split_notes,
            "canonicalisation": (
                f"CDVAE build_crystal: pymatgen CIF parse, primitive={spec.primitive}, niggli={spec.niggli}, "
                "lattice rebuilt with Lattice.from_parameters; frac_coords wrapped to [0, 1)"
            ),
            "target_property": spec.target_property,
            "max_atoms": spec.max_atoms,
            "published_rows": spec.rows,
        },
    )
