"""Golden outputs of CDVAE's DimeNet++ encoder, its CrystalNN graphs and its property scalers (txie-93/cdvae).

Usage (in a throw-away venv with torch, torch_geometric, sympy, numpy, scipy, pandas, networkx,
scikit-learn, python-dotenv, pymatgen; see tools/golden/crystals_shims.py for the stubs):

    python tools/golden/crystals_cdvae_encoder.py /path/to/cdvae-checkout [/path/to/shared/data]
    # checkout at f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea; data defaults to /work/shared/data

Writes ``tests/golden/cdvae_dimenet.npz`` with:

* ``structures/<k>/*``: five real crystals -- rows 0, 1, 2 of ``perov_5/test.csv``, row 0 of
  ``mp_20/subset/test.csv``, row 0 of ``carbon_24/test.csv`` -- as upstream
  ``data_utils.build_crystal(cif, niggli=True, primitive=False)`` returns them (lattice parameters,
  atomic numbers, fractional coordinates), and the graph upstream ``build_crystal_graph(crystal,
  'crystalnn')`` builds on them (``edge_index`` (2, E) and ``to_jimages`` (E, 3), both directions);
* ``batch/*``: structures 0, 3, 4 batched as upstream's ``TensorCrystDataset`` / PyG batching does
  (edge indices shifted by the atom offset, ``num_bonds`` per crystal);
* ``encoder/*``: upstream ``cdvae.pl_modules.gnn.DimeNetPlusPlusWrap`` at reduced sizes
  (:data:`SMALL`, 2 targets), seeded upstream initialisation, then every parameter perturbed by
  0.1 x N(0, 1) (the upstream init zeroes each output block's last layer, which would make every
  output 0), run in float64: its weights (``w/<name>``), the per-crystal outputs with ``mean``
  and ``sum`` readout, and upstream's triplets (``idx_kj``, ``idx_ji``) and angles;
* ``property/*``: a 1-target encoder of the same sizes, its weights (``pw/<name>``), the raw
  output and ``StandardScalerTorch.inverse_transform`` of it with the released ``mp20`` prop scaler
  -- what ``scripts/eval_utils.py`` ``prop_model_eval`` returns per crystal;
* ``scalers/<model>/<prop|lattice>/{means,stds}``: the released scalers' tensors, read from the
  checkout's ``cdvae/prop_models/<model>/*_scaler.pt`` (upstream's own files, trusted here);
* ``full_size/num_params``: parameter count of the released-size encoder (1 target).

To run the authors' code: ``torch_sparse.SparseTensor`` is the shim of crystals_shims.py plus the
two methods DimeNet++'s triplet search uses (``set_value(None)``, ``sum(dim=1)``: number of stored
entries per row); ``Tensor.float`` gives float64 while upstream's ``get_pbc_distances`` runs (it
casts the integer images with ``.float()``); the encoder is built in float32 then cast with
``.double()``. ``p_tqdm`` is a stub (only used for parallel preprocessing); ``torch_geometric.nn.acts``, gone from current PyG,
is a module holding its ``swish(x) = x * sigmoid(x)``; pymatgen's
``StructureGraph.with_local_env_strategy`` is aliased to its new name ``from_local_env_strategy``.
CrystalNN graphs depend on the pymatgen version: the one used is recorded in the fixture notes. Only numbers are kept;
no upstream code is copied.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from crystals_shims import install  # noqa: E402
from fixture import upstream_commit, write_fixture  # noqa: E402

REPO = "txie-93/cdvae"
SMALL = {"hidden_channels": 16, "num_blocks": 2, "int_emb_size": 8, "basis_emb_size": 4, "out_emb_channels": 24,
         "num_spherical": 7, "num_radial": 6, "cutoff": 7.0, "envelope_exponent": 5, "num_before_skip": 1,
         "num_after_skip": 2, "num_output_layers": 3}
STRUCTURE_ROWS = (("perov_5/test.csv", 0), ("perov_5/test.csv", 1), ("perov_5/test.csv", 2),
                  ("mp_20/subset/test.csv", 0), ("carbon_24/test.csv", 0))
BATCH_STRUCTURES = (0, 3, 4)
PROP_MODELS = ("mp20", "perovskite", "carbon")


def _extend_sparse_shim() -> None:
    """The two SparseTensor methods ``DimeNetPlusPlus.triplets`` uses, on the shared shim."""
    import torch

    cls = sys.modules["torch_sparse"].SparseTensor

    def set_value(self, value, layout=None):
        out = cls.__new__(cls)
        out.sparse_sizes = self.sparse_sizes
        out.storage = type(self.storage)(self.storage.row(), self.storage.col(), value)
        return out

    def sparse_sum(self, dim):
        if dim != 1:
            raise NotImplementedError("torch_sparse shim: sum over dim 1 only")
        value = self.storage.value()
        ones = torch.ones(self.storage.row().shape[0]) if value is None else value
        return torch.zeros(self.sparse_sizes[0], dtype=ones.dtype).index_add_(0, self.storage.row(), ones)

    cls.set_value = set_value
    cls.sum = sparse_sum


def _acts_module() -> None:
    """``torch_geometric.nn.acts`` (gone from current PyG) held ``swish(x) = x * sigmoid(x)``."""
    import types

    import torch

    module = types.ModuleType("torch_geometric.nn.acts")
    module.swish = lambda x: x * torch.sigmoid(x)
    sys.modules["torch_geometric.nn.acts"] = module


@contextlib.contextmanager
def float_is_double():
    import torch

    original = torch.Tensor.float
    torch.Tensor.float = lambda self, *args, **kwargs: self.to(torch.float64)
    try:
        yield
    finally:
        torch.Tensor.float = original


def _perturbed(model, seed: int):
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def _batch_data(graphs: list[dict]):
    """A torch_geometric Batch as upstream's loader builds it (TensorCrystDataset.__getitem__)."""
    import torch
    from torch_geometric.data import Batch, Data

    items = []
    for g in graphs:
        items.append(Data(
            frac_coords=torch.tensor(g["frac_coords"], dtype=torch.float64),
            atom_types=torch.LongTensor(g["atom_types"]),
            lengths=torch.tensor(g["lengths"], dtype=torch.float64).view(1, -1),
            angles=torch.tensor(g["angles"], dtype=torch.float64).view(1, -1),
            edge_index=torch.LongTensor(g["edge_index"].T).contiguous(),
            to_jimages=torch.LongTensor(g["to_jimages"]),
            num_atoms=int(g["num_atoms"]),
            num_bonds=int(g["edge_index"].shape[0]),
            num_nodes=int(g["num_atoms"]),
        ))
    return Batch.from_data_list(items)


