"""Bring your own predictions: score an OC20 prediction file against a preprocessed split.

This is the file-reading wrapper around the pure metrics of :mod:`replibench.families.oc20.metrics.energy_forces`; the
task's ``score`` uses the same alignment code, so a model trained here and an external model
submitted as a file are scored identically.

Prediction file formats (Parquet; extra columns are ignored, missing ones are an error):

**S2EF** — one row per frame:

==========  =====================  ==========================================================
column      type                   meaning
==========  =====================  ==========================================================
``sid``     int64                  system id (the int after ``random`` in OC20's txt files)
``fid``     int64                  frame id (the int after ``frame``)
``energy``  float64                predicted energy in eV, same convention as the truth column
                                   scored (default ``energy_ref``: adsorption energy)
``forces``  list<float64>          predicted forces in eV/Å, ``3 * natoms`` values
                                   ``[Fx0, Fy0, Fz0, Fx1, …]`` in the atom order of the truth
                                   file, for every atom (fixed atoms' values are ignored)
==========  =====================  ==========================================================

**IS2RE** — one row per system: ``sid`` int64, ``energy`` float64 (relaxed adsorption energy, eV).

The truth is a split as ``preprocess`` writes it: one Parquet file or a folder of
``part-*.parquet`` shards. Every truth key must be predicted exactly once, and no other key may
appear; violations raise :class:`~replibench.errors.DataError` naming the file and the first keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replibench.errors import DataError
from replibench.families.oc20.metrics.energy_forces import is2re_metrics, s2ef_metrics

S2EF_PRED_COLUMNS = ("sid", "fid", "energy", "forces")
IS2RE_PRED_COLUMNS = ("sid", "energy")


@dataclass(frozen=True)
class S2EFTruth:
    """The DFT side of one S2EF split, structures in file order."""

    sid: np.ndarray  # (S,) int64
    fid: np.ndarray  # (S,) int64
    natoms: np.ndarray  # (S,) int64
    energy: np.ndarray  # (S,) float64, eV
    forces: np.ndarray  # (A, 3) float64, eV/Å
    fixed: np.ndarray  # (A,) bool


def read_parquet_split(path: Path, columns: list[str] | None = None):  # -> pa.Table
    """One Parquet file, or every ``*.parquet`` of a folder in name order, as one table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_dir():
        parts = sorted(path.glob("*.parquet"))
        if not parts:
            raise DataError(f"{path}: folder holds no *.parquet files")
        return pa.concat_tables([pq.read_table(p, columns=columns) for p in parts])
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    return pq.read_table(path, columns=columns)


