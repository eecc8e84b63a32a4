"""SMACT compositional validity: hand-checked compositions, papers' table, changed smact defaults."""

from __future__ import annotations

import smact
from pymatgen.core.periodic_table import Element
from smact.screening import pauling_test

from replibench.families.crystals.metrics.assess import comp_valid_for
from replibench.families.crystals.metrics.conventions import get_convention
from replibench.families.crystals.metrics.smact_validity import (
    pauling_test_smact221,
    reduced_composition,
    smact14_element,
    smact_valid,
)
from replibench.families.crystals.metrics.structures import CrystalArrays

Z = {"H": 1, "Ne": 10, "Na": 11, "O": 8, "Cl": 17, "Fe": 26, "Cu": 29, "Zn": 30, "Se": 34, "Zr": 40,
     "Pm": 61, "C": 6, "N": 7, "Mn": 25, "Cr": 24, "Co": 27, "Ir": 77, "Os": 76, "S": 16}


def valid(**counts: int) -> bool:
    elements = sorted(Z[s] for s in counts)
    by_z = {Z[s]: c for s, c in counts.items()}
    return smact_valid(elements, [by_z[z] for z in elements])


def test_charge_neutral_compositions_pass():
    assert valid(Na=1, Cl=1)  # Na+ Cl-
    assert valid(Fe=2, O=3)  # Fe3+ O2-


def test_charge_imbalance_fails():
    # Na ∈ {-1, +1}; 2 × Cl must cancel Na, impossible for an odd Na charge.
    assert not valid(Na=1, Cl=2)


def test_alloy_shortcut_skips_charge_balance():
    assert valid(Cu=1, Zn=3)  # both in smact.metals: valid without any oxidation-state search


def test_single_element_is_valid_even_without_oxidation_states():
    assert valid(C=1) and valid(Ne=1)
    assert not valid(Ne=1, O=1)  # Ne has no states in the SMACT-2014 table: empty product


def test_electronegativity_failure():
    # Na ∈ {-1,+1}, Se ∈ {-2,+1,+2,+4,+6}: the only neutral pair is Na(-1) Se(+1), where the
    # anion Na (0.93) is less electronegative than the cation Se (2.55): Pauling test fails.
    assert smact_valid([11, 34], [1, 1], use_pauling_test=False)
    assert not valid(Na=1, Se=1)


def test_missing_electronegativity_in_cation_anion_pair_counts_as_passing():
    # smact 2.2.1: Pm has no electronegativity; Pm(+3)/O(-2) compares None with a float → TypeError,
    # which the papers catch as "okay". smact 4's pauling_test says False instead.
    assert smact14_element("Pm")[1] is None
    assert pauling_test_smact221([3, -2], [None, 3.44])
    assert not pauling_test([3, -2], [None, 3.44])
    assert valid(Pm=2, O=3)
    assert not pauling_test_smact221([3, 3, -2], [None, 1.0, 3.44])  # same-sign pair with None fails first


def test_papers_table_differs_from_current_smact_defaults():
    assert smact14_element("O")[0] == (-2, -1, 1, 2)
    assert smact14_element("Fe")[0] == (-2, -1, 1, 2, 3, 4, 5, 6)
    assert list(smact.Element("O").oxidation_states) != [-2, -1, 1, 2]  # today's default: ICSD-2024
    assert smact14_element("Zr")[1] == 0.33 and smact.Element("Zr").pauling_eneg == 1.33
    assert smact14_element("Ir")[0][0] == -2 and smact.Element("Ir").oxidation_states_smact14[0] == -3
    assert smact.neutral_ratios([1, -1], stoichs=[(1,), (1,)], threshold=1) == [(1, 1)]  # no (bool, list)


def test_reduced_composition_divides_by_gcd_and_sorts_by_z():
    assert reduced_composition([8, 26, 8, 26, 8, 8, 8, 26, 26, 8]) == ((8, 26), (3, 2))


def test_diffcsp_caps_the_search_and_crysbfn_skips_it_for_csp():
    # 9 elements with 2–10 states each: > 1e7 combinations. CDVAE searches (valid); DiffCSP gives up.
    atoms = [6, 7, 16, 25, 24, 27, 77, 11, 76]
    arrays = CrystalArrays(tuple(atoms), None, None, None)
    states = 1
    for z in sorted(set(atoms)):
        states *= len(smact14_element(Element.from_Z(z).symbol)[0])
    assert states > 10_000_000
    assert comp_valid_for(arrays, get_convention("cdvae"))
    assert not comp_valid_for(arrays, get_convention("diffcsp"))
    sodium_selenide = CrystalArrays((11, 34), None, None, None)
    assert not comp_valid_for(sodium_selenide, get_convention("crysbfn"))
    assert comp_valid_for(sodium_selenide, get_convention("crysbfn"), check=False)
