"""``s2ef-synthetic-emt``: a small, SYNTHETIC S2EF-format set for smoke runs and tests.

No OC20 download is possible on CPU CI, so this module builds look-alike archives: fcc(111)/(100)
slabs of EMT metals with small adsorbates (ASE ``ase.build``), short steepest-descent
trajectories driven and labelled by ASE's EMT calculator (energy + forces), written as real
``N.extxyz.xz`` + ``N.txt.xz`` pairs inside one tar per split — the layout of the official S2EF
tarballs — so the real reader converts them. The labels are EMT, NOT DFT: numbers obtained on this
set say nothing about OC20 and are flagged ``synthetic`` in the data card.

Conventions copied from OC20: tags 0 (sub-surface, fixed), 1 (top layer), 2 (adsorbate);
``pbc="T T T"``; forces on fixed atoms kept; txt lines ``random<sid>,frame<fid>,<reference>``.
The "reference energy" is EMT(clean slab, unrelaxed) + EMT(isolated adsorbate), so
``energy_ref`` plays the role of OC20's adsorption energy. Splits mirror OC20's: ``train`` and
``val_id`` share metals and adsorbates; ``val_ood_ads`` uses unseen adsorbates, ``val_ood_cat``
unseen metals, ``val_ood_both`` both.

How it enters the pipeline: ``s2ef-synthetic-emt`` is a *generated* dataset (no remote files).
Its ``preprocess`` builds the archives from the options the family passes (sizes, seed: a
Snakemake param, so changing them rebuilds only this dataset) into ``<out>/archives/``, then
converts them with the same reader as the official tarballs
(:func:`~replibench.families.oc20.datasets.s2ef.preprocess_s2ef_archives`); the card records the archives'
sha256 and ``synthetic: true``, which the tasks turn into ``data_origin: synthetic``. The tests
also serve built archives through a local HTTP mirror to exercise download + checksum + reader.

Determinism: every random choice comes from ``numpy.random.default_rng([seed, split, system])``;
positions, forces and energies are rounded to what the extxyz file stores before they feed the
next step, and tar headers are fixed (mtime 0, uid/gid 0), so a build is byte-identical on one
machine. Across machines the xz bytes may differ with the system's liblzma, so the reproducibility
pin is on the *decompressed* members (:func:`archive_content_sha256`, checked by a test for a
small build), which depend only on ASE and NumPy (pinned in requirements.lock).
"""

from __future__ import annotations

import io
import lzma
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replibench.atomic import atomic_path
from replibench.data.checksum import sha256_file
from replibench.data.download import RemoteFile
from replibench.families.oc20.datasets.sources import MIRROR_FOLDER

DATASET_NAME = "s2ef-synthetic-emt"
LICENSE = "CC0-1.0"  # generated here, no upstream data

TRAIN_METALS = ("Cu", "Ag", "Ni", "Pt", "Al")
OOD_METALS = ("Au", "Pd")
#: adsorbates as (symbol, offset above the binding atom in Å); binding atom first.
ADSORBATES: dict[str, tuple[tuple[str, tuple[float, float, float]], ...]] = {
    "H": (("H", (0.0, 0.0, 0.0)),),
    "O": (("O", (0.0, 0.0, 0.0)),),
    "OH": (("O", (0.0, 0.0, 0.0)), ("H", (0.0, 0.0, 0.97))),
    "CO": (("C", (0.0, 0.0, 0.0)), ("O", (0.0, 0.0, 1.15))),
    "N": (("N", (0.0, 0.0, 0.0)),),
    "C": (("C", (0.0, 0.0, 0.0)),),
    "NO": (("N", (0.0, 0.0, 0.0)), ("O", (0.0, 0.0, 1.15))),
    "CH": (("C", (0.0, 0.0, 0.0)), ("H", (0.0, 0.0, 1.09))),
}
TRAIN_ADSORBATES = ("H", "O", "OH", "CO")
OOD_ADSORBATES = ("N", "C", "NO", "CH")

#: trajectory settings: steepest descent x += clip(STEP * F, ±MAX_STEP) on free atoms
STEP_A2_PER_EV = 0.02
MAX_STEP_A = 0.1
RATTLE_A = 0.05
VACUUM_A = 7.0


@dataclass(frozen=True)
class SyntheticSplit:
    split: str
    metals: tuple[str, ...]
    adsorbates: tuple[str, ...]
    systems: int
    frames_per_system: int
    frames_per_file: int
    stride: int = 1  # record every ``stride``-th descent step


#: metals / adsorbates of each split (OC20's in-domain and out-of-domain structure)
SPLIT_CHEMISTRY = {
    "train": (TRAIN_METALS, TRAIN_ADSORBATES),
    "val_id": (TRAIN_METALS, TRAIN_ADSORBATES),
    "val_ood_ads": (TRAIN_METALS, OOD_ADSORBATES),
    "val_ood_cat": (OOD_METALS, TRAIN_ADSORBATES),
    "val_ood_both": (OOD_METALS, OOD_ADSORBATES),
}
#: default sizes and seed (the ``smoke`` preset): 768 train frames in 3 files, 64 per val split;
#: files hold 256 / 64 frames (OC20's hold 5,000; ours are small so a split spans several files)
DEFAULT_OPTIONS = {"seed": 20201, "train_systems": 96, "train_frames_per_system": 8, "train_frames_per_file": 256,
                   "val_systems": 16, "val_frames_per_system": 4, "val_frames_per_file": 64}


