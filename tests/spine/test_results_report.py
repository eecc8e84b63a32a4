"""metrics.json schema, the tidy results table and the leaderboard (a pure function of both)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from replibench.errors import DataError
from replibench.report import build_leaderboard, load_references, status_of
from replibench.report.markdown import leaderboard_markdown
from replibench.results import RESULT_COLUMNS, gather_results, read_metrics, write_metrics

ROOT = Path(__file__).resolve().parents[2]


def make_record(*, dataset="etth1", model="dlinear", variant="h96", seed=2021, preset="smoke",
                mse=0.4, mae=0.41, task="forecast", steps=100):
    return {
        "family": "ett", "dataset": dataset, "task": task, "model": model, "variant": variant,
        "variant_values": {"horizon": int(variant.removeprefix("h"))}, "seed": seed, "preset": preset, "split": "test",
        "metrics": {"mse": mse, "mae": mae},
        "metric_info": {"mse": {"direction": "min", "unit": "scaled units²"},
                        "mae": {"direction": "min", "unit": "scaled units"}},
        "protocol": {"test_windows": 2785},
        "training": {"steps": steps, "epochs": 1, "wall_s": 1.0, "max_steps": None,
                     "curve": [{"epoch": 1, "step": steps, "lr": 1e-4, "train_loss": 0.5, "val_loss": 0.6}]},
        "settings": {},
        "provenance": {"commit": "abc", "config_sha256": "0" * 64, "data_sha256": {"ETTh1.csv": "1" * 64},
                       "lock_sha256": None, "packages": {"torch": "2.13.0"}, "device": "cpu (x86_64, 2 cores)",
                       "created": "2026-11-27T00:00:00+00:00"},
    }


def write_records(tmp_path, records):
    paths = []
    for index, record in enumerate(records):
        path = tmp_path / f"r{index}" / "metrics.json"
        write_metrics(path, record)
        paths.append(path)
    return paths


def test_metrics_json_is_validated_on_write_and_read(tmp_path):
    record = make_record()
    del record["provenance"]["commit"]
    with pytest.raises(DataError, match="provenance.*'commit' is a required property"):
        write_metrics(tmp_path / "m.json", record)
    record = make_record(model="Bad Name")
    with pytest.raises(DataError, match="model"):
        write_metrics(tmp_path / "m.json", record)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DataError, match="cannot read metrics JSON"):
        read_metrics(tmp_path / "broken.json")


def test_results_table_is_tidy(tmp_path):
    paths = write_records(tmp_path, [make_record(), make_record(seed=1, mse=0.5)])
    table = gather_results(paths)
    assert list(table.columns) == list(RESULT_COLUMNS)
    assert len(table) == 4 and set(table["metric"]) == {"mse", "mae"}
    assert table.loc[(table.seed == 1) & (table.metric == "mse"), "value"].item() == 0.5


def test_references_file_is_valid_and_has_the_timesnet_numbers():
    references = load_references([ROOT / "references" / "ett.yaml"])
    lookup = {(r["dataset"], r["task"], r["variant"], r["model"], r["metric"]): r["value"] for r in references}
    assert lookup[("etth1", "forecast", "h96", "timesnet", "mse")] == 0.384
    assert lookup[("ettm2", "forecast", "avg", "timesnet", "mae")] == 0.333
    assert lookup[("etth1", "forecast", "h720", "dlinear", "mae")] == 0.516
    assert lookup[("etth2", "impute", "avg", "timesnet", "mse")] == 0.049


def test_invalid_reference_file_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("entries:\n  - {dataset: etth1, task: forecast, variant: h96, model: dlinear, metric: mse}\n")
    with pytest.raises(DataError, match="'value' is a required property"):
        load_references([bad])


def test_leaderboard_rows_status_and_seed_statistics(tmp_path):
    records = [make_record(preset="paper", seed=s, mse=m) for s, m in ((1, 0.38), (2, 0.39))]
    records.append(make_record(model="naive", preset="smoke", mse=1.29, mae=0.71))
    board = build_leaderboard(gather_results(write_records(tmp_path, records)),
                              load_references([ROOT / "references" / "ett.yaml"]))
    row = board[(board.model == "dlinear") & (board.metric == "mse")].iloc[0]
    assert row.ours == pytest.approx(0.385) and row.ours_std == pytest.approx(math.sqrt(0.00005))
    assert row.seeds == 2 and row.paper_value == 0.386 and row.status == "reproduced"
    assert row.delta == pytest.approx(-0.001)
    naive = board[(board.model == "naive") & (board.metric == "mse")].iloc[0]
    assert naive.status in ("smoke run: not a reproduction", "no published number")
    markdown = leaderboard_markdown(board, {"ett": []})
    assert "| etth1 | forecast | h96 | dlinear | mse (min) | 0.385 ± 0.0071 | 2 | 0.386 |" in markdown


def test_status_rules():
    base = {"paper_value": 0.4, "ours": 0.41, "preset": "paper", "data_origin": "official",
            "tolerance": {"relative": 0.05}}
    assert status_of(base) == "reproduced"
    assert status_of({**base, "ours": 0.5}) == "not reproduced"
    assert status_of({**base, "preset": "smoke"}) == "smoke run: not a reproduction"
    assert status_of({**base, "data_origin": "generated"}) == "generated data: not a reproduction"
    assert status_of({**base, "paper_value": float("nan")}) == "no published number"
    assert status_of({**base, "paper_value": None, "note": "our model, not the paper's"}) == \
        "no published number (our model, not the paper's)"


def test_reference_without_value_needs_a_note(tmp_path):
    entry = "{dataset: etth1, task: forecast, variant: h96, model: dlinear, metric: mse, value: null, table: T, " \
            "averaging: A, source: S"
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"defaults: {{family: ett}}\nentries:\n  - {entry}}}\n")
    with pytest.raises(DataError, match="'note' is a required property"):
        load_references([bad])
    good = tmp_path / "good.yaml"
    good.write_text(f"defaults: {{family: ett}}\nentries:\n  - {entry}, note: no row for this model}}\n")
    [reference] = load_references([good])
    records = [make_record(preset="paper", mse=0.4)]
    board = build_leaderboard(gather_results(write_records(tmp_path, records)), [reference])
    row = board[board.metric == "mse"].iloc[0]
    assert math.isnan(row.paper_value) and row.status == "no published number (no row for this model)"


def test_horizon_average_rows_only_when_all_horizons_exist(tmp_path):
    records = [make_record(variant=f"h{h}", mse=m, preset="paper") for h, m in ((96, 0.1), (192, 0.2), (336, 0.3), (720, 0.4))]
    records.append(make_record(dataset="etth2", variant="h96", preset="paper"))
    board = build_leaderboard(gather_results(write_records(tmp_path, records)), [])
    averages = board[board.variant == "avg"]
    assert set(averages.dataset) == {"etth1"}
    assert averages[averages.metric == "mse"].ours.item() == pytest.approx(0.25)
