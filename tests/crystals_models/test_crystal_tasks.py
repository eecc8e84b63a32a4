"""Crystal tasks on tiny Parquet splits made from real Perov-5 / Carbon-24 rows: loading and bad input,
vectorised batching, deterministic evaluation, prediction tables with CIFs, scoring hand-off, and
sampling-efficiency counts."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from replibench import registry
from replibench.errors import ConfigError, DataError
from replibench.runs import RunSpec
from replibench.families.crystals.tasks.data import read_crystal_split
from replibench.families.crystals.tasks.csp_gen import AbInitioGeneration, CrystalStructurePrediction, sampling_efficiency


@pytest.fixture(autouse=True)
def _models_registered(monkeypatch):
    monkeypatch.setitem(registry.MODELS, "diffcsp", "replibench.families.crystals.models.diffcsp:DiffCSP")
    monkeypatch.setitem(registry.MODELS, "crysbfn", "replibench.families.crystals.models.crysbfn:CrysBFN")


def _run(model: str, task: str = "csp", dataset: str = "perov-5") -> RunSpec:
    return RunSpec("materials", dataset, task, model, "default", seed=7)


def _settings(tiny, model: str, **task) -> dict:
    extra = {"timesteps": 5} if model == "diffcsp" else {"num_steps": 4, "type_loss_samples": 8}
    return {"model": {**tiny, **extra}, "task": {"sample_batch_size": 4, "eval_batch_size": 5, **task}}


def test_load_reads_splits_histogram_vocabulary_and_batches_match_rows(perov_dir, tiny):
    task = CrystalStructurePrediction()
    data = task.load(perov_dir, _run("diffcsp"), _settings(tiny, "diffcsp"))
    assert task.num_train_examples(data) == 24 and len(data.splits["test"]) == 6
    assert torch.allclose(data.num_atoms_probs[5], torch.tensor(1.0, dtype=torch.float64))  # Perov-5: 5 atoms
    table = pq.read_table(perov_dir / "train.parquet")
    assert set(data.type_vocab) >= {z for row in table.column("atomic_numbers").to_pylist() for z in row}
    batch = task.make_batch(data, "train", torch.tensor([3, 0, 17]))
    for position, row in enumerate((3, 0, 17)):
        atoms = batch.batch == position
        assert batch.atomic_numbers[atoms].tolist() == table.column("atomic_numbers")[row].as_py()
        frac = torch.tensor(table.column("frac_coords")[row].as_py()).reshape(-1, 3) % 1.0
        assert torch.allclose(batch.frac_coords[atoms], frac.float(), atol=1e-6)
        assert torch.allclose(
            batch.lattice[position], torch.tensor(table.column("lattice")[row].as_py()).reshape(3, 3).float()
        )


def test_smoke_split_mapping_reads_val_once_for_training(perov_dir, tiny):
    settings = _settings(tiny, "diffcsp", splits={"train": "val", "val": "val", "test": "test"})
    data = CrystalStructurePrediction().load(perov_dir, _run("diffcsp"), settings)
    assert data.splits["train"] is data.splits["val"] and len(data.splits["train"]) == 8


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows: rows[:0], "split is empty"),
        (
            lambda rows: [rows[0], {**rows[1], "num_atoms": 0, "atomic_numbers": [], "frac_coords": []}],
            "row 1: num_atoms",
        ),
        (lambda rows: [{**rows[0], "frac_coords": rows[0]["frac_coords"][:-1]}], "row 0: column 'frac_coords' has 14"),
        (lambda rows: [rows[0], {**rows[1], "lattice": [float("nan")] * 9}], "row 1: column 'lattice' is invalid"),
    ],
)
def test_bad_input_is_a_data_error_naming_file_and_row(perov_dir, tmp_path, change, message):
    rows = pq.read_table(perov_dir / "test.parquet").to_pylist()
    path = tmp_path / "test.parquet"
    pq.write_table(pa.Table.from_pylist(change(rows), schema=pq.read_schema(perov_dir / "test.parquet")), path)
    with pytest.raises(DataError, match=message) as error:
        read_crystal_split(path)
    assert str(path) in str(error.value)


def test_missing_file_and_unknown_convention_are_reported(tmp_path, perov_dir, tiny):
    with pytest.raises(DataError, match="not found"):
        read_crystal_split(tmp_path / "train.parquet")
    with pytest.raises(ConfigError, match="convention"):
        CrystalStructurePrediction().load(perov_dir, _run("diffcsp"), _settings(tiny, "diffcsp", convention="mine"))
    data = CrystalStructurePrediction().load(perov_dir, _run("diffcsp"), _settings(tiny, "diffcsp"))
    with pytest.raises(ConfigError, match="hidden_size"):
        CrystalStructurePrediction().build_model(data, _run("diffcsp"), {"model": {"hidden_size": 3}})


@pytest.mark.parametrize("model_name", ["diffcsp", "crysbfn"])
def test_validation_loss_is_deterministic_and_leaves_training_rng_alone(perov_dir, tiny, model_name):
    task = CrystalStructurePrediction()
    settings = _settings(tiny, model_name)
    data = task.load(perov_dir, _run(model_name), settings)
    model = task.build_model(data, _run(model_name), settings)
    torch.manual_seed(1)
    expected_next = torch.rand(1)
    torch.manual_seed(1)
    first = task.validation_loss(model, data, settings)
    assert torch.equal(torch.rand(1), expected_next) and model.training
    assert first == task.validation_loss(model, data, settings)
    loss = task.training_loss(model, task.make_batch(data, "train", torch.arange(6)))
    assert loss.ndim == 0 and loss.requires_grad


@pytest.mark.filterwarnings("ignore:Issues encountered while parsing CIF")
@pytest.mark.parametrize("model_name", ["diffcsp", "crysbfn"])
def test_csp_predictions_in_test_order_with_parseable_cifs_and_reproducible(perov_dir, tiny, model_name):
    from pymatgen.core import Structure

    task = CrystalStructurePrediction()
    settings = _settings(tiny, model_name, num_samples=2)
    data = task.load(perov_dir, _run(model_name), settings)
    model = task.build_model(data, _run(model_name), settings)
    table = task.predict(model, data, _run(model_name), settings)
    test = data.splits["test"]
    assert table.num_rows == 12
    assert table.column("material_id").to_pylist() == [m for m in test.material_ids for _ in range(2)]
    assert table.column("sample_index").to_pylist() == [0, 1] * 6
    for row in table.to_pylist()[:4]:
        structure = Structure.from_str(row["cif"], fmt="cif")
        assert sorted(site.specie.Z for site in structure) == sorted(row["atomic_numbers"])
        assert all(0 <= f < 1 for f in row["frac_coords"])
    assert (
        table.schema.metadata[b"network_evaluations_per_crystal"] == str(model.expected_network_evaluations()).encode()
    )
    assert task.predict(model, data, _run(model_name), settings).equals(table)
    single = task.predict(model, data, _run(model_name), {**settings, "task": {**settings["task"], "num_samples": 1}})
    first_samples = table.filter(pa.compute.equal(table.column("sample_index"), 0))
    assert single.column("frac_coords").equals(first_samples.column("frac_coords"))


@pytest.mark.parametrize("model_name", ["diffcsp", "crysbfn"])
def test_generation_draws_atom_counts_from_training_histogram(carbon_dir, tiny, model_name):
    task = AbInitioGeneration()
    settings = _settings(tiny, model_name, num_generated=9)
    run = _run(model_name, "gen", "carbon-24")
    data = task.load(carbon_dir, run, settings)
    model = task.build_model(data, run, settings)
    table = task.predict(model, data, run, settings)
    assert table.column("material_id").to_pylist() == [f"gen-{i:06d}" for i in range(9)]
    train_counts = set(data.splits["train"].num_atoms.tolist())
    assert set(table.column("num_atoms").to_pylist()) <= train_counts
    if model_name == "crysbfn":  # Carbon-24 vocabulary is carbon only
        assert {z for row in table.column("atomic_numbers").to_pylist() for z in row} == {6}


def test_score_hands_predictions_and_truth_to_the_metrics(perov_dir, tiny, monkeypatch):
    seen = {}

    def evaluate_samples(**kwargs):
        seen.update(kwargs)
        return {"metrics": {"match_rate": 50.0, "rmse": None}, "unavailable": {"rmse": "no test crystal was matched"},
                "details": {"crysbfn": {"counts": {"num_truth": 3}}}}

    import replibench.families.crystals.metrics as crystal_metrics

    monkeypatch.setattr(crystal_metrics, "evaluate_samples", evaluate_samples)
    task = CrystalStructurePrediction()
    settings = _settings(tiny, "diffcsp", convention="crysbfn", limit_test=3, num_samples=2, report_samples=[1],
                         extra_conventions=["cdvae"])
    data = task.load(perov_dir, _run("diffcsp"), settings)
    predictions = pa.table({"material_id": ["a"], "sample_index": [0], "cif": [None], "num_atoms": [5]}).replace_schema_metadata(
        {"sampling_wall_s": "0.5", "network_evaluations_per_crystal": "10"})
    metrics = task.score(predictions, data, settings)
    assert metrics == {"match_rate": 50.0, "rmse": None, "sampling_s_per_1000": 500.0, "nfe_per_crystal": 10.0}
    assert seen["task"] == "csp" and seen["convention"] == "crysbfn" and seen["dataset"] == "perov-5"
    assert seen["primary_samples"] == 2 and seen["ks"] == [1] and seen["extra_conventions"] == ["cdvae"]
    assert seen["predictions"].column_names == ["material_id", "sample_index", "cif"]
    assert seen["truth"].column("material_id").to_pylist() == data.splits["test"].material_ids[:3]
    protocol = task.protocol(data, settings)
    assert protocol["test_structures"] == 3 and protocol["data_origin"] == "official-subset"
    assert protocol["unavailable"] == {"rmse": "no test crystal was matched"}
    assert protocol["convention"] == "crysbfn" and protocol["extra_conventions"] == ["cdvae"]
    info = task.metric_info()
    assert "match_rate_k1@cdvae" in info and info["match_rate_k1@cdvae"].direction == "max"
    assert info["sampling_s_per_1000"].direction == "min" and "bogus" not in info


@pytest.mark.parametrize(("model_name", "per_crystal"), [("diffcsp", 10), ("crysbfn", 4)])
def test_sampling_efficiency_counts_network_evaluations(perov_dir, tiny, model_name, per_crystal):
    task = AbInitioGeneration()
    settings = _settings(tiny, model_name)
    run = _run(model_name, "gen")
    data = task.load(perov_dir, run, settings)
    stats = sampling_efficiency(task.build_model(data, run, settings), data, run, settings, num_crystals=10)
    assert stats["network_evaluations_per_crystal"] == per_crystal
    assert stats["batched_forward_calls"] == 3 * per_crystal  # ceil(10 / 4) batches
    assert stats["network_evaluations_per_1000_crystals"] == 1000 * per_crystal
    assert stats["wall_s_per_1000_crystals"] == pytest.approx(stats["wall_s"] * 100)
