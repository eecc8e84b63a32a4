"""CDVAE's property model (``CrystGNN_Supervise``) and a safe loader for the released checkpoints.

txie-93/cdvae@f857f59 (read, not copied): ``cdvae/pl_modules/model.py`` l. 47-59 --
``CrystGNN_Supervise.forward(batch) = encoder(batch)``, the DimeNet++ encoder (``cdvae_encoder.py``)
predicting ONE standardised property; ``scripts/eval_utils.py`` ``prop_model_eval`` (l. 183-215)
then maps it back to physical units with the prop scaler, ``preds * stds + means``
(``StandardScalerTorch.inverse_transform``, ``data_utils.py`` l. 624-626). The lattice scaler is
loaded by upstream's ``load_model`` (l. 71) but never used to score crystals: the encoder reads
the raw lattice lengths (Å) and angles (degrees). We keep its numbers for completeness only.

Loading, without running any code from the files:

* the checkpoint (a Lightning ``.ckpt``: a torch zip pickle ``{"state_dict": ..., "hyper_parameters":
  <omegaconf objects>, ...}``): ``torch.load(weights_only=True)`` first; if that refuses a global
  (omegaconf's classes), :func:`load_checkpoint_state_dict` re-reads it with
  :class:`_RestrictedUnpickler`: torch's tensor/storage rebuild functions, a few builtin
  containers, and inert placeholders for omegaconf / ``typing.Any`` names; any other global is
  refused with an error naming it. Only ``state_dict`` is kept.
* the scalers (``torch.save`` of a ``cdvae.common.data_utils.StandardScalerTorch``):
  ``torch.load(weights_only=True)`` with exactly that one name mapped to :class:`_ScalerHolder`, a
  plain attribute holder (:func:`load_standard_scaler`).
* ``hparams.yaml``: ``yaml.safe_load``; ``${data.x}`` references resolved within the file.

Weight mapping upstream -> ours: the identity. The checkpoint's keys are ``encoder.<name>``
(``CrystGNN_Supervise`` has no other parameters) and :class:`PropertyModel` holds the encoder as
``encoder`` with upstream's parameter names (``rbf.freq``, ``emb.*``, ``output_blocks.<k>.*``,
``interaction_blocks.<k>.*``); loading is strict.

Difference stated plainly: upstream's ``inverse_transform`` casts the predictions to float32
(``torch.tensor(X, dtype=torch.float)``); we keep the model's dtype (float32 in use, so the same).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from replibench.families.crystals.models.cdvae_encoder import CdvaeDimeNetPP, CdvaeEncoderConfig
from replibench.families.crystals.models.cdvae_property_files import (  # noqa: F401 (re-exported)
    PREDICTED_PROPERTY,
    PROPERTY_MODEL_FILES,
    property_model_files,
)

UPSTREAM_SCALER_CLASS = "cdvae.common.data_utils.StandardScalerTorch"
UPSTREAM_MODEL_TARGET = "cdvae.pl_modules.model.CrystGNN_Supervise"
UPSTREAM_ENCODER_TARGET = "cdvae.pl_modules.gnn.DimeNetPlusPlusWrap"


@dataclass
class ScalerStats:
    """A ``StandardScalerTorch``'s numbers: ``means`` and ``stds`` (D,) float32, in the units of
    the scaled quantity (eV/atom for the prop scalers; for the lattice scalers, 3 lengths in
    Å / atom^(1/3) then 3 angles in degrees). ``inverse(x) = x * stds + means``."""

    means: Tensor
    stds: Tensor


class _ScalerHolder:
    """What a pickled ``StandardScalerTorch`` is rebuilt as: a plain object whose ``__dict__``
    receives the pickled state (``means``, ``stds``); no method of the file's class runs."""


