"""OC20 IS2RE/IS2RS: pickled-PyG LMDBs → Parquet, once, in a separate process.

Each LMDB value is a pickled PyG ``Data`` (key ``"0"``, ``"1"``, …; key ``"length"`` holds the
count). The datasets that use this converter are in :mod:`replibench.families.oc20.datasets.is2re`.

:func:`convert_lmdb_in_subprocess` runs :func:`convert_lmdb` in a fresh Python process
(``python -m replibench.families.oc20.datasets.lmdb``): records are decoded there with
:class:`~replibench.families.oc20.datasets.unpickle.RestrictedUnpickler`, and only Parquet and a JSON summary
come back — nothing is unpickled in the calling process. A record that asks for a global outside
the allow-list, or lacks a field, is written to the rejects file with its key and the reason (the
class it asked for). The rest of the pipeline reads only the Parquet.

Field mapping (fairchem names → columns): ``atomic_numbers``, ``pos`` (initial), ``cell``,
``tags``, ``fixed``, ``natoms``, ``sid``, ``y_init`` → ``energy_init``, ``y_relaxed`` →
``energy_relaxed`` (relaxed adsorption energy, eV, the IS2RE target), ``pos_relaxed`` (the IS2RS
target). Test LMDBs have no targets: those columns are then null.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from replibench.atomic import atomic_path, write_json_atomic
from replibench.data.tables import Rejects
from replibench.errors import DataError

_ROWS_PER_BATCH = 4096


def is2re_schema():  # -> pa.Schema
    """Explicit schema of the IS2RE/IS2RS Parquet (one row per adsorbate+slab system)."""
    import pyarrow as pa

    return pa.schema([
        pa.field("sid", pa.int64(), nullable=False),
        pa.field("lmdb_key", pa.int64(), nullable=False),  # record key in the source LMDB
        pa.field("natoms", pa.int32(), nullable=False),
        pa.field("atomic_numbers", pa.list_(pa.int8()), nullable=False),  # (N,)
        pa.field("pos", pa.list_(pa.float64()), nullable=False),  # (3N,) initial structure, Å
        pa.field("cell", pa.list_(pa.float64(), 9), nullable=False),  # (9,) Å, rows a, b, c
        pa.field("tags", pa.list_(pa.int8()), nullable=False),  # (N,) 0/1/2
        pa.field("fixed", pa.list_(pa.bool_()), nullable=False),  # (N,)
        pa.field("energy_init", pa.float64(), nullable=True),  # y_init, eV
        pa.field("energy_relaxed", pa.float64(), nullable=True),  # y_relaxed: relaxed adsorption energy, eV
        pa.field("pos_relaxed", pa.list_(pa.float64()), nullable=True),  # (3N,) relaxed structure, Å
    ])


def _array(value, name: str) -> np.ndarray:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, (int, float, bool, list, tuple)):
        return np.asarray(value)
    raise ValueError(f"field {name!r} is a {type(value).__name__}, expected a tensor or number")


def _scalar(fields: dict, name: str, *, required: bool):
    if fields.get(name) is None:
        if required:
            raise ValueError(f"field {name!r} missing")
        return None
    value = _array(fields[name], name).reshape(-1)
    if value.size != 1:
        raise ValueError(f"field {name!r} has {value.size} values, expected 1")
    return value[0]


def record_to_row(fields: dict, *, key: int) -> dict:
    """Validate the fields of one decoded record and return its IS2RE row (``ValueError`` = reject)."""
    missing = [name for name in ("atomic_numbers", "pos", "cell", "tags", "fixed", "sid") if fields.get(name) is None]
    if missing:
        present = sorted(k for k, v in fields.items() if v is not None)
        raise ValueError(f"fields missing: {missing} (present: {present})")
    numbers = _array(fields["atomic_numbers"], "atomic_numbers").reshape(-1)
    natoms = len(numbers)
    if natoms == 0 or not np.all(numbers == np.round(numbers)) or numbers.min() < 1 or numbers.max() > 118:
        raise ValueError(f"atomic_numbers must be integers in 1..118, got {numbers[:10].tolist()}")
    if fields.get("natoms") is not None and int(_scalar(fields, "natoms", required=True)) != natoms:
        raise ValueError(f"natoms {int(_scalar(fields, 'natoms', required=True))} != {natoms} atomic numbers")

    def per_atom(name: str, width: int, required: bool = True):
        if fields.get(name) is None and not required:
            return None
        values = _array(fields[name], name).astype(np.float64)
        if values.size != natoms * width or not np.all(np.isfinite(values)):
            raise ValueError(f"field {name!r}: expected {natoms * width} finite values, got shape {values.shape}")
        return values.reshape(-1)

    cell = _array(fields["cell"], "cell").astype(np.float64).reshape(-1)
    if cell.size != 9 or not np.all(np.isfinite(cell)):
        raise ValueError(f"field 'cell': expected 9 finite values (1, 3, 3), got {cell.size}")
    tags = per_atom("tags", 1)
    if not np.isin(tags, (0, 1, 2)).all():
        raise ValueError(f"tags outside 0/1/2: {sorted(set(tags.tolist()) - {0, 1, 2})}")
    fixed = per_atom("fixed", 1)
    if not np.isin(fixed, (0, 1)).all():
        raise ValueError("fixed flags must be 0 or 1")
    energies = {}
    for column, name in (("energy_init", "y_init"), ("energy_relaxed", "y_relaxed")):
        value = _scalar(fields, name, required=False)
        if value is not None and not np.isfinite(value):
            raise ValueError(f"field {name!r} is not finite")
        energies[column] = None if value is None else float(value)
    return {
        "sid": int(_scalar(fields, "sid", required=True)), "lmdb_key": int(key), "natoms": natoms,
        "atomic_numbers": numbers.astype(np.int8), "pos": per_atom("pos", 3), "cell": cell,
        "tags": tags.astype(np.int8), "fixed": fixed.astype(bool), **energies,
        "pos_relaxed": per_atom("pos_relaxed", 3, required=False),
    }


def _rows_to_table(rows: list[dict]):
    import pyarrow as pa

    schema = is2re_schema()
    columns = {name: [row[name] for row in rows] for name in schema.names}
    for name in ("atomic_numbers", "pos", "tags", "fixed", "pos_relaxed", "cell"):
        columns[name] = [None if v is None else v.tolist() for v in columns[name]]
    return pa.Table.from_pydict(columns, schema=schema)


def _ordered_keys(txn) -> tuple[list[int], list[bytes], int | None]:
    """Record keys sorted numerically, keys that are not integers, and the ``length`` entry's raw bytes."""
    numeric, other, length = [], [], None
    with txn.cursor() as cursor:
        for raw_key in cursor.iternext(keys=True, values=False):
            text = raw_key.decode("ascii", errors="replace")
            if text == "length":
                length = raw_key
            elif text.isdigit():
                numeric.append(int(text))
            else:
                other.append(raw_key)
    return sorted(numeric), other, length


