"""Crystals as the papers' ``Crystal`` class sees them: construction and structural validity.

Every crystal — generated, predicted or ground truth — is reduced to arrays (atomic numbers,
fractional coordinates, lattice lengths in Å, angles in degrees) and rebuilt with
``Lattice.from_parameters``, as ``Crystal.get_structure`` does. :func:`arrays_from_cif` reads a CIF
into those arrays: P1 CIFs (what pymatgen's ``CifWriter`` writes, and what models emit) are read
atom by atom, so overlapping atoms survive and make the crystal structurally invalid, exactly as the
same arrays would in the papers' code (pymatgen's ``CifParser`` would merge or refuse them);
symmetrised CIFs go through pymatgen. Ground-truth CIFs are read by :func:`truth_arrays_from_cif`
instead: through pymatgen's parser, as DiffCSP's ``get_gt_crys_ori`` does (``compute_metrics.py``),
which wraps coordinates into [0, 1), snaps near-special ones (0.6666 -> 2/3) and reorders sites —
and StructureMatcher's RMS on borderline pairs depends on that.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from replibench.families.crystals.metrics.conventions import (
    STRUCTURAL_VALIDITY_MIN_DISTANCE_A,
    STRUCTURAL_VALIDITY_MIN_VOLUME_A3,
    Convention,
)


@dataclass(frozen=True)
class CrystalArrays:
    """One crystal as arrays: ``atomic_numbers`` (N,), ``frac_coords`` (N, 3), ``lengths`` (3,) Å,
    ``angles`` (3,) degrees."""

    atomic_numbers: tuple[int, ...]
    frac_coords: np.ndarray
    lengths: np.ndarray
    angles: np.ndarray


class CifReadError(ValueError):
    """A CIF that yields no crystal (the message says why)."""


_P1_OPS = {"x,y,z", "+x,+y,+z"}


def _cif_number(text: str) -> float:
    """CIF numeric value: strip a standard uncertainty such as ``1.234(5)``."""
    return float(text.split("(")[0])


def arrays_from_cif(cif: str, *, niggli: bool = False) -> CrystalArrays:
    """Arrays of the crystal in ``cif``; with ``niggli``, CDVAE's ``build_crystal`` first.

    Raises :class:`CifReadError` when the CIF cannot be read (the papers' code would never have
    had such a crystal; :mod:`.evaluate` counts it as unconstructable).
    """
    if niggli:
        from replibench.families.crystals.canonical import build_crystal

        try:
            structure = build_crystal(cif, niggli=True, primitive=False)
        except Exception as error:
            raise CifReadError(f"{type(error).__name__}: {error}") from error
        return arrays_from_structure(structure)
    try:
        arrays = _read_p1_cif(cif)
    except CifReadError:
        raise
    except Exception as error:
        raise CifReadError(f"{type(error).__name__}: {error}") from error
    if arrays is not None:
        return arrays
    from replibench.families.crystals.canonical import parse_cif

    try:
        return arrays_from_structure(parse_cif(cif))
    except Exception as error:
        raise CifReadError(f"{type(error).__name__}: {error}") from error


def truth_arrays_from_cif(cif: str, *, niggli: bool = False) -> CrystalArrays:
    """Arrays of a ground-truth crystal: ``Structure.from_str(cif, fmt="cif")`` -> lattice lengths and
    angles + fractional coordinates (DiffCSP ``get_gt_crys_ori``; CDVAE's code given raw CIFs parses
    them the same way); with ``niggli``, CDVAE's ``build_crystal``. Not for predictions: pymatgen's
    parser merges overlapping atoms that must survive to be judged invalid (:func:`arrays_from_cif`).

    On real Perov-5 test rows this moves the RMS of borderline pairs (e.g. material 6194: 0.3215 read
    atom by atom, 0.4664 through the parser, for the same prediction), so a match count computed
    with atom-by-atom truth differs from DiffCSP's own script.
    """
    if niggli:
        return arrays_from_cif(cif, niggli=True)
    from replibench.families.crystals.canonical import parse_cif

    try:
        return arrays_from_structure(parse_cif(cif))
    except CifReadError:
        raise
    except Exception as error:
        raise CifReadError(f"{type(error).__name__}: {error}") from error


def _read_p1_cif(cif: str) -> CrystalArrays | None:
    """Atom-by-atom reading of a P1 CIF; ``None`` if the CIF is not P1 (pymatgen handles it)."""
    from pymatgen.core.periodic_table import Element
    from pymatgen.io.cif import CifFile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blocks = list(CifFile.from_str(cif).data.values())
    if len(blocks) != 1:
        raise CifReadError(f"expected one data block, found {len(blocks)}")
    data = blocks[0].data
    ops = data.get("_symmetry_equiv_pos_as_xyz") or data.get("_space_group_symop_operation_xyz")
    if ops is None or isinstance(ops, str):
        ops = [ops] if ops else []
    if [op.replace(" ", "").lower() for op in ops] not in ([], ["x,y,z"], ["+x,+y,+z"]) or not ops:
        return None
    lengths = np.array([_cif_number(data[f"_cell_length_{k}"]) for k in "abc"], dtype=np.float64)
    angles = np.array([_cif_number(data[f"_cell_angle_{k}"]) for k in ("alpha", "beta", "gamma")])
    symbols = data.get("_atom_site_type_symbol")
    xs, ys, zs = (data.get(f"_atom_site_fract_{k}") for k in "xyz")
    if symbols is None or xs is None or ys is None or zs is None:
        raise CifReadError("no _atom_site_type_symbol / _atom_site_fract_x,y,z loop")
    if isinstance(symbols, str):
        symbols, xs, ys, zs = [symbols], [xs], [ys], [zs]
    occupancies = data.get("_atom_site_occupancy")
    if occupancies is not None:
        occupancies = [occupancies] if isinstance(occupancies, str) else occupancies
        if any(abs(_cif_number(o) - 1.0) > 1e-6 for o in occupancies):
            raise CifReadError("partially occupied sites; expected one element per site")
    numbers = []
    for symbol in symbols:
        stripped = "".join(ch for ch in symbol if ch.isalpha())
        numbers.append(Element(stripped).Z)
    frac = np.array([[_cif_number(x), _cif_number(y), _cif_number(z)] for x, y, z in zip(xs, ys, zs)])
    if len(numbers) == 0:
        raise CifReadError("CIF has 0 atoms")
    return CrystalArrays(tuple(numbers), frac.reshape(-1, 3), lengths, angles)


def arrays_from_lattice(atomic_numbers, frac_coords, lattice) -> CrystalArrays:
    """Arrays from a model's output: Z (N,), fractional coordinates (N, 3), lattice rows a, b, c (3, 3) Å.

    Lengths are the row norms and angles the angles between rows (DiffCSP's
    ``lattices_to_params_shape``, cosines clipped to [-1, 1]); the papers then rebuild the lattice
    from these six parameters, which fixes its orientation.
    """
    matrix = np.asarray(lattice, dtype=np.float64).reshape(3, 3)
    lengths = np.linalg.norm(matrix, axis=1)  # (3,) |a|, |b|, |c|
    angles = np.zeros(3)
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        cosine = np.dot(matrix[j], matrix[k]) / (lengths[j] * lengths[k])
        angles[i] = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))  # alpha = angle(b, c), …
    return CrystalArrays(tuple(int(z) for z in atomic_numbers),
                         np.asarray(frac_coords, dtype=np.float64).reshape(-1, 3), lengths, angles)


def arrays_from_structure(structure) -> CrystalArrays:
    """Arrays of a pymatgen ``Structure`` (lattice parameters, fractional coordinates, Z)."""
    if len(structure) == 0:
        raise CifReadError("structure has 0 atoms")
    if not structure.is_ordered:
        raise CifReadError("partially occupied sites; expected one element per site")
    return CrystalArrays(
        tuple(int(z) for z in structure.atomic_numbers),
        np.asarray(structure.frac_coords, dtype=np.float64),
        np.asarray(structure.lattice.abc, dtype=np.float64),
        np.asarray(structure.lattice.angles, dtype=np.float64),
    )


def build_structure(arrays: CrystalArrays, *, convention: Convention):  # -> (Structure | None, reason)
    """``Crystal.get_structure`` of the convention: the Structure, or ``None`` and the reason.

    All: construction exception → invalid; volume < 0.1 Å^3 → invalid. cdvae/crysbfn: a negative
    length → invalid; diffcsp: built anyway (its NaN check replaces that verdict). NaNs → invalid
    for all (DiffCSP's explicit guard; CDVAE/CrysBFN have none and would crash or misbehave).
    """
    from pymatgen.core import Lattice, Structure

    values = np.concatenate([arrays.lengths, arrays.angles, np.ravel(arrays.frac_coords)])
    if not np.all(np.isfinite(values)):
        return None, "nan_value"
    if convention.negative_length_invalid and float(np.min(arrays.lengths)) < 0:
        return None, "non_positive_lattice"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure(
                lattice=Lattice.from_parameters(*arrays.lengths.tolist(), *arrays.angles.tolist()),
                species=list(arrays.atomic_numbers),
                coords=np.asarray(arrays.frac_coords, dtype=np.float64),
                coords_are_cartesian=False,
            )
            volume = structure.volume
    except Exception as error:
        return None, f"construction_raises_exception: {type(error).__name__}"
    if not math.isfinite(volume) or volume < STRUCTURAL_VALIDITY_MIN_VOLUME_A3:
        return None, "unrealistically_small_lattice"
    return structure, ""


def min_interatomic_distance(structure) -> float:
    """Smallest distance (Å) between two different sites, periodic images included (minimum image).

    A one-atom cell has no pair and returns ``inf`` (valid, as in the papers' padded diagonal).
    """
    if len(structure) < 2:
        return math.inf
    distances = np.array(structure.distance_matrix, dtype=np.float64)  # (N, N) Å
    np.fill_diagonal(distances, np.inf)
    return float(distances.min())


def structure_valid(structure) -> bool:
    """``structure_validity``: min distance >= 0.5 Å and volume >= 0.1 Å^3."""
    if structure is None:
        return False
    return (min_interatomic_distance(structure) >= STRUCTURAL_VALIDITY_MIN_DISTANCE_A
            and structure.volume >= STRUCTURAL_VALIDITY_MIN_VOLUME_A3)
