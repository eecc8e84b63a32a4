"""Golden outputs of the OC20 baselines (SchNet, DimeNet++) and metrics, computed by fairchem.

Usage::

    python tools/golden/oc20_fairchem.py /path/to/fairchem-checkout

The checkout must be FAIR-Chem/fairchem at ``31c0963`` (2025-04-15, the commit the research notes
cite). Writes (float64, upstream modules imported from the checkout, nothing of them copied here):

* ``tests/golden/oc20_schnet.npz`` — fairchem's ``SchNetWrap`` (torch_geometric's SchNet blocks on
  fairchem's periodic graph: ``radius_graph_pbc`` builds the edges, ``get_pbc_distances`` the
  distances): energy (B,) and forces (N, 3) = -dE/dpos.
* ``tests/golden/oc20_dimenet_pp.npz`` — fairchem's ``DimeNetPlusPlusWrap`` (its own interaction
  and output blocks, torch_geometric's Bessel/spherical bases and embedding, its periodic
  triplets, angles from ``pos.detach()``): energy and forces.
* ``tests/golden/oc20_evaluator.npz`` — fairchem's ``Evaluator`` on random S2EF and IS2RE
  predictions, fed free atoms only with free-atom counts as ``OCPTrainer._compute_metrics`` does.

Both models run on the same batch of two small periodic structures (a 4-atom slab with CO, and
a 3-atom cell), cutoff 6 Å, at most 50 neighbours (no atom has that many, so the truncation rule
does not matter). The fixtures also hold fairchem's edge list (source, target, image offset) so
a failure can tell the graph from the model apart. Cells are multiples of 1/4 Å: fairchem's
``get_pbc_distances`` multiplies offsets by the cell in float32, which is then exact.

Sizes are small to keep the fixtures tens of KB (SchNet hidden 8 / 8 filters / 2 interactions /
10 Gaussians; DimeNet++ hidden 8, out_emb 8, int_emb 4, basis_emb 4, 2 blocks, with the OC20
config's 7 spherical x 6 radial basis); the code paths are those of the OC20 configs. Weights
are drawn at random on a binary grid (multiples of 1/64, exact in float32; stored as float32,
used in float64); every parameter is drawn, including the DimeNet++ output blocks' ``lin``
(zero at fairchem's init) and ``lin_up`` bias (the bias PyG's block lacks), except the Bessel
frequencies ``rbf.freq`` (kept at n*pi: they are physics, not weights).

fairchem needs torch_scatter and torch_sparse (compiled extensions we do not ship). They are
replaced here by stand-ins built on torch / torch_geometric for exactly the calls these modules
make: ``torch_scatter.scatter`` (sum) and the ``SparseTensor`` row selection used by
``DimeNetPlusPlus.triplets``. fairchem's package ``__init__`` files (which import its calculator,
registry of pretrained models, ...) are bypassed by registering the package directories without
running them; the model, utils and evaluator modules themselves are fairchem's files.
torch_geometric is the project's (2.8.1); its DimeNet bases are the ones fairchem imports.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np

REPO = "FAIR-Chem/fairchem"
ROOT = Path(__file__).resolve().parents[2]
CUTOFF = 6.0  # Å, OC20 configs
MAX_NEIGHBORS = 50

SCHNET = {"hidden_channels": 8, "num_filters": 8, "num_interactions": 2, "num_gaussians": 10}
DIMENET = {"hidden_channels": 8, "out_emb_channels": 8, "num_blocks": 2, "int_emb_size": 4, "basis_emb_size": 4,
           "num_spherical": 7, "num_radial": 6, "envelope_exponent": 5, "num_before_skip": 1,
           "num_after_skip": 2, "num_output_layers": 3}


def structures() -> list[dict[str, np.ndarray]]:
    """Two small periodic structures (Å): cells are rows, all multiples of 1/4 Å."""
    slab = {
        "atomic_numbers": np.array([29, 29, 78, 29, 6, 8]),
        "cell": np.array([[5.0, 0.0, 0.0], [2.5, 4.25, 0.0], [0.0, 0.0, 14.0]]),
        "pos": np.array([[0.113, 0.207, 1.052], [2.611, 0.158, 1.117], [1.318, 2.204, 3.063],
                         [3.842, 2.281, 2.987], [2.512, 1.493, 4.912], [2.637, 1.556, 6.071]]),
        "fixed": np.array([1, 1, 0, 0, 0, 0]),
        "tags": np.array([0, 0, 1, 1, 2, 2]),
    }
    bulk = {
        "atomic_numbers": np.array([47, 8, 1]),
        "cell": np.array([[4.5, 0.0, 0.0], [0.0, 4.75, 0.0], [0.5, 0.0, 12.0]]),
        "pos": np.array([[0.402, 0.377, 1.511], [1.934, 2.106, 2.742], [2.215, 2.871, 3.404]]),
        "fixed": np.array([0, 0, 0]),
        "tags": np.array([1, 2, 2]),
    }
    return [slab, bulk]


def _stub_extensions() -> None:
    """torch_scatter / torch_sparse stand-ins for the calls fairchem's SchNet/DimeNet++ make."""
    import torch
    from torch_geometric.utils import scatter as pyg_scatter

    def scatter(src, index, dim=0, out=None, dim_size=None, reduce="sum"):
        if out is not None:
            raise NotImplementedError("stand-in scatter: out= is not used by these modules")
        return pyg_scatter(src, index, dim=dim, dim_size=dim_size, reduce=reduce)

    class _Storage:
        def __init__(self, row, col, value):
            self._row, self._col, self._value = row, col, value

        def row(self):
            return self._row

        def col(self):
            return self._col

        def value(self):
            return self._value

    class SparseTensor:
        """COO entries sorted by (row, col), as torch_sparse keeps them; only what
        ``DimeNetPlusPlus.triplets`` calls: ``adj[rows]``, ``set_value(None)``, ``sum(dim=1)``,
        ``storage.row/col/value``."""

        def __init__(self, row, col, value=None, sparse_sizes=None):
            order = torch.argsort(row * int(sparse_sizes[1]) + col, stable=True)
            self.sizes = tuple(int(s) for s in sparse_sizes)
            self.storage = _Storage(row[order], col[order], None if value is None else value[order])

        def __getitem__(self, rows):
            row, col, value = self.storage.row(), self.storage.col(), self.storage.value()
            counts = torch.bincount(row, minlength=self.sizes[0])  # entries per row
            starts = torch.cumsum(counts, 0) - counts
            take = counts[rows]  # entries of each selected row
            new_row = torch.repeat_interleave(torch.arange(len(rows)), take)
            offset = torch.arange(int(take.sum())) - torch.repeat_interleave(torch.cumsum(take, 0) - take, take)
            source = starts[rows][new_row] + offset
            out = SparseTensor.__new__(SparseTensor)
            out.sizes = (len(rows), self.sizes[1])
            out.storage = _Storage(new_row, col[source], None if value is None else value[source])
            return out

        def set_value(self, value):
            if value is not None:
                raise NotImplementedError
            out = SparseTensor.__new__(SparseTensor)
            out.sizes, out.storage = self.sizes, _Storage(self.storage.row(), self.storage.col(), None)
            return out

        def sum(self, dim):
            if dim != 1:
                raise NotImplementedError
            return torch.bincount(self.storage.row(), minlength=self.sizes[0]).to(torch.float)

    sys.modules["torch_scatter"] = types.SimpleNamespace(scatter=scatter)
    sys.modules["torch_sparse"] = types.SimpleNamespace(SparseTensor=SparseTensor)