def checked_options(dataset: str, defaults: dict[str, int], options: dict | None) -> dict[str, int]:
    """``options`` over ``defaults``: known keys only, positive integers (a seed may be 0), else a
    :class:`~replibench.errors.ConfigError` naming ``dataset`` (the synthetic sets' generator options)."""
    from replibench.errors import ConfigError

    values = {**defaults, **(options or {})}
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise ConfigError(f"{dataset}: unknown option(s) {unknown}; allowed: {sorted(defaults)}")
    bad = {key: value for key, value in values.items()
           if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "seed" else 1)}
    if bad:
        raise ConfigError(f"{dataset}: options must be positive integers (seed >= 0), got {bad}")
    return values


def synthetic_splits(options: dict | None = None) -> tuple[SyntheticSplit, ...]:
    """The five splits for ``options`` (keys of :data:`DEFAULT_OPTIONS`; missing ones default)."""
    values = checked_options(DATASET_NAME, DEFAULT_OPTIONS, options)
    splits = []
    for split, (metals, adsorbates) in SPLIT_CHEMISTRY.items():
        kind = "train" if split == "train" else "val"
        splits.append(SyntheticSplit(
            split, metals, adsorbates, systems=values[f"{kind}_systems"],
            frames_per_system=values[f"{kind}_frames_per_system"], frames_per_file=values[f"{kind}_frames_per_file"]))
    return tuple(splits)


def archive_name(split: str) -> str:
    return f"s2ef_synthetic_emt_{split}.tar"


def _build_system(rng: np.random.Generator, metals, adsorbates):
    """One slab + adsorbate (tags, FixAtoms) and its reference energy (eV, EMT)."""
    from ase import Atoms
    from ase.build import fcc100, fcc111
    from ase.calculators.emt import EMT
    from ase.constraints import FixAtoms

    metal = str(rng.choice(metals))
    builder = fcc111 if rng.random() < 0.5 else fcc100
    size = (int(rng.integers(2, 4)), int(rng.integers(2, 4)), 3)
    slab = builder(metal, size=size, vacuum=VACUUM_A)
    top = slab.get_tags() == 1  # ase.build tags layers 1 (top) .. L
    slab.pbc = True
    name = str(rng.choice(adsorbates))
    parts = ADSORBATES[name]
    xy = rng.random(2) @ slab.cell.array[:2, :2]  # random point of the surface cell
    height = float(slab.positions[top, 2].max() + rng.uniform(1.5, 2.1))
    tilt = rng.normal(0.0, 0.25, size=2)  # small random tilt of multi-atom adsorbates (Å per Å)
    ads_pos = np.array([[xy[0] + off[2] * tilt[0], xy[1] + off[2] * tilt[1], height + off[2]] for _, off in parts])
    ads = Atoms([symbol for symbol, _ in parts], positions=ads_pos)

    clean = slab.copy()
    clean.calc = EMT()
    molecule = ads.copy()
    molecule.center(vacuum=5.0)
    molecule.pbc = False
    molecule.calc = EMT()
    reference = _round_energy(clean.get_potential_energy() + molecule.get_potential_energy())

    system = Atoms(numbers=np.concatenate([slab.numbers, ads.numbers]),
                   positions=np.concatenate([slab.positions, ads.positions]),
                   cell=np.round(slab.cell.array, 8), pbc=True)
    tags = np.concatenate([np.where(top, 1, 0), np.full(len(ads), 2)])
    system.set_tags(tags)
    system.set_constraint(FixAtoms(mask=tags == 0))
    return system, reference


def _round_energy(value: float) -> float:
    return float(np.round(value, 6))


def _trajectory(system, rng: np.random.Generator, frames: int, stride: int) -> list:
    """Rattled start, then EMT steepest descent; returns labelled frames (SinglePointCalculator)."""
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    free = system.get_tags() != 0
    positions = system.positions.copy()
    positions[free] += rng.normal(0.0, RATTLE_A, size=(int(free.sum()), 3))
    out = []
    for step in range(frames * stride):
        atoms = system.copy()
        atoms.positions = np.round(positions, 8)
        atoms.calc = EMT()
        energy = _round_energy(atoms.get_potential_energy())
        forces = np.round(atoms.get_forces(apply_constraint=False), 8)  # (N, 3)
        if step % stride == 0:
            frame = atoms.copy()
            frame.calc = SinglePointCalculator(frame, energy=energy, forces=forces)
            out.append((step, frame))
        positions = atoms.positions.copy()
        positions[free] += np.clip(STEP_A2_PER_EV * forces[free], -MAX_STEP_A, MAX_STEP_A)
    return out


def _xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=6)