def list_column(table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Flat values and (rows+1,) offsets of a list column (nulls are an error)."""
    column = table.column(name).combine_chunks()
    if column.null_count:
        raise DataError(f"column {name!r} has {column.null_count} null rows")
    offsets = np.asarray(column.offsets, dtype=np.int64)
    values = np.asarray(column.values)  # all values of the list array's buffer
    return values[offsets[0]:offsets[-1]], offsets - offsets[0]


def s2ef_truth_from_table(table, *, energy_column: str = "energy_ref", source: str = "truth") -> S2EFTruth:
    if energy_column not in ("energy", "energy_ref"):
        raise DataError(f"energy_column must be 'energy' or 'energy_ref', got {energy_column!r}")
    energy = table.column(energy_column).to_numpy(zero_copy_only=False).astype(np.float64)
    if np.isnan(energy).any():
        raise DataError(f"{source}: column {energy_column!r} has null values (no reference energy?)")
    forces, _ = list_column(table, "forces")
    fixed, _ = list_column(table, "fixed")
    return S2EFTruth(
        sid=table.column("sid").to_numpy().astype(np.int64), fid=table.column("fid").to_numpy().astype(np.int64),
        natoms=table.column("natoms").to_numpy().astype(np.int64), energy=energy,
        forces=forces.astype(np.float64).reshape(-1, 3), fixed=fixed.astype(bool),
    )


def _require_columns(table, names, source: str) -> None:
    missing = [name for name in names if name not in table.column_names]
    if missing:
        raise DataError(f"{source}: missing columns {missing}; found {table.column_names}")
    for name in names:
        if table.column(name).null_count:
            raise DataError(f"{source}: column {name!r} has {table.column(name).null_count} null values")


def key_column(table, name: str, source: str) -> np.ndarray:
    """An id column (``sid``/``fid``) as int64, refusing non-integers instead of truncating them:
    a float column is accepted only where every value is a whole number (``12.0``), and the error
    names the first offending row (1-based, in file order) and its value."""
    import pyarrow.types as patypes

    column = table.column(name)
    if patypes.is_integer(column.type):
        return column.to_numpy().astype(np.int64)
    if patypes.is_floating(column.type):
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        bad = np.nonzero(~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > 2.0**53))[0]
        if len(bad):
            raise DataError(f"{source}: row {bad[0] + 1}: {name} = {float(values[bad[0]])!r} is not an integer id "
                            f"({len(bad)} rows like it); expected int64 {name}s")
        return values.astype(np.int64)
    raise DataError(f"{source}: column {name!r} has type {column.type}; expected int64 ids")


def _refuse_non_finite(values: np.ndarray, rows: np.ndarray, keys: list[tuple[str, np.ndarray]], what: str,
                       source: str) -> None:
    """DataError naming the first prediction row (1-based, file order) whose ``what`` is NaN/inf.

    ``values`` are in truth order, ``rows`` their prediction-file rows, ``keys`` (name, truth-order ids).
    """
    bad = np.nonzero(~np.isfinite(values))[0]
    if len(bad):
        s = bad[0]
        named = " ".join(f"{name}={ids[s]}" for name, ids in keys)
        raise DataError(f"{source}: row {rows[s] + 1} ({named}): {what} = {float(values[s])!r} is not a finite number "
                        f"({len(bad)} rows like it)")


def align(pred_keys: list[np.ndarray], truth_keys: list[np.ndarray], *, pred_source: str, truth_source: str
          ) -> np.ndarray:
    """For each truth row, the index of the prediction row with the same key.

    Raises :class:`DataError` for duplicate prediction keys, truth keys without a prediction and
    predictions whose key is not in the truth.
    """
    import pandas as pd

    names = ["sid", "fid"][: len(pred_keys)]
    pred_index = pd.MultiIndex.from_arrays(pred_keys, names=names)
    if not pred_index.is_unique:
        repeated = pred_index[pred_index.duplicated()].unique()[:5].tolist()
        raise DataError(f"{pred_source}: keys {names} predicted more than once, e.g. {repeated}")
    truth_index = pd.MultiIndex.from_arrays(truth_keys, names=names)
    positions = pred_index.get_indexer(truth_index)  # (S,), -1 where missing
    if (positions < 0).any():
        absent = truth_index[positions < 0][:5].tolist()
        raise DataError(f"{pred_source}: {int((positions < 0).sum())} keys of {truth_source} have no prediction, "
                        f"e.g. {names}={absent}")
    if len(pred_index) != len(truth_index):
        extra = pred_index[~pred_index.isin(truth_index)][:5].tolist()
        raise DataError(f"{pred_source}: {len(pred_index) - len(truth_index)} predicted keys are not in "
                        f"{truth_source}, e.g. {names}={extra}")
    return positions.astype(np.int64)


def score_s2ef_table(pred, truth: S2EFTruth, *, pred_source: str = "predictions", truth_source: str = "truth"
                     ) -> dict[str, float]:
    """S2EF metrics of a prediction table (format in the module docstring) against ``truth``."""
    _require_columns(pred, S2EF_PRED_COLUMNS, pred_source)
    rows = align([key_column(pred, "sid", pred_source), key_column(pred, "fid", pred_source)],
                 [truth.sid, truth.fid], pred_source=pred_source, truth_source=truth_source)
    energy = pred.column("energy").to_numpy(zero_copy_only=False).astype(np.float64)[rows]  # (S,)
    values, offsets = list_column(pred, "forces")
    lengths = (offsets[1:] - offsets[:-1])[rows]  # (S,) in truth order
    wrong = np.nonzero(lengths != 3 * truth.natoms)[0]
    if len(wrong):
        s = wrong[0]
        raise DataError(f"{pred_source}: forces of sid={truth.sid[s]} fid={truth.fid[s]} have {lengths[s]} values, "
                        f"expected 3 * natoms = {3 * truth.natoms[s]} ({len(wrong)} rows wrong)")
    starts = offsets[:-1][rows]  # (S,)
    gather = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
    forces = values[gather].astype(np.float64).reshape(-1, 3)  # (A, 3) in truth atom order
    keys = [("sid", truth.sid), ("fid", truth.fid)]
    _refuse_non_finite(energy, rows, keys, "energy", pred_source)
    per_structure = np.repeat(np.arange(len(rows)), truth.natoms)  # (A,) structure of each atom, truth order
    finite_atoms = np.isfinite(forces).all(axis=1)
    if not finite_atoms.all():
        s = per_structure[np.nonzero(~finite_atoms)[0][0]]
        raise DataError(f"{pred_source}: row {rows[s] + 1} (sid={truth.sid[s]} fid={truth.fid[s]}): forces contain "
                        "NaN/inf")
    return s2ef_metrics(pred_energy=energy, true_energy=truth.energy, pred_forces=forces, true_forces=truth.forces,
                        fixed=truth.fixed, natoms=truth.natoms)


def score_is2re_arrays(pred, truth_sid: np.ndarray, truth_energy: np.ndarray, *, pred_source: str = "predictions",
                       truth_source: str = "truth") -> dict[str, float]:
    """IS2RE metrics of a prediction table against truth arrays (sid, relaxed energy in eV)."""
    _require_columns(pred, IS2RE_PRED_COLUMNS, pred_source)
    truth_sid = np.asarray(truth_sid, np.int64)
    rows = align([key_column(pred, "sid", pred_source)], [truth_sid], pred_source=pred_source, truth_source=truth_source)
    energy = pred.column("energy").to_numpy(zero_copy_only=False).astype(np.float64)[rows]
    _refuse_non_finite(energy, rows, [("sid", truth_sid)], "energy", pred_source)
    return is2re_metrics(pred_energy=energy, true_energy=truth_energy)


def score_s2ef_files(pred: Path, truth: Path, *, energy_column: str = "energy_ref") -> dict[str, float]:
    """Score an S2EF prediction Parquet against one preprocessed split (file or shard folder).

    ``energy_column``: ``"energy_ref"`` (adsorption energy, the OC20 convention) or ``"energy"``.
    """
    truth_table = read_parquet_split(Path(truth), ["sid", "fid", "natoms", "energy", "energy_ref", "forces", "fixed"])
    return score_s2ef_table(read_parquet_split(Path(pred)), s2ef_truth_from_table(
        truth_table, energy_column=energy_column, source=str(truth)), pred_source=str(pred), truth_source=str(truth))


def score_is2re_files(pred: Path, truth: Path) -> dict[str, float]:
    """Score an IS2RE prediction Parquet against one preprocessed IS2RE split (file or shard folder)."""
    table = read_parquet_split(Path(truth), ["sid", "energy_relaxed"])
    energy = table.column("energy_relaxed").to_numpy(zero_copy_only=False).astype(np.float64)
    if np.isnan(energy).any():
        raise DataError(f"{truth}: energy_relaxed has null values (a test split has no labels)")
    return score_is2re_arrays(read_parquet_split(Path(pred)), table.column("sid").to_numpy(), energy,
                              pred_source=str(pred), truth_source=str(truth))