def _import_fairchem(checkout: Path):
    """fairchem's model / utils / evaluator modules from the checkout, package __init__s bypassed."""
    import importlib

    src = checkout / "src" / "fairchem"
    for name, path in (("fairchem", src), ("fairchem.core", src / "core"),
                       ("fairchem.core.common", src / "core" / "common"),
                       ("fairchem.core.models", src / "core" / "models"),
                       ("fairchem.core.modules", src / "core" / "modules")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules[name] = package
    _stub_extensions()
    return (importlib.import_module("fairchem.core.models.schnet"),
            importlib.import_module("fairchem.core.models.dimenet_plus_plus"),
            importlib.import_module("fairchem.core.modules.evaluator"),
            importlib.import_module("fairchem.core.common.utils"))


def _batch():
    import torch
    from torch_geometric.data import Batch, Data

    data = []
    for s in structures():
        data.append(Data(
            atomic_numbers=torch.tensor(s["atomic_numbers"], dtype=torch.float64),
            pos=torch.tensor(s["pos"], dtype=torch.float64),
            cell=torch.tensor(s["cell"], dtype=torch.float64)[None],
            natoms=torch.tensor([len(s["pos"])]),
            fixed=torch.tensor(s["fixed"]), tags=torch.tensor(s["tags"]),
        ))
    return Batch.from_data_list(data)


def _draw_weights(model, seed: int, keep=("rbf.freq",)) -> dict[str, np.ndarray]:
    """Every parameter but ``keep`` on a 1/64 grid (scaled by 1/sqrt(fan-in)); returned as float32
    (exact), the kept ones as float64."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    out = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name not in keep:
                scale = 1.0 / np.sqrt(p.shape[-1]) if p.dim() > 1 else 0.3
                draw = torch.randn(p.shape, generator=generator, dtype=torch.float64) * scale
                p.copy_(torch.round(draw * 64) / 64)
            value = p.detach().cpu().numpy()
            if name in keep:
                out[name] = value  # float64 (n*pi)
            elif np.array_equal(value.astype(np.float32).astype(np.float64), value):
                out[name] = value.astype(np.float32)
            else:
                raise ValueError(f"{name}: not exact in float32")
    return out


def with_fairchem_graph(utils_module, batch):
    """The batch with fairchem's periodic graph attached (``edge_index``, ``cell_offsets``,
    ``neighbors``), as its LMDB preprocessing stores it. ``radius_graph_pbc`` works in float32
    only (its image grid is ``dtype=torch.float``), so it runs on a float32 copy; the graph is a
    discrete set of edges, and no pair lies within 1e-3 Å of the cutoff (checked)."""
    import torch

    low = batch.clone()
    low.pos, low.cell = batch.pos.float(), batch.cell.float()
    edge_index, cell_offsets, neighbors = utils_module.radius_graph_pbc(
        low, CUTOFF, MAX_NEIGHBORS, enforce_max_neighbors_strictly=True)
    out = batch.clone()
    out.edge_index, out.cell_offsets, out.neighbors = edge_index, cell_offsets, neighbors
    distances = utils_module.get_pbc_distances(out.pos, edge_index, out.cell, cell_offsets, neighbors)["distances"]
    if (distances > CUTOFF - 1e-3).any() or int(torch.bincount(edge_index[1]).max()) >= MAX_NEIGHBORS:
        raise ValueError("the golden structures must keep every pair off the cutoff and under max_neighbors")
    return out


def _run(model, batch):
    """fairchem forward (float64, precomputed graph): energy (B,), forces (N, 3), edges (5, E)."""
    import torch

    out = model(batch.clone())
    edges = torch.cat([batch.edge_index, batch.cell_offsets.long().T]).numpy()  # (5, E): j, i, offset
    return (out["energy"].detach().reshape(-1).numpy(), out["forces"].detach().numpy(), edges)


def _common_arrays(batch) -> dict[str, np.ndarray]:
    return {"atomic_numbers": batch.atomic_numbers.long().numpy(), "pos": batch.pos.numpy(),
            "cell": batch.cell.numpy(), "natoms": batch.natoms.numpy(), "fixed": batch.fixed.numpy(),
            "tags": batch.tags.numpy(), "cutoff": np.array(CUTOFF), "max_neighbors": np.array(MAX_NEIGHBORS)}


def schnet_fixture(schnet_module, batch) -> tuple[dict, dict, str]:
    import torch

    torch.manual_seed(0)
    model = schnet_module.SchNetWrap(use_pbc=True, regress_forces=True, otf_graph=False, cutoff=CUTOFF,
                                     readout="sum", **SCHNET).double()
    weights = _draw_weights(model, seed=1)
    energy, forces, edges = _run(model, batch)
    arrays = {**_common_arrays(batch), **{f"weight/{k}": v for k, v in weights.items()},
              "energy": energy, "forces": forces, "edges": edges,
              **{f"config/{k}": np.array(v) for k, v in SCHNET.items()}}
    weight_map = {name: name for name in weights}  # same torch_geometric block names on both sides
    notes = ("fairchem SchNetWrap(use_pbc, regress_forces, cutoff 6, readout sum) "
             f"{SCHNET}, float64; weights weight/<fairchem name> (float32-exact); energy (B,) eV-like, "
             "forces (N,3) = -dE/dpos; edges rows: source j, target i, image offset (3); "
             "torch_geometric 2.8.1 blocks")
    return arrays, weight_map, notes


def dimenet_fixture(dimenet_module, batch) -> tuple[dict, dict, str]:
    import torch

    torch.manual_seed(0)
    model = dimenet_module.DimeNetPlusPlusWrap(use_pbc=True, regress_forces=True, otf_graph=False, cutoff=CUTOFF,
                                               **DIMENET).double()
    weights = _draw_weights(model, seed=2)
    energy, forces, edges = _run(model, batch)
    arrays = {**_common_arrays(batch), **{f"weight/{k}": v for k, v in weights.items()},
              "energy": energy, "forces": forces, "edges": edges,
              **{f"config/{k}": np.array(v) for k, v in DIMENET.items()}}
    weight_map = {name: name for name in weights}
    notes = ("fairchem DimeNetPlusPlusWrap(use_pbc, regress_forces, cutoff 6) "
             f"{DIMENET}, float64; angles from pos.detach() (ours: detach_angles=True); "
             "weights weight/<fairchem name> (float32-exact, rbf.freq left at n*pi); "
             "energy (B,), forces (N,3) = -dE/dpos; edges rows: source j, target i, image offset (3)")
    return arrays, weight_map, notes


def evaluator_fixture(evaluator_module) -> tuple[dict, dict, str]:
    """fairchem's Evaluator on random S2EF / IS2RE values, masked as OCPTrainer does."""
    import torch

    rng = np.random.default_rng(3)
    natoms = np.array([4, 3, 5])
    fixed = np.array([1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
    true_forces = rng.normal(0.0, 0.05, size=(12, 3))
    pred_forces = true_forces + rng.normal(0.0, 0.02, size=(12, 3))
    pred_forces[8] = true_forces[8] + 0.001  # one structure whose forces pass the 0.03 threshold
    pred_forces[9:] = true_forces[9:] + 0.004
    true_energy = rng.normal(0.0, 1.0, size=3)
    pred_energy = true_energy + np.array([0.3, -0.015, 0.011])
    free = fixed == 0
    natoms_free = np.array([free[:4].sum(), free[4:7].sum(), free[7:].sum()])
    s2ef_names = {"energy": ["mae", "mse", "energy_within_threshold"],
                  "forces": ["mae", "mse", "forcesx_mae", "forcesy_mae", "forcesz_mae", "forcesx_mse",
                             "forcesy_mse", "forcesz_mse", "cosine_similarity", "magnitude_error",
                             "energy_forces_within_threshold"]}
    prediction = {"energy": torch.tensor(pred_energy), "forces": torch.tensor(pred_forces[free]),
                  "natoms": torch.tensor(natoms_free)}
    target = {"energy": torch.tensor(true_energy), "forces": torch.tensor(true_forces[free]),
              "natoms": torch.tensor(natoms_free)}
    s2ef = evaluator_module.Evaluator(task="s2ef", eval_metrics=s2ef_names).eval(prediction, target)
    default_s2ef = sorted(evaluator_module.Evaluator(task="s2ef").eval(prediction, target))
    is2re = evaluator_module.Evaluator(task="is2re").eval(
        {"energy": torch.tensor(pred_energy)}, {"energy": torch.tensor(true_energy)})
    arrays = {"natoms": natoms, "fixed": fixed, "pred_forces": pred_forces, "true_forces": true_forces,
              "pred_energy": pred_energy, "true_energy": true_energy,
              **{f"s2ef_default/{k}": np.array(1) for k in default_s2ef},
              **{f"is2re_default/{k}": np.array(1) for k in is2re},
              **{f"s2ef/{k}": np.array(v["metric"]) for k, v in s2ef.items()},
              **{f"is2re/{k}": np.array(v["metric"]) for k, v in is2re.items()}}
    notes = ("fairchem Evaluator: s2ef with eval_metrics = the default S2EF list plus energy mse / "
             "energy_within_threshold / forces mse and forces{x,y,z}_mse; is2re default list. Inputs "
             "restricted to free atoms (fixed == 0) with free-atom counts as natoms, as "
             "OCPTrainer._compute_metrics does (eval_on_free_atoms). s2ef_default/<name>, "
             "is2re_default/<name>: the names Evaluator(task=...) reports with its default lists.")
    return arrays, {}, notes


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit(__doc__)
    checkout = Path(argv[1]).resolve()
    sys.path.insert(0, str(ROOT / "tools" / "golden"))
    from fixture import upstream_commit, write_fixture  # noqa: E402

    import torch

    torch.set_default_dtype(torch.float64)
    commit = upstream_commit(checkout)
    schnet_module, dimenet_module, evaluator_module, utils_module = _import_fairchem(checkout)
    batch = with_fairchem_graph(utils_module, _batch())
    generator = "tools/golden/oc20_fairchem.py"
    for name, build in (("oc20_schnet", lambda: schnet_fixture(schnet_module, batch)),
                        ("oc20_dimenet_pp", lambda: dimenet_fixture(dimenet_module, batch)),
                        ("oc20_evaluator", lambda: evaluator_fixture(evaluator_module))):
        arrays, weight_map, notes = build()
        path = write_fixture(ROOT / "tests" / "golden" / f"{name}.npz", arrays, repo=REPO, commit=commit,
                             weight_map=weight_map, generator=generator, notes=notes)
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv)
