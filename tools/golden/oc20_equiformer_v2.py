"""Golden outputs of fairchem's EquiformerV2 (S2EF, direct forces), for our plain-torch port.

Usage::

    python tools/golden/oc20_equiformer_v2.py /path/to/fairchem-checkout

The checkout must be FAIR-Chem/fairchem at ``31c0963`` (the commit ``oc20_fairchem.py`` uses).
Writes ``tests/golden/oc20_equiformer_v2.npz`` (float64; fairchem's modules imported from the
checkout with its package ``__init__`` files bypassed, as ``oc20_fairchem.py`` does; nothing of
them copied here):

* the model is ``EquiformerV2`` of ``equiformer_v2_deprecated.py`` (the class the 2M config's
  ``name: equiformer_v2`` builds) with the 2M config's code paths (layer_norm_sh, grid MLP FFN,
  separable S2 activation, attention re-normalisation, Gaussian distances, per-block atom-edge
  embeddings) at tiny sizes (:data:`CONFIG`), in eval mode (dropout / drop-path off);
* inputs: the two periodic structures of ``oc20_fairchem.py`` with fairchem's own periodic graph
  (``radius_graph_pbc``, cutoff 6 Å, <= 50 neighbours), stored as ``edges`` (source j, target i,
  image offset); outputs ``energy`` (B,) and ``forces`` (N, 3);
* the random edge-frame reference vectors fairchem's ``init_edge_rot_mat`` drew in that forward
  pass (``edge_reference``, (E, 3); it draws them with ``torch.rand_like`` and the output depends
  on them at the 1e-4 level through the S2-grid activation), and its first 16 rotation matrices;
* weights are NOT stored: every parameter is drawn by :func:`recipe_value` (a seeded normal per
  parameter name, rounded to multiples of 1/64), which the test repeats; ``recipe/sum_abs`` holds
  each parameter's sum of |values| (in the order of ``meta.notes.param_names``) so a drift in the
  recipe is caught; the full fairchem ``state_dict`` key list is in the notes too;
* ``l6/energy``, ``l6/forces`` — the same inputs and frame draws through a one-layer model at the
  2M config's degrees (lmax 6, mmax 2, grid 18; :data:`CONFIG_L6`), tiny channels;
* ``full_config`` (in the notes): fairchem's model built from the 2M yml itself — parameter
  count and a sha256 of its state_dict (key, shape) list — to check our config defaults;
* ``wigner/l<l>`` — fairchem's ``wigner_D`` (built on its ``Jd.pt``, loaded by fairchem's own
  module) for l = 0..6 at two Euler-angle triples ``wigner/angles``, to check our e3nn-computed
  Wigner matrices up to the 2M config's l = 6, and ``jd/l<l>`` — the J matrices of fairchem's
  ``Jd.pt`` (l <= 6, as fairchem's ``wigner.py`` loaded them), which our model computes instead.

fairchem's transformer block imports torch_geometric (the project's 2.8.1; only its ``softmax``
is used) and e3nn (the project's 0.6.0: ``ToS2Grid``/``FromS2Grid``, ``xyz_to_angles``,
``angles_to_matrix``).
"""

from __future__ import annotations

import json
import sys
import types
import zlib
from pathlib import Path

import numpy as np

REPO = "FAIR-Chem/fairchem"
ROOT = Path(__file__).resolve().parents[2]
SEED = 20260105  # recipe seed (xor'ed with crc32 of the parameter name)
FRAME_SEED = 7  # torch.manual_seed before the forward pass (edge-frame draws)

CONFIG = {
    "num_layers": 2, "sphere_channels": 8, "attn_hidden_channels": 8, "num_heads": 2,
    "attn_alpha_channels": 4, "attn_value_channels": 4, "ffn_hidden_channels": 8,
    "norm_type": "layer_norm_sh", "lmax_list": [3], "mmax_list": [2], "grid_resolution": 8,
    "edge_channels": 8, "use_atom_edge_embedding": True, "share_atom_edge_embedding": False,
    "distance_function": "gaussian", "use_s2_act_attn": False, "use_attn_renorm": True,
    "use_gate_act": False, "use_grid_mlp": True, "use_sep_s2_act": True, "alpha_drop": 0.1,
    "drop_path_rate": 0.05, "proj_drop": 0.0, "weight_init": "uniform", "max_radius": 6.0,
    "max_neighbors": 50, "max_num_elements": 90,
}