def convert_lmdb(lmdb_path: Path, out_parquet: Path, rejects_path: Path) -> dict:
    """Decode every record of one LMDB (restricted unpickler) into Parquet. Runs in the child."""
    import lmdb
    import pyarrow.parquet as pq

    from replibench.families.oc20.datasets.unpickle import UnsafePickleError, restricted_loads

    source = str(lmdb_path)
    rejects = Rejects()
    env = lmdb.open(source, subdir=lmdb_path.is_dir(), readonly=True, lock=False, readahead=False, meminit=False)
    written, declared = 0, None
    try:
        with env.begin() as txn, atomic_path(out_parquet) as tmp:
            keys, other_keys, length_key = _ordered_keys(txn)
            for raw_key in other_keys:
                rejects.add(source=source, row=0, raw=repr(raw_key)[:200],
                            reason=f"LMDB key {raw_key!r} is not an integer")
            if length_key is not None:
                try:
                    declared = restricted_loads(txn.get(length_key), key="length")
                except Exception as error:  # noqa: BLE001 - a bad count is reported, not fatal
                    rejects.add(source=source, row=0, raw="length", reason=f"LMDB key 'length': {error}")
            writer = pq.ParquetWriter(tmp, is2re_schema(), compression="zstd")
            batch: list[dict] = []
            for key in keys:
                try:
                    record = restricted_loads(txn.get(str(key).encode("ascii")), key=str(key))
                    fields = getattr(record, "fields", None)
                    if fields is None:
                        raise ValueError(f"record is a {type(record).__name__}, not a PyG Data")
                    batch.append(record_to_row(fields(), key=key))
                except UnsafePickleError as error:
                    rejects.add(source=source, row=key + 1, raw=f"{error.module}.{error.name}", reason=str(error))
                except Exception as error:  # noqa: BLE001 - any decoding failure is this record's reject
                    rejects.add(source=source, row=key + 1, raw=str(key),
                                reason=f"LMDB key {str(key)!r}: {type(error).__name__}: {error}")
                if len(batch) >= _ROWS_PER_BATCH:
                    writer.write_table(_rows_to_table(batch))
                    written += len(batch)
                    batch = []
            if batch:
                writer.write_table(_rows_to_table(batch))
                written += len(batch)
            writer.close()
    finally:
        env.close()
    rejects.write(rejects_path)
    if isinstance(declared, bool) or not isinstance(declared, (int, type(None))):
        declared = None
    return {"source": source, "records": len(keys), "rows": written, "rejected": len(rejects),
            "declared_length": declared}


