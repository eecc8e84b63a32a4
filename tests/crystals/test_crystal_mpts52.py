"""MPTS-52 (DiffCSP Table 1's fourth dataset): its files and checksums, preprocessing of its own column
schema, the paper plan's DiffCSP and CrysBFN runs at the released settings, their rehearsal stand-in,
and the reported number they are compared with. MPTS-52's CSVs are not at hand offline: the
preprocessing tests write CSVs in MPTS-52's exact header with real Materials Project CIFs (MP-20 fork
subset rows) and hand-chosen property cells."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from replibench.config import load_config, plan_runs, validate_config
from replibench.errors import ConfigError, DataError
from replibench.families.crystals.datasets import (
    DATASETS,
    DIFFCSP_COMMIT,
    MPTS52,
    crystal_schema,
    preprocess,
    raw_file_name,
    remote_file,
)
from replibench.families.crystals.family import FAMILY

ROOT = Path(__file__).resolve().parents[2]
#: the header of jiaor17/DiffCSP@7121d15 data/mpts_52/{train,val,test}.csv (unnamed pandas index first)
MPTS52_HEADER = ",material_id,theoretical,energy_above_hull,formation_energy_per_atom,year,cif"
#: `git ls-tree -r HEAD data/mpts_52` in jiaor17/DiffCSP@7121d15 (and GenSI-THUAIR/CrysBFN)
BLOBS = {"train": "28c53b0a0fd3f32fb8078aca8e5b484e372790c6", "val": "a377ba0ca7bee37ee69d9f50f8362eaa35d9f690",
         "test": "2e8af159618f63be346b6527f155514323964423"}


def _plan(preset: str = "paper", **changes) -> dict:
    config = load_config(ROOT / "config.yaml")
    config["preset"] = preset
    config["crystals"].update(changes)
    return {p.run.run_id: p for p in plan_runs(validate_config(config)) if p.run.family == "crystals"}


def _cifs(data_dir: Path, count: int) -> list[tuple[str, str]]:
    frame = pd.read_csv(data_dir / "mp_20" / "subset" / "test.csv")
    return list(zip(frame.material_id[:count], frame.cif[:count]))


def _mpts_csv(path: Path, rows: list[tuple]) -> Path:
    """Rows (index, material_id, theoretical, e_hull, e_form, year, cif) → a CSV in MPTS-52's layout."""
    frame = pd.DataFrame(rows, columns=["", "material_id", "theoretical", "energy_above_hull",
                                        "formation_energy_per_atom", "year", "cif"])
    frame.to_csv(path, index=False)
    assert path.read_text().splitlines()[0] == MPTS52_HEADER
    return path


def test_mpts52_files_are_diffcsps_with_its_git_blob_ids():
    spec = DATASETS["mpts-52"]
    assert (spec.max_atoms, spec.niggli, spec.primitive, spec.target_property) == (52, True, False,
                                                                                    "formation_energy_per_atom")
    assert spec.rows == {"train": 27380, "val": 5000, "test": 8096}
    for split, blob in BLOBS.items():
        remote = remote_file("mpts-52", split)
        assert remote.checksum == f"git-sha1:{blob}" and remote.size is None
        assert remote.url == (f"https://raw.githubusercontent.com/jiaor17/DiffCSP/{DIFFCSP_COMMIT}"
                              f"/data/mpts_52/{split}.csv")
        assert remote.name == f"mpts_52-{split}.csv" and remote.mirror_path == f"mpts_52/{split}.csv"
    names = [remote_file(dataset, split).name for dataset in DATASETS for split in ("train", "val", "test")]
    assert len(names) == len(set(names))  # one raw folder for the family: no name may collide
    assert [Path(r.name).name for r in MPTS52.remote_files] == [raw_file_name("mpts-52", s)
                                                                for s in ("train", "val", "test")]


def test_preprocess_keeps_mpts52_columns_and_rejects_bad_cells_by_row(tmp_path, data_dir):
    (id0, cif0), (id1, cif1), (id2, cif2), (id3, cif3), (id4, cif4) = _cifs(data_dir, 5)
    source = _mpts_csv(tmp_path / "mpts_52-test.csv", [
        (17, id0, "False", "0.0", "-1.25", "2019", cif0),
        (18, id1, "True", "", "-0.5", "2020", cif1),       # empty e_hull: kept as null
        (19, id2, "False", "0.01", "-0.75", "2019.5", cif2),  # a year that is no integer: rejected
        (20, id3, "maybe", "0.02", "-0.25", "2021", cif3),    # not a boolean: rejected
        (21, id4, "true", "0.03", "-2.0", "2018.0", cif4),   # pandas' float spelling of a year: 2018
    ])
    card = preprocess({"test": source}, tmp_path / "out", dataset="mpts-52", workers=1)
    assert card["rows"] == {"test": 3} and card["rejected_rows"] == 2
    assert card["notes"]["max_atoms"] == 52 and card["notes"]["published_rows"]["test"] == 8096
    table = pq.read_table(tmp_path / "out" / "test.parquet")
    assert table.schema.equals(crystal_schema("mpts-52"))
    assert str(table.schema.field("year").type) == "int32" and str(table.schema.field("theoretical").type) == "bool"
    rows = table.to_pylist()
    assert [(r["material_id"], r["theoretical"], r["year"], r["source_index"], r["source_row"]) for r in rows] == [
        (id0, False, 2019, 17, 1), (id1, True, 2020, 18, 2), (id4, True, 2018, 21, 5)]
    assert math.isclose(rows[0]["formation_energy_per_atom"], -1.25) and rows[0]["energy_above_hull"] == 0.0
    assert rows[1]["energy_above_hull"] is None and "spacegroup_number" not in rows[0]
    rejects = {r["row"]: r["reason"] for r in pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()}
    assert set(rejects) == {3, 4}
    assert "unparseable number" in rejects[3] and "'year'" in rejects[3] and "'2019.5' is not an integer" in rejects[3]
    assert "'theoretical'" in rejects[4] and "not a boolean" in rejects[4]


