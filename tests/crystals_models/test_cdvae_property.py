"""CDVAE property model: safe loaders for Lightning checkpoints and StandardScalerTorch pickles, the
download spec, the encoder's input checks, and the property EMD.

The test files are written here in the released format (no file of the upstream checkout is read):
:func:`write_scaler_pickle` pickles an object whose class is named
``cdvae.common.data_utils.StandardScalerTorch`` (as ``torch.save`` wrote the released
``*_scaler.pt``), :func:`write_lightning_checkpoint` a ``{"state_dict", "hyper_parameters"
(omegaconf DictConfig), ...}`` dict as Lightning does.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

SMALL = {"hidden_channels": 16, "num_blocks": 2, "int_emb_size": 8, "basis_emb_size": 4, "out_emb_channels": 24}
# the released mp20 prop scaler's numbers (tests/golden/cdvae_dimenet.npz records them from the upstream file)
MP20_PROP_MEAN, MP20_PROP_STD = -1.219802737236023, 1.0293837785720825


def _class_in_fake_module(monkeypatch, module_name: str, class_name: str) -> type:
    """An empty class importable (for pickle) as ``module_name.class_name`` while ``monkeypatch`` lasts."""
    parts = module_name.split(".")
    modules = [types.ModuleType(".".join(parts[: k + 1])) for k in range(len(parts))]
    for parent, child, attribute in zip(modules, modules[1:], parts[1:]):
        setattr(parent, attribute, child)
    cls = type(class_name, (), {"__module__": module_name})
    setattr(modules[-1], class_name, cls)
    for module in modules:
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return cls


def write_scaler_pickle(path: Path, means: torch.Tensor, stds: torch.Tensor, monkeypatch) -> Path:
    """``torch.save`` of an object of a class importable as ``cdvae.common.data_utils.StandardScalerTorch``
    holding ``means`` / ``stds``: the released scaler files' format."""
    scaler_class = _class_in_fake_module(monkeypatch, "cdvae.common.data_utils", "StandardScalerTorch")
    scaler = scaler_class()
    scaler.means, scaler.stds = means, stds
    torch.save(scaler, path)
    return path


def write_hparams(path: Path, sizes: dict) -> Path:
    """A released-style hparams.yaml (``${data.*}`` references included) with the given encoder sizes."""
    encoder = "\n".join(f"    {key}: {value}" for key, value in sizes.items())
    path.write_text(
        "data:\n  num_targets: 1\n  otf_graph: false\n  readout: mean\n  prop: formation_energy_per_atom\n"
        "model:\n  encoder:\n    _target_: cdvae.pl_modules.gnn.DimeNetPlusPlusWrap\n"
        "    num_targets: ${data.num_targets}\n    otf_graph: ${data.otf_graph}\n    readout: ${data.readout}\n"
        f"{encoder}\n  _target_: cdvae.pl_modules.model.CrystGNN_Supervise\n  hidden_dim: 128\n",
        encoding="utf-8",
    )
    return path


def write_lightning_checkpoint(path: Path, encoder_state: dict[str, torch.Tensor], hyper_parameters=None,
                               callbacks: dict | None = None) -> Path:
    """A Lightning-format checkpoint of ``CrystGNN_Supervise``: parameters under ``encoder.``, the
    hyper-parameters as an omegaconf DictConfig (what makes ``weights_only=True`` refuse it) and,
    optionally, PL 1.3's ``callbacks`` (states keyed by callback class)."""
    from omegaconf import OmegaConf

    if hyper_parameters is None:
        hyper_parameters = OmegaConf.create({"encoder": {"_target_": "cdvae.pl_modules.gnn.DimeNetPlusPlusWrap",
                                                         "hidden_channels": 16}, "data": {"prop": "x"}})
    checkpoint = {
        "epoch": 839, "global_step": 89039, "pytorch-lightning_version": "1.3.8",
        "state_dict": {f"encoder.{name}": value for name, value in encoder_state.items()},
        "hyper_parameters": hyper_parameters,
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.001}]}],
    }
    if callbacks is not None:
        checkpoint["callbacks"] = callbacks
    torch.save(checkpoint, path)
    return path


