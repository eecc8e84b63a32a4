"""ETT preprocessing on the real files, and bad input that must give clear errors or rejects."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from replibench.families.ett.datasets.ett import CHANNELS, parquet_schema, preprocess
from replibench.errors import DataError

HEADER = "date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT\n"


def test_real_etth1_round_trip(etth1_dir, shared_data):
    table = pq.read_table(etth1_dir / "series.parquet")
    assert table.schema.equals(parquet_schema())
    assert table.num_rows == 17420
    assert str(table.column("date")[0].as_py()) == "2016-07-01 00:00:00"
    first_csv_row = (shared_data / "ett" / "ETTh1.csv").read_text().splitlines()[1].split(",")
    assert [table.column(c)[0].as_py() for c in CHANNELS] == [float(v) for v in first_csv_row[1:]]
    card = json.loads((etth1_dir / "card.json").read_text())
    assert card["rows"] == {"series": 17420} and card["rejected_rows"] == 0
    assert card["sources"][0]["sha256"] == "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"
    assert card["license"] == "CC-BY-ND-4.0"
    assert pq.read_table(etth1_dir / "rejects.parquet").num_rows == 0


def _csv(tmp_path, text):
    path = tmp_path / "ETTh1.csv"
    path.write_text(text)
    return path


def _good_rows(n=5):
    return "".join(f"2016-07-01 {h:02d}:00:00,1,2,3,4,5,6,{h}.5\n" for h in range(n))


def test_empty_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"ETTh1.csv: file is empty"):
        preprocess(_csv(tmp_path, ""), tmp_path / "out", dataset="etth1")


def test_missing_column_names_the_column(tmp_path):
    text = HEADER.replace(",LULL", "") + "2016-07-01 00:00:00,1,2,3,4,5,6\n"
    with pytest.raises(DataError, match=r"line 1: header .* \(missing \['LULL'\]\)"):
        preprocess(_csv(tmp_path, text), tmp_path / "out", dataset="etth1")


def test_non_numeric_cell_goes_to_rejects_with_row_and_column(tmp_path):
    text = HEADER + _good_rows(3) + "2016-07-01 03:00:00,1,2,abc,4,5,6,7\n" + "2016-07-01 04:00:00,1,2,3,4,5,6,7\n"
    with pytest.raises(DataError, match="1 row\\(s\\) could not be parsed") as error:
        preprocess(_csv(tmp_path, text), tmp_path / "out", dataset="etth1")
    assert "row 5: column MUFL: 'abc' is not a finite number" in str(error.value)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    assert rejects == [{"source": "ETTh1.csv", "row": 5, "reason": "column MUFL: 'abc' is not a finite number",
                        "raw": "2016-07-01 03:00:00,1,2,abc,4,5,6,7"}]
    assert not (tmp_path / "out" / "series.parquet").exists()


def test_truncated_file_rejects_the_cut_row(tmp_path, shared_data):
    full = (shared_data / "ett" / "ETTh1.csv").read_text()
    end_of_line = full.index("\n", 5000)
    for cut_at, reason in ((end_of_line - 40, "expected 8 fields, found"),  # fields missing
                           (end_of_line - 7, "file looks truncated")):  # ends inside a number that parses
        with pytest.raises(DataError, match="1 row\\(s\\) could not be parsed") as error:
            preprocess(_csv(tmp_path, full[:cut_at]), tmp_path / "out", dataset="etth1")
        assert reason in str(error.value)
        assert pq.read_table(tmp_path / "out" / "rejects.parquet").num_rows == 1


def test_gap_in_timestamps_is_refused(tmp_path):
    text = HEADER + _good_rows(3) + "2016-07-01 05:00:00,1,2,3,4,5,6,7\n"
    with pytest.raises(DataError, match=r"line 5: timestamp 2016-07-01 05:00:00 follows 2016-07-01 02:00:00"):
        preprocess(_csv(tmp_path, text), tmp_path / "out", dataset="etth1")


def test_wrong_file_for_dataset_is_noticed_by_row_count(tmp_path, shared_data):
    out = tmp_path / "out"
    shutil.copy(shared_data / "ett" / "ETTh1.csv", tmp_path / "x.csv")
    preprocess(tmp_path / "x.csv", out, dataset="etth1")
    from replibench.families.ett.tasks.timeseries import load_series

    with pytest.raises(DataError, match="the protocol needs at least 57600"):
        load_series(out, dataset="ettm1", seq_len=96, pred_len=96)