class PropertyModel(nn.Module):
    """``CrystGNN_Supervise`` plus its prop scaler: crystals -> property in physical units (B, 1)."""

    def __init__(self, config: CdvaeEncoderConfig, prop_scaler: ScalerStats, lattice_scaler: ScalerStats | None = None):
        super().__init__()
        self.encoder = CdvaeDimeNetPP(config)
        # not in state_dict (upstream keeps the scalers outside the checkpoint, in *_scaler.pt)
        self.register_buffer("prop_means", prop_scaler.means.detach().clone().reshape(-1), persistent=False)
        self.register_buffer("prop_stds", prop_scaler.stds.detach().clone().reshape(-1), persistent=False)
        if self.prop_means.shape != (config.num_targets,) or self.prop_stds.shape != (config.num_targets,):
            raise ValueError(
                f"prop scaler holds {tuple(self.prop_means.shape)} means / {tuple(self.prop_stds.shape)} stds, "
                f"the encoder predicts {config.num_targets} target(s)"
            )
        self.lattice_scaler = lattice_scaler  # unused for prediction, as upstream (module docstring)

    def standardised(self, *args: Any, **kwargs: Any) -> Tensor:
        """The encoder's raw output (B, 1): the property standardised by the prop scaler."""
        return self.encoder(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """Property (B, 1) in physical units; arguments as :meth:`CdvaeDimeNetPP.forward`."""
        raw = self.encoder(*args, **kwargs)
        return raw * self.prop_stds.to(raw.dtype) + self.prop_means.to(raw.dtype)


# ---------------------------------------------------------------------------------------- scalers


def load_standard_scaler(path: str | Path) -> ScalerStats:
    """Means and stds of a ``torch.save``-d ``cdvae.common.data_utils.StandardScalerTorch``.

    Read by ``torch.load(weights_only=True)`` with that one class name mapped to a plain holder;
    any other non-tensor global in the file is refused by torch's restricted unpickler."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals([(_ScalerHolder, UPSTREAM_SCALER_CLASS)]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"{path}: not a plain {UPSTREAM_SCALER_CLASS} pickle ({error})") from error
    if not isinstance(obj, _ScalerHolder):
        raise ValueError(f"{path}: expected a pickled {UPSTREAM_SCALER_CLASS}, found {type(obj).__name__}")
    means, stds = getattr(obj, "means", None), getattr(obj, "stds", None)
    if not isinstance(means, Tensor) or not isinstance(stds, Tensor) or means.shape != stds.shape:
        raise ValueError(f"{path}: the scaler must hold tensors 'means' and 'stds' of one shape")
    return ScalerStats(means=means.float(), stds=stds.float())


# ------------------------------------------------------------------------------------- checkpoint


class _Inert:
    """Placeholder for an allowed configuration class (omegaconf): accepts construction and state,
    stores them, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_args"] = args

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state


_INERT_CACHE: dict[str, type] = {}
# names a Lightning 1.3 checkpoint of CDVAE pickles outside the tensors: omegaconf's classes and
# typing names inside hyper_parameters (DictConfig, ContainerMetadata, AnyNode, typing.Any, ...),
# and pytorch_lightning callback classes used as the keys of "callbacks" (PL 1.3 keys callback
# states by type). They become inert placeholders; nothing of theirs is ever called.
_INERT_GLOBAL = re.compile(r"(omegaconf|pytorch_lightning)(\.[A-Za-z_]+)* [A-Za-z_]+|typing [A-Za-z_]+|enum Enum")
# callables the tensor part of a torch pickle needs, and plain containers
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "Size"): torch.Size,
    ("collections", "OrderedDict"): __import__("collections").OrderedDict,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "tuple"): tuple,
    ("builtins", "int"): int,
    ("builtins", "float"): float,
    ("builtins", "str"): str,
    ("builtins", "bool"): bool,
}
for _dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int8,
               torch.uint8, torch.bool):
    _ALLOWED_GLOBALS[("torch", str(_dtype).removeprefix("torch."))] = _dtype


