"""Where CDVAE's released property models live, and their checksums (torch-free: read while planning).

txie-93/cdvae@f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea ``cdvae/prop_models/<model>/`` holds, for each
``eval_model_name`` of ``conf/data/*.yaml`` (``mp20``, ``perovskite``, ``carbon``), a Lightning
checkpoint of ``CrystGNN_Supervise`` (DimeNet++ predicting one standardised property), its
``hparams.yaml`` and two pickled ``StandardScalerTorch`` objects (``prop_scaler.pt``,
``lattice_scaler.pt``). Checksums are the git blob SHA-1s of that tree (``git ls-tree -r HEAD
cdvae/prop_models``; ``git hash-object`` of the checked-out scalers and hparams files gives the
same ids). The repository has no ``.gitattributes``, so the checkpoints are plain git blobs, not
Git-LFS pointers, and ``raw.githubusercontent.com`` serves them; their sizes are not known here
(the blobs were not in our partial clone), so ``size`` is ``None`` and the SHA-1 is the check.

Properties (``data.prop`` in each hparams.yaml): mp20 ``formation_energy_per_atom`` (eV/atom),
perovskite ``heat_ref`` (eV/atom), carbon ``energy_per_atom`` (eV/atom).
"""

from __future__ import annotations

from replibench.data.download import RemoteFile

CDVAE_COMMIT = "f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea"
_RAW_BASE = f"https://raw.githubusercontent.com/txie-93/cdvae/{CDVAE_COMMIT}/cdvae/prop_models"
LICENSE = "MIT"

#: eval_model_name -> {file name in cdvae/prop_models/<model>/: (git blob SHA-1, size in bytes or None)}
PROPERTY_MODEL_FILES: dict[str, dict[str, tuple[str, int | None]]] = {
    "mp20": {
        "epoch=839-step=89039.ckpt": ("220db4e8ee77287711aac5b5332ba06c643ee83d", None),
        "hparams.yaml": ("41265bd75b6e821ff260282a812623c310348766", 3546),
        "lattice_scaler.pt": ("6b948717a219418b0875070e1270ad5581f65e95", 1089),
        "prop_scaler.pt": ("f957dfd7de9d68857c30be695cdc61c503af217a", 1089),
    },
    "perovskite": {
        "epoch=2664-step=61294.ckpt": ("a761268a133aa7d187f56dbfca68c9d87fb4036d", None),
        "hparams.yaml": ("137fb0f38830b50035e62c0668fef167e39a2cd5", 3538),
        "lattice_scaler.pt": ("c3b66ffd6a58217bdce74488b9f37b730a0903ba", 1089),
        "prop_scaler.pt": ("f3f208f0a5e417089a82d22093170bcf16ec7c2a", 1089),
    },
    "carbon": {
        "epoch=2364-step=56759.ckpt": ("703b568817f4cfad82b4dc7f5c978a49529d7a7d", None),
        "hparams.yaml": ("5fe0c30289a251666b86c8fb6282d78ae7bfb589", 3544),
        "lattice_scaler.pt": ("54b364a7f865db4c3e22cd7407714306a07e154f", 1089),
        "prop_scaler.pt": ("eac69814cc388082e45d5bebc5eeffb3135e421e", 1089),
    },
}

#: eval_model_name -> the property the model predicts (hparams.yaml data.prop)
PREDICTED_PROPERTY = {"mp20": "formation_energy_per_atom", "perovskite": "heat_ref", "carbon": "energy_per_atom"}


def property_model_files(eval_model_name: str) -> dict[str, RemoteFile]:
    """The four files of one released property model, keyed ``checkpoint``, ``hparams``,
    ``prop_scaler``, ``lattice_scaler``. On disk each is named ``<model>-<upstream name>`` (one
    folder can hold all three models); the mirror path is ``crystals/cdvae_prop_models/<model>/<name>``."""
    if eval_model_name not in PROPERTY_MODEL_FILES:
        raise KeyError(f"no CDVAE property model {eval_model_name!r}; known: {sorted(PROPERTY_MODEL_FILES)}")
    out: dict[str, RemoteFile] = {}
    for upstream_name, (blob_sha1, size) in PROPERTY_MODEL_FILES[eval_model_name].items():
        key = "checkpoint" if upstream_name.endswith(".ckpt") else upstream_name.rsplit(".", 1)[0]
        out[key] = RemoteFile(
            name=f"{eval_model_name}-{upstream_name}",
            url=f"{_RAW_BASE}/{eval_model_name}/{upstream_name}",
            mirror_path=f"crystals/cdvae_prop_models/{eval_model_name}/{upstream_name}",
            size=size,
            checksum=f"git-sha1:{blob_sha1}",
            license=LICENSE,
        )
    return out