def test_an_mp20_layout_file_is_not_taken_for_mpts52(tmp_path, data_dir):
    with pytest.raises(DataError, match=r"lacks columns \['energy_above_hull', 'year', 'theoretical'\]"):
        preprocess({"test": data_dir / "mp_20" / "subset" / "test.csv"}, tmp_path / "out", dataset="mpts-52")


def test_paper_plan_runs_diffcsp_and_crysbfn_on_mpts52_at_the_released_settings():
    plan = _plan()
    mpts = sorted(run_id for run_id in plan if "/mpts-52/" in run_id)
    assert mpts == ["crystals/mpts-52/csp/crysbfn/k1-steps200/seed0", "crystals/mpts-52/csp/diffcsp/k20/seed0"]
    diffcsp = plan["crystals/mpts-52/csp/diffcsp/k20/seed0"].settings
    assert diffcsp["model"] == {"step_lr": 1e-5}  # recommand_step_lr csp = csp_multi = 1e-5: no k1 run apart
    assert (diffcsp["train"]["epochs"], diffcsp["train"]["batch_size"]) == (500, 128)
    assert diffcsp["task"]["sample_batch_size"] == 128 and diffcsp["task"]["report_samples"] == [1]
    assert diffcsp["task"]["num_samples"] == 20 and diffcsp["task"]["convention"] == "diffcsp"
    crysbfn = plan["crystals/mpts-52/csp/crysbfn/k1-steps200/seed0"].settings
    assert crysbfn["model"] == {"num_steps": 200, "lattice_std": 4.824758778702219}
    train = crysbfn["train"]
    assert (train["epochs"], train["batch_size"], train["patience"], train["ema_decay"]) == (10000, 128, 5000, 0.995)
    assert crysbfn["task"]["num_samples"] == 1 and crysbfn["task"]["convention"] == "crysbfn"
    assert FAMILY.official_train_examples("mpts-52") == 27380
    run = plan["crystals/mpts-52/csp/diffcsp/k20/seed0"].run
    assert FAMILY.official_prediction_rows(run, diffcsp) == 20 * 8096
    assert FAMILY.dataset_options({}, "mpts-52", "paper")["files"] == [
        "mpts_52-train.csv", "mpts_52-val.csv", "mpts_52-test.csv"]


def test_diffcsp_generation_on_mpts52_is_refused_it_has_no_released_step_size():
    runs = [{"task": "gen", "models": ["diffcsp"], "datasets": ["mpts-52"], "presets": ["paper"]}]
    with pytest.raises(ConfigError, match="step_lr = None"):
        _plan(runs=runs)


def test_mpts52_rehearses_on_the_mp20_fork_subset_with_all_three_splits():
    assert FAMILY.rehearsal_data("mpts-52", {}) == (
        "mp-20-fork-subset", {"files": [f"mp_20_fork_subset-{s}.csv" for s in ("train", "val", "test")]})
    plan = _plan()
    for run_id in ("crystals/mpts-52/csp/diffcsp/k20/seed0", "crystals/mpts-52/csp/crysbfn/k1-steps200/seed0"):
        planned = plan[run_id]
        assert FAMILY.rehearsal_settings(planned.run, planned.settings) == planned.settings  # no split swap
        proxies = FAMILY.rehearsal_proxies(planned.run, planned.settings)
        # Carbon-24's rehearsed sampling, scaled by the mean edges per crystal (CSPNet is fully connected)
        assert proxies and all(p.factor == pytest.approx(598.5 / 97.63 * (200 / 1000 if "steps200" in run_id else 1))
                               and "mean N² per crystal" in p.why for p in proxies)


def test_crysbfn_mpts52_run_joins_the_reported_match_rate():
    from replibench.families.crystals.metrics import metric_info_for
    from replibench.report import build_leaderboard, load_references

    run_id = "crystals/mpts-52/csp/crysbfn/k1-steps200/seed0"
    results = pd.DataFrame([{
        "family": "crystals", "dataset": "mpts-52", "task": "csp", "model": "crysbfn", "variant": "k1-steps200",
        "variant_values": json.dumps({"samples": 1, "steps": 200}), "preset": "paper", "seed": 0, "split": "test",
        "metric": "match_rate", "value": 19.0, "direction": metric_info_for("match_rate").direction,
        "unit": metric_info_for("match_rate").unit, "data_origin": "official", "steps": 10, "epochs": 1,
        "max_steps": None, "train_wall_s": 1.0, "gpu_hours": 0.0, "run_id": run_id}])
    board = build_leaderboard(results, load_references([ROOT / "references" / "crystals.yaml"]))
    row = board[(board["dataset"] == "mpts-52") & (board["metric"] == "match_rate")].iloc[0]
    assert row["paper_value"] == 20.52 and row["status"] == "reproduced"  # 1.52 points: within 2
