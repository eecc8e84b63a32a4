"""Crystal benchmarks from CDVAE (MP-20, Perov-5, Carbon-24): download specs and preprocessing.

Importing this package is cheap (no pymatgen, pandas or pyarrow at import time), so the CLI and
``snakemake -n`` can list datasets without loading the materials stack.
"""

from replibench.datasets.crystals.preprocess import crystal_schema, preprocess
from replibench.datasets.crystals.sources import (
    CDVAE_COMMIT,
    DATASETS,
    FAMILY,
    MP20_SUBSET_FOR_TESTS_ONLY,
    PENDING_CHECKSUMS,
    SMOKE_DATASETS,
    SPLITS,
    CrystalDatasetSpec,
    dataset_spec,
    remote_file,
    remote_files,
    smoke_split_files,
    upstream_url,
)

__all__ = [
    "CDVAE_COMMIT", "DATASETS", "FAMILY", "MP20_SUBSET_FOR_TESTS_ONLY", "PENDING_CHECKSUMS",
    "SMOKE_DATASETS", "SPLITS", "CrystalDatasetSpec", "crystal_schema", "dataset_spec", "preprocess",
    "remote_file", "remote_files", "smoke_split_files", "upstream_url",
]
