"""The registered datasets of the ``lra`` family: the six LRA tasks, their generated stand-ins
and the state-tracking tasks of Grazzi et al. (ICLR 2025).

Each object here is what the registry names (``listops``, ``path-x``, ``parity``, …): its raw files
(:class:`~replibench.data.download.RemoteFile` specs from :mod:`.sources`) and a
``preprocess(raw_files, out_dir, *, workers, options)`` that dispatches to
:mod:`.preprocess` / :mod:`.state_tracking`. Imported by ``snakemake -n``: the preprocessing
modules (numpy, pyarrow, PIL) are imported only inside ``preprocess``.

==================== ========================= ===============================================
dataset              raw files                  options (from the family's ``dataset_options``)
==================== ========================= ===============================================
listops              lra_release.gz             —
text                 aclImdb_v1.tar.gz          —
retrieval            lra_release.gz             —
image                cifar-10-python.tar.gz     —
pathfinder           lra_release.gz             —
path-x               lra_release.gz             —
listops-generated    none (generated)           ``generator`` (ListOpsConfig fields), ``seed``
pathfinder-generated none (generated)           ``resolution``, ``count``, ``generator``, ``seed``
path-x-generated     none (generated)           the same, at 128 × 128 (rehearsal stand-in)
text-generated, …    none (generated)           ``generator`` (ShapedConfig fields), ``seed``
parity, mod-…        none (generated)           ``sizes`` (StateTrackingConfig fields), ``seed``
==================== ========================= ===============================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replibench.data.download import RemoteFile
from replibench.families.lra.datasets.sources import CIFAR10_ARCHIVE, IMDB_ARCHIVE, LRA_RELEASE_ARCHIVE
from replibench.errors import ConfigError, DataError

FAMILY = "lra"


def _options(dataset: str, options: dict[str, Any] | None, required: tuple[str, ...]) -> dict[str, Any]:
    options = dict(options or {})
    missing = [key for key in required if key not in options]
    if missing:
        raise ConfigError(f"{dataset}: preprocessing options {missing} missing (the lra family's "
                          f"dataset_options supplies them); got {sorted(options)}")
    return options


@dataclass(frozen=True)
class LraDataset:
    """One dataset of the family; ``kind`` selects the preprocessing."""

    name: str
    kind: str  # "release" | "text" | "image" | "listops-generated" | "pathfinder-generated" | "shaped-generated" | "state-tracking"
    family: str = FAMILY

    @property
    def remote_files(self) -> list[RemoteFile]:
        return {"release": [LRA_RELEASE_ARCHIVE], "text": [IMDB_ARCHIVE], "image": [CIFAR10_ARCHIVE]}.get(self.kind, [])

    @property
    def generated(self) -> bool:
        return not self.remote_files

    def preprocess(self, raw_files: list[Path], out_dir: Path, *, workers: int = 1,
                   options: dict | None = None) -> dict:
        """Dataset contract: raw files (in ``remote_files`` order) → Parquet folder + card + rejects."""
        expected = [remote.name for remote in self.remote_files]
        if [Path(p).name for p in raw_files] != expected:
            raise DataError(f"{self.name}: expected raw files {expected}, got {[str(p) for p in raw_files]}")
        from replibench.families.lra.datasets import preprocess as pre

        if self.kind == "release":
            if self.name == "listops":
                return pre.preprocess_listops_release(raw_files[0], out_dir)
            if self.name == "retrieval":
                return pre.preprocess_retrieval_release(raw_files[0], out_dir)
            return pre.preprocess_pathfinder_release(raw_files[0], out_dir, task=self.name)
        if self.kind == "text":
            return pre.preprocess_text_archive(raw_files[0], out_dir)
        if self.kind == "image":
            return pre.preprocess_image(raw_files[0], out_dir)
        if self.kind == "listops-generated":
            from replibench.families.lra.datasets.listops_gen import ListOpsConfig

            opts = _options(self.name, options, ("generator", "seed"))
            return pre.preprocess_listops_generated(out_dir, config=ListOpsConfig(**opts["generator"]),
                                                    seed=int(opts["seed"]))
        if self.kind == "pathfinder-generated":
            from dataclasses import replace

            from replibench.families.lra.datasets.pathfinder_gen import pathfinder_config

            opts = _options(self.name, options, ("resolution", "count", "seed"))
            config = replace(pathfinder_config(int(opts["resolution"]), int(opts.get("contour_length", 14))),
                             **opts.get("generator", {}))
            return pre.preprocess_pathfinder_generated(out_dir, config=config, count=int(opts["count"]),
                                                       seed=int(opts["seed"]), dataset=self.name)
        if self.kind == "shaped-generated":
            from replibench.families.lra.datasets.shaped_gen import ShapedConfig

            opts = _options(self.name, options, ("generator", "seed"))
            return pre.preprocess_shaped_generated(out_dir, config=ShapedConfig(**opts["generator"]),
                                                   seed=int(opts["seed"]), dataset=self.name)
        if self.kind == "state-tracking":
            from replibench.families.lra.datasets.state_tracking import StateTrackingConfig, preprocess_state_tracking

            opts = _options(self.name, options, ("sizes", "seed"))
            sizes = {key: tuple(value) if isinstance(value, list) else value for key, value in opts["sizes"].items()}
            return preprocess_state_tracking(out_dir, config=StateTrackingConfig(task=self.name, **sizes),
                                             seed=int(opts["seed"]))
        raise ConfigError(f"{self.name}: unknown dataset kind {self.kind!r}")


LISTOPS = LraDataset("listops", "release")
TEXT = LraDataset("text", "text")
RETRIEVAL = LraDataset("retrieval", "release")
IMAGE = LraDataset("image", "image")
PATHFINDER = LraDataset("pathfinder", "release")
PATH_X = LraDataset("path-x", "release")
LISTOPS_GENERATED = LraDataset("listops-generated", "listops-generated")
PATHFINDER_GENERATED = LraDataset("pathfinder-generated", "pathfinder-generated")
# rehearsal stand-ins of the tasks whose archives are not at hand (never run datasets)
PATH_X_GENERATED = LraDataset("path-x-generated", "pathfinder-generated")
TEXT_GENERATED = LraDataset("text-generated", "shaped-generated")
RETRIEVAL_GENERATED = LraDataset("retrieval-generated", "shaped-generated")
IMAGE_GENERATED = LraDataset("image-generated", "shaped-generated")
PARITY = LraDataset("parity", "state-tracking")
MOD_ARITHMETIC = LraDataset("mod-arithmetic", "state-tracking")
MOD_ARITHMETIC_BRACKETS = LraDataset("mod-arithmetic-brackets", "state-tracking")