def convert_lmdbs_in_subprocess(jobs: list[tuple[Path, Path, Path]], *, timeout_s: float | None = None
                                ) -> list[dict]:
    """Run :func:`convert_lmdb` for each ``(lmdb, out_parquet, rejects_parquet)`` job in ONE fresh
    interpreter; return the JSON summaries in job order.

    Raises :class:`DataError` with the child's stderr when it fails.
    """
    with tempfile.TemporaryDirectory(prefix="is2re-convert-") as scratch:
        job_file, summary_path = Path(scratch) / "jobs.json", Path(scratch) / "summary.json"
        job_file.write_text(json.dumps([[str(a), str(b), str(c)] for a, b, c in jobs]), encoding="utf-8")
        command = [sys.executable, "-m", "replibench.families.oc20.datasets.lmdb", "--jobs", str(job_file),
                   "--summary", str(summary_path)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
        if completed.returncode != 0 or not summary_path.exists():
            raise DataError(f"{[str(j[0]) for j in jobs]}: LMDB conversion process failed (exit "
                            f"{completed.returncode}):\n{completed.stderr[-4000:]}")
        summaries = json.loads(summary_path.read_text(encoding="utf-8"))
    for summary in summaries:
        if summary["declared_length"] is not None and summary["declared_length"] != summary["records"]:
            summary["warning"] = f"'length' says {summary['declared_length']} records, found {summary['records']}"
    return summaries


def convert_lmdb_in_subprocess(lmdb_path: Path, out_parquet: Path, rejects_path: Path, *,
                               timeout_s: float | None = None) -> dict:
    """One LMDB through :func:`convert_lmdbs_in_subprocess`."""
    return convert_lmdbs_in_subprocess([(Path(lmdb_path), Path(out_parquet), Path(rejects_path))],
                                       timeout_s=timeout_s)[0]


def main(argv: list[str] | None = None) -> int:
    """Child-process entry point (``python -m replibench.families.oc20.datasets.lmdb --jobs J --summary S``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=Path, required=True, help="JSON list of [lmdb, out.parquet, rejects.parquet]")
    parser.add_argument("--summary", type=Path, required=True)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    jobs = json.loads(args.jobs.read_text(encoding="utf-8"))
    summaries = [convert_lmdb(Path(lmdb_path), Path(out), Path(rejects)) for lmdb_path, out, rejects in jobs]
    write_json_atomic(args.summary, summaries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
