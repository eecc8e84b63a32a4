"""CDVAE's tasks on real Perov-5 rows (preprocessed with their CrystalNN graphs): training loss and
validation objective, teacher forcing by epoch, reconstruction shards equal one job, generation decodes its
own atom counts, optimisation decodes at upstream's steps and moves only z."""

from __future__ import annotations

import pytest
import torch

from replibench.runs import RunSpec

TINY = {"hidden_dim": 16, "latent_dim": 16, "decoder_hidden_dim": 8, "encoder_hidden_channels": 8,
        "encoder_num_blocks": 1, "encoder_int_emb_size": 4, "encoder_basis_emb_size": 4,
        "encoder_out_emb_channels": 8, "num_noise_level": 2, "n_step_each": 2}


@pytest.fixture(scope="module")
def perov_graph_dir(tmp_path_factory, shared_data):
    import pandas as pd

    from replibench.families.crystals.datasets import PEROV5

    folder = tmp_path_factory.mktemp("perov_graphs")
    files = []
    for split, rows in (("val", 12), ("test", 6)):  # the first rows of the real files, cells as text
        frame = pd.read_csv(shared_data / "perov_5" / f"{split}.csv", dtype=str, keep_default_na=False).head(rows)
        frame.to_csv(folder / f"perov_5-{split}.csv", index=False)
        files.append(folder / f"perov_5-{split}.csv")
    PEROV5.preprocess(files, folder / "out", options={"crystal_graph": "crystalnn"})
    return folder / "out"


def _setup(task_name: str, data_dir, **task):
    from replibench.registry import resolve

    task_object = resolve("task", task_name)
    run = RunSpec(family="crystals", dataset="perov-5", task=task_name, model="cdvae", variant="default", seed=0,
                  preset="smoke")
    model_settings = {**TINY, **({"predict_property": True} if task_name == "opt" else {})}
    settings = {"model": model_settings, "task": {"convention": "cdvae",
                                                  "splits": {"train": "val", "val": "val", "test": "test"}, **task}}
    data = task_object.load(data_dir, run, settings)
    model = task_object.build_model(data, run, settings)
    return task_object, run, settings, data, model


def test_training_objective_teacher_forcing_and_validation(perov_graph_dir):
    task, _, settings, data, model = _setup("opt", perov_graph_dir)
    batch = task.make_batch(data, "train", torch.arange(4))
    assert batch.training_property is not None and batch.edge_index.shape[0] == 2
    # the lattice scaler was fitted on the training split: scaled lengths and angles of val.csv's 12 rows
    assert model.lattice_scaler.means[3:].tolist() == pytest.approx([90.0, 90.0, 90.0], abs=1e-3)
    terms = model.loss_terms(batch, torch.Generator().manual_seed(0))
    c = model.config
    expected = (c.cost_natom * terms["num_atom_loss"] + c.cost_lattice * terms["lattice_loss"]
                + c.cost_coord * terms["coord_loss"] + c.cost_type * terms["type_loss"] + c.beta * terms["kld_loss"]
                + c.cost_composition * terms["composition_loss"] + c.cost_property * terms["property_loss"])
    assert torch.isfinite(terms["loss"]) and terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    task.start_epoch(model, c.teacher_forcing_max_epoch)
    assert model.teacher_forcing
    task.start_epoch(model, c.teacher_forcing_max_epoch + 1)
    assert not model.teacher_forcing
    value = task.validation_loss(model, data, settings)
    assert value == pytest.approx(task.validation_loss(model, data, settings))  # fixed draws: the same number


def test_reconstruction_shards_equal_one_job_and_generation_decodes_counts(perov_graph_dir):
    task, run, settings, data, model = _setup("recon", perov_graph_dir, sample_batch_size=2, limit_test=5)
    assert task.prediction_units(data, settings) == 3
    whole = task.predict(model, data, run, settings)
    parts = task.merge_predictions([task.predict_units(model, data, run, settings, range(0, 2)),
                                    task.predict_units(model, data, run, settings, range(2, 3))], data, settings)
    assert whole.column("material_id").to_pylist() == data.splits["test"].material_ids[:5]
    assert whole.select(["num_atoms", "atomic_numbers", "frac_coords", "lattice"]).equals(
        parts.select(["num_atoms", "atomic_numbers", "frac_coords", "lattice"]))
    assert model.expected_network_evaluations() == 2 * 2  # levels × steps per level
    gen, gen_run, gen_settings, gen_data, gen_model = _setup("gen", perov_graph_dir, num_generated=3,
                                                             sample_batch_size=2)
    table = gen.predict(gen_model, gen_data, gen_run, gen_settings)
    counts = table.column("num_atoms").to_pylist()
    assert table.num_rows == 3 and all(0 <= n <= gen_model.config.max_atoms for n in counts)


def test_optimisation_moves_only_z_and_decodes_at_upstreams_steps(perov_graph_dir):
    task, run, settings, data, model = _setup("opt", perov_graph_dir, num_starting_points=3, num_gradient_steps=5,
                                              num_saved_crys=3)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    table = task.predict(model, data, run, settings)
    assert task.checkpoints(settings) == [0, 2, 4]  # interval 5 // 2 = 2, and the last step 4
    assert table.num_rows == 3 * 3
    assert table.column("sample_index").to_pylist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert table.column("material_id").to_pylist()[:3] == data.splits["test"].material_ids[:3]
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())  # unfrozen again afterwards
    assert table.column("cif").null_count < table.num_rows  # CIFs written for buildable crystals