class _RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`_ALLOWED_GLOBALS` and inert placeholders for
    omegaconf / typing names; everything else raises ``pickle.UnpicklingError`` naming the global.
    Used through ``torch.load(pickle_module=...)``, which resolves storages itself."""

    def find_class(self, module: str, name: str) -> Any:
        # protocol-2 pickles name Python 2 modules (``__builtin__``): map them as pickle's
        # fix_imports does (the keys are Python 2 names only, so Python 3 names pass unchanged)
        import _compat_pickle

        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if (module, name) == ("collections", "defaultdict"):
            return lambda factory=None, *rest: {}  # stored as a plain dict: no factory is ever called
        if (module, name) == ("operator", "getitem"):
            return lambda container, key: _Inert(container, key)  # a typing alias such as Dict[str, Any]
        if _INERT_GLOBAL.fullmatch(f"{module} {name}"):
            key = f"{module}.{name}"
            if key not in _INERT_CACHE:
                _INERT_CACHE[key] = type(name, (_Inert,), {"__module__": "replibench.inert." + module})
            return _INERT_CACHE[key]
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a checkpoint")


class _RestrictedPickleModule:
    """The ``pickle_module`` handed to ``torch.load``: :class:`_RestrictedUnpickler` plus what
    ``torch.load`` reads from the module."""

    Unpickler = _RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return _RestrictedUnpickler(file, **kwargs).load()


def load_checkpoint_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The ``state_dict`` of a Lightning checkpoint, read without running code from the file.

    ``torch.load(weights_only=True)`` first; when it refuses a global, the restricted unpickler
    (module docstring). Raises ``ValueError`` naming the file when no tensor ``state_dict`` is found."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a torch zip checkpoint (legacy or truncated file?)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickleModule)
        except pickle.UnpicklingError as error:
            raise ValueError(f"{path}: {error}") from error
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a Lightning checkpoint with a non-empty tensor 'state_dict'")
    return dict(state)


# ---------------------------------------------------------------------------------------- hparams


def _resolve(value: Any, root: dict) -> Any:
    """Resolve ``${a.b}`` (a whole-string reference to another key of the same file)."""
    if isinstance(value, str):
        match = re.fullmatch(r"\$\{([A-Za-z_][\w.]*)\}", value)
        if match:
            node: Any = root
            for part in match[1].split("."):
                if not isinstance(node, dict) or part not in node:
                    raise ValueError(f"hparams: unresolved reference {value!r}")
                node = node[part]
            return _resolve(node, root)
    return value


def encoder_config_from_hparams(path: str | Path) -> CdvaeEncoderConfig:
    """The encoder sizes of a released property model's ``hparams.yaml`` (``model.encoder``)."""
    import yaml

    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        hparams = yaml.safe_load(handle)
    model = hparams.get("model", {}) if isinstance(hparams, dict) else {}
    if model.get("_target_") != UPSTREAM_MODEL_TARGET:
        raise ValueError(f"{path}: model._target_ must be {UPSTREAM_MODEL_TARGET}, got {model.get('_target_')!r}")
    encoder = model.get("encoder", {})
    if encoder.get("_target_") != UPSTREAM_ENCODER_TARGET:
        raise ValueError(f"{path}: model.encoder._target_ must be {UPSTREAM_ENCODER_TARGET}, got {encoder.get('_target_')!r}")
    known = {f.name for f in fields(CdvaeEncoderConfig)}
    unknown = set(encoder) - known - {"_target_"}
    if unknown:
        raise ValueError(f"{path}: model.encoder has keys our encoder does not know: {sorted(unknown)}")
    values = {key: _resolve(value, hparams) for key, value in encoder.items() if key != "_target_"}
    return CdvaeEncoderConfig(**values)


