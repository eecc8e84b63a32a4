"""is2re-synthetic-emt: the rehearsal's IS2RE stand-in has the official conversion's schema and loads."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from replibench.errors import ConfigError
from replibench.families.oc20.datasets.lmdb import is2re_schema
from replibench.families.oc20.family import FAMILY
from replibench.families.oc20.tasks.s2ef_is2re import IS2RETask
from replibench.registry import dataset_spec
from replibench.runs import RunSpec


def test_synthetic_is2re_rows_are_relaxations_in_the_official_schema_and_load_as_is2re(tmp_path):
    dataset, options = FAMILY.rehearsal_data("is2re-all", {})
    assert dataset == "is2re-synthetic-emt" and options["train_systems"] >= 64  # one GPU's IS2RE SchNet batch
    card = dataset_spec(dataset).preprocess([], tmp_path, options={**options, "train_systems": 3,
                                                                   "val_systems": 2, "relax_steps": 4})
    assert card["rows"] == {"train": 3, "val_id": 2, "val_ood_ads": 2, "val_ood_cat": 2, "val_ood_both": 2}
    assert card["notes"]["synthetic"] is True
    table = pq.read_table(tmp_path / "train" / "part-00000.parquet")
    assert table.schema.remove_metadata() == is2re_schema().remove_metadata()
    rows = table.to_pylist()
    for row in rows:
        tags, fixed = np.array(row["tags"]), np.array(row["fixed"])
        assert len(row["atomic_numbers"]) == row["natoms"] == len(row["pos"]) // 3 == len(row["pos_relaxed"]) // 3
        assert np.array_equal(fixed, tags == 0) and (tags == 2).any()  # sub-surface fixed; an adsorbate
        moved = np.abs(np.subtract(row["pos_relaxed"], row["pos"])).reshape(-1, 3)
        assert moved[fixed].max() == 0 and moved[~fixed].max() > 0  # only free atoms relax
        assert row["energy_relaxed"] < row["energy_init"]  # steepest descent lowers the EMT energy
    run = RunSpec("oc20", "is2re-all", "is2re", "schnet", "default", 0)
    data = IS2RETask().load(tmp_path, run, {"model": {}, "train": {}, "task": {"normalizer": "dataset"}})
    assert data.synthetic and len(data.splits["train"]) == 3
    assert data.splits["train"].energy.tolist() == pytest.approx([row["energy_relaxed"] for row in rows])
    again = dataset_spec(dataset).preprocess([], tmp_path / "again", options={**options, "train_systems": 3,
                                                                              "val_systems": 2, "relax_steps": 4})
    assert pq.read_table(tmp_path / "again" / "train" / "part-00000.parquet").equals(table)  # deterministic
    assert again["rows"] == card["rows"]
    with pytest.raises(ConfigError, match="unknown option"):
        dataset_spec(dataset).preprocess([], tmp_path / "bad", options={"systems": 3})
    assert "is2re-synthetic-emt" in FAMILY.rehearsal_datasets and "is2re-synthetic-emt" not in FAMILY.datasets
