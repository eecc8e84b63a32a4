"""Structural validity edge cases, CIF reading, StructureMatcher match/RMSE with hand-checked values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from replibench.families.crystals.metrics.conventions import (
    STRUCTURAL_VALIDITY_MIN_DISTANCE_A,
    STRUCTURAL_VALIDITY_MIN_VOLUME_A3,
    STRUCTURE_MATCHER_TOLERANCES,
    get_convention,
)
from replibench.families.crystals.metrics.matching import (
    best_of_samples,
    match_rate_and_rmse,
    normalised_rms,
    structure_matcher,
)
from replibench.families.crystals.metrics.structures import (
    CifReadError,
    CrystalArrays,
    arrays_from_cif,
    build_structure,
    min_interatomic_distance,
    structure_valid,
)

CDVAE = get_convention("cdvae")


def arrays(numbers, frac, lengths=(10.0, 10.0, 10.0), angles=(90.0, 90.0, 90.0)) -> CrystalArrays:
    return CrystalArrays(tuple(numbers), np.asarray(frac, float), np.asarray(lengths, float), np.asarray(angles, float))


def test_protocol_constants():
    assert STRUCTURE_MATCHER_TOLERANCES == {"stol": 0.5, "ltol": 0.3, "angle_tol": 10.0}
    assert (STRUCTURAL_VALIDITY_MIN_DISTANCE_A, STRUCTURAL_VALIDITY_MIN_VOLUME_A3) == (0.5, 0.1)
    matcher = structure_matcher()
    assert (matcher.stol, matcher.ltol, matcher.angle_tol) == (0.5, 0.3, 10.0)


def test_min_distance_counts_periodic_images():
    # x = 0.01 and 0.99 in a 10 Å cell: 9.8 Å apart inside the cell, 0.2 Å across the boundary.
    structure, _ = build_structure(arrays([6, 6], [[0.01, 0, 0], [0.99, 0, 0]]), convention=CDVAE)
    assert math.isclose(min_interatomic_distance(structure), 0.2, abs_tol=1e-9)
    assert not structure_valid(structure)


def test_distance_threshold_is_inclusive_at_half_an_angstrom():
    at, below = (build_structure(arrays([6, 6], [[0, 0, 0], [d / 10.0, 0, 0]]), convention=CDVAE)[0]
                 for d in (0.5, 0.49))
    assert structure_valid(at) and not structure_valid(below)


def test_volume_threshold_and_single_atom_cells():
    tiny, reason = build_structure(arrays([6], [[0, 0, 0]], lengths=(0.4, 0.5, 0.4)), convention=CDVAE)
    assert tiny is None and reason == "unrealistically_small_lattice"  # 0.08 Å^3
    # The papers' distance matrix ignores an atom's own periodic images: a one-atom cell 0.4 Å long
    # (volume 0.4 Å^3) is structurally valid.
    single, _ = build_structure(arrays([6], [[0, 0, 0]], lengths=(0.4, 1.0, 1.0)), convention=CDVAE)
    assert structure_valid(single)


def test_nan_and_negative_lengths_follow_each_convention():
    nan = arrays([6, 6], [[0, 0, 0], [0.5, 0.5, float("nan")]])
    for name in ("cdvae", "diffcsp", "crysbfn"):
        assert build_structure(nan, convention=get_convention(name)) == (None, "nan_value")
    negative = arrays([11, 17], [[0, 0, 0], [0.5, 0.5, 0.5]], lengths=(-5.0, 5.0, 5.0))
    assert build_structure(negative, convention=CDVAE)[0] is None
    assert build_structure(negative, convention=get_convention("crysbfn"))[0] is None
    assert build_structure(negative, convention=get_convention("diffcsp"))[0] is not None  # DiffCSP's bug


P1_CIF = """data_x
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   4.0
_cell_length_b   4.0
_cell_length_c   4.0
_cell_angle_alpha   90
_cell_angle_beta   90
_cell_angle_gamma   90
loop_
 _symmetry_equiv_pos_site_id
 _symmetry_equiv_pos_as_xyz
  1  'x, y, z'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  Na  Na0  0.0  0.0  0.0  1
  Na  Na1  0.0  0.0  0.0  1
  Cl  Cl2  0.5  0.5  0.5  1
"""


def test_p1_cif_keeps_overlapping_atoms_so_they_are_invalid():
    read = arrays_from_cif(P1_CIF)
    assert read.atomic_numbers == (11, 11, 17)  # pymatgen's CifParser would refuse this CIF
    structure, _ = build_structure(read, convention=CDVAE)
    assert not structure_valid(structure)
    with pytest.raises(CifReadError):
        arrays_from_cif("definitely not a CIF")


def cscl(a: float = 4.0, shift: float = 0.0, species=("Cs", "Cl")) -> Structure:
    return Structure(Lattice.cubic(a), list(species), [[0, 0, 0], [0.5, 0.5, 0.5 + shift]])


def test_structure_matches_itself_and_a_perturbed_copy_not_another_composition():
    assert normalised_rms(prediction=cscl(), truth=cscl())[0] == pytest.approx(0.0, abs=1e-10)
    assert normalised_rms(prediction=cscl(shift=0.02), truth=cscl())[0] is not None
    assert normalised_rms(prediction=cscl(species=("Na", "Cl")), truth=cscl()) == (None, False)
    # The pre-filter agrees with the matcher itself:
    assert structure_matcher().get_rms_dist(cscl(species=("Na", "Cl")), cscl()) is None


def test_rms_is_normalised_by_volume_per_atom_by_hand():
    # Cl moved by δa = 0.08 Å along z. After removing the mean translation both sites are δa/2 off,
    # so the RMS displacement is δa/2 = 0.04 Å; (V/N)^(1/3) = (64/2)^(1/3) Å.
    expected = 0.04 / (64.0 / 2.0) ** (1.0 / 3.0)
    assert normalised_rms(prediction=cscl(shift=0.02), truth=cscl())[0] == pytest.approx(expected, rel=1e-9)
    # Scale invariance: a 10 % larger cell with the same fractional shift has the same normalised RMS.
    assert normalised_rms(prediction=cscl(a=4.4, shift=0.02), truth=cscl())[0] == pytest.approx(expected, rel=1e-9)


def test_match_rate_and_rmse_by_hand():
    result = match_rate_and_rmse(rms_per_truth=[0.1, None, 0.3])
    assert result["match_rate"] == pytest.approx(200.0 / 3.0) and result["rmse"] == pytest.approx(0.2)
    assert match_rate_and_rmse(rms_per_truth=[None, None])["rmse"] is None
    assert best_of_samples(rms_per_sample=[None, 0.3, 0.1]) == 0.1
    assert best_of_samples(rms_per_sample=[None, None]) is None


def test_model_lattice_rows_become_the_papers_parameters():
    from replibench.families.crystals.metrics import arrays_from_lattice

    lattice = Lattice.from_parameters(3.0, 4.0, 5.0, 80.0, 95.0, 110.0)
    arrays = arrays_from_lattice([6, 8], [[0, 0, 0], [0.5, 0.5, 0.5]], lattice.matrix)
    np.testing.assert_allclose(arrays.lengths, [3.0, 4.0, 5.0], atol=1e-12)
    np.testing.assert_allclose(arrays.angles, [80.0, 95.0, 110.0], atol=1e-9)
    assert arrays.frac_coords.shape == (2, 3) and arrays.atomic_numbers == (6, 8)