def load_property_model(
    checkpoint_path: str | Path,
    hparams_path: str | Path,
    prop_scaler_path: str | Path,
    lattice_scaler_path: str | Path | None = None,
) -> PropertyModel:
    """A released CDVAE property model, in eval mode, float32 on the CPU.

    ``checkpoint_path``: the ``.ckpt``; ``hparams_path``: its ``hparams.yaml``; the scalers:
    ``prop_scaler.pt`` (used) and ``lattice_scaler.pt`` (kept, unused; optional)."""
    config = encoder_config_from_hparams(hparams_path)
    prop_scaler = load_standard_scaler(prop_scaler_path)
    lattice_scaler = load_standard_scaler(lattice_scaler_path) if lattice_scaler_path is not None else None
    model = PropertyModel(config, prop_scaler, lattice_scaler)
    state = load_checkpoint_state_dict(checkpoint_path)
    ours = set(model.state_dict())
    missing, unexpected = sorted(ours - set(state)), sorted(set(state) - ours)
    if missing or unexpected:
        raise ValueError(
            f"{checkpoint_path}: state_dict does not fit CDVAE's DimeNet++ property model: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    for name, value in state.items():
        if value.shape != model.state_dict()[name].shape:
            raise ValueError(f"{checkpoint_path}: {name} has shape {tuple(value.shape)}, "
                             f"the hparams give {tuple(model.state_dict()[name].shape)}")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()


def structure_property_predictor(folder: str | Path, *, eval_model_name: str, batch_size: int = 256):
    """The released property model ``eval_model_name`` whose four files (named as
    :func:`property_model_files` names them) lie in ``folder``, as a callable: pymatgen structures ->
    predicted property values (the model's unit, eV/atom), as ``scripts/eval_utils.py`` ``prop_model_eval``
    computes them: each structure rebuilt from its lattice parameters, atomic numbers and fractional
    coordinates (no Niggli reduction), its CrystalNN graph, batches of ``batch_size`` (256), the prop
    scaler's inverse transform."""
    import numpy as np

    from replibench.errors import DataError
    from replibench.families.crystals.crystal_graph import crystalnn_graph, structure_from_arrays

    paths = {key: Path(folder) / remote.name for key, remote in property_model_files(eval_model_name).items()}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise DataError(f"property model {eval_model_name!r}: missing file(s) {missing}; expected the released "
                        f"prop_models/{eval_model_name} files (replibench downloads them with their git blob SHA-1)")
    model = load_property_model(paths["checkpoint"], paths["hparams"], paths["prop_scaler"], paths["lattice_scaler"])

    def predict(structures: list) -> list[float]:
        values: list[float] = []
        for lo in range(0, len(structures), batch_size):
            chunk = structures[lo:lo + batch_size]
            types, frac, lengths, angles, counts, edges, images, bonds = [], [], [], [], [], [], [], []
            offset = 0
            for structure in chunk:
                abc, angle = np.array(structure.lattice.abc), np.array(structure.lattice.angles)
                z = np.array(structure.atomic_numbers)
                rebuilt = structure_from_arrays(abc, angle, z, structure.frac_coords)
                edge_index, to_jimages = crystalnn_graph(rebuilt)
                types.append(z)
                frac.append(rebuilt.frac_coords)
                lengths.append(abc)
                angles.append(angle)
                counts.append(len(z))
                edges.append(edge_index + offset)
                images.append(to_jimages)
                bonds.append(edge_index.shape[1])
                offset += len(z)
            with torch.no_grad():
                predicted = model(
                    torch.from_numpy(np.concatenate(types)).long(), torch.from_numpy(np.concatenate(frac)).float(),
                    torch.from_numpy(np.stack(lengths)).float(), torch.from_numpy(np.stack(angles)).float(),
                    torch.tensor(counts), edge_index=torch.from_numpy(np.concatenate(edges, axis=1)).long(),
                    to_jimages=torch.from_numpy(np.concatenate(images)).long(), num_bonds=torch.tensor(bonds))
            values += predicted.view(-1).tolist()
        return values

    return predict
