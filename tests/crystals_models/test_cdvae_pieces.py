"""CDVAE's small pieces on hand-checked values: noise levels, scalers, lattice targets, the config's checks,
the optimisation's decoding steps and success rates, batch gathering with edges."""

from __future__ import annotations

import pytest
import torch

from replibench.families.crystals.models.cdvae import (
    CDVAEConfig,
    TargetScaler,
    fit_scaler_statistics,
    geometric_levels,
    scaled_lattice_targets,
)


def test_noise_levels_are_vae_yaml_geometric_series() -> None:
    sigmas = geometric_levels(10.0, 0.01, 50)
    assert sigmas.dtype == torch.float32 and sigmas.shape == (50,)
    assert sigmas[0].item() == pytest.approx(10.0) and sigmas[-1].item() == pytest.approx(0.01)
    # ratio between neighbours: (0.01 / 10) ** (1 / 49)
    assert (sigmas[1] / sigmas[0]).item() == pytest.approx(1e-3 ** (1 / 49), rel=1e-6)


def test_scaler_fits_biased_std_plus_epsilon_and_cuts_gradients() -> None:
    values = torch.tensor([[1.0, 10.0], [3.0, 10.0]])
    means, stds = fit_scaler_statistics(values)
    assert means.tolist() == [2.0, 10.0]
    assert stds.tolist() == pytest.approx([1.0 + 1e-5, 1e-5])  # biased std of (1, 3) is 1
    scaler = TargetScaler(2)
    scaler.set_statistics(means, stds)
    x = torch.tensor([[3.0, 10.0]], dtype=torch.float64, requires_grad=True)
    scaled = scaler.transform(x)
    assert scaled.dtype == torch.float32 and not scaled.requires_grad  # StandardScalerTorch: torch.tensor(X, float)
    assert scaled[0, 0].item() == pytest.approx(1.0 / (1.0 + 1e-5))
    assert scaler.inverse_transform(scaled)[0].tolist() == pytest.approx([3.0, 10.0])


def test_lattice_targets_scale_lengths_by_cube_root_of_atom_count() -> None:
    lengths = torch.tensor([[4.0, 4.0, 8.0]])
    angles = torch.tensor([[90.0, 90.0, 120.0]])
    targets = scaled_lattice_targets(lengths, angles, torch.tensor([8]))
    assert targets.tolist() == [[2.0, 2.0, 4.0, 90.0, 90.0, 120.0]]


def test_config_refuses_opt_without_property_head() -> None:
    with pytest.raises(ValueError, match="predict_property"):
        CDVAEConfig(task="opt")
    assert CDVAEConfig(task="opt", predict_property=True).task == "opt"
    with pytest.raises(ValueError, match="task"):
        CDVAEConfig(task="csp")


def test_optimisation_decodes_at_upstreams_interval_and_the_last_step() -> None:
    from replibench.families.crystals.tasks.cdvae_tasks import OPT

    steps = OPT.checkpoints({"task": {"num_gradient_steps": 5000, "num_saved_crys": 10}})
    # interval 5000 // 9 = 555: steps 0, 555, …, 4995 and 4999 — 11 decodings, as evaluate.py saves
    assert steps == [555 * k for k in range(10)] + [4999]
    assert OPT.checkpoints({"task": {"num_gradient_steps": 20, "num_saved_crys": 10}}) == list(range(0, 20, 2)) + [19]


def test_success_rates_take_the_best_valid_property_per_starting_point() -> None:
    import pyarrow as pa

    class Record:
        def __init__(self, valid: bool) -> None:
            self.valid, self.structure_dict = valid, None

    # two starting points a, b; three decodings each (rows: checkpoint-major as the task writes them)
    table = pa.table({"material_id": ["a", "b", "a", "b", "a", "b"]})
    records = [Record(v) for v in (True, False, True, False, False, False)]
    predicted = iter([0.5, -1.0])  # the property of the two valid crystals (rows 0 and 2), in row order

    def fake_model(structures):
        return [next(predicted) for _ in structures]

    rates = _rates_without_pymatgen(table, records, fake_model, (-2.0, -0.5, 0.6))
    # a: best -1.0 (≤ -0.5, ≤ 0.6, > -2.0); b: no valid crystal (inf)
    assert rates == {"sr5": 0.0, "sr10": 50.0, "sr15": 50.0}


def _rates_without_pymatgen(table, records, model, percentiles):
    """success_rates with structures passed through (the fake model ignores them)."""
    import sys
    import types

    from replibench.families.crystals.tasks.cdvae_tasks import success_rates

    fake = types.ModuleType("pymatgen.core")
    fake.Structure = types.SimpleNamespace(from_dict=lambda d: d)
    saved = sys.modules.get("pymatgen.core")
    sys.modules["pymatgen.core"] = fake
    try:
        return success_rates(table, records, model, percentiles)
    finally:
        if saved is not None:
            sys.modules["pymatgen.core"] = saved
        else:
            del sys.modules["pymatgen.core"]


def test_gather_cdvae_batch_renumbers_edges_into_the_batch(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from replibench.families.crystals.tasks.cdvae_data import gather_cdvae_batch, read_crystal_graphs
    from replibench.families.crystals.tasks.data import read_crystal_split

    rows = {
        "material_id": ["x", "y", "z"], "cif": ["-", "-", "-"], "num_atoms": [1, 2, 2],
        "atomic_numbers": [[6], [8, 12], [26, 8]],
        "frac_coords": [[0.0, 0.0, 0.0], [0.0] * 3 + [0.5] * 3, [0.1] * 3 + [0.6] * 3],
        "lattice": [[3.0, 0, 0, 0, 3.0, 0, 0, 0, 3.0]] * 3,
        "lengths": [[3.0, 3.0, 3.0]] * 3, "angles": [[90.0, 90.0, 90.0]] * 3,
        "crystalnn_edges": [[0, 0], [0, 1, 1, 0], [1, 0]],
        "crystalnn_images": [[1, 0, 0], [0, 0, 0, 0, 0, -1], [0, 1, 0]],
        "energy": [1.0, 2.0, 3.0],
    }
    path = tmp_path / "test.parquet"
    pq.write_table(pa.table(rows), path)
    split, graphs = read_crystal_split(path), read_crystal_graphs(path, "energy")
    batch = gather_cdvae_batch(split, graphs, torch.tensor([2, 1]))
    # crystal z (atoms 0-1 of the batch) then y (atoms 2-3): z's edge 1→0, y's edges 0→1, 1→0 shifted by 2
    assert batch.edge_index.tolist() == [[1, 2, 3], [0, 3, 2]]
    assert batch.to_jimages.tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, -1]]
    assert batch.num_bonds.tolist() == [1, 2]
    assert batch.training_property.view(-1).tolist() == [3.0, 2.0]
    assert batch.atomic_numbers.tolist() == [26, 8, 8, 12]


def test_read_crystal_graphs_names_the_row_with_a_bad_edge(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from replibench.errors import DataError
    from replibench.families.crystals.tasks.cdvae_data import read_crystal_graphs

    path = tmp_path / "val.parquet"
    pq.write_table(pa.table({"num_atoms": [1, 2], "lengths": [[3.0] * 3] * 2, "angles": [[90.0] * 3] * 2,
                             "crystalnn_edges": [[0, 0], [0, 2]], "crystalnn_images": [[1, 0, 0], [0, 0, 0]]}), path)
    with pytest.raises(DataError, match=r"val.parquet: row 1: a CrystalNN edge names an atom outside 0\.\.1"):
        read_crystal_graphs(path, None)
