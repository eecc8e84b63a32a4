"""OC20 tasks with a tiny stand-in model: batching, loss, prediction, scoring, bring-your-own files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from replibench.errors import DataError
from replibench.families.oc20.metrics.energy_forces import S2EF_METRICS
from replibench.families.oc20.metrics.files import score_is2re_files, score_s2ef_files
from replibench.runs import RunSpec
from replibench.registry import MODELS
from replibench.families.oc20.tasks.s2ef_is2re import IS2RETask, S2EFTask
from replibench.families.oc20.tasks.settings import (
    IS2RE_LOSS_COEFFICIENTS, IS2RE_NORMALIZER, S2EF_BASE_LOSS_COEFFICIENTS, S2EF_NORMALIZER,
)
from replibench.families.oc20.tasks.graph import build_radius_graph

RUN = RunSpec("oc20", "s2ef-synthetic-emt", "s2ef", "tiny-oc20", "default", 0)


@dataclass
class TinyConfig:
    cutoff: float = 6.0
    regress_forces: bool = True


class TinyModel(torch.nn.Module):
    """Per-element energies + a pair term exp(-b d); forces = -dE/dpos (a registry-style model)."""

    TASKS = ("s2ef", "is2re")

    Config = TinyConfig

    def __init__(self, config: TinyConfig | None = None) -> None:
        super().__init__()
        self.regress_forces = (config or TinyConfig()).regress_forces
        self.element = torch.nn.Embedding(100, 1)
        self.pair = torch.nn.Parameter(torch.tensor(0.1))
        self.decay = torch.nn.Parameter(torch.tensor(1.0))

    def forward(self, graph):
        pos = graph.pos.requires_grad_(True) if self.regress_forces else graph.pos  # (N, 3)
        source, target = graph.edge_index
        distance = torch.linalg.vector_norm(pos[source] + graph.edge_shift - pos[target], dim=-1)  # (E,)
        energy = torch.zeros(graph.num_structures, dtype=pos.dtype)
        energy = energy.index_add(0, graph.batch, self.element(graph.atomic_numbers).squeeze(-1))  # (B,)
        energy = energy.index_add(0, graph.batch[target], self.pair * torch.exp(-self.decay * distance))
        if not self.regress_forces:
            return energy, None
        forces = -torch.autograd.grad(energy.sum(), pos, create_graph=self.training)[0]  # (N, 3)
        return energy, forces


@pytest.fixture(autouse=True, scope="module")
def tiny_model_registered():
    """The task builds models through the registry: register the stand-in for this module."""
    MODELS["tiny-oc20"] = f"{__name__}:TinyModel"
    torch.manual_seed(0)
    yield
    MODELS.pop("tiny-oc20", None)


SETTINGS = {"model": {}, "train": {}, "task": {"normalizer": "dataset", "eval_batch_size": 5}}


@pytest.fixture(scope="module")
def s2ef(tiny_parquet):
    task = S2EFTask()
    data = task.load(tiny_parquet, RUN, SETTINGS)
    return task, data


def test_protocol_constants():
    assert S2EF_NORMALIZER == (-0.7554450631141663, 2.887317180633545)
    assert IS2RE_NORMALIZER == (-1.525913953781128, 2.279365062713623)
    assert S2EF_BASE_LOSS_COEFFICIENTS == (2.0, 100.0) and IS2RE_LOSS_COEFFICIENTS == (1.0, 0.0)


def test_model_is_built_through_the_registry_with_the_graph_cutoff(s2ef):
    from replibench.errors import ConfigError

    task, data = s2ef
    model = task.build_model(data, RUN, SETTINGS)
    assert isinstance(model, TinyModel) and model.regress_forces
    with pytest.raises(ConfigError, match="set by the task"):
        task.build_model(data, RUN, {**SETTINGS, "model": {"cutoff": 5.0}})
    with pytest.raises(ConfigError, match="unknown key"):
        S2EFTask().load(data.data_dir, RUN, {**SETTINGS, "task": {"normaliser": "oc20"}})
    with pytest.raises(ConfigError, match="test_splits must be among"):
        S2EFTask().load(data.data_dir, RUN, {**SETTINGS, "task": {"test_splits": ["train"]}})


def test_make_batch_matches_per_structure_graphs(s2ef):
    task, data = s2ef
    batch = task.make_batch(data, "train", torch.tensor([3, 0, 7]))
    split = data.splits["train"]
    graph = batch.graph
    assert graph.num_structures == 3 and int(graph.natoms.sum()) == graph.pos.shape[0]
    assert torch.equal(graph.natoms, torch.from_numpy(split.natoms[[3, 0, 7]]))
    first = 0
    for b, s in enumerate([3, 0, 7]):
        lo, hi = split.atom_ptr[s], split.atom_ptr[s + 1]
        edge_index, images = build_radius_graph(split.pos[lo:hi], split.cell[s])
        mine = (graph.batch[graph.edge_index[1]] == b).numpy()
        assert np.array_equal(graph.edge_index[:, mine].numpy() - first, edge_index)
        expected_shift = images @ split.cell[s]
        np.testing.assert_allclose(graph.edge_shift[mine].numpy(), expected_shift, atol=1e-5)
        first += hi - lo
    assert float(graph.edge_vectors().norm(dim=-1).max()) <= 6.0 + 1e-4
    assert torch.isclose(batch.energy[0], torch.tensor(split.energy[3], dtype=batch.energy.dtype))
    per_batch = S2EFTask().load(data_dir_of(data), RUN,
                                {**SETTINGS, "task": {**SETTINGS["task"], "graph": {"mode": "per_batch"}}})
    other = S2EFTask().make_batch(per_batch, "train", torch.tensor([3, 0, 7]))
    assert torch.equal(other.graph.edge_index, graph.edge_index)
    assert torch.allclose(other.graph.edge_shift, graph.edge_shift)


def data_dir_of(data):
    return data.data_dir


def test_loss_by_hand(s2ef):
    task, data = s2ef
    model = TinyModel()
    batch = task.make_batch(data, "train", torch.arange(4))
    energy, forces = model(batch.graph)
    mean, std = data.mean, data.std
    free = ~batch.graph.fixed
    expected = 2.0 * torch.mean(torch.abs(energy - (batch.energy - mean) / std)) \
        + 100.0 * torch.linalg.vector_norm(forces - batch.forces / std, dim=-1)[free].mean()
    assert float(task.training_loss(model, batch).detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_training_reduces_loss(s2ef):
    task, data = s2ef
    model = task.build_model(data, RUN, SETTINGS)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    batch = task.make_batch(data, "train", torch.arange(len(data.splits["train"])))
    first = float(task.training_loss(model, batch).detach())
    for _ in range(30):
        optimiser.zero_grad()
        loss = task.training_loss(model, batch)
        loss.backward()
        optimiser.step()
    assert float(task.training_loss(model, batch).detach()) < 0.8 * first
    assert task.validation_loss(model, data, SETTINGS) > 0


def test_predict_score_and_byo_files_agree(s2ef, tiny_parquet, tmp_path):
    task, data = s2ef
    model = task.build_model(data, RUN, SETTINGS)
    predictions = task.predict(model, data, RUN, SETTINGS)
    assert predictions.column_names == ["split", "sid", "fid", "energy", "forces"]
    assert len(predictions) == sum(len(data.splits[s]) for s in data.settings.test_splits)
    scores = task.score(predictions, data, SETTINGS)
    assert scores == task.score(predictions, data, SETTINGS)  # pure
    assert set(scores) <= set(task.metric_info())  # every metric has a direction and a unit
    per_split = {}
    for split in data.settings.test_splits:
        import pyarrow.compute as pc

        path = tmp_path / f"{split}.parquet"
        subset = predictions.filter(pc.equal(predictions.column("split"), split)).drop_columns(["split"])
        pq.write_table(subset.take(np.arange(len(subset))[::-1]), path)  # row order must not matter
        per_split[split] = score_s2ef_files(path, tiny_parquet / split)
        for metric, value in per_split[split].items():
            assert scores[f"{split}_{metric}"] == pytest.approx(value, rel=1e-12)
    for metric in per_split["val_id"]:  # the Gaunt paper's average: plain mean of the four splits
        assert scores[f"val_avg_{metric}"] == pytest.approx(np.mean([per_split[s][metric] for s in per_split]))
    assert len(scores) == 5 * len(S2EF_METRICS) == 5 * 14
    protocol = task.protocol(data, SETTINGS)
    assert protocol["energy_target"] == "energy_ref" and protocol["graph"]["max_neighbors"] == 50
    assert protocol["data_origin"] == "synthetic" and protocol["loss_coefficients"] == {"energy": 2.0, "forces": 100.0}
    subset = task.score(predictions, data, {**SETTINGS})
    two = S2EFTask().load(data.data_dir, RUN, {**SETTINGS, "task": {**SETTINGS["task"],
                                                                     "test_splits": ["val_id", "val_ood_ads"]}})
    import pyarrow.compute as pc

    kept = predictions.filter(pc.is_in(predictions.column("split"), pa.array(["val_id", "val_ood_ads"])))
    partial = S2EFTask().score(kept, two, SETTINGS)
    assert not any(name.startswith("val_avg") for name in partial) and len(partial) == 2 * len(S2EF_METRICS)
    assert partial["val_id_forces_mae"] == subset["val_id_forces_mae"]
    with pytest.raises(DataError, match="does not score"):
        S2EFTask().score(predictions, two, SETTINGS)


def test_perfect_predictions_score_perfectly(tiny_parquet, tmp_path):
    truth = pq.read_table(tiny_parquet / "val_id")
    pred = truth.select(["sid", "fid", "forces"]).append_column("energy", truth.column("energy_ref"))
    pq.write_table(pred, tmp_path / "p.parquet")
    scores = score_s2ef_files(tmp_path / "p.parquet", tiny_parquet / "val_id")
    assert scores["energy_mae"] == 0 and scores["forces_mae"] == 0
    assert scores["energy_forces_within_threshold"] == 1.0 and scores["forces_cosine_similarity"] == pytest.approx(1.0)
    total = score_s2ef_files(tmp_path / "p.parquet", tiny_parquet / "val_id", energy_column="energy")
    assert total["energy_mae"] > 0  # the total energy differs from the adsorption energy


def test_byo_errors(tiny_parquet, tmp_path):
    truth = pq.read_table(tiny_parquet / "val_id")
    good = truth.select(["sid", "fid", "forces"]).append_column("energy", truth.column("energy_ref"))

    def check(table, match):
        pq.write_table(table, tmp_path / "bad.parquet")
        with pytest.raises(DataError, match=match):
            score_s2ef_files(tmp_path / "bad.parquet", tiny_parquet / "val_id")

    check(good.slice(1), "have no prediction")
    check(pa.concat_tables([good, good.slice(0, 1)]), "more than once")
    extra = good.slice(0, 1).set_column(0, good.schema.field("sid"), pa.array([999_999_999], pa.int64()))
    check(pa.concat_tables([good, extra]), "not in")
    check(good.drop_columns(["forces"]), "missing columns")
    short = [f[:-3] if i == 2 else f for i, f in enumerate(good.column("forces").to_pylist())]
    check(good.set_column(2, good.schema.field("forces"), pa.array(short, pa.list_(pa.float64()))),
          "expected 3 \\* natoms")
    with pytest.raises(DataError, match="no such file"):
        score_s2ef_files(tmp_path / "missing.parquet", tiny_parquet / "val_id")


@pytest.fixture(scope="module")
def is2re_dir(tiny_parquet, tmp_path_factory):
    """IS2RE-schema splits made from the synthetic S2EF splits (initial = frame, target = energy_ref)."""
    from replibench.families.oc20.datasets.lmdb import is2re_schema

    out = tmp_path_factory.mktemp("is2re")
    for split in ("train", "val_id", "val_ood_ads", "val_ood_cat", "val_ood_both"):
        table = pq.read_table(tiny_parquet / split)
        sid = np.arange(len(table), dtype=np.int64) + 10 * len(table)
        columns = {"sid": pa.array(sid), "lmdb_key": pa.array(np.arange(len(table), dtype=np.int64)),
                   **{c: table.column(c) for c in ("natoms", "atomic_numbers", "pos", "cell", "tags", "fixed")},
                   "energy_init": table.column("energy"), "energy_relaxed": table.column("energy_ref"),
                   "pos_relaxed": table.column("pos")}
        (out / split).mkdir()
        pq.write_table(pa.table(columns).cast(is2re_schema()), out / split / "part-00000.parquet")
    return out


def test_is2re_task(is2re_dir, tmp_path):
    task = IS2RETask()
    settings = {"model": {}, "train": {}, "task": {"normalizer": "oc20", "eval_batch_size": 4}}
    data = task.load(is2re_dir, RUN, settings)
    assert (data.mean, data.std) == IS2RE_NORMALIZER
    model = task.build_model(data, RUN, settings)
    batch = task.make_batch(data, "train", torch.arange(3))
    assert batch.forces is None
    loss = task.training_loss(model, batch)
    energy, _ = model(batch.graph)
    expected = torch.mean(torch.abs(energy - (batch.energy - data.mean) / data.std))
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    predictions = task.predict(model, data, RUN, settings)
    assert predictions.column_names == ["split", "sid", "energy"]
    scores = task.score(predictions, data, settings)
    import pyarrow.compute as pc

    subset = predictions.filter(pc.equal(predictions.column("split"), "val_id")).drop_columns(["split"])
    pq.write_table(subset, tmp_path / "p.parquet")
    assert score_is2re_files(tmp_path / "p.parquet", is2re_dir / "val_id")["energy_mae"] == pytest.approx(
        scores["val_id_energy_mae"], rel=1e-12)
    assert set(scores) >= {"val_avg_energy_mae", "val_avg_energy_mse", "val_avg_energy_within_threshold"}
    assert not model.regress_forces and task.protocol(data, settings)["loss_coefficients"]["forces"] == 0.0


def test_prediction_shards_merge_to_the_whole_prediction(s2ef, monkeypatch):
    """A long evaluation predicts in shards (ranges of units: blocks of evaluation batches, split after
    split); merged in order they are the one-job prediction, row for row, empty shards included."""
    from replibench.families.oc20.tasks import s2ef_is2re
    from replibench.stages import shard_units

    monkeypatch.setattr(s2ef_is2re, "UNIT_BATCHES", 1)  # one evaluation batch of 5 structures per unit
    task, data = s2ef
    model = task.build_model(data, RUN, SETTINGS)
    whole = task.predict(model, data, RUN, SETTINGS)
    total = task.prediction_units(data, SETTINGS)
    assert total == sum(-(-len(data.splits[name]) // 5) for name in data.settings.test_splits)
    for shards in (1, 3, total + 2):
        parts = [task.predict_units(model, data, RUN, SETTINGS, shard_units(total, shard, shards))
                 for shard in range(shards)]
        merged = task.merge_predictions(parts, data, SETTINGS)
        assert merged.equals(whole), shards
