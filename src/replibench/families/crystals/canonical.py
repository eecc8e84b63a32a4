"""CDVAE's canonical crystal: parse the CIF, (primitive), Niggli-reduce, rebuild from 6 parameters.

CDVAE ``cdvae/common/data_utils.py::build_crystal`` (inherited unchanged by DiffCSP and CrysBFN):

1. ``Structure.from_str(cif, fmt="cif")``;
2. ``get_primitive_structure()`` if ``primitive`` (off for MP-20, Perov-5, Carbon-24);
3. ``get_reduced_structure()`` (Niggli) if ``niggli`` (on for all three);
4. a new ``Structure`` on ``Lattice.from_parameters(*lattice.parameters)`` with the same species
   and fractional coordinates. The rebuild fixes the Cartesian orientation to pymatgen's
   parameter→matrix convention (a in the xz-plane, c along z), which every model relies on.

One deliberate addition: fractional coordinates are wrapped to [0, 1). CDVAE stores them as the
reduction left them, which is outside [0, 1) when the Niggli cell equals the input cell (pymatgen
then returns a copy without wrapping; Perov-5 CIFs hold coordinates such as -0.39). Wrapping moves
no atom (periodic images) and the models wrap anyway (``frac % 1``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def wrap_fractional(frac_coords: np.ndarray) -> np.ndarray:
    """Fractional coordinates mapped into [0, 1); ``x % 1.0`` alone returns 1.0 for tiny negative x."""
    wrapped = np.mod(np.asarray(frac_coords, dtype=np.float64), 1.0)
    wrapped[wrapped >= 1.0] = 0.0
    return wrapped


def parse_cif(cif: str):  # -> pymatgen Structure
    """``Structure.from_str(cif, fmt="cif")`` as CDVAE calls it, with pymatgen's parser warnings muted."""
    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Structure.from_str(cif, fmt="cif")


def canonical_structure(structure, *, niggli: bool, primitive: bool):  # -> pymatgen Structure
    """Steps 2–4 of CDVAE's ``build_crystal`` applied to an already-parsed structure."""
    from pymatgen.core import Lattice, Structure

    crystal = structure
    if primitive:
        crystal = crystal.get_primitive_structure()
    if niggli:
        crystal = crystal.get_reduced_structure()
    return Structure(
        lattice=Lattice.from_parameters(*crystal.lattice.parameters),
        species=crystal.species,
        coords=crystal.frac_coords,
        coords_are_cartesian=False,
    )


def build_crystal(cif: str, *, niggli: bool, primitive: bool):  # -> pymatgen Structure
    """CDVAE's ``build_crystal(cif, niggli, primitive)``: see the module docstring."""
    return canonical_structure(parse_cif(cif), niggli=niggli, primitive=primitive)


def structure_columns(structure) -> dict[str, Any]:
    """The Parquet columns of one canonical structure (site order kept as CDVAE keeps it).

    Raises ``ValueError`` for a structure the schema cannot hold (no sites, a disordered site).
    """
    if len(structure) == 0:
        raise ValueError("structure has 0 atoms")
    if not structure.is_ordered:
        raise ValueError("structure has partially occupied (disordered) sites; expected one element per site")
    lattice = structure.lattice
    frac = wrap_fractional(structure.frac_coords)  # (N, 3)
    return {
        "num_atoms": len(structure),
        "atomic_numbers": [int(z) for z in structure.atomic_numbers],  # (N,)
        "frac_coords": frac.reshape(-1).tolist(),  # (3N,) row-major
        "lattice": np.asarray(lattice.matrix, dtype=np.float64).reshape(-1).tolist(),  # (9,) rows a, b, c
        "lengths": [float(x) for x in lattice.abc],  # Å
        "angles": [float(x) for x in lattice.angles],  # degrees
        "formula": structure.composition.reduced_formula,
    }
