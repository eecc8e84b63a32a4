"""Protocol constants and the three papers' evaluation conventions (where their code differs).

All three code bases descend from CDVAE ``scripts/compute_metrics.py`` + ``eval_utils.py``
(txie-93/cdvae), DiffCSP (jiaor17/DiffCSP ``scripts/compute_metrics.py``) and CrysBFN
(``scripts/compute_metrics.py`` + ``crysbfn/common/data_utils.py::Crystal``). The fields of
:class:`Convention` are exactly the places where they disagree (research notes section 3.8):

================================  ==============  ===================  ====================
aspect                            cdvae           diffcsp              crysbfn
================================  ==============  ===================  ====================
CSP gate, 1 sample                pred valid      pred and truth valid pred valid, no SMACT
CSP gate, k samples               pred valid      pred valid           pred valid, no SMACT
ground-truth structures           Niggli-reduced  raw test.csv CIFs    raw test.csv CIFs
SMACT search cap                  none            > 1e7 combos: False  > 100 species: False
negative lattice length           invalid         built anyway (bug)   invalid
NaN lengths/angles/coords         (crash)         invalid              (undefined)
StructureMatcher raises           unmatched       unmatched            1 sample: (crash)
================================  ==============  ===================  ====================

Where a code base would crash we count the crystal as invalid/unmatched and report how often it
happened (``matcher_errors``, ``fingerprint_failures``) instead of stopping.

"valid" = SMACT-valid and structurally valid and CrystalNN fingerprint computable, as in the
``Crystal`` class of each code base. CrysBFN also wraps SMACT in a 1,800 s wall-clock timeout
(timeout → invalid); we do not reproduce a machine-dependent timeout: our exact search with charge
pruning (see :mod:`.smact_validity`) finishes in milliseconds, so a composition whose first passing
oxidation-state combination lay more than 1,800 s into CrysBFN's brute force would be valid here and
invalid there. No MP-20-sized composition comes near that.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

ConventionName = Literal["cdvae", "diffcsp", "crysbfn"]

#: ``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)`` in all three code bases (``RecEval``);
#: the other arguments stay at pymatgen's defaults (primitive_cell=True, scale=True,
#: attempt_supercell=False, allow_subset=False, SpeciesComparator).
STRUCTURE_MATCHER_TOLERANCES: dict[str, float] = {"stol": 0.5, "ltol": 0.3, "angle_tol": 10.0}

#: ``structure_validity(crystal, cutoff=0.5)``: smallest interatomic distance (Å, periodic images
#: included via pymatgen's minimum-image distance matrix) must be >= this.
STRUCTURAL_VALIDITY_MIN_DISTANCE_A = 0.5
#: ``crystal.volume < 0.1`` → invalid (Å^3).
STRUCTURAL_VALIDITY_MIN_VOLUME_A3 = 0.1

#: ``COV_Cutoffs`` in compute_metrics.py, keyed by our dataset names: (structure fp, composition fp).
COV_CUTOFFS: dict[str, dict[str, float]] = {
    "mp-20": {"struc": 0.4, "comp": 10.0},
    "carbon-24": {"struc": 0.2, "comp": 4.0},
    "perov-5": {"struc": 0.2, "comp": 4.0},
}

#: ``GenEval(n_samples=1000)``: property EMDs use this many valid generated crystals, drawn without
#: replacement (the papers' draw is unseeded; ours takes an explicit seed).
EMD_SAMPLE_SIZE = 1000

#: DiffCSP ``smact_validity``: if the oxidation-state product has more combinations, return False.
DIFFCSP_SMACT_MAX_COMBINATIONS = 10_000_000
#: CrysBFN ``Crystal(species_tolerence=100)``: more distinct species than this → comp-invalid.
CRYSBFN_MAX_SPECIES = 100


@dataclass(frozen=True)
class Convention:
    """How one paper's evaluation code gates and builds crystals (see the module table)."""

    name: ConventionName
    csp_check_composition: bool
    csp_k1_requires_truth_valid: bool
    csp_k_requires_truth_valid: bool
    truth_niggli: bool
    smact_max_combinations: int | None
    smact_max_species: int | None
    negative_length_invalid: bool
    reported_gen_metrics: tuple[str, ...]

    def as_dict(self) -> dict:
        return asdict(self)


_GEN_COMMON = ("struct_validity", "comp_validity", "cov_recall", "cov_precision", "wdist_density",
               "wdist_num_elems", "wdist_prop")

CONVENTIONS: dict[str, Convention] = {
    "cdvae": Convention(
        name="cdvae", csp_check_composition=True, csp_k1_requires_truth_valid=False,
        csp_k_requires_truth_valid=False, truth_niggli=True, smact_max_combinations=None,
        smact_max_species=None, negative_length_invalid=True,
        reported_gen_metrics=_GEN_COMMON + ("comp_div", "struct_div"),
    ),
    "diffcsp": Convention(
        name="diffcsp", csp_check_composition=True, csp_k1_requires_truth_valid=True,
        csp_k_requires_truth_valid=False, truth_niggli=False,
        smact_max_combinations=DIFFCSP_SMACT_MAX_COMBINATIONS, smact_max_species=None,
        negative_length_invalid=False, reported_gen_metrics=_GEN_COMMON,
    ),
    "crysbfn": Convention(
        name="crysbfn", csp_check_composition=False, csp_k1_requires_truth_valid=False,
        csp_k_requires_truth_valid=False, truth_niggli=False, smact_max_combinations=None,
        smact_max_species=CRYSBFN_MAX_SPECIES, negative_length_invalid=True,
        reported_gen_metrics=_GEN_COMMON + ("comp_div", "struct_div", "cov_struc_recall",
                                            "cov_struc_precision", "cov_comp_recall",
                                            "cov_comp_precision", "wdist_volume"),
    ),
}


def get_convention(name: str) -> Convention:
    """The :class:`Convention` called ``name``; ``ValueError`` names the allowed values."""
    if name not in CONVENTIONS:
        raise ValueError(f"unknown evaluation convention {name!r}; expected one of {sorted(CONVENTIONS)}")
    return CONVENTIONS[name]


def cov_cutoffs(dataset: str) -> dict[str, float]:
    """COV distance cutoffs of ``dataset`` (``mp-20``, ``perov-5``, ``carbon-24``)."""
    if dataset not in COV_CUTOFFS:
        raise ValueError(f"no COV cutoffs for dataset {dataset!r}; expected one of {sorted(COV_CUTOFFS)}")
    return COV_CUTOFFS[dataset]
