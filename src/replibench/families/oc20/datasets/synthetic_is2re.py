"""``is2re-synthetic-emt``: an IS2RE-shaped SYNTHETIC set, the paper preset's rehearsal stand-in.

The IS2RE LMDB tarball is not at hand offline; a rehearsal measures what a step costs, which
depends on the structures' atoms and neighbours and on the model, not on DFT. So each system
here is one of :mod:`.synthetic`'s (an EMT metal slab with a small adsorbate, tags 0/1/2,
sub-surface atoms fixed), relaxed by the same EMT steepest descent; a row holds what an OC20
IS2RE record holds — the *initial* structure, the relaxed structure and the relaxed and initial
energies relative to the clean slab + isolated adsorbate (EMT's stand-in for OC20's adsorption
energy) — in the schema of the official conversion (:func:`.lmdb.is2re_schema`), one folder per
split (``train`` and the four validation splits, chemistries as in :data:`.synthetic.SPLIT_CHEMISTRY`).

Its slabs (12–27 metal atoms) are smaller than OC20's (~80 atoms), so a step here underestimates
one on OC20, as the S2EF stand-in's does. The card says ``synthetic: true``; nothing trained on it
is a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replibench.data.tables import Rejects, write_data_card

DATASET_NAME = "is2re-synthetic-emt"
#: systems per split and descent steps per relaxation (the rehearsal's batch: SchNet IS2RE-All
#: takes 64 systems per GPU; fairchem is2re/all/schnet.yml), and the generator's seed
DEFAULT_OPTIONS = {"seed": 20202, "train_systems": 128, "val_systems": 16, "relax_steps": 20}


def relaxation_rows(split_index: int, metals, adsorbates, *, systems: int, relax_steps: int, seed: int) -> dict:
    """Columns of one split: per system its initial structure (the rattled start of the EMT
    descent), relaxed positions (the descent's last frame) and energies minus the reference (eV)."""
    from replibench.families.oc20.datasets.synthetic import _build_system, _trajectory

    columns: dict[str, list] = {name: [] for name in ("sid", "lmdb_key", "natoms", "atomic_numbers", "pos", "cell",
                                                      "tags", "fixed", "energy_init", "energy_relaxed", "pos_relaxed")}
    for system_index in range(systems):
        rng = np.random.default_rng([seed, split_index, system_index])
        system, reference = _build_system(rng, metals, adsorbates)
        frames = _trajectory(system, rng, relax_steps, 1)
        (_, initial), (_, relaxed) = frames[0], frames[-1]
        fixed = np.zeros(len(system), dtype=bool)
        fixed[system.constraints[0].get_indices()] = True
        columns["sid"].append(200_000 * (split_index + 1) + system_index)
        columns["lmdb_key"].append(system_index)
        columns["natoms"].append(len(system))
        columns["atomic_numbers"].append(system.numbers.astype(np.int8).tolist())
        columns["pos"].append(initial.positions.reshape(-1).tolist())
        columns["cell"].append(system.cell.array.reshape(-1).tolist())
        columns["tags"].append(system.get_tags().astype(np.int8).tolist())
        columns["fixed"].append(fixed.tolist())
        columns["energy_init"].append(initial.get_potential_energy() - reference)
        columns["energy_relaxed"].append(relaxed.get_potential_energy() - reference)
        columns["pos_relaxed"].append(relaxed.positions.reshape(-1).tolist())
    return columns


@dataclass(frozen=True)
class SyntheticIS2REDataset:
    """``is2re-synthetic-emt``: generated (no remote files); a rehearsal stand-in only."""

    name: str = DATASET_NAME
    family: str = "oc20"
    remote_files: tuple = ()

    def preprocess(self, raw_files: list[Path], out_dir: Path, *, workers: int = 1,
                   options: dict | None = None) -> dict:
        """Generate every split into ``<out>/<split>/part-00000.parquet`` + card (``synthetic: true``)."""
        import pyarrow as pa

        from replibench.data.tables import write_parquet_atomic
        from replibench.errors import DataError
        from replibench.families.oc20.datasets.lmdb import is2re_schema
        from replibench.families.oc20.datasets.synthetic import SPLIT_CHEMISTRY

        if raw_files:
            raise DataError(f"{self.name}: a generated dataset takes no raw files, got {[str(p) for p in raw_files]}")
        from replibench.families.oc20.datasets.synthetic import checked_options

        values = checked_options(self.name, DEFAULT_OPTIONS, options)
        out_dir, rows = Path(out_dir), {}
        for split_index, (split, (metals, adsorbates)) in enumerate(SPLIT_CHEMISTRY.items()):
            systems = values["train_systems" if split == "train" else "val_systems"]
            columns = relaxation_rows(split_index, metals, adsorbates, systems=systems,
                                      relax_steps=values["relax_steps"], seed=values["seed"])
            write_parquet_atomic(pa.table(columns, schema=is2re_schema()), out_dir / split / "part-00000.parquet")
            rows[split] = systems
        Rejects().write(out_dir / "rejects.parquet")
        return write_data_card(
            out_dir / "card.json", dataset=self.name, family=self.family,
            sources=[{"name": "synthetic IS2RE (EMT relaxations)", "url": None, "sha256": None, "params": values}],
            rows=rows, rejected_rows=0, license="CC0-1.0",
            citation=("SYNTHETIC data generated by replibench (ASE-built slabs, EMT relaxations) in the schema of "
                      "OC20 IS2RE (Chanussot et al., ACS Catal. 2021); not OC20 data"),
            notes={"synthetic": True, "generator": values,
                   "energy_convention": "energy_relaxed = EMT(relaxed) - EMT(clean slab) - EMT(adsorbate), eV"})


#: registry target
IS2RE_SYNTHETIC_EMT = SyntheticIS2REDataset()