def _add_member(tar: tarfile.TarFile, name: str, data: bytes | None) -> None:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        return
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def build_split_archive(spec: SyntheticSplit, split_index: int, seed: int, out_path: Path) -> int:
    """Generate one split and write its tar atomically; returns the number of frames."""
    from ase.io import write

    frames = []  # (sid, fid, reference, atoms)
    for system_index in range(spec.systems):
        rng = np.random.default_rng([seed, split_index, system_index])
        system, reference = _build_system(rng, spec.metals, spec.adsorbates)
        sid = 100_000 * (split_index + 1) + system_index
        for step, atoms in _trajectory(system, rng, spec.frames_per_system, spec.stride):
            frames.append((sid, step, reference, atoms))
    order = np.random.default_rng([seed, split_index, 1_000_000]).permutation(len(frames))
    frames = [frames[i] for i in order]  # OC20 files mix frames of many systems
    folder = archive_name(spec.split).removesuffix(".tar")
    with atomic_path(out_path) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        _add_member(tar, folder, None)
        for number, start in enumerate(range(0, len(frames), spec.frames_per_file)):
            chunk = frames[start:start + spec.frames_per_file]
            text = io.StringIO()
            write(text, [atoms for *_, atoms in chunk], format="extxyz")
            log = "".join(f"random{sid},frame{fid},{reference:.6f}\n" for sid, fid, reference, _ in chunk)
            _add_member(tar, f"{folder}/{number}.extxyz.xz", _xz(text.getvalue().encode()))
            _add_member(tar, f"{folder}/{number}.txt.xz", _xz(log.encode()))
    return len(frames)


def build_synthetic_s2ef(out_dir: Path, *, options: dict | None = None) -> list[RemoteFile]:
    """Write one tar per split under ``out_dir`` (e.g. a mirror's ``oc20/`` folder) and return
    their specs with the sha256 and size of the bytes just written."""
    out_dir = Path(out_dir)
    seed = {**DEFAULT_OPTIONS, **(options or {})}["seed"]
    remotes = []
    for split_index, spec in enumerate(synthetic_splits(options)):
        path = out_dir / archive_name(spec.split)
        build_split_archive(spec, split_index, seed, path)
        remotes.append(RemoteFile(name=path.name, url=f"generated://{DATASET_NAME}/{path.name}",
                                  mirror_path=f"{MIRROR_FOLDER}/{path.name}", size=path.stat().st_size,
                                  checksum=f"sha256:{sha256_file(path)}", license=LICENSE))
    return remotes


def archive_content_sha256(path: Path) -> str:
    """sha256 over the archive's member names and *decompressed* bytes, in archive order.

    Independent of the xz encoder (the system liblzma), so it pins the generator's output across
    machines that share requirements.lock.
    """
    import hashlib

    digest = hashlib.sha256()
    with tarfile.open(path) as tar:
        for member in tar:
            digest.update(member.name.encode() + b"\0")
            if member.isfile():
                digest.update(lzma.decompress(tar.extractfile(member).read()))
    return digest.hexdigest()


@dataclass(frozen=True)
class SyntheticS2EFDataset:
    """``s2ef-synthetic-emt``: generated (no remote files); ``preprocess`` builds, then converts."""

    name: str = DATASET_NAME
    family: str = "oc20"
    remote_files: tuple = ()
    splits: tuple[str, ...] = tuple(SPLIT_CHEMISTRY)

    def preprocess(self, raw_files: list[Path], out_dir: Path, *, workers: int = 1,
                   options: dict | None = None) -> dict:
        """Build the archives for ``options`` into ``<out>/archives/`` and read them with the real
        S2EF reader into ``<out>/<split>/part-*.parquet`` + card (``synthetic: true``) + rejects."""
        from replibench.families.oc20.datasets.s2ef import preprocess_s2ef_archives
        from replibench.errors import DataError

        if raw_files:
            raise DataError(f"{self.name}: a generated dataset takes no raw files, got {[str(p) for p in raw_files]}")
        out_dir = Path(out_dir)
        remotes = build_synthetic_s2ef(out_dir / "archives", options=options)
        archives = [(split, out_dir / "archives" / remote.name, remote.url)
                    for split, remote in zip(self.splits, remotes)]
        generator = {**DEFAULT_OPTIONS, **(options or {})}
        return preprocess_s2ef_archives(
            archives, out_dir, dataset=self.name, workers=workers, synthetic=True,
            description="SYNTHETIC: ASE-built slabs + adsorbates, EMT energies/forces, OC20 S2EF file layout",
            extra_notes={"generator": generator, "archives": "archives/<file>.tar (the tarballs the reader converted)",
                         "archive_content_sha256": {r.name: archive_content_sha256(p) for (_, p, _), r
                                                    in zip(archives, remotes)}},
            license=LICENSE, citation=SYNTHETIC_CITATION)


SYNTHETIC_CITATION = ("SYNTHETIC data generated by replibench (ASE-built slabs, EMT labels) in the file layout "
                      "of OC20 S2EF (Chanussot et al., ACS Catal. 2021); not OC20 data")
#: registry target: ``"s2ef-synthetic-emt": "replibench.families.oc20.datasets.synthetic:S2EF_SYNTHETIC_EMT"``
S2EF_SYNTHETIC_EMT = SyntheticS2EFDataset()