#: the 2M config's degrees and grid (lmax 6, mmax 2, resolution 18), one layer, tiny channels
CONFIG_L6 = {**CONFIG, "num_layers": 1, "sphere_channels": 4, "attn_hidden_channels": 4, "attn_alpha_channels": 2,
             "attn_value_channels": 2, "ffn_hidden_channels": 4, "edge_channels": 4, "lmax_list": [6],
             "mmax_list": [2], "grid_resolution": 18}


def recipe_value(name: str, shape: tuple[int, ...]):
    """The value of parameter ``name``: N(0, scale^2) from a generator seeded by the name,
    rounded to multiples of 1/64 (exact in float32 and float64). scale = 1/sqrt(last dim) for
    matrices, 0.3 for vectors."""
    import torch

    generator = torch.Generator().manual_seed(SEED ^ zlib.crc32(name.encode()))
    scale = 1.0 / np.sqrt(shape[-1]) if len(shape) > 1 else 0.3
    draw = torch.randn(shape, generator=generator, dtype=torch.float64) * scale
    return torch.round(draw * 64) / 64


def _import_equiformer(checkout: Path):
    import importlib

    oc20 = importlib.import_module("oc20_fairchem")
    src = checkout / "src" / "fairchem"
    for name, path in (("fairchem", src), ("fairchem.core", src / "core"),
                       ("fairchem.core.common", src / "core" / "common"),
                       ("fairchem.core.models", src / "core" / "models"),
                       ("fairchem.core.models.scn", src / "core" / "models" / "scn"),
                       ("fairchem.core.models.equiformer_v2", src / "core" / "models" / "equiformer_v2"),
                       ("fairchem.core.modules", src / "core" / "modules")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules[name] = package
    oc20._stub_extensions()
    deprecated = importlib.import_module("fairchem.core.models.equiformer_v2.equiformer_v2_deprecated")
    wigner = importlib.import_module("fairchem.core.models.equiformer_v2.wigner")
    utils = importlib.import_module("fairchem.core.common.utils")
    return oc20, deprecated, wigner, utils


def production_degrees_case(deprecated, batch, reference) -> dict:
    """The same batch, edges and edge-frame draws through a model at the 2M config's degrees
    (lmax 6, mmax 2, grid 18) with one tiny layer: checks the l = 6 grids, rotations and
    m-truncation rescales at production size."""
    import torch

    model = deprecated.EquiformerV2(use_pbc=True, regress_forces=True, otf_graph=False, **CONFIG_L6).double().eval()
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(recipe_value(name, tuple(p.shape)))
    torch.manual_seed(FRAME_SEED)
    state = torch.get_rng_state()
    assert torch.equal(torch.rand_like(reference) - 0.5, reference)  # the same draws as the main case
    torch.set_rng_state(state)
    with torch.no_grad():
        out = model(batch.clone())
    return {"energy": out["energy"].detach().reshape(-1).numpy(), "forces": out["forces"].detach().numpy(),
            "names": list(params),
            "sum_abs": np.array([float(p.detach().abs().sum()) for p in params.values()])}


def full_config_summary(deprecated, checkout: Path) -> dict:
    """fairchem's model at the 2M config itself (its yml's model section): parameter count and the
    sha256 of its state_dict (key, shape) list, so the test can check our defaults build the same."""
    import hashlib

    import torch
    import yaml

    with open(checkout / "configs/oc20/s2ef/2M/equiformer_v2/equiformer_v2_N@12_L@6_M@2.yml") as handle:
        model_config = {k: v for k, v in yaml.safe_load(handle)["model"].items() if k != "name"}
    model = deprecated.EquiformerV2(**model_config)
    shapes = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    digest = hashlib.sha256(json.dumps(shapes).encode()).hexdigest()
    return {"yml_model": model_config, "num_params": sum(p.numel() for p in model.parameters()),
            "num_state_dict_entries": len(shapes), "state_dict_shapes_sha256": digest}


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit(__doc__)
    checkout = Path(argv[1]).resolve()
    sys.path.insert(0, str(ROOT / "tools" / "golden"))
    from fixture import upstream_commit, write_fixture  # noqa: E402

    import torch

    torch.set_default_dtype(torch.float64)
    commit = upstream_commit(checkout)
    oc20, deprecated, wigner, utils = _import_equiformer(checkout)
    batch = oc20.with_fairchem_graph(utils, oc20._batch())

    torch.manual_seed(0)
    model = deprecated.EquiformerV2(use_pbc=True, regress_forces=True, otf_graph=False, **CONFIG).double().eval()
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(recipe_value(name, tuple(p.shape)))
    state_keys = list(model.state_dict().keys())

    captured = {}
    original_frames = deprecated.init_edge_rot_mat

    def frames(vec):
        state = torch.get_rng_state()
        captured["reference"] = torch.rand_like(vec) - 0.5  # the draw fairchem is about to make
        torch.set_rng_state(state)
        captured["rot"] = original_frames(vec)
        captured["vec"] = vec
        return captured["rot"]

    deprecated.init_edge_rot_mat = frames
    original_graph = model.generate_graph

    def graph(*args, **kwargs):
        out = original_graph(*args, **kwargs)
        captured["edge_index"], captured["cell_offsets"] = out.edge_index, out.cell_offsets
        return out

    model.generate_graph = graph
    torch.manual_seed(FRAME_SEED)
    with torch.no_grad():
        out = model(batch.clone())
    assert torch.equal(captured["edge_index"], batch.edge_index), "fairchem dropped or reordered edges"
    edges = torch.cat([batch.edge_index, batch.cell_offsets.long().T]).numpy()

    angles = np.array([[0.3, 1.1, -2.4], [-1.7, 2.9, 0.8]])
    wigner_arrays = {"wigner/angles": angles}
    for l in range(7):
        a, b, g = (torch.tensor(angles[:, k]) for k in range(3))
        wigner_arrays[f"wigner/l{l}"] = wigner.wigner_D(l, a, b, g).numpy()
        wigner_arrays[f"jd/l{l}"] = wigner._Jd[l].numpy()  # fairchem's table, as its module loaded it

    names = list(params)
    full = full_config_summary(deprecated, checkout)
    l6 = production_degrees_case(deprecated, batch, captured["reference"])
    arrays = {
        **oc20._common_arrays(batch),
        "edges": edges,
        "energy": out["energy"].detach().reshape(-1).numpy(),
        "forces": out["forces"].detach().numpy(),
        "edge_reference": captured["reference"].numpy(),
        "edge_rot_mat_first16": captured["rot"][:16].numpy(),
        "recipe/sum_abs": np.array([float(params[n].detach().abs().sum()) for n in names]),
        "frame_seed": np.array(FRAME_SEED),
        "l6/energy": l6["energy"], "l6/forces": l6["forces"], "l6/recipe/sum_abs": l6["sum_abs"],
        "recipe_seed": np.array(SEED),
        **wigner_arrays,
    }
    notes = json.dumps({
        "what": "fairchem EquiformerV2 (equiformer_v2_deprecated.py, the 2M config's `equiformer_v2`), "
                "eval mode, float64, tiny sizes (config), direct force head; energy (B,), forces (N,3)",
        "config": CONFIG,
        "weights": "not stored: parameter <name> = round(64 * N(0,1) * scale) / 64 from "
                   "torch.Generator().manual_seed(recipe_seed ^ crc32(name)), scale 1/sqrt(shape[-1]) for "
                   ">=2-d parameters else 0.3; buffers are fairchem's own",
        "edges": "rows: source j, target i, image offset (3) from radius_graph_pbc (cutoff 6, <=50)",
        "edge_reference": "the (E,3) vectors torch.rand_like(vec) - 0.5 fairchem drew in init_edge_rot_mat "
                          "after torch.manual_seed(frame_seed)",
        "param_names": names,
        "full_config": full,
        "config_l6": CONFIG_L6,
        "param_names_l6": l6["names"],
        "state_dict_keys": state_keys,
    })
    weight_map = {name: name for name in state_keys}  # identity: our modules carry fairchem's names
    path = write_fixture(ROOT / "tests" / "golden" / "oc20_equiformer_v2.npz", arrays, repo=REPO, commit=commit,
                         weight_map=weight_map, generator="tools/golden/oc20_equiformer_v2.py", notes=notes)
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes; E={edges.shape[1]}; "
          f"energy={arrays['energy']}; |F|max={np.abs(arrays['forces']).max():.4g}")


if __name__ == "__main__":
    main(sys.argv)
