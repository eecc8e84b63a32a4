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

Determinism: every random choice comes from ``numpy.random.default_rng([seed, split, system])``;
positions, forces and energies are rounded to what the extxyz file stores before they feed the
next step, and tar headers are fixed (mtime 0, uid/gid 0), so a build is byte-identical for the
same package versions (pinned in :data:`SMOKE_CHECKSUMS`, checked by a test).
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
from replibench.datasets.oc20_s2ef import S2EFDataset
from replibench.datasets.oc20_sources import MIRROR_FOLDER

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


#: smoke sizes: 768 train frames in 3 files, 64 frames per validation split
SMOKE_SPLITS = (
    SyntheticSplit("train", TRAIN_METALS, TRAIN_ADSORBATES, systems=96, frames_per_system=8, frames_per_file=256),
    SyntheticSplit("val_id", TRAIN_METALS, TRAIN_ADSORBATES, systems=16, frames_per_system=4, frames_per_file=64),
    SyntheticSplit("val_ood_ads", TRAIN_METALS, OOD_ADSORBATES, systems=16, frames_per_system=4, frames_per_file=64),
    SyntheticSplit("val_ood_cat", OOD_METALS, TRAIN_ADSORBATES, systems=16, frames_per_system=4, frames_per_file=64),
    SyntheticSplit("val_ood_both", OOD_METALS, OOD_ADSORBATES, systems=16, frames_per_system=4, frames_per_file=64),
)
SMOKE_SEED = 20201
#: sha256 and size of the smoke archives as built by :func:`build_synthetic_s2ef` (see test).
SMOKE_CHECKSUMS: dict[str, tuple[str, int]] = {
    "train": ("a162eadd568ff399a72244e2623bd50778c6de6474b96866173904106d97a5d5", 296960),
    "val_id": ("f9d0890234623c089499f3a14edf469dca7f1b1e919bdebc069a2576bea3a12d", 30720),
    "val_ood_ads": ("abb37bce815c3069bbd1196f349d968a2fb04329e2f135802a6c036548f89585", 30720),
    "val_ood_cat": ("15e2bb0748c0c643455a53f32a8a3d1e41d566a7438fe266a533edc330addbc4", 30720),
    "val_ood_both": ("2050610675c0a1adb3560ef23813c295bcc8fc4904d7489639ed6cd0730cc467", 30720),
}


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


def build_synthetic_s2ef(out_dir: Path, *, seed: int = SMOKE_SEED, splits=SMOKE_SPLITS) -> list[RemoteFile]:
    """Write one tar per split under ``out_dir`` (a mirror's ``oc20/`` folder) and return their
    specs with the sha256 and size of the bytes just written."""
    out_dir = Path(out_dir)
    remotes = []
    for split_index, spec in enumerate(splits):
        path = out_dir / archive_name(spec.split)
        build_split_archive(spec, split_index, seed, path)
        remotes.append(_remote(spec.split, sha256_file(path), path.stat().st_size))
    return remotes


def _remote(split: str, sha256: str, size: int | None) -> RemoteFile:
    name = archive_name(split)
    return RemoteFile(name=name, url=f"synthetic://{DATASET_NAME}/{name}", mirror_path=f"{MIRROR_FOLDER}/{name}",
                      size=size, checksum=f"sha256:{sha256}", license=LICENSE)


def smoke_dataset() -> S2EFDataset:
    """The ``s2ef-synthetic-emt`` dataset object with the pinned smoke checksums."""
    files = []
    for spec in SMOKE_SPLITS:
        sha256, size = SMOKE_CHECKSUMS[spec.split]
        files.append((spec.split, _remote(spec.split, sha256, size)))
    return S2EFDataset(DATASET_NAME, tuple(files), synthetic=True,
                       description="SYNTHETIC: ASE-built slabs + adsorbates, EMT energies/forces, OC20 S2EF file layout")


#: registry target: ``"s2ef-synthetic-emt": "replibench.datasets.oc20_synthetic:S2EF_SYNTHETIC_EMT"``
S2EF_SYNTHETIC_EMT = smoke_dataset()