class _Exploit:
    """Unpickling this would create the directory ``target``."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


@pytest.fixture
def released_format_files(tmp_path, monkeypatch):
    """(reference encoder, paths of checkpoint, hparams, prop scaler, lattice scaler)."""
    from replibench.families.crystals.models.cdvae_encoder import CdvaeDimeNetPP, CdvaeEncoderConfig

    torch.manual_seed(0)
    encoder = CdvaeDimeNetPP(CdvaeEncoderConfig(**SMALL))
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))  # the init zeroes the output layers
    paths = (
        write_lightning_checkpoint(tmp_path / "epoch=839-step=89039.ckpt", encoder.state_dict()),
        write_hparams(tmp_path / "hparams.yaml", SMALL),
        write_scaler_pickle(tmp_path / "prop_scaler.pt", torch.tensor(MP20_PROP_MEAN), torch.tensor(MP20_PROP_STD),
                            monkeypatch),
        write_scaler_pickle(tmp_path / "lattice_scaler.pt", torch.arange(6.0), torch.ones(6), monkeypatch),
    )
    return encoder, paths


def _perovskite_like_batch():
    """Two cubic cells (4 Å, 1 atom; 3.5 Å, 2 atoms) with hand-made bond lists (6 and 4 bonds)."""
    cube = [(1, 0, 0), (0, 1, 0), (0, 0, 1)]
    edges, images = [], []
    for image in cube:  # crystal 0: atom 0 to its own images, both directions
        edges += [(0, 0), (0, 0)]
        images += [image, tuple(-t for t in image)]
    for a, b, image in ((1, 2, (0, 0, 0)), (2, 1, (1, 0, 0))):
        edges += [(a, b), (b, a)]
        images += [image, tuple(-t for t in image)]
    return {
        "atom_types": torch.tensor([26, 8, 38]),
        "frac_coords": torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]),
        "lengths": torch.tensor([[4.0, 4.0, 4.0], [3.5, 3.5, 3.5]]),
        "angles": torch.full((2, 3), 90.0),
        "num_atoms": torch.tensor([1, 2]),
        "edge_index": torch.tensor(edges).T.contiguous(),
        "to_jimages": torch.tensor(images),
        "num_bonds": torch.tensor([6, 4]),
    }


# ------------------------------------------------------------------------------------------ tests


def test_scaler_pickle_in_released_format_loads(tmp_path, monkeypatch):
    from replibench.families.crystals.models.cdvae_property import load_standard_scaler

    path = write_scaler_pickle(tmp_path / "s.pt", torch.tensor([1.5, -2.0]), torch.tensor([0.5, 3.0]), monkeypatch)
    stats = load_standard_scaler(path)
    assert stats.means.tolist() == [1.5, -2.0] and stats.stds.tolist() == [0.5, 3.0]


def test_scaler_loader_refuses_other_globals(tmp_path):
    from replibench.families.crystals.models.cdvae_property import load_standard_scaler

    target = tmp_path / "pwned"
    torch.save(_Exploit(str(target)), tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="evil.pt"):
        load_standard_scaler(tmp_path / "evil.pt")
    assert not target.exists()


def test_checkpoint_loader_refuses_code_in_hyper_parameters(tmp_path):
    from replibench.families.crystals.models.cdvae_property import load_checkpoint_state_dict

    target = tmp_path / "pwned"
    path = write_lightning_checkpoint(tmp_path / "evil.ckpt", {"w": torch.ones(2)}, hyper_parameters=_Exploit(str(target)))
    with pytest.raises(ValueError, match=r"refusing to load global (posix|os|nt)\.mkdir"):
        load_checkpoint_state_dict(path)
    assert not target.exists()


def test_checkpoint_loader_reads_state_dict_past_omegaconf(tmp_path, monkeypatch):
    """hyper_parameters as omegaconf objects and PL 1.3's callback states keyed by callback class."""
    from replibench.families.crystals.models.cdvae_property import load_checkpoint_state_dict

    with monkeypatch.context() as patch:
        callback_class = _class_in_fake_module(patch, "pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")
        weights = {"a": torch.arange(4.0).reshape(2, 2), "b": torch.tensor([7], dtype=torch.int64)}
        path = write_lightning_checkpoint(tmp_path / "m.ckpt", weights,
                                          callbacks={callback_class: {"best_model_score": torch.tensor(0.1)}})
    # the fake modules are gone again: the loader must not need them
    state = load_checkpoint_state_dict(path)
    assert sorted(state) == ["encoder.a", "encoder.b"]
    assert state["encoder.a"].tolist() == [[0.0, 1.0], [2.0, 3.0]] and state["encoder.b"].tolist() == [7]


