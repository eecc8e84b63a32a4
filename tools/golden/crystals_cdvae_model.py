"""Golden outputs of the whole CDVAE model (txie-93/cdvae ``cdvae/pl_modules/model.py`` class ``CDVAE``).

Usage (in a throw-away venv with torch, torch_geometric, sympy, numpy, scipy, pandas, networkx,
scikit-learn, python-dotenv, tqdm, hydra-core, omegaconf, pytorch-lightning):

    python tools/golden/crystals_cdvae_model.py /path/to/cdvae-checkout   # at f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea

Writes ``tests/golden/cdvae_model.npz`` for a small CDVAE (latent 8, hidden 8 = latent so that
``sample`` works, predict_property on, encoder DimeNet++ hidden 16 / 2 blocks, decoder GemNet-T hidden
16 with the reduced inner sizes of ``crystals_cdvae_decoder.py``), seeded upstream initialisation,
the encoder's parameters then perturbed by 0.1 x N(0, 1) (upstream zero-initialises the DimeNet++
output layers, which would make mu and log_var constant), run in float64 on a 3-crystal batch with a hand-written CrystalNN-like edge list:

* ``w/<name>``: upstream state dict (weight map upstream -> ours in the fixture meta);
* ``scaler/{lattice,prop}/{means,stds}``: the fixed StandardScalerTorch statistics;
* ``encode/*``: mu, log_var, and z for the recorded ε (``CDVAE.encode``);
* ``decode/{tf,notf,sample}/*``: ``decode_stats`` with gt counts and teacher forcing on / off, and
  the sampling form (argmax counts);
* ``forward/{train,val}/*``: ``CDVAE.forward(batch, teacher_forcing, training)`` with the random
  draws recorded (ε of z, noise levels, type levels, the multinomial type sample, the coordinate
  noise), every loss term, ``compute_stats`` loss with prefix ``train`` / ``val``, the decoder's
  outputs and the noisy coordinates;
* ``langevin/*``: ``langevin_dynamics`` run for one level and one step (``n_step_each=1``,
  ``min_sigma`` = the first level), gt counts, predicted composition: the composition sample,
  initial coordinates, the Langevin noise, the new frac coords and the decoder's type logits;
* ``composition/*``: ``sample_composition`` on fixed probabilities after ``torch.manual_seed``.

To run the authors' code in float64: ``Tensor.float`` gives float64 and the default dtype is float64
while upstream runs (as in ``crystals_cdvae_decoder.py``), and ``torch.float`` is float64 too, so
``StandardScalerTorch`` (``torch.tensor(X, dtype=torch.float)``) computes in float64 (the test runs
ours under the same ``Tensor.float`` patch). The model is built in float32 as upstream and then cast
with ``.double()``. Stubs: pymatgen / p_tqdm (preprocessing only), ``torch_geometric.nn.acts``
(swish), the torch_sparse shim's two DimeNet++ methods (from ``crystals_cdvae_encoder.py``).
Only numbers are kept; no upstream code is copied.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import types
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from crystals_cdvae_decoder import GEMNET_INNER_SIZES, PYMATGEN_STUBS, decoder_weight_map  # noqa: E402
from crystals_cdvae_encoder import _acts_module, _extend_sparse_shim  # noqa: E402
from crystals_shims import _Unused, install  # noqa: E402
from fixture import upstream_commit, write_fixture  # noqa: E402

REPO = "txie-93/cdvae"
HPARAMS = {
    "hidden_dim": 8, "latent_dim": 8, "fc_num_layers": 2, "max_atoms": 4,
    "cost_natom": 1.0, "cost_coord": 10.0, "cost_type": 1.0, "cost_lattice": 10.0, "cost_composition": 1.0,
    "cost_edge": 10.0, "cost_property": 1.0, "beta": 0.01, "teacher_forcing_lattice": True,
    "teacher_forcing_max_epoch": 500, "max_neighbors": 20, "radius": 7.0,
    "sigma_begin": 2.0, "sigma_end": 0.1, "type_sigma_begin": 1.5, "type_sigma_end": 0.05, "num_noise_level": 10,
    "predict_property": True,
}
ENCODER = {"hidden_channels": 16, "num_blocks": 2, "int_emb_size": 8, "basis_emb_size": 4, "out_emb_channels": 24,
           "num_spherical": 7, "num_radial": 6, "cutoff": 7.0, "max_num_neighbors": 20, "envelope_exponent": 5,
           "num_before_skip": 1, "num_after_skip": 2, "num_output_layers": 3, "otf_graph": False, "readout": "mean"}
DECODER_HIDDEN = 16
STEP_LR = 1e-3
LATTICE_MEANS = [2.6, 2.9, 3.3, 85.0, 92.0, 95.0]
LATTICE_STDS = [0.5, 0.6, 0.7, 6.0, 5.0, 7.0]
PROP_MEANS, PROP_STDS = [-0.8], [1.3]

BATCH = {
    "atom_types": np.array([8, 26, 8, 12, 8, 29]),
    "num_atoms": np.array([3, 2, 1]),
    "frac_coords": np.array([[0.1, 0.2, 0.3], [0.55, 0.95, 0.05], [0.8, 0.4, 0.65],
                             [0.0, 0.0, 0.0], [0.5, 0.45, 0.55], [0.25, 0.25, 0.25]]),
    "lengths": np.array([[4.1, 5.0, 6.2], [3.0, 3.1, 3.2], [3.0, 3.0, 3.0]]),
    "angles": np.array([[80.0, 95.0, 100.0], [90.0, 90.0, 90.0], [90.0, 90.0, 90.0]]),
    "property": np.array([[-1.2], [0.4], [-2.0]]),
}
# CrystalNN-like graph written by hand: (j, i, image of j), both directions, grouped by crystal
EDGES = [
    [(0, 1, (0, 0, 0)), (1, 0, (0, 0, 0)), (0, 2, (0, 0, 0)), (2, 0, (0, 0, 0)), (1, 2, (0, 1, 0)),
     (2, 1, (0, -1, 0)), (0, 0, (1, 0, 0)), (0, 0, (-1, 0, 0)), (2, 2, (0, 0, 1)), (2, 2, (0, 0, -1))],
    [(3, 4, (0, 0, 0)), (4, 3, (0, 0, 0)), (3, 4, (-1, -1, -1)), (4, 3, (1, 1, 1)), (3, 3, (0, 0, 1)),
     (3, 3, (0, 0, -1))],
    [(5, 5, (1, 0, 0)), (5, 5, (-1, 0, 0)), (5, 5, (0, 1, 0)), (5, 5, (0, -1, 0)), (5, 5, (0, 0, 1)),
     (5, 5, (0, 0, -1))],
]
# sample_composition on fixed per-atom probabilities: crystal 0 (5 atoms) rounds to fewer atoms than
# it has (the remainder is drawn), crystal 1 (3 atoms) rounds exactly
COMPOSITION_COUNTS = np.array([5, 3])
COMPOSITION_SEED = 7


def composition_probabilities() -> np.ndarray:
    """(8, 100) per-atom probabilities: each crystal's atoms share one distribution."""
    first = np.full(100, 0.0)
    first[[7, 11, 25, 28]] = [0.28, 0.26, 0.24, 0.22]  # x5: 1.4, 1.3, 1.2, 1.1 -> 1 each, 1 atom left to draw
    second = np.full(100, 0.0)
    second[[5, 13]] = [2.0 / 3.0, 1.0 / 3.0]  # x3: 2, 1
    return np.concatenate([np.repeat(first[None], 5, 0), np.repeat(second[None], 3, 0)])


