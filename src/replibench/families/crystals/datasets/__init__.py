"""Crystal benchmarks from CDVAE (MP-20, Perov-5, Carbon-24) and DiffCSP (MPTS-52): download specs and preprocessing.

Importing this package is cheap (no pymatgen, pandas or pyarrow at import time), so the CLI and
``snakemake -n`` can list datasets without loading the materials stack. :data:`MP20`,
:data:`PEROV5`, :data:`CARBON24` and :data:`MPTS52` are the registry's dataset objects (``name``, ``family``,
``remote_files``, ``preprocess``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replibench.data.download import RemoteFile
from replibench.families.crystals.datasets.preprocess import crystal_schema, preprocess
from replibench.families.crystals.datasets.sources import (
    CDVAE_COMMIT,
    DATASETS,
    DIFFCSP_COMMIT,
    FAMILY,
    MP20_SUBSET_FOR_TESTS_ONLY,
    SMOKE_DATASETS,
    SPLITS,
    UNPUBLISHED_CHECKSUMS,
    CrystalDatasetSpec,
    dataset_spec,
    raw_file_name,
    remote_file,
    remote_files,
    smoke_split_files,
    split_of_raw_file,
    upstream_url,
)


@dataclass(frozen=True)
class CrystalDataset:
    """One registered crystal dataset: every split's file, and preprocessing of those given.

    Which files a run needs is the family's choice (``dataset_options``: the smoke preset reads only
    val.csv and test.csv); preprocessing converts whatever raw files it receives, naming each
    output after the split in the file's name (``perov_5-val.csv`` → ``val.parquet``).
    """

    name: str
    family: str = FAMILY

    @property
    def remote_files(self) -> tuple[RemoteFile, ...]:
        return tuple(remote_files(self.name).values())

    def preprocess(self, raw_files: list[Path], out_dir: Path, *, workers: int = 1,
                   options: dict[str, Any] | None = None) -> dict[str, Any]:
        by_split = {split_of_raw_file(self.name, Path(path).name): Path(path) for path in raw_files}
        return preprocess(by_split, Path(out_dir), dataset=self.name, workers=workers,
                          crystal_graph=(options or {}).get("crystal_graph"))


MP20 = CrystalDataset("mp-20")
PEROV5 = CrystalDataset("perov-5")
CARBON24 = CrystalDataset("carbon-24")
#: DiffCSP's MPTS-52 (time-split Materials Project crystals of up to 52 atoms; files from jiaor17/DiffCSP)
MPTS52 = CrystalDataset("mpts-52")
#: the rehearsal's stand-in for MP-20 (genuine rows, not the benchmark split; never a run's dataset)
MP20_FORK_SUBSET = CrystalDataset("mp-20-fork-subset")

__all__ = [
    "CARBON24", "CDVAE_COMMIT", "DATASETS", "DIFFCSP_COMMIT", "FAMILY", "MP20", "MP20_FORK_SUBSET",
    "MP20_SUBSET_FOR_TESTS_ONLY", "MPTS52", "PEROV5",
    "SMOKE_DATASETS", "SPLITS", "UNPUBLISHED_CHECKSUMS", "CrystalDataset", "CrystalDatasetSpec", "crystal_schema",
    "dataset_spec", "preprocess", "raw_file_name", "remote_file", "remote_files", "smoke_split_files",
    "split_of_raw_file", "upstream_url",
]