def test_load_property_model_reproduces_the_saved_model(released_format_files):
    from replibench.families.crystals.models.cdvae_property import load_property_model

    encoder, paths = released_format_files
    model = load_property_model(*paths)
    batch = _perovskite_like_batch()
    with torch.no_grad():
        raw = encoder.eval()(**batch)
        prediction = model(**batch)
    assert prediction.shape == (2, 1)
    torch.testing.assert_close(prediction, raw * MP20_PROP_STD + MP20_PROP_MEAN, rtol=1e-6, atol=1e-6)
    assert model.lattice_scaler.means.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_load_property_model_rejects_mismatched_sizes(released_format_files, tmp_path):
    from replibench.families.crystals.models.cdvae_property import load_property_model

    _, (checkpoint, _, prop_scaler, lattice_scaler) = released_format_files
    other = write_hparams(tmp_path / "other.yaml", {**SMALL, "hidden_channels": 32})
    with pytest.raises(ValueError, match="has shape"):
        load_property_model(checkpoint, other, prop_scaler, lattice_scaler)


def test_hparams_other_model_rejected(tmp_path):
    from replibench.families.crystals.models.cdvae_property import encoder_config_from_hparams

    path = tmp_path / "h.yaml"
    path.write_text("model:\n  _target_: cdvae.pl_modules.model.CDVAE\n", encoding="utf-8")
    with pytest.raises(ValueError, match="CrystGNN_Supervise"):
        encoder_config_from_hparams(path)


def test_download_spec_pins_commit_and_blob_ids():
    from replibench.families.crystals.models.cdvae_property_files import property_model_files

    files = property_model_files("mp20")
    assert set(files) == {"checkpoint", "hparams", "prop_scaler", "lattice_scaler"}
    assert files["checkpoint"].url == ("https://raw.githubusercontent.com/txie-93/cdvae/"
                                       "f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea/cdvae/prop_models/mp20/"
                                       "epoch=839-step=89039.ckpt")
    assert files["checkpoint"].checksum == "git-sha1:220db4e8ee77287711aac5b5332ba06c643ee83d"
    assert files["prop_scaler"].size == 1089 and files["prop_scaler"].name == "mp20-prop_scaler.pt"
    with pytest.raises(KeyError, match="mp_20"):
        property_model_files("mp_20")


def test_encoder_needs_a_graph_unless_otf():
    from replibench.families.crystals.models.cdvae_encoder import CdvaeDimeNetPP, CdvaeEncoderConfig

    batch = _perovskite_like_batch()
    graphless = {k: v for k, v in batch.items() if k not in ("edge_index", "to_jimages", "num_bonds")}
    with pytest.raises(ValueError, match="required when otf_graph is off"):
        CdvaeDimeNetPP(CdvaeEncoderConfig(**SMALL))(**graphless)
    out = CdvaeDimeNetPP(CdvaeEncoderConfig(otf_graph=True, **SMALL))(**graphless)
    assert out.shape == (2, 1) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="readout"):
        CdvaeEncoderConfig(readout="cat")


def test_cdvae_triplets_hand_checked():
    """Edges 0: 1->0, 1: 0->1 (other image), 2: 2->1. Triplets (kj, ji) with k != i: for ji = 0
    (j = 1, i = 0) the edges arriving at 1 are 1 (k = 0 = i, dropped) and 2 (k = 2): (2, 0). For
    ji = 1 (j = 0, i = 1): edge 0 arrives at 0, k = 1 = i: dropped. For ji = 2 (j = 2): none."""
    from replibench.families.crystals.models.cdvae_encoder import cdvae_triplets

    idx_kj, idx_ji = cdvae_triplets(torch.tensor([[1, 0, 2], [0, 1, 1]]), num_nodes=3)
    assert idx_kj.tolist() == [2] and idx_ji.tolist() == [0]


