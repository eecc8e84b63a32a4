"""The three CDVAE crystal benchmarks and DiffCSP's MPTS-52: files, checksums, licences, citations, protocol constants.

MP-20, Perov-5 and Carbon-24 are the CSVs of txie-93/cdvae at the pinned commit :data:`CDVAE_COMMIT` (DiffCSP and
CrysBFN train and test on the same data; their own copies are not byte-identical, see the research
notes). MPTS-52 is not in CDVAE: it is the CSVs of jiaor17/DiffCSP at :data:`DIFFCSP_COMMIT`
(``data/mpts_52``; CrysBFN's tree holds the same three blobs). Checksums are the published or
mirror-recorded ones only:

- MP-20: upstream publishes only git blob SHA-1s (``../shared/data/mp_20/MANIFEST.tsv``).
- Perov-5 / Carbon-24 val and test: sha256 and size recorded in ``../shared/data/*/MANIFEST.tsv``
  (byte-identical to upstream).
- MPTS-52: the git blob SHA-1s of DiffCSP's tree at :data:`DIFFCSP_COMMIT` (``git ls-tree``; the
  repository has no ``.gitattributes``, so the blobs are the CSVs, not Git-LFS pointers).
- Perov-5 / Carbon-24 train: no checksum is published anywhere we could read. Their
  :class:`RemoteFile` declares ``checksum=None``: fetching fails before any byte is used unless the
  user pins a checksum in ``config.yaml`` (``data.checksums``, keyed by the mirror path, e.g.
  ``perov_5/train.csv``); :data:`UNPUBLISHED_CHECKSUMS` says why for each.

Raw file names are ``<folder>-<split>.csv`` (``perov_5-val.csv``): one family folder
``data/raw/crystals/`` holds the files of all three datasets, so the names must differ.

Protocol constants follow CDVAE's ``conf/data/{mp_20,perov,carbon}.yaml``: Niggli reduction on,
primitive-cell reduction off for all three; the training target (``prop``) is the property whose
NaN rejects a row.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from replibench.data.download import RemoteFile
from replibench.errors import DataError

FAMILY = "crystals"
CDVAE_COMMIT = "f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea"
_RAW_BASE = f"https://raw.githubusercontent.com/txie-93/cdvae/{CDVAE_COMMIT}/data"
SPLITS = ("train", "val", "test")
#: the fork commit whose data/mp_20 holds the MP-20 subset (../shared/data/mp_20/subset/MANIFEST.tsv)
MP20_FORK_COMMIT = "437566befc3b53756d8b18f1fe885fbae84e49a6"
#: the DiffCSP commit whose data/mpts_52 holds MPTS-52 (the research notes' pinned DiffCSP commit)
DIFFCSP_COMMIT = "7121d159826efa2ba9500bf299250d96da37f146"

CDVAE_CITATION = (
    "Xie, T., Fu, X., Ganea, O.-E., Barzilay, R., Jaakkola, T. Crystal Diffusion Variational "
    "Autoencoder for Periodic Material Generation. ICLR 2022. arXiv:2110.06197"
)


@dataclass(frozen=True)
class CrystalDatasetSpec:
    """One benchmark: folder name, property columns, CDVAE preprocessing flags, licence, citation.

    Attributes:
        name: registry name (kebab-case).
        folder: folder under the mirror / ``../shared/data`` (``mp_20``).
        float_properties: CSV columns stored as nullable float64, in CSV order.
        target_property: CDVAE's ``data.prop``; a row whose value is missing/NaN is rejected.
        niggli, primitive: CDVAE ``build_crystal`` flags (``conf/data/*.yaml``).
        max_atoms: CDVAE ``data.max_atoms`` (recorded, not used to filter: CDVAE does not filter).
        eval_model_name: CDVAE property-model / COV-cutoff key (``mp20``, ``perovskite``, ``carbon``).
        rows: published row counts per split (research notes section 1), for the data card.
        url_base: where the split CSVs are online when not txie-93/cdvae's ``data/<folder>``.
        mirror_folder: the files' folder in the mirror when it is not ``folder``.
        int_columns: further CSV columns kept as nullable int32 (MPTS-52's ``year``).
        bool_columns: further CSV columns kept as nullable booleans, written ``True``/``False``
            (MPTS-52's ``theoretical``).
    """

    name: str
    folder: str
    float_properties: tuple[str, ...]
    target_property: str
    niggli: bool
    primitive: bool
    max_atoms: int
    eval_model_name: str
    license: str
    citation: str
    rows: dict[str, int]
    url_base: str | None = None
    mirror_folder: str | None = None
    int_columns: tuple[str, ...] = ()
    bool_columns: tuple[str, ...] = ()


_MP20 = CrystalDatasetSpec(
    name="mp-20",
    folder="mp_20",
    float_properties=("formation_energy_per_atom", "band_gap", "e_above_hull"),
    target_property="formation_energy_per_atom",
    niggli=True,
    primitive=False,
    max_atoms=20,
    eval_model_name="mp20",
    license="CC-BY-4.0 (Materials Project data, redistributed in txie-93/cdvae; code MIT)",
    citation=(
        "Jain, A. et al. Commentary: The Materials Project: A materials genome approach to "
        "accelerating materials innovation. APL Materials 1, 011002 (2013). Benchmark split: "
        + CDVAE_CITATION
    ),
    rows={"train": 27136, "val": 9047, "test": 9046},
)


DATASETS: dict[str, CrystalDatasetSpec] = {
    "mp-20": _MP20,
    "perov-5": CrystalDatasetSpec(
        name="perov-5",
        folder="perov_5",
        float_properties=("heat_all", "heat_ref", "dir_gap", "ind_gap"),
        target_property="heat_ref",
        niggli=True,
        primitive=False,
        max_atoms=20,
        eval_model_name="perovskite",
        license=(
            "not stated upstream (redistributed in txie-93/cdvae, whose code is MIT; original data "
            "from the Computational Materials Repository, Castelli et al. 2012)"
        ),
        citation=(
            "Castelli, I. E. et al. New cubic perovskites for one- and two-photon water splitting "
            "using the computational materials repository. Energy Environ. Sci. 5, 9034 (2012); "
            "Castelli, I. E. et al. Computational screening of perovskite metal oxides for optimal "
            "solar light capture. Energy Environ. Sci. 5, 5814 (2012). Benchmark split: "
            + CDVAE_CITATION
        ),
        rows={"train": 11356, "val": 3787, "test": 3785},
    ),
    "carbon-24": CrystalDatasetSpec(
        name="carbon-24",
        folder="carbon_24",
        float_properties=("energy_per_atom",),
        target_property="energy_per_atom",
        niggli=True,
        primitive=False,
        max_atoms=24,
        eval_model_name="carbon",
        license=(
            "not stated upstream (redistributed in txie-93/cdvae, whose code is MIT; original data: "
            "Materials Cloud archive record 2020.0026/v1, open access)"
        ),
        citation=(
            "Pickard, C. J. AIRSS data for carbon at 10GPa and the C+N+H+O system at 1GPa. "
            "Materials Cloud Archive 2020.0026/v1 (2020), doi:10.24435/materialscloud:2020.0026/v1. "
            "Benchmark split: " + CDVAE_CITATION
        ),
        rows={"train": 6091, "val": 2032, "test": 2030},
    ),
    # The paper preset's rehearsal stand-in for MP-20, whose CSVs are not at hand offline (never a run's
    # dataset, never reported): genuine MP-20 rows (material_id + CIF, MP-20's columns) kept in a fork,
    # 847 / 123 / 142 rows; which official split each came from is not verified. MP-20's spec otherwise.
    "mp-20-fork-subset": replace(
        _MP20,
        name="mp-20-fork-subset",
        folder="mp_20_fork_subset",
        license="CC-BY-4.0 (Materials Project data, kept in the fork OPRYAN90/cdvae of txie-93/cdvae; code MIT)",
        citation=_MP20.citation + "; rows from the fork OPRYAN90/cdvae@" + MP20_FORK_COMMIT,
        rows={"train": 847, "val": 123, "test": 142},
        url_base=f"https://raw.githubusercontent.com/OPRYAN90/cdvae/{MP20_FORK_COMMIT}/data/mp_20",
        mirror_folder="mp_20/subset",
    ),
    # DiffCSP Table 1's fourth dataset (README: "MPTS-52 is collected from its original codebase",
    # sparks-baird/mp-time-split). Columns: unnamed index, material_id, theoretical, energy_above_hull,
    # formation_energy_per_atom, year, cif. Split chronologically (by the structures' year), not at random:
    # 27,380 / 5,000 / 8,096 crystals as published (a third-party summary of the MPTS-52 split; the blobs
    # were not at hand here to count or to check which years each split holds).
    # Protocol: DiffCSP conf/data/mpts_52.yaml (prop formation_energy_per_atom, niggli true, primitive
    # False, max_atoms 52, eval_model_name mp20); CrysBFN's conf/data/mpts.yaml agrees except
    # eval_model_name carbon (generation only, which neither paper reports on MPTS-52).
    "mpts-52": CrystalDatasetSpec(
        name="mpts-52",
        folder="mpts_52",
        float_properties=("energy_above_hull", "formation_energy_per_atom"),
        target_property="formation_energy_per_atom",
        niggli=True,
        primitive=False,
        max_atoms=52,
        eval_model_name="mp20",
        license=(
            "CC-BY-4.0 (Materials Project data, time-split by sparks-baird/mp-time-split and "
            "redistributed in jiaor17/DiffCSP; code MIT)"
        ),
        citation=(
            "Jain, A. et al. Commentary: The Materials Project: A materials genome approach to "
            "accelerating materials innovation. APL Materials 1, 011002 (2013). Time split: "
            "sparks-baird/mp-time-split (Baird, S. G. et al., matbench-genmetrics). Benchmark as used by: "
            "Jiao, R. et al. Crystal Structure Prediction by Joint Equivariant Diffusion. NeurIPS 2023. "
            "arXiv:2309.04475"
        ),
        rows={"train": 27380, "val": 5000, "test": 8096},
        url_base=f"https://raw.githubusercontent.com/jiaor17/DiffCSP/{DIFFCSP_COMMIT}/data/mpts_52",
        int_columns=("year",),
        bool_columns=("theoretical",),
    ),
}


# (dataset, split) -> (checksum, size in bytes or None); sources named in the module docstring.
_CHECKSUMS: dict[tuple[str, str], tuple[str, int | None]] = {
    ("mp-20", "train"): ("git-sha1:b1c9d498565ac2fd8d075a51ff2ef5e51ba6c21f", None),
    ("mp-20", "val"): ("git-sha1:7efe4d7ebeb4f460ceaad35e5326c42111d9c9a1", None),
    ("mp-20", "test"): ("git-sha1:5dc643041df53f5ce4970a79930ad262b4f07acd", None),
    # jiaor17/DiffCSP@7121d15 `git ls-tree -r HEAD data/mpts_52` (the same blobs in GenSI-THUAIR/CrysBFN)
    ("mpts-52", "train"): ("git-sha1:28c53b0a0fd3f32fb8078aca8e5b484e372790c6", None),
    ("mpts-52", "val"): ("git-sha1:a377ba0ca7bee37ee69d9f50f8362eaa35d9f690", None),
    ("mpts-52", "test"): ("git-sha1:2e8af159618f63be346b6527f155514323964423", None),
    ("perov-5", "val"): ("sha256:326f401219901270374b71e2faff63df3a29a99fd26f469993b9f476b693daf2", 3673814),
    ("perov-5", "test"): ("sha256:a85878c685037f0a578257f6d4fcdde00e968dbab73c5f1e90ecef65218513f6", 3671842),
    ("carbon-24", "val"): ("sha256:36c00689cd63073c954a58bc6ed6e2adb7aeed5a630c994970959a1babffd50e", 2321923),
    ("carbon-24", "test"): ("sha256:386b17c08816f434818d51e46687bf72ff3f92348f3ba24823e4758f1fe8a969", 2319350),
    ("mp-20-fork-subset", "train"): ("sha256:88e85ab73e67053de2054063efb6241ccd0c3c175315fb91c282dbb7a2e75584", 1102700),
    ("mp-20-fork-subset", "val"): ("sha256:aa1908f49931664150ffa996b6a955f948f8622e482d4f61eec6f6e134fddda6", 155418),
    ("mp-20-fork-subset", "test"): ("sha256:f1b64fa3b5688a66e34e66b719167119b21853aa67024000e4b4ae7c01c50a52", 180313),
}

#: Files that exist upstream but have no published checksum we could verify against: their
#: RemoteFile has ``checksum=None`` and the user pins one (``data.checksums`` in config.yaml).
UNPUBLISHED_CHECKSUMS: dict[tuple[str, str], str] = {
    ("perov-5", "train"): (
        "no sha256 or git blob SHA-1 is published for cdvae data/perov_5/train.csv (>= 4 MiB, not in "
        "the offline mirror); pin one as data.checksums['perov_5/train.csv'] after checking the file "
        "(e.g. `git hash-object` against the blob id in the upstream tree at the pinned commit)"
    ),
    ("carbon-24", "train"): (
        "no sha256 or git blob SHA-1 is published for cdvae data/carbon_24/train.csv (>= 4 MiB, not "
        "in the offline mirror); pin one as data.checksums['carbon_24/train.csv'] after checking the "
        "file (e.g. `git hash-object` against the blob id in the upstream tree at the pinned commit)"
    ),
}

#: Genuine MP-20 rows from a fork (1,112 rows), NOT the official split: tests and the rehearsal's
#: stand-in (``mp-20-fork-subset``) only, never reported.
MP20_SUBSET_FOR_TESTS_ONLY = "mp_20/subset"


def dataset_spec(dataset: str) -> CrystalDatasetSpec:
    """The :class:`CrystalDatasetSpec` registered as ``dataset`` (``mp-20``, ``perov-5``, ``carbon-24``,
    ``mpts-52``)."""
    if dataset not in DATASETS:
        raise DataError(f"unknown crystal dataset {dataset!r}; expected one of {sorted(DATASETS)}")
    return DATASETS[dataset]


def upstream_url(dataset: str, split: str) -> str:
    """Raw URL of ``{split}.csv`` at the pinned CDVAE commit (or the dataset's own ``url_base``:
    MPTS-52's is DiffCSP's)."""
    spec = dataset_spec(dataset)
    return f"{spec.url_base or _RAW_BASE + '/' + spec.folder}/{split}.csv"


def raw_file_name(dataset: str, split: str) -> str:
    """``<folder>-<split>.csv``: the file's name under ``data/raw/crystals/`` (unique in the family)."""
    return f"{dataset_spec(dataset).folder}-{split}.csv"


def split_of_raw_file(dataset: str, name: str) -> str:
    """Inverse of :func:`raw_file_name`; a file of another dataset or split is a :class:`DataError`."""
    for split in SPLITS:
        if name == raw_file_name(dataset, split):
            return split
    raise DataError(f"{name}: not a raw file of {dataset}; expected one of "
                    f"{[raw_file_name(dataset, split) for split in SPLITS]}")


def remote_file(dataset: str, split: str) -> RemoteFile:
    """The :class:`RemoteFile` for one split's CSV (``checksum=None`` where none is published)."""
    spec = dataset_spec(dataset)
    if split not in SPLITS:
        raise DataError(f"{dataset}: unknown split {split!r}; expected one of {SPLITS}")
    checksum, size = _CHECKSUMS.get((dataset, split), (None, None))
    if checksum is None and (dataset, split) not in UNPUBLISHED_CHECKSUMS:
        raise DataError(f"{dataset} {split}.csv: no checksum declared and none known to be unpublished")
    return RemoteFile(
        name=raw_file_name(dataset, split),
        url=upstream_url(dataset, split),
        mirror_path=f"{spec.mirror_folder or spec.folder}/{split}.csv",
        size=size,
        checksum=checksum,
        license=spec.license,
    )


def remote_files(dataset: str) -> dict[str, RemoteFile]:
    """Files of all three splits (the ``paper`` preset); unpublished checksums must be pinned to fetch."""
    return {split: remote_file(dataset, split) for split in SPLITS}


#: Datasets the smoke preset uses (their val/test CSVs are small and in the offline mirror).
SMOKE_DATASETS = ("perov-5", "carbon-24")


def smoke_split_files(dataset: str) -> dict[str, RemoteFile]:
    """Split → file for the ``smoke`` preset: val.csv trains (and validates), test.csv tests.

    Why: the train CSVs are >= 4 MiB and absent from the offline mirror (and unverifiable for
    Perov-5/Carbon-24), while val/test exist upstream and byte-identical in the mirror, so the same
    smoke run works online and offline. MP-20 is not a smoke dataset (none of its files is mirrored).
    """
    if dataset not in SMOKE_DATASETS:
        raise DataError(f"smoke preset: dataset {dataset!r} is not a smoke dataset; expected one of {SMOKE_DATASETS}")
    val, test = remote_file(dataset, "val"), remote_file(dataset, "test")
    return {"train": val, "val": val, "test": test}
