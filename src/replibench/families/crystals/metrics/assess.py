"""Per-crystal work (run in worker processes): build, gate, fingerprint, match.

Inputs are :class:`CrystalArrays` or CIF text; a CIF that cannot be read is a crystal that could
not be constructed (structurally and compositionally invalid, no fingerprints, never matched).
Functions here are pure and module-level, so :func:`replibench.parallel.ordered_map` can run them
in any number of processes with the serial result.

Work is ordered so that expensive steps run only where they can change a number (exact):
CSP checks the cheap gates, then the composition pre-filter and StructureMatcher, and computes the
CrystalNN fingerprint (part of "valid" in all three papers) only for predictions that matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

from replibench.families.crystals.metrics.conventions import Convention, get_convention
from replibench.families.crystals.metrics.fingerprints import composition_fingerprint, structure_fingerprint
from replibench.families.crystals.metrics.matching import (
    MATCH_TIME_LIMIT_S,
    absurd_cell,
    best_of_samples,
    bounded_rms,
    reset_matcher_cache,
)
from replibench.families.crystals.metrics.smact_validity import composition_valid
from replibench.families.crystals.metrics.structures import (
    CifReadError,
    CrystalArrays,
    arrays_from_cif,
    build_structure,
    truth_arrays_from_cif,
    structure_valid,
)

CrystalInput = Union[CrystalArrays, str]


def to_arrays(item: CrystalInput, *, niggli: bool, truth: bool = False) -> tuple[CrystalArrays | None, str]:
    """(arrays, "") or (None, reason) for a CIF that cannot be read; arrays pass through. ``truth``:
    a ground-truth CIF, read through pymatgen's parser as the papers' scripts do (predictions are read
    atom by atom, so that overlapping atoms survive to be judged invalid)."""
    if isinstance(item, CrystalArrays):
        return item, ""
    try:
        read = truth_arrays_from_cif if truth else arrays_from_cif
        return read(item, niggli=niggli), ""
    except CifReadError as error:
        return None, f"cif_unreadable: {error}"[:300]


def comp_valid_for(arrays: CrystalArrays, convention: Convention, *, check: bool = True) -> bool:
    """Compositional validity under ``convention`` (CrysBFN's species limit; DiffCSP's search cap)."""
    if convention.smact_max_species is not None and len(set(arrays.atomic_numbers)) > convention.smact_max_species:
        return False
    if not check:
        return True
    return composition_valid(arrays.atomic_numbers, max_combinations=convention.smact_max_combinations)


@dataclass
class CrystalRecord:
    """What the papers' ``Crystal`` holds for one crystal, plus the properties the EMDs use."""

    constructed: bool
    invalid_reason: str
    comp_valid: bool
    struct_valid: bool
    fp_ok: bool
    struct_fp: np.ndarray | None = None
    comp_fp: np.ndarray | None = None
    density: float | None = None  # g/cm^3
    volume: float | None = None  # Å^3
    num_elems: int | None = None
    structure_dict: dict | None = field(default=None, repr=False)

    @property
    def valid(self) -> bool:
        return self.comp_valid and self.struct_valid and self.fp_ok


def assess_crystal(job: tuple[CrystalInput, str, bool, bool]) -> CrystalRecord:
    """Worker: ``(crystal, convention, is_truth, keep_structure)`` → :class:`CrystalRecord` (gen task).

    Truth CIFs are Niggli-reduced first under the cdvae convention (its ground truth is the
    preprocessed test set). ``keep_structure`` returns the structure as a dict (property model).
    """
    item, convention_name, is_truth, keep_structure = job
    convention = get_convention(convention_name)
    arrays, reason = to_arrays(item, niggli=is_truth and convention.truth_niggli, truth=is_truth)
    if arrays is None:
        return CrystalRecord(False, reason, False, False, False)
    structure, reason = build_structure(arrays, convention=convention)
    comp_ok = comp_valid_for(arrays, convention)
    if structure is None:
        return CrystalRecord(False, reason, comp_ok, False, False)
    absurd = absurd_cell(structure)
    if absurd is not None:  # its fingerprint's neighbour search would not finish: refused, invalid
        return CrystalRecord(False, absurd, comp_ok, False, False)
    struct_fp = structure_fingerprint(structure)
    comp_fp = composition_fingerprint(arrays.atomic_numbers) if struct_fp is not None else None
    return CrystalRecord(
        constructed=True, invalid_reason="", comp_valid=comp_ok, struct_valid=structure_valid(structure),
        fp_ok=struct_fp is not None, struct_fp=struct_fp, comp_fp=comp_fp,
        density=float(structure.density), volume=float(structure.volume),
        num_elems=len(set(arrays.atomic_numbers)),
        structure_dict=structure.as_dict() if keep_structure else None,
    )


