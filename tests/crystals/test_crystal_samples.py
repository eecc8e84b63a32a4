"""Flat metric names for metrics.json (k and convention suffixes), scoring prediction tables, and the
`replibench metrics crystals csp|gen` command on hand-built CSVs."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest

from replibench.cli import main
from replibench.families.crystals.metrics import METRICS, evaluate_samples, flatten_evaluation, metric_info_for
from replibench.families.crystals.metrics.samples import metric_name, split_metric_name

ROWS = [1, 2, 10, 11]  # MP-20 subset rows with 2–5 atoms; 11 (Sm(CoB)2) fails SMACT


@pytest.fixture(scope="module")
def truth(data_dir) -> pd.DataFrame:
    frame = pd.read_csv(data_dir / "mp_20" / "subset" / "test.csv", dtype=str, keep_default_na=False)
    return frame.iloc[ROWS][["material_id", "cif"]].reset_index(drop=True)


def test_metric_names_split_and_join():
    assert split_metric_name("match_rate_k1@crysbfn") == ("match_rate", 1, "crysbfn")
    assert split_metric_name("wdist_num_elems") == ("wdist_num_elems", None, None)
    assert split_metric_name("sampling_s_per_1000") == ("sampling_s_per_1000", None, None)
    assert metric_name("rmse", k=20) == "rmse_k20" and metric_name("cov_recall", convention="cdvae") == "cov_recall@cdvae"
    info = metric_info_for("rmse_k1@cdvae")
    assert (info.direction, info.unit) == (METRICS["rmse"].direction, METRICS["rmse"].unit)
    assert "first 1 sample" in info.description and "cdvae convention" in info.description
    with pytest.raises(KeyError):
        metric_info_for("bogus_k1")


def test_flatten_keeps_the_runs_variant_plain_and_suffixes_the_rest():
    result = {"variants": {"k1": {"match_rate": 25.0, "rmse": None}, "k20": {"match_rate": 75.0, "rmse": 0.1}},
              "unavailable": {"k1.rmse": "no test crystal was matched"}}
    metrics, unavailable = flatten_evaluation(result, primary_variant="k20")
    assert metrics == {"match_rate_k1": 25.0, "rmse_k1": None, "match_rate": 75.0, "rmse": 0.1}
    assert unavailable == {"rmse_k1": "no test crystal was matched"}
    metrics, unavailable = flatten_evaluation(result, primary_variant="k20", convention="crysbfn")
    assert set(metrics) == {"match_rate_k1@crysbfn", "rmse_k1@crysbfn", "match_rate@crysbfn", "rmse@crysbfn"}
    with pytest.raises(ValueError, match="k5"):
        flatten_evaluation(result, primary_variant="k5")


def test_prediction_table_scored_under_two_conventions(truth):
    ids, cifs = list(truth.material_id), list(truth.cif)
    # two samples each: the true structure first for crystals 0 and 3, second for crystal 1, none for 2
    samples = {ids[0]: [cifs[0], None], ids[1]: [cifs[2], cifs[1]], ids[2]: [None, None], ids[3]: [cifs[3], cifs[3]]}
    rows = [(mid, index, cif) for mid in ids for index, cif in enumerate(samples[mid])]
    predictions = pa.table({"material_id": [r[0] for r in rows], "sample_index": [r[1] for r in rows],
                            "cif": [r[2] for r in rows]})
    result = evaluate_samples(task="csp", predictions=predictions, truth=pa.table({"material_id": ids, "cif": cifs}),
                              convention="diffcsp", extra_conventions=["crysbfn"], dataset="mp-20", seed=0,
                              primary_samples=2, ks=[1])
    metrics = result["metrics"]
    # diffcsp gates on SMACT: crystal 3 never counts; crysbfn skips SMACT for CSP
    assert metrics["match_rate_k1"] == 25.0 and metrics["match_rate"] == 50.0
    assert metrics["match_rate_k1@crysbfn"] == 50.0 and metrics["match_rate@crysbfn"] == 75.0
    assert metrics["rmse"] == pytest.approx(0.0, abs=1e-6)
    assert result["details"]["diffcsp"]["counts"]["samples_total"] == 8
    assert result["details"]["crysbfn"]["protocol"]["convention"]["name"] == "crysbfn"


def test_generation_table_reports_unavailable_emd_and_histograms(truth):
    cifs = list(truth.cif)
    predictions = pa.table({"material_id": [f"g{i}" for i in range(5)], "sample_index": [0] * 5,
                            "cif": cifs + [None]})
    result = evaluate_samples(task="gen", predictions=predictions, truth=pa.table({"material_id": list(truth.material_id),
                                                                                    "cif": cifs}),
                              convention="cdvae", dataset="mp-20", seed=0, allow_fewer_valid=True)
    metrics = result["metrics"]
    assert metrics["struct_validity"] == pytest.approx(80.0) and metrics["cov_recall"] == pytest.approx(100.0)
    assert metrics["wdist_prop"] is None and "property model" in result["unavailable"]["wdist_prop"]
    assert metrics["wdist_density"] == pytest.approx(metrics["wdist_density"]) and metrics["wdist_num_elems"] >= 0
    histograms = result["details"]["cdvae"]["distributions"]
    assert sum(histograms["density"]["test"]) == 4 and sum(histograms["density"]["generated"]) == 3  # valid only
    assert histograms["num_elems"]["values"] == sorted(set(histograms["num_elems"]["values"]))


def test_byo_command_writes_the_pipelines_metric_names(tmp_path, truth, capsys):
    ids, cifs = list(truth.material_id), list(truth.cif)
    truth.to_csv(tmp_path / "truth.csv", index=False)
    pred = pd.DataFrame({"material_id": [ids[0], ids[0], ids[1], ids[1]], "cif": [cifs[1], cifs[0], "junk", cifs[1]]})
    pred.to_csv(tmp_path / "pred.csv", index=False)
    code = main(["metrics", "crystals", "csp", "--pred", str(tmp_path / "pred.csv"), "--truth",
                 str(tmp_path / "truth.csv"), "--convention", "cdvae", "--out", str(tmp_path / "m.json")])
    assert code == 0
    record = json.loads((tmp_path / "m.json").read_text())
    assert record["variant"] == "k2" and record["convention"] == "cdvae"
    assert record["metrics"]["match_rate"] == 50.0 and record["metrics"]["match_rate_k1"] == 0.0
    assert record["metrics"]["rmse_k1"] is None and "rmse_k1" in record["protocol"]["unavailable"]
    assert record["metric_info"]["match_rate"]["direction"] == "max" and len(record["predictions"]["sha256"]) == 64
    assert "match_rate 50" in capsys.readouterr().out
    # generation needs the dataset (COV cutoffs); errors are one line, exit status 2
    code = main(["metrics", "crystals", "gen", "--pred", str(tmp_path / "pred.csv"), "--truth",
                 str(tmp_path / "truth.csv"), "--convention", "cdvae", "--out", str(tmp_path / "g.json")])
    assert code == 2 and "--dataset" in capsys.readouterr().err
    code = main(["metrics", "crystals", "csp", "--pred", str(tmp_path / "missing.csv"), "--truth",
                 str(tmp_path / "truth.csv"), "--convention", "cdvae", "--out", str(tmp_path / "g.json")])
    assert code == 2 and "missing.csv" in capsys.readouterr().err


def test_generation_without_valid_crystals_says_why_each_metric_is_missing(truth):
    predictions = pa.table({"material_id": ["g0", "g1"], "sample_index": [0, 0], "cif": [None, "not a CIF"]})
    result = evaluate_samples(task="gen", predictions=predictions,
                              truth=pa.table({"material_id": list(truth.material_id), "cif": list(truth.cif)}),
                              convention="diffcsp", dataset="mp-20", seed=0, allow_fewer_valid=True)
    metrics, unavailable = result["metrics"], result["unavailable"]
    assert metrics["struct_validity"] == 0.0 and metrics["cov_precision"] == 0.0 and metrics["cov_recall"] == 0.0
    assert metrics["wdist_density"] is None and "not enough valid crystals" in unavailable["wdist_density"]
    assert "property model" in unavailable["wdist_prop"] and "not enough valid" in unavailable["wdist_prop"]
    assert all(name in unavailable for name, value in metrics.items() if value is None)
    histograms = result["details"]["diffcsp"]["distributions"]  # the test side still plots
    assert sum(histograms["density"]["test"]) == 4 and sum(histograms["density"]["generated"]) == 0
