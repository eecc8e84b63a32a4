"""Issue 12 item 7 and bad bring-your-own files: inputs Python would quietly accept are refused,
naming the file and the row, and nothing half-written is left behind.

* ETT cells such as ``1_000`` (``float`` reads digit grouping) are rejects, not 1000;
* a duplicated crystal ``material_id`` (in one split, or across two splits' files) is rejected;
* a fractional OC20 ``sid``/``fid`` is refused instead of truncated and scored;
* a NaN/inf OC20 energy or force is refused naming the prediction row and its key.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replibench.data.numbers import parse_decimal
from replibench.errors import DataError
from replibench.families.oc20.metrics.files import score_is2re_files, score_s2ef_files

ETT_HEADER = "date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT\n"


# --- ETT -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [("1000", 1000.0), ("-1.5", -1.5), (".5", 0.5), ("3.", 3.0),
                                         ("1e-3", 1e-3), ("+2E+2", 200.0)])
def test_plain_decimals_parse(text, value):
    assert parse_decimal(text) == value


@pytest.mark.parametrize("text", ["1_000", "1__0", " 12", "12 ", "inf", "Infinity", "nan", "0x10", "", "1,5", "١٢"])
def test_what_float_accepts_but_a_data_file_must_not_hold_is_refused(text):
    with pytest.raises(ValueError, match="not a plain decimal"):
        parse_decimal(text)


@pytest.mark.parametrize("cell", ["1_000", " 7", "Infinity"])
def test_ett_cell_float_would_accept_is_a_reject_with_row_and_column(tmp_path, cell):
    from replibench.families.ett.datasets.ett import preprocess

    rows = "".join(f"2016-07-01 {h:02d}:00:00,1,2,3,4,5,6,{h}.5\n" for h in range(3))
    bad = f"2016-07-01 03:00:00,1,2,{cell},4,5,6,7"
    raw = tmp_path / "ETTh1.csv"
    raw.write_text(ETT_HEADER + rows + bad + "\n" + "2016-07-01 04:00:00,1,2,3,4,5,6,7\n")
    out = tmp_path / "out"
    with pytest.raises(DataError) as error:
        preprocess(raw, out, dataset="etth1")
    assert f"row 5: column MUFL: {cell!r}" in str(error.value)
    assert pq.read_table(out / "rejects.parquet").to_pylist() == [
        {"source": "ETTh1.csv", "row": 5, "reason": f"column MUFL: {cell!r} is not a finite number", "raw": bad}]
    assert not (out / "series.parquet").exists() and not (out / "card.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers


# --- crystals ------------------------------------------------------------------------------------


def _cif(formula_lattice: float) -> str:
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter

    structure = Structure(Lattice.cubic(formula_lattice), ["Cs", "Pb", "I", "I", "I"],
                          [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    return str(CifWriter(structure))


def _perov_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    """A perov-5 style CSV: (material_id, heat_ref) rows, each with a valid perovskite CIF."""
    import pandas as pd

    frame = pd.DataFrame([{"material_id": mid, "cif": _cif(6.0 + i * 0.01), "formula": "CsPbI3",
                           "heat_all": "0.1", "heat_ref": heat, "dir_gap": "1.0", "ind_gap": "1.0"}
                          for i, (mid, heat) in enumerate(rows)])
    frame.to_csv(path)
    return path


def _rejects(out: Path) -> list[dict]:
    return pq.read_table(out / "rejects.parquet").to_pylist()


def test_duplicated_material_id_in_a_split_is_rejected_with_its_first_row(tmp_path):
    pytest.importorskip("pymatgen")
    from replibench.families.crystals.datasets.preprocess import preprocess

    val = _perov_csv(tmp_path / "val.csv", [("101", "0.5"), ("102", "0.6"), ("101", "0.7")])
    test = _perov_csv(tmp_path / "test.csv", [("201", "0.5")])
    card = preprocess({"val": val, "test": test}, tmp_path / "out", dataset="perov-5")
    assert pq.read_table(tmp_path / "out" / "val.parquet").column("material_id").to_pylist() == ["101", "102"]
    (reject,) = _rejects(tmp_path / "out")
    assert reject["row"] == 3 and reject["source"] == str(val)
    assert reject["reason"] == "duplicate material_id '101': already at row 1; each crystal must appear once"
    assert card["rejected_rows"] == 1


def test_material_id_in_two_splits_is_rejected_from_the_later_split(tmp_path):
    pytest.importorskip("pymatgen")
    from replibench.families.crystals.datasets.preprocess import preprocess

    val = _perov_csv(tmp_path / "val.csv", [("101", "0.5"), ("102", "0.6")])
    test = _perov_csv(tmp_path / "test.csv", [("301", "0.5"), ("102", "0.6")])
    preprocess({"val": val, "test": test}, tmp_path / "out", dataset="perov-5")
    assert pq.read_table(tmp_path / "out" / "test.parquet").column("material_id").to_pylist() == ["301"]
    (reject,) = _rejects(tmp_path / "out")
    assert reject["row"] == 2 and "duplicate material_id '102': already in split 'val' (val.csv row 2)" in \
        reject["reason"]


def test_one_file_read_as_two_splits_does_not_conflict_with_itself(tmp_path):
    """The smoke preset trains on val.csv: the same file as two splits is not a duplicate."""
    pytest.importorskip("pymatgen")
    from replibench.families.crystals.datasets.preprocess import preprocess

    val = _perov_csv(tmp_path / "val.csv", [("101", "0.5"), ("102", "0.6")])
    card = preprocess({"train": val, "val": val}, tmp_path / "out", dataset="perov-5")
    assert card["rejected_rows"] == 0


def test_crystal_property_with_digit_grouping_is_rejected(tmp_path):
    pytest.importorskip("pymatgen")
    from replibench.families.crystals.datasets.preprocess import preprocess

    val = _perov_csv(tmp_path / "val.csv", [("101", "0.5"), ("102", "1_000")])
    preprocess({"val": val}, tmp_path / "out", dataset="perov-5")
    (reject,) = _rejects(tmp_path / "out")
    assert reject["row"] == 2 and "'1_000' is not a plain decimal" in reject["reason"]


# --- OC20 bring-your-own predictions --------------------------------------------------------------


def _write(path: Path, columns: dict) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


@pytest.fixture()
def is2re_truth(tmp_path):
    return _write(tmp_path / "truth.parquet", {"sid": pa.array([10, 11, 12], pa.int64()),
                                               "energy_relaxed": pa.array([-1.0, -2.0, -3.0], pa.float64())})


@pytest.fixture()
def s2ef_truth(tmp_path):
    return _write(tmp_path / "s2ef_truth.parquet", {
        "sid": pa.array([5, 5], pa.int64()), "fid": pa.array([0, 1], pa.int64()),
        "natoms": pa.array([1, 2], pa.int64()), "energy": pa.array([-1.0, -2.0]), "energy_ref": pa.array([0.1, 0.2]),
        "forces": pa.array([[0.0, 0.1, 0.2], [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]], pa.list_(pa.float64())),
        "fixed": pa.array([[False], [False, True]], pa.list_(pa.bool_()))})


def test_fractional_is2re_sid_is_refused_not_truncated(tmp_path, is2re_truth):
    # 11.5 used to become 11 and be scored as system 11
    pred = _write(tmp_path / "pred.parquet", {"sid": pa.array([10.0, 11.5, 12.0]), "energy": pa.array([-1.0, -2.0, -3.0])})
    with pytest.raises(DataError, match=r"pred.parquet: row 2: sid = 11.5 is not an integer id"):
        score_is2re_files(pred, is2re_truth)


def test_whole_number_float_sids_are_still_accepted(tmp_path, is2re_truth):
    pred = _write(tmp_path / "pred.parquet", {"sid": pa.array([12.0, 10.0, 11.0]), "energy": pa.array([-3.0, -1.0, -2.0])})
    assert score_is2re_files(pred, is2re_truth)["energy_mae"] == 0.0


def test_string_sids_are_refused_with_the_type(tmp_path, is2re_truth):
    pred = _write(tmp_path / "pred.parquet", {"sid": pa.array(["10", "11", "12"]), "energy": pa.array([-1.0, -2.0, -3.0])})
    with pytest.raises(DataError, match=r"column 'sid' has type string; expected int64 ids"):
        score_is2re_files(pred, is2re_truth)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_is2re_energy_names_the_row_and_sid(tmp_path, is2re_truth, bad):
    pred = _write(tmp_path / "pred.parquet", {"sid": pa.array([12, 11, 10], pa.int64()),
                                              "energy": pa.array([-3.0, bad, -1.0])})
    with pytest.raises(DataError, match=r"pred.parquet: row 2 \(sid=11\): energy = (inf|-inf|nan) is not a finite"):
        score_is2re_files(pred, is2re_truth)


def test_fractional_s2ef_fid_is_refused(tmp_path, s2ef_truth):
    pred = _write(tmp_path / "pred.parquet", {
        "sid": pa.array([5, 5], pa.int64()), "fid": pa.array([0.0, 0.9]), "energy": pa.array([0.1, 0.2]),
        "forces": pa.array([[0.0] * 3, [0.0] * 6], pa.list_(pa.float64()))})
    with pytest.raises(DataError, match=r"row 2: fid = 0.9 is not an integer id"):
        score_s2ef_files(pred, s2ef_truth)


def test_non_finite_s2ef_energy_and_forces_name_the_row_and_key(tmp_path, s2ef_truth):
    base = {"sid": pa.array([5, 5], pa.int64()), "fid": pa.array([1, 0], pa.int64())}
    pred = _write(tmp_path / "e.parquet", {**base, "energy": pa.array([np.inf, 0.1]),
                                           "forces": pa.array([[0.0] * 6, [0.0] * 3], pa.list_(pa.float64()))})
    with pytest.raises(DataError, match=r"e.parquet: row 1 \(sid=5 fid=1\): energy = inf is not a finite"):
        score_s2ef_files(pred, s2ef_truth)
    pred = _write(tmp_path / "f.parquet", {**base, "energy": pa.array([0.2, 0.1]),
                                           "forces": pa.array([[0.0] * 5 + [np.nan], [0.0] * 3], pa.list_(pa.float64()))})
    with pytest.raises(DataError, match=r"f.parquet: row 1 \(sid=5 fid=1\): forces contain NaN/inf"):
        score_s2ef_files(pred, s2ef_truth)


def test_metrics_cli_refuses_a_bad_byo_file_and_writes_no_output(tmp_path, is2re_truth):
    pred = _write(tmp_path / "pred.parquet", {"sid": pa.array([10, 11, 12], pa.int64()),
                                              "energy": pa.array([-1.0, np.inf, -3.0])})
    out = tmp_path / "scores.json"
    result = subprocess.run([str(Path(sys.executable).parent / "replibench"), "metrics", "oc20", "is2re",
                             "--pred", str(pred), "--truth", str(is2re_truth), "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "row 2 (sid=11): energy = inf" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["pred.parquet", "truth.parquet"]
