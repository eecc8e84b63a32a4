"""Sharded evaluation's contract: which tasks split, how units are divided, and the gather's checks
(a shard of another run, or shards that miss or repeat units, are refused naming the file)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replibench.config import family_object
from replibench.errors import ConfigError, DataError
from replibench.registry import resolve
from replibench.stages import SHARD_KEY, gather_shards, shard_units


def test_shard_units_are_consecutive_and_cover_every_unit_once():
    assert [shard_units(10, i, 3) for i in range(3)] == [range(0, 3), range(3, 6), range(6, 10)]
    assert [len(shard_units(2, i, 3)) for i in range(3)] == [0, 1, 1]  # more shards than units: empty ones
    with pytest.raises(ConfigError, match="shard 3 of 3"):
        shard_units(10, 3, 3)


@pytest.mark.parametrize("family_name", ["ett", "crystals", "lra", "oc20"])
def test_a_family_lists_exactly_the_tasks_that_can_split_their_prediction(family_name):
    from replibench.families.task import Task

    family = family_object(family_name)
    for task_name in family.tasks:
        task = resolve("task", task_name)
        splits = type(task).prediction_units is not Task.prediction_units
        assert splits == (task_name in family.shardable_tasks), task_name
        assert (type(task).predict_units is not Task.predict_units) == splits, task_name


def _shard(path, units, total, run_id="a/b/c/d/e/seed0", settings="s" * 64):
    record = {"run_id": run_id, "settings_sha256": settings, "shard": 0, "shards": 1, "units": list(units),
              "total_units": total, "device": "cpu", "batch_dependent_model": False, "wall_s": 1.5}
    table = pa.table({"x": list(range(*units))}).replace_schema_metadata(
        {SHARD_KEY: json.dumps(record).encode(), b"kept": b"yes"})
    pq.write_table(table, path)
    return path


def test_gather_orders_shards_by_unit_and_refuses_gaps_repeats_and_other_runs(tmp_path):
    first, second = _shard(tmp_path / "0.parquet", (0, 2), 5), _shard(tmp_path / "1.parquet", (2, 5), 5)
    tables, facts = gather_shards([second, first], run_id="a/b/c/d/e/seed0", settings_sha256="s" * 64)
    assert [t.column("x").to_pylist() for t in tables] == [[0, 1], [2, 3, 4]]
    assert facts["shards"] == 2 and facts["units"] == 5 and facts["predict_wall_s"] == 3.0
    assert all(SHARD_KEY not in t.schema.metadata and t.schema.metadata[b"kept"] == b"yes" for t in tables)
    with pytest.raises(DataError, match="cover units 0–2 of 5"):
        gather_shards([first], run_id="a/b/c/d/e/seed0", settings_sha256="s" * 64)
    with pytest.raises(DataError, match=r"1\.parquet: starts at unit 2, expected 0"):
        gather_shards([second], run_id="a/b/c/d/e/seed0", settings_sha256="s" * 64)
    other = _shard(tmp_path / "other.parquet", (0, 5), 5, run_id="x/b/c/d/e/seed0")
    with pytest.raises(DataError, match="other.parquet: a shard of x/b/c/d/e/seed0"):
        gather_shards([other], run_id="a/b/c/d/e/seed0", settings_sha256="s" * 64)
    pq.write_table(pa.table({"x": [1]}), tmp_path / "plain.parquet")
    with pytest.raises(DataError, match="plain.parquet: not a prediction shard"):
        gather_shards([tmp_path / "plain.parquet"], run_id="a/b/c/d/e/seed0", settings_sha256="s" * 64)