@contextlib.contextmanager
def upstream_in_float64():
    import torch

    original_float, original_dtype = torch.Tensor.float, torch.float
    torch.Tensor.float = lambda self, *args, **kwargs: self.to(torch.float64)
    torch.float = torch.float64
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.Tensor.float = original_float
        torch.float = original_dtype
        torch.set_default_dtype(torch.float32)


@contextlib.contextmanager
def recording(log: list):
    """Record every torch.randn_like / randint / multinomial / rand / randperm result upstream draws."""
    import torch

    names = ("randn_like", "randint", "multinomial", "rand", "randperm")
    originals = {name: getattr(torch, name) for name in names}

    def wrap(name):
        def call(*args, **kwargs):
            out = originals[name](*args, **kwargs)
            log.append((name, out.clone()))
            return out
        return call

    for name in names:
        setattr(torch, name, wrap(name))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(torch, name, fn)


def _batch():
    import torch
    from torch_geometric.data import Batch, Data

    items, start = [], 0
    for k, n in enumerate(BATCH["num_atoms"]):
        sl = slice(start, start + n)
        edges = EDGES[k]
        items.append(Data(
            frac_coords=torch.tensor(BATCH["frac_coords"][sl], dtype=torch.float64),
            atom_types=torch.LongTensor(BATCH["atom_types"][sl]),
            lengths=torch.tensor(BATCH["lengths"][k], dtype=torch.float64).view(1, -1),
            angles=torch.tensor(BATCH["angles"][k], dtype=torch.float64).view(1, -1),
            edge_index=torch.LongTensor([[j - start for j, _, _ in edges], [i - start for _, i, _ in edges]]),
            to_jimages=torch.LongTensor([image for _, _, image in edges]),
            num_atoms=int(n), num_bonds=len(edges), num_nodes=int(n),
        ))
        start += n
    return Batch.from_data_list(items)