@dataclass
class CspResult:
    """One test crystal under one convention: RMS for the 1-sample and k-sample gates."""

    rms_k1: float | None
    rms_best: float | None
    num_samples: int
    constructed: int
    gated_out: int  # samples failing the cheap gates (construction, structure, composition)
    fingerprint_failures: int  # matched samples whose CrystalNN fingerprint raised
    matcher_errors: int
    truth_valid: bool | None  # computed only when the diffcsp 1-sample gate needs it
    truth_error: str = ""  # non-empty: the ground truth could not be built (a data error)
    rms_per_sample: list[float | None] = field(default_factory=list)  # sample gates applied, truth gate not
    matcher_timeouts: int = 0  # matches killed after the time limit (unmatched)
    absurd_cells: int = 0  # samples refused before matching: a cell longer than MAX_CELL_LENGTH_A

    def rms_best_of_first(self, k: int, convention: Convention) -> float | None:
        """The RMS of this test crystal when only its first ``k`` samples count (k=1: the 1-sample
        gate, else the k-sample gate of ``convention``); samples are independent draws, so the first
        k of K samples are a k-sample run."""
        if k == 1:
            return self.rms_k1
        best = best_of_samples(rms_per_sample=self.rms_per_sample[:k])
        if best is not None and convention.csp_k_requires_truth_valid and not self.truth_valid:
            return None
        return best


def _truth_valid(truth_arrays: CrystalArrays, truth_structure, convention: Convention) -> bool:
    return (comp_valid_for(truth_arrays, convention) and structure_valid(truth_structure)
            and structure_fingerprint(truth_structure) is not None)


def assess_csp(job: tuple) -> CspResult:
    """Worker: ``(truth, samples, convention[, match_time_limit_s])`` → :class:`CspResult`.

    A truth crystal that cannot be built, or whose cell is absurd, sets ``truth_error`` (a data
    error the caller raises). Each match is bounded by ``match_time_limit_s`` seconds
    (:data:`MATCH_TIME_LIMIT_S` by default).
    """
    truth_item, samples, convention_name = job[:3]
    time_limit_s = job[3] if len(job) > 3 else MATCH_TIME_LIMIT_S
    convention = get_convention(convention_name)
    reset_matcher_cache()  # results must not depend on earlier jobs in this process
    truth_arrays, reason = to_arrays(truth_item, niggli=convention.truth_niggli, truth=True)
    truth_structure = None
    if truth_arrays is not None:
        truth_structure, reason = build_structure(truth_arrays, convention=convention)
    if truth_structure is not None and absurd_cell(truth_structure):
        truth_structure, reason = None, absurd_cell(truth_structure)
    if truth_structure is None:
        return CspResult(None, None, len(samples), 0, 0, 0, 0, None, truth_error=reason or "unbuildable")
    truth_valid: bool | None = None
    per_sample: list[float | None] = []
    constructed = gated = fp_failures = errors = timeouts = absurd = 0
    to_match: list[tuple[int, object]] = []  # (position, structure) of samples that reach the matcher
    for position, sample in enumerate(samples):
        arrays, _ = to_arrays(sample, niggli=False)
        structure = None if arrays is None else build_structure(arrays, convention=convention)[0]
        if structure is None:
            per_sample.append(None)
            gated += 1
            continue
        constructed += 1
        if not structure_valid(structure) or not comp_valid_for(arrays, convention,
                                                                check=convention.csp_check_composition):
            per_sample.append(None)
            gated += 1
            continue
        if absurd_cell(structure) is not None:
            per_sample.append(None)
            gated += 1
            absurd += 1
            continue
        per_sample.append(None)  # filled in below when the match succeeds
        to_match.append((position, structure))
    matches = bounded_rms([structure for _, structure in to_match], truth_structure, time_limit_s=time_limit_s)
    for (position, structure), (rms, status) in zip(to_match, matches):
        errors += status == "error"
        timeouts += status == "timeout"
        if rms is not None and structure_fingerprint(structure) is None:
            fp_failures += 1
            rms = None
        per_sample[position] = rms
    rms_k1 = per_sample[0] if per_sample else None
    if rms_k1 is not None and convention.csp_k1_requires_truth_valid:
        truth_valid = _truth_valid(truth_arrays, truth_structure, convention)
        rms_k1 = rms_k1 if truth_valid else None
    rms_best = best_of_samples(rms_per_sample=per_sample)
    if rms_best is not None and convention.csp_k_requires_truth_valid:
        if truth_valid is None:
            truth_valid = _truth_valid(truth_arrays, truth_structure, convention)
        rms_best = rms_best if truth_valid else None
    return CspResult(rms_k1, rms_best, len(samples), constructed, gated, fp_failures, errors, truth_valid,
                     rms_per_sample=per_sample, matcher_timeouts=timeouts, absurd_cells=absurd)