def test_wdist_prop_hand_checked():
    from replibench.families.crystals.metrics.property_emd import wdist_prop

    assert wdist_prop([0.0, 1.0], [1.0, 0.0]) == 0.0
    assert wdist_prop([0.0, 1.0, 3.0], [5.0, 6.0, 8.0]) == pytest.approx(5.0)  # a shift by 5
    # CDFs differ by 1/3 on [0, 1) and on [2, 3): 2/3
    assert wdist_prop([0.0, 0.0, 3.0], [0.0, 1.0, 2.0]) == pytest.approx(2.0 / 3.0)
    with pytest.raises(ValueError, match="non-finite"):
        wdist_prop([0.0, float("nan")], [1.0])
    with pytest.raises(ValueError):
        wdist_prop([], [1.0])


def test_crystalnn_graph_of_rock_salt_is_octahedral():
    """NaCl (a = 5.64 Å, conventional cell, 8 atoms): CrystalNN gives every ion its 6 neighbours,
    so 8 * 6 = 48 directed edges, each bond in both directions with opposite images."""
    from replibench.families.crystals.crystal_graph import crystalnn_graph, structure_from_arrays

    frac = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0],
                     [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]])
    structure = structure_from_arrays([5.64] * 3, [90.0] * 3, [11] * 4 + [17] * 4, frac)
    edge_index, to_jimages = crystalnn_graph(structure)
    assert edge_index.shape == (2, 48) and to_jimages.shape == (48, 3)
    assert np.bincount(edge_index[1], minlength=8).tolist() == [6] * 8
    assert (edge_index[:, 0::2] == edge_index[::-1, 1::2]).all() and (to_jimages[0::2] == -to_jimages[1::2]).all()
    species = np.array([11] * 4 + [17] * 4)
    assert (species[edge_index[0]] != species[edge_index[1]]).all()  # Na-Cl bonds only


def test_generation_scoring_computes_wdist_prop_with_the_property_model_folder(released_format_files, tmp_path,
                                                                            shared_data):
    """The gen task's scoring path with ``task.property_model`` naming a folder of the released files
    (here the test checkpoint, renamed as the download rule names them): wdist_prop is computed, on the
    valid generated crystals and the test crystals, each through CrystalNN graph + model, and equals
    the EMD of the predictor's own values."""
    import shutil

    import pandas as pd
    from pymatgen.core import Structure

    from replibench.families.crystals.metrics import evaluate_gen
    from replibench.families.crystals.models.cdvae_property_files import property_model_files
    from replibench.families.crystals.tasks.cdvae_tasks import load_property_model_for
    from replibench.families.crystals.metrics.properties import earth_movers_distance

    _, paths = released_format_files
    folder = tmp_path / "raw"
    folder.mkdir()
    remotes = property_model_files("perovskite")
    for key, path in zip(("checkpoint", "hparams", "prop_scaler", "lattice_scaler"), paths):
        shutil.copy(path, folder / remotes[key].name)
    predictor = load_property_model_for({"property_model": str(folder)}, "perovskite")
    cifs = pd.read_csv(shared_data / "perov_5" / "test.csv", nrows=8)["cif"].tolist()
    result = evaluate_gen(generated=cifs[:4], truths=cifs[4:], dataset="perov-5", convention="cdvae",
                          allow_fewer_valid=True, property_model=predictor)
    value = result["variants"]["default"]["wdist_prop"]
    assert value is not None and "wdist_prop" not in result["unavailable"]
    assert result["counts"]["num_valid"] == 4  # every generated crystal is in the EMD sample
    from replibench.families.crystals.canonical import build_crystal

    generated = predictor([Structure.from_str(c, fmt="cif") for c in cifs[:4]])
    reference = predictor([build_crystal(c, niggli=True, primitive=False) for c in cifs[4:]])  # cdvae: Niggli truth
    assert len(set(generated)) == 4  # distinct crystals, distinct predictions
    assert value == pytest.approx(earth_movers_distance(generated=generated, reference=reference), rel=1e-5)