def main(checkout: Path) -> None:
    np.math = math  # basis_utils.sph_harm_prefactor uses np.math.factorial (NumPy < 2)
    install(str(checkout), unexercised=PYMATGEN_STUBS)
    _extend_sparse_shim()
    _acts_module()
    local_env = types.ModuleType("pymatgen.analysis.local_env")
    local_env.CrystalNN = lambda *args, **kwargs: _Unused("pymatgen CrystalNN instance")
    sys.modules["pymatgen.analysis.local_env"] = local_env
    sys.modules["pymatgen.analysis"].local_env = local_env

    import torch
    from omegaconf import OmegaConf

    from cdvae.common.data_utils import StandardScalerTorch
    from cdvae.pl_modules import decoder as decoder_module
    from cdvae.pl_modules.model import CDVAE

    commit = upstream_commit(checkout)
    scale_file = str(checkout / "cdvae" / "pl_modules" / "gemnet" / "gemnet-dT.json")
    gemnet_class = decoder_module.GemNetT
    decoder_module.GemNetT = functools.partial(gemnet_class, **GEMNET_INNER_SIZES)
    torch.manual_seed(0)
    model = CDVAE(
        encoder=OmegaConf.create({"_target_": "cdvae.pl_modules.gnn.DimeNetPlusPlusWrap", **ENCODER}),
        decoder=OmegaConf.create({"_target_": "cdvae.pl_modules.decoder.GemNetTDecoder", "hidden_dim": DECODER_HIDDEN,
                                  "latent_dim": HPARAMS["latent_dim"], "max_neighbors": HPARAMS["max_neighbors"],
                                  "radius": HPARAMS["radius"], "scale_file": scale_file}),
        data=OmegaConf.create({"lattice_scale_method": "scale_length"}),
        **HPARAMS,
    )
    decoder_module.GemNetT = gemnet_class
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.encoder.parameters():  # the DimeNet++ output layers start at zero upstream
            parameter.add_(0.1 * torch.randn_like(parameter))
    model = model.double()
    model.eval()

    arrays: dict[str, np.ndarray] = {f"batch/{k}": v for k, v in BATCH.items()}
    batch = _batch()
    for key in ("edge_index", "to_jimages", "num_bonds"):
        arrays[f"batch/{key}"] = getattr(batch, key).numpy()
    state = model.state_dict()
    for name, value in state.items():
        arrays[f"w/{name}"] = value.numpy()
    weight_map = {f"w/{k}": k for k in state if k.startswith(("encoder.", "fc_"))}
    weight_map.update({f"w/decoder.{k}": f"decoder.{v}" for k, v in
                       decoder_weight_map([k[len("decoder."):] for k in state if k.startswith("decoder.")]).items()})

    with upstream_in_float64(), torch.no_grad():
        model.lattice_scaler = StandardScalerTorch(torch.tensor(LATTICE_MEANS), torch.tensor(LATTICE_STDS))
        model.scaler = StandardScalerTorch(torch.tensor(PROP_MEANS), torch.tensor(PROP_STDS))
        for kind, means, stds in (("lattice", LATTICE_MEANS, LATTICE_STDS), ("prop", PROP_MEANS, PROP_STDS)):
            arrays[f"scaler/{kind}/means"], arrays[f"scaler/{kind}/stds"] = np.array(means), np.array(stds)
        # the data module hands the model y = scaler.transform(prop) (CrystDataset.__getitem__)
        batch.y = model.scaler.transform(torch.tensor(BATCH["property"]))
        arrays["batch/y_scaled"] = batch.y.numpy()

        # (a) encode
        log: list = []
        torch.manual_seed(2)
        with recording(log):
            mu, log_var, z = model.encode(batch)
        assert [name for name, _ in log] == ["randn_like"]
        arrays["encode/mu"], arrays["encode/log_var"], arrays["encode/z"] = mu.numpy(), log_var.numpy(), z.numpy()
        arrays["encode/eps"] = log[0][1].numpy()

        # (b) decode_stats
        for tag, kwargs in (("tf", {"teacher_forcing": True}), ("notf", {"teacher_forcing": False})):
            out = model.decode_stats(z, batch.num_atoms, batch.lengths, batch.angles, **kwargs)
            for key, value in zip(("num_atoms", "scaled_lattice", "lengths", "angles", "composition"), out):
                arrays[f"decode/{tag}/{key}"] = value.numpy()
        out = model.decode_stats(z)
        for key, value in zip(("num_atoms", "scaled_lattice", "lengths", "angles", "composition"), out):
            arrays[f"decode/sample/{key}"] = value.numpy()
        arrays["decode/property"] = model.predict_property(z).numpy()

        # (c) forward + compute_stats, train (teacher forcing) and val (none)
        for tag, teacher_forcing, training, seed in (("train", True, True, 3), ("val", False, False, 4)):
            log = []
            torch.manual_seed(seed)
            with recording(log):
                outputs = model(batch, teacher_forcing=teacher_forcing, training=training)
            assert [name for name, _ in log] == ["randn_like", "randint", "randint", "multinomial", "randn_like"], log
            draws = {"eps_z": log[0][1], "noise_level": log[1][1], "type_noise_level": log[2][1],
                     "rand_atom_types": log[3][1].squeeze(1) + 1, "coord_noise": log[4][1]}
            for key, value in draws.items():
                arrays[f"forward/{tag}/draw/{key}"] = value.numpy()
            _, loss = model.compute_stats(batch, outputs, prefix=tag)
            arrays[f"forward/{tag}/loss"] = loss.numpy()
            for key in ("num_atom_loss", "lattice_loss", "composition_loss", "coord_loss", "type_loss", "kld_loss",
                        "property_loss", "pred_cart_coord_diff", "pred_atom_types", "rand_frac_coords", "z"):
                arrays[f"forward/{tag}/{key}"] = outputs[key].numpy()
            print(tag, "loss", float(loss), "levels", draws["noise_level"].tolist(), draws["type_noise_level"].tolist())

        # (d) one Langevin step (one level, one step) with gt counts, predicted composition
        captured: list = []
        handle = model.decoder.register_forward_hook(lambda module, args, output: captured.append((args, output)))
        log = []
        ld_kwargs = types.SimpleNamespace(n_step_each=1, step_lr=STEP_LR, min_sigma=float(model.sigmas[0]),
                                          save_traj=True, disable_bar=True)
        torch.manual_seed(5)
        with recording(log):
            result = model.langevin_dynamics(z, ld_kwargs, gt_num_atoms=batch.num_atoms)
        handle.remove()
        names = [name for name, _ in log]
        assert names[-2:] == ["rand", "randn_like"] and len(captured) == 1, names
        composition_draws = [value for name, value in log if name in ("multinomial", "randperm")]
        arrays["langevin/init_frac_coords"] = log[-2][1].numpy()
        arrays["langevin/noise"] = log[-1][1].numpy()
        arrays["langevin/num_composition_draws"] = np.array(len(composition_draws))
        arrays["langevin/sigma"] = model.sigmas[0].numpy()
        arrays["langevin/step_lr"] = np.array(STEP_LR)
        arrays["langevin/new_frac_coords"] = result["frac_coords"].numpy()
        arrays["langevin/type_logits"] = captured[0][1][1].numpy()
        arrays["langevin/init_atom_types"] = captured[0][0][2].numpy()  # what sample_composition gave
        arrays["langevin/new_atom_types"] = result["atom_types"].numpy()
        arrays["langevin/lengths"], arrays["langevin/angles"] = result["lengths"].numpy(), result["angles"].numpy()

        # (e) sample_composition on fixed probabilities
        probs = torch.tensor(composition_probabilities())
        arrays["composition/probs"] = probs.numpy()
        arrays["composition/num_atoms"] = COMPOSITION_COUNTS
        arrays["composition/seed"] = np.array(COMPOSITION_SEED)
        torch.manual_seed(COMPOSITION_SEED)
        arrays["composition/types"] = model.sample_composition(probs, torch.tensor(COMPOSITION_COUNTS)).numpy()

        arrays["sigmas"], arrays["type_sigmas"] = model.sigmas.numpy(), model.type_sigmas.numpy()

    path = write_fixture(
        ROOT / "tests" / "golden" / "cdvae_model.npz", arrays, repo=REPO, commit=commit, weight_map=weight_map,
        generator="tools/golden/crystals_cdvae_model.py",
        notes=(f"float64; upstream CDVAE hparams {HPARAMS}; encoder DimeNetPlusPlusWrap {ENCODER}; decoder "
               f"GemNetTDecoder hidden {DECODER_HIDDEN} with GemNetT inner sizes {GEMNET_INNER_SIZES}; seed 0 init, "
               "then 0.1 N(0,1) (seed 1) on the encoder's parameters; decoder energy-branch weights and gemnet scale "
               "factors not in the weight map (see crystals_cdvae_decoder.py)"))
    print(f"wrote {path}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]).resolve())
