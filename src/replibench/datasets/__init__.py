"""Datasets: the files each needs (``RemoteFile`` specs), licence, citation and preprocessing.

Every registered dataset object provides ``name``, ``family``, ``remote_files`` and
``preprocess(raw_files, out_dir, *, workers)``. Lookups here are by registry, never by if/elif.
"""

from __future__ import annotations

from replibench.data.download import RemoteFile
from replibench.errors import ConfigError


def dataset_spec(name: str):
    from replibench.registry import resolve

    return resolve("dataset", name)


def remote_file(family: str, file_name: str) -> RemoteFile:
    """The spec of ``file_name`` among the registered datasets of ``family``."""
    from replibench.registry import DATASETS

    known = []
    for name in DATASETS:
        spec = dataset_spec(name)
        if spec.family != family:
            continue
        for remote in spec.remote_files:
            if remote.name == file_name:
                return remote
            known.append(remote.name)
    raise ConfigError(f"no remote file {file_name!r} in family {family!r}; known: {', '.join(sorted(set(known)))}")


def declared_mirror_paths() -> dict[str, RemoteFile]:
    """Every declared remote file of every registered dataset, by its ``mirror_path`` (the key of a
    ``data.checksums`` pin)."""
    from replibench.registry import DATASETS

    return {remote.mirror_path: remote for name in DATASETS for remote in dataset_spec(name).remote_files}