def main(checkout: Path, data_root: Path) -> None:
    install(str(checkout), unexercised=("p_tqdm",))
    _extend_sparse_shim()
    _acts_module()
    import pandas as pd
    import torch
    from pymatgen.analysis.graphs import StructureGraph

    # pymatgen renamed StructureGraph.with_local_env_strategy to from_local_env_strategy (same method)
    if not hasattr(StructureGraph, "with_local_env_strategy"):
        StructureGraph.with_local_env_strategy = StructureGraph.from_local_env_strategy
    from cdvae.common import data_utils
    from cdvae.pl_modules import gnn

    from importlib.metadata import version

    pymatgen_version = version("pymatgen")
    commit = upstream_commit(checkout)
    arrays: dict[str, np.ndarray] = {}

    # ---- real crystals and their CrystalNN graphs (data_utils.build_crystal / build_crystal_graph)
    graphs = []
    for k, (csv, row) in enumerate(STRUCTURE_ROWS):
        cif = pd.read_csv(data_root / csv)["cif"].iloc[row]
        crystal = data_utils.build_crystal(cif, niggli=True, primitive=False)
        frac, types, lengths, angles, edges, images, n = data_utils.build_crystal_graph(crystal, "crystalnn")
        graph = {"frac_coords": np.asarray(frac, dtype=np.float64), "atom_types": np.asarray(types, dtype=np.int64),
                 "lengths": np.asarray(lengths, dtype=np.float64), "angles": np.asarray(angles, dtype=np.float64),
                 "edge_index": np.asarray(edges, dtype=np.int64).reshape(-1, 2),
                 "to_jimages": np.asarray(images, dtype=np.int64).reshape(-1, 3), "num_atoms": n}
        graphs.append(graph)
        for key in ("frac_coords", "atom_types", "lengths", "angles", "to_jimages"):
            arrays[f"structures/{k}/{key}"] = graph[key]
        arrays[f"structures/{k}/edge_index"] = graph["edge_index"].T.copy()  # (2, E): rows (j, i)
        print(f"structure {k}: {csv} row {row}, {n} atoms, {graph['edge_index'].shape[0]} directed edges")

    batch = _batch_data([graphs[k] for k in BATCH_STRUCTURES])
    for key in ("frac_coords", "atom_types", "lengths", "angles", "edge_index", "to_jimages", "num_atoms", "num_bonds"):
        arrays[f"batch/{key}"] = getattr(batch, key).numpy()

    # ---- the encoder
    torch.manual_seed(0)
    encoder = _perturbed(gnn.DimeNetPlusPlusWrap(num_targets=2, otf_graph=False, readout="mean", **SMALL), 1).double()
    encoder.eval()
    with float_is_double(), torch.no_grad():
        out_mean = encoder(batch)
        encoder.readout = "sum"
        out_sum = encoder(batch)
        encoder.readout = "mean"
        edge_index = batch.edge_index
        _, _, _, _, _, idx_kj, idx_ji = encoder.triplets(edge_index, num_nodes=batch.atom_types.size(0))
    for name, value in encoder.state_dict().items():
        arrays[f"encoder/w/{name}"] = value.numpy()
    arrays["encoder/out_mean"] = out_mean.numpy()
    arrays["encoder/out_sum"] = out_sum.numpy()
    arrays["encoder/idx_kj"] = idx_kj.numpy()
    arrays["encoder/idx_ji"] = idx_ji.numpy()

    # ---- the released scalers (upstream's own files, loaded with upstream's class)
    scalers = {}
    for model in PROP_MODELS:
        for kind in ("prop", "lattice"):
            scaler = torch.load(checkout / "cdvae" / "prop_models" / model / f"{kind}_scaler.pt", weights_only=False)
            scalers[(model, kind)] = scaler
            arrays[f"scalers/{model}/{kind}/means"] = scaler.means.numpy()
            arrays[f"scalers/{model}/{kind}/stds"] = scaler.stds.numpy()

    # ---- property model: CrystGNN_Supervise.forward = encoder(batch); prop_model_eval applies
    # scaler.inverse_transform (float32 inside StandardScalerTorch: torch.tensor(X, dtype=float))
    torch.manual_seed(2)
    prop_encoder = _perturbed(gnn.DimeNetPlusPlusWrap(num_targets=1, otf_graph=False, readout="mean", **SMALL), 3).double()
    prop_encoder.eval()
    with float_is_double(), torch.no_grad():
        preds = prop_encoder(batch)
    scaler = scalers[("mp20", "prop")].copy()
    scaler.match_device(preds)
    arrays["property/raw"] = preds.numpy()
    arrays["property/inverse_transformed_mp20"] = scaler.inverse_transform(preds).numpy()
    for name, value in prop_encoder.state_dict().items():
        arrays[f"property/pw/{name}"] = value.numpy()

    full = gnn.DimeNetPlusPlusWrap(num_targets=1, otf_graph=False, cutoff=7.0, max_num_neighbors=20, readout="mean")
    arrays["full_size/num_params"] = np.array(sum(p.numel() for p in full.parameters()))

    # our parameter names are upstream's (CrystGNN_Supervise's checkpoint adds the prefix "encoder.")
    weight_map = {f"encoder/w/{name}": name for name in encoder.state_dict()}
    weight_map.update({f"property/pw/{name}": f"encoder.{name}" for name in prop_encoder.state_dict()})
    path = write_fixture(
        ROOT / "tests" / "golden" / "cdvae_dimenet.npz", arrays, repo=REPO, commit=commit, weight_map=weight_map,
        generator="tools/golden/crystals_cdvae_encoder.py",
        notes=f"pymatgen {pymatgen_version}; DimeNetPlusPlusWrap sizes {SMALL}; structures {STRUCTURE_ROWS}; batch {BATCH_STRUCTURES}",
    )
    print(f"wrote {path}: out_mean {out_mean.numpy().ravel()}, property {arrays['property/inverse_transformed_mp20'].ravel()}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2] if len(sys.argv) == 3 else "/work/shared/data").resolve())
