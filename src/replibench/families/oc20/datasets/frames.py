"""One OC20 S2EF frame: the Parquet schema, ASE ``Atoms`` → row, and the raw-file parsers.

Raw S2EF files come in pairs (fairchem ``preprocess_ef.py`` reads them the same way):

* ``N.extxyz.xz``: extended XYZ frames with ``Lattice``, ``pbc="T T T"``, total DFT ``energy`` and
  per-atom ``species pos move_mask tags forces`` (``move_mask`` F = fixed: ASE turns it into a
  ``FixAtoms`` constraint);
* ``N.txt.xz``: line *i* describes frame *i* as ``random<sid>,frame<fid>,<reference energy>``.

A row keeps both energies: ``energy`` (total, eV) and ``energy_ref = energy - reference`` (the
adsorption energy every released OC20 model is trained and scored on). Forces are read with
``apply_constraint=False`` (fixed atoms keep their DFT forces; they are masked at evaluation).
Frames are parsed one at a time with ASE's extxyz reader, so a bad frame becomes one reject.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

import numpy as np

#: ``random<sid>,frame<fid>,<reference energy>`` (reference energy optional only for test files).
TXT_LINE = re.compile(r"^random(?P<sid>\d+),frame(?P<fid>\d+)(?:,(?P<ref>[^,]+))?$")
#: OC20 tags: 0 sub-surface slab, 1 surface slab, 2 adsorbate.
VALID_TAGS = (0, 1, 2)


def s2ef_schema():  # -> pa.Schema
    """Explicit schema of every S2EF Parquet shard (one row per frame)."""
    import pyarrow as pa

    return pa.schema([
        pa.field("sid", pa.int64(), nullable=False),  # system id (int after "random")
        pa.field("fid", pa.int64(), nullable=False),  # frame id in the relaxation (int after "frame")
        pa.field("natoms", pa.int32(), nullable=False),
        pa.field("atomic_numbers", pa.list_(pa.int8()), nullable=False),  # (N,)
        pa.field("pos", pa.list_(pa.float64()), nullable=False),  # (3N,) Å, row-major x y z per atom
        pa.field("cell", pa.list_(pa.float64(), 9), nullable=False),  # (9,) Å, rows a, b, c
        pa.field("tags", pa.list_(pa.int8()), nullable=False),  # (N,) 0/1/2
        pa.field("fixed", pa.list_(pa.bool_()), nullable=False),  # (N,) True = held fixed in DFT
        pa.field("energy", pa.float64(), nullable=False),  # total DFT energy, eV
        pa.field("energy_ref", pa.float64(), nullable=True),  # energy - reference (adsorption), eV
        pa.field("forces", pa.list_(pa.float64()), nullable=False),  # (3N,) eV/Å, constraints not applied
    ])


@dataclass(frozen=True)
class TxtLine:
    sid: int
    fid: int
    reference_energy: float | None


def parse_txt_line(line: str) -> TxtLine:
    """Parse ``random<sid>,frame<fid>,<ref>``; raise ``ValueError`` naming what is wrong."""
    match = TXT_LINE.match(line.strip())
    if match is None:
        raise ValueError(f"expected 'random<sid>,frame<fid>,<reference energy>', found {line.strip()[:80]!r}")
    reference = None
    if match["ref"] is not None:
        reference = float(match["ref"])
        if not math.isfinite(reference):
            raise ValueError(f"reference energy {match['ref']!r} is not finite")
    return TxtLine(int(match["sid"]), int(match["fid"]), reference)


def split_extxyz_frames(text: str):
    """Yield ``(frame_number, frame_text)`` (1-based) of an extended XYZ file, without parsing.

    Raises ``ValueError`` at a frame whose count line is not an integer or that is truncated,
    since the file cannot be resynchronised after it.
    """
    lines = text.splitlines(keepends=True)
    position, frame = 0, 0
    while position < len(lines):
        if not lines[position].strip():
            position += 1
            continue
        frame += 1
        try:
            count = int(lines[position].strip())
        except ValueError:
            raise ValueError(f"frame {frame} (line {position + 1}): atom count line "
                             f"{lines[position].strip()[:40]!r} is not an integer") from None
        end = position + 2 + count
        if count < 0 or end > len(lines):
            raise ValueError(f"frame {frame} (line {position + 1}): needs {count} atom lines, file ends first")
        yield frame, "".join(lines[position:end])
        position = end


def parse_extxyz_frame(frame_text: str):  # -> ase.Atoms
    """Parse one extended XYZ frame with ASE."""
    import warnings

    from ase.io import read

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ASE warns about unhashable info keys; irrelevant here
        return read(io.StringIO(frame_text), format="extxyz", index=0)


def atoms_to_row(atoms, *, sid: int, fid: int, reference_energy: float | None, default_tag: int | None = None
                 ) -> dict:
    """Validate an ASE ``Atoms`` holding a DFT single point and return one S2EF row.

    ``default_tag``: tag given to every atom of a file without tags (``None``: such a frame is
    rejected, as every OC20 extxyz frame carries tags).

    Raises ``ValueError`` with the reason when the frame cannot be used (no energy or forces,
    non-finite values, unknown tags, a constraint other than ``FixAtoms``, a singular periodic
    cell, atomic numbers outside 1..118).
    """
    from ase.constraints import FixAtoms

    natoms = len(atoms)
    if natoms == 0:
        raise ValueError("frame has no atoms")
    numbers = atoms.get_atomic_numbers()
    if numbers.min() < 1 or numbers.max() > 118:
        raise ValueError(f"atomic numbers outside 1..118: {sorted(set(numbers.tolist()))}")
    if atoms.calc is None:
        raise ValueError("frame has no energy/forces (no calculator results)")
    results = atoms.calc.results
    if "energy" not in results:
        raise ValueError("frame has no energy")
    if "forces" not in results:
        raise ValueError("frame has no forces")
    energy = float(atoms.get_potential_energy(apply_constraint=False))
    forces = np.asarray(atoms.get_forces(apply_constraint=False), dtype=np.float64)  # (N, 3)
    pos = np.asarray(atoms.get_positions(), dtype=np.float64)  # (N, 3)
    cell = np.asarray(atoms.get_cell().array, dtype=np.float64)  # (3, 3)
    for name, values in (("energy", energy), ("positions", pos), ("forces", forces), ("cell", cell)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"non-finite {name}")
    if forces.shape != (natoms, 3):
        raise ValueError(f"forces have shape {forces.shape}, expected ({natoms}, 3)")
    if np.any(atoms.pbc) and abs(np.linalg.det(cell)) < 1e-6:
        raise ValueError(f"periodic cell is singular: {cell.tolist()}")
    if "tags" in atoms.arrays:
        tags = np.asarray(atoms.get_tags(), dtype=np.int64)
    elif default_tag is not None:
        tags = np.full(natoms, default_tag, dtype=np.int64)
    else:
        raise ValueError("frame has no tags")
    if not np.isin(tags, VALID_TAGS).all():
        raise ValueError(f"tags outside {VALID_TAGS}: {sorted(set(tags.tolist()) - set(VALID_TAGS))}")
    fixed = np.zeros(natoms, dtype=bool)
    for constraint in atoms.constraints:
        if not isinstance(constraint, FixAtoms):
            raise ValueError(f"unsupported constraint {type(constraint).__name__} (only FixAtoms)")
        fixed[constraint.get_indices()] = True
    energy_ref = None if reference_energy is None else energy - reference_energy
    return {
        "sid": int(sid), "fid": int(fid), "natoms": natoms,
        "atomic_numbers": numbers.astype(np.int8), "pos": pos.reshape(-1), "cell": cell.reshape(-1),
        "tags": tags.astype(np.int8), "fixed": fixed, "energy": energy, "energy_ref": energy_ref,
        "forces": forces.reshape(-1),
    }


def rows_to_table(rows: list[dict]):  # -> pa.Table
    """Rows from :func:`atoms_to_row` → a table with :func:`s2ef_schema` (vectorised per column)."""
    import pyarrow as pa

    schema = s2ef_schema()
    if not rows:
        return schema.empty_table()

    def ragged(name: str, dtype, value_type):
        values = np.concatenate([np.asarray(r[name], dtype=dtype) for r in rows])
        lengths = np.array([len(r[name]) for r in rows], dtype=np.int32)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=value_type))

    cells = np.stack([r["cell"] for r in rows]).reshape(-1)
    columns = {
        "sid": pa.array([r["sid"] for r in rows], pa.int64()),
        "fid": pa.array([r["fid"] for r in rows], pa.int64()),
        "natoms": pa.array([r["natoms"] for r in rows], pa.int32()),
        "atomic_numbers": ragged("atomic_numbers", np.int8, pa.int8()),
        "pos": ragged("pos", np.float64, pa.float64()),
        "cell": pa.FixedSizeListArray.from_arrays(pa.array(cells, pa.float64()), 9),
        "tags": ragged("tags", np.int8, pa.int8()),
        "fixed": ragged("fixed", bool, pa.bool_()),
        "energy": pa.array([r["energy"] for r in rows], pa.float64()),
        "energy_ref": pa.array([r["energy_ref"] for r in rows], pa.float64()),
        "forces": ragged("forces", np.float64, pa.float64()),
    }
    return pa.Table.from_pydict(columns, schema=schema)


def read_ase_frames(path, *, sid: int, reference_energy: float | None = None, default_tag: int | None = None
                    ) -> list[dict]:
    """Rows of every frame of an ASE-readable file (``.traj``, ASE JSON, …) through the same
    validation as the S2EF reader; ``fid`` is the frame index. For the real DFT fixtures."""
    from ase.io import read

    frames = read(str(path), index=":")
    return [atoms_to_row(atoms, sid=sid, fid=index, reference_energy=reference_energy, default_tag=default_tag)
            for index, atoms in enumerate(frames)]
