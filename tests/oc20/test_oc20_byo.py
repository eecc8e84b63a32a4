"""``replibench metrics oc20 s2ef|is2re``: external prediction files scored by our metric code."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replibench.cli import main
from replibench.families.oc20.types import VAL_SPLITS
from replibench.families.oc20.metrics.files import score_s2ef_files

ERRORS = {"val_id": 0.01, "val_ood_ads": 0.03, "val_ood_cat": 0.05, "val_ood_both": 0.2}


def perturbed_predictions(truth_dir, path, error):
    """The DFT labels plus a known energy offset and force noise, in the BYO format (shuffled rows)."""
    truth = pq.read_table(truth_dir)
    forces = [np.asarray(f) + error * np.sin(np.arange(len(f))) for f in truth.column("forces").to_pylist()]
    table = pa.table({"sid": truth.column("sid"), "fid": truth.column("fid"),
                      "energy": pa.array(truth.column("energy_ref").to_numpy() + error),
                      "forces": pa.array(forces, pa.list_(pa.float64()))})
    pq.write_table(table.take(np.arange(len(table))[::-1]), path)
    return path


def test_one_split(tiny_parquet, tmp_path):
    pred = perturbed_predictions(tiny_parquet / "val_id", tmp_path / "pred.parquet", 0.01)
    assert main(["metrics", "oc20", "s2ef", "--pred", str(pred), "--truth", str(tiny_parquet / "val_id"),
                 "--out", str(tmp_path / "m.json")]) == 0
    record = json.loads((tmp_path / "m.json").read_text())
    assert record["metrics"]["energy_mae"] == pytest.approx(0.01)
    assert record["metrics"]["energy_within_threshold"] == 1.0  # |0.01| < 0.02 eV
    assert record["metrics"] == score_s2ef_files(pred, tiny_parquet / "val_id")
    assert record["metric_info"]["forces_mae"] == {"direction": "min", "unit": "eV/A"}
    # fairchem's Evaluator names, all of them (forces_cosine_similarity, not forces_cosine)
    assert {"energy_mse", "forces_mse", "forcesx_mae", "forcesz_mse", "forces_cosine_similarity"} <= set(record["metrics"])
    assert "forces_cosine" not in record["metrics"] and set(record["metric_info"]) == set(record["metrics"])
    assert record["metrics"]["energy_mse"] == pytest.approx(0.01 ** 2)


def test_four_splits_give_the_papers_average(tiny_parquet, tmp_path):
    preds = [perturbed_predictions(tiny_parquet / s, tmp_path / f"{s}.parquet", ERRORS[s]) for s in VAL_SPLITS]
    truths = [tiny_parquet / s for s in VAL_SPLITS]
    assert main(["metrics", "oc20", "s2ef", "--pred", *map(str, preds), "--truth", *map(str, truths),
                 "--out", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert metrics["val_avg_energy_mae"] == pytest.approx(np.mean(list(ERRORS.values())))
    assert metrics["val_ood_both_energy_within_threshold"] == 0.0 and metrics["val_id_energy_within_threshold"] == 1.0
    assert metrics["val_avg_energy_within_threshold"] == pytest.approx(0.25)  # only val_id is within 0.02 eV


def test_errors_name_the_problem(tiny_parquet, tmp_path, capsys):
    pred = perturbed_predictions(tiny_parquet / "val_id", tmp_path / "pred.parquet", 0.01)
    assert main(["metrics", "oc20", "s2ef", "--pred", str(pred), "--truth", str(tiny_parquet / "val_ood_ads"),
                 "--out", str(tmp_path / "m.json")]) == 2
    assert "have no prediction" in capsys.readouterr().err
    assert main(["metrics", "oc20", "s2ef", "--pred", str(tmp_path / "nope.parquet"), "--truth", str(tiny_parquet / "val_id"),
                 "--out", str(tmp_path / "m.json")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["metrics", "oc20", "s2ef", "--pred", str(pred), str(pred), "--truth", str(tiny_parquet / "val_id"),
                 str(tiny_parquet / "train"), "--out", str(tmp_path / "m.json")]) == 2
    assert "distinct validation splits" in capsys.readouterr().err
