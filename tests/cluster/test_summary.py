"""The flat files for `dvc metrics` / `dvc plots`, built from metrics.json records of any family."""

from __future__ import annotations

import csv
import json

from replibench.report.summary import curve_csv, nested_metrics, summary_stage


def record(family, dataset, model, variant, metrics, curve):
    return {"family": family, "dataset": dataset, "task": "forecast", "model": model, "variant": variant,
            "seed": 7, "metrics": metrics, "training": {"curve": curve}}


CURVE = [{"epoch": 1, "step": 10, "lr": 0.001, "train_loss": 0.5, "val_loss": 0.25},
         {"epoch": 2, "step": 20, "lr": 0.0005, "train_loss": None, "val_loss": 0.125}]


def test_metrics_nest_by_run_and_drop_missing_values():
    tree = nested_metrics([record("ett", "etth1", "dlinear", "h96", {"mse": 0.375, "mae": None}, CURVE),
                           record("oc20", "s2ef-200k", "schnet", "all", {"energy_mae": 1.5}, [])])
    assert tree == {"ett": {"etth1": {"forecast": {"dlinear": {"h96": {"seed7": {"mse": 0.375}}}}}},
                    "oc20": {"s2ef-200k": {"forecast": {"schnet": {"all": {"seed7": {"energy_mae": 1.5}}}}}}}


def test_curve_csv_keeps_exact_floats_and_blank_missing_values():
    rows = list(csv.DictReader(curve_csv(record("ett", "etth1", "dlinear", "h96", {}, CURVE)).splitlines()))
    assert [float(row["val_loss"]) for row in rows] == [0.25, 0.125]
    assert rows[1]["train_loss"] == "" and rows[0]["step"] == "10"
    assert curve_csv(record("ett", "etth1", "naive", "h96", {}, [])) is None  # nothing trained


def test_summary_stage_writes_one_json_and_one_csv_per_trained_run(tmp_path, monkeypatch):
    records = [record("ett", "etth1", "dlinear", "h96", {"mse": 0.375}, CURVE),
               record("ett", "etth1", "naive", "h96", {"mse": 1.25}, [])]
    monkeypatch.setattr("replibench.results.read_metrics", lambda path: records[int(path)])
    summary_stage(metrics_paths=["0", "1"], metrics_out=tmp_path / "metrics.json", curves_dir=tmp_path / "curves")
    assert json.loads((tmp_path / "metrics.json").read_text())["ett"]["etth1"]["forecast"]["naive"]["h96"] == \
        {"seed7": {"mse": 1.25}}
    assert [p.name for p in (tmp_path / "curves").iterdir()] == ["ett__etth1__forecast__dlinear__h96__seed7.csv"]
