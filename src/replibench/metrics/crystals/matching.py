"""Match rate and RMSE (CDVAE reconstruction / DiffCSP, CrysBFN crystal structure prediction).

For each test crystal: if the prediction passes the convention's gate, ``StructureMatcher(stol=0.5,
ltol=0.3, angle_tol=10).get_rms_dist(pred, truth)[0]`` — the RMS site displacement divided by
``(V / N) ** (1/3)`` (V the volume of the average of the two volume-equalised lattices, N sites):
a dimensionless number. ``None`` (no match) or an exception → unmatched.

- match rate (%) = matched test crystals / all test crystals × 100;
- RMSE = mean of the normalised RMS over matched crystals only (unmatched do not enter);
- k samples: a test crystal is matched if any of its samples is; its RMS is the smallest.

Exact pre-filter: ``get_rms_dist`` can only match crystals with the same fractional composition
(the site mapping is species-consistent and complete), so unequal compositions skip the matcher.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache

from replibench.metrics.crystals.conventions import STRUCTURE_MATCHER_TOLERANCES


@lru_cache(maxsize=1)
def structure_matcher():
    """pymatgen ``StructureMatcher`` with the papers' tolerances, other arguments at their defaults."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(**STRUCTURE_MATCHER_TOLERANCES)


def reset_matcher_cache() -> None:
    """Empty pymatgen's process-wide cache of reduced structures before an independent job.

    ``StructureMatcher._get_reduced_istructure`` is an ``lru_cache`` keyed by structure equality
    *within tolerance*, so a structure matched earlier (e.g. the Niggli-reduced twin of a raw test
    crystal) can stand in for the current one and shift the RMS in the last digits: results would
    depend on what the process did before. Clearing it per test crystal makes every result a pure
    function of its inputs, so any split of the work over processes gives identical numbers.
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher

    cached = getattr(StructureMatcher, "_get_reduced_istructure", None)
    if cached is not None and hasattr(cached, "cache_clear"):
        cached.cache_clear()


def same_fractional_composition(first, second) -> bool:
    """True when two structures have equal reduced compositions (the matcher's necessary condition)."""
    return first.composition.reduced_composition == second.composition.reduced_composition


def normalised_rms(*, prediction, truth) -> tuple[float | None, bool]:
    """(normalised RMS or ``None`` when unmatched, whether the matcher raised).

    Dimensionless: RMS displacement / (V/N)^(1/3), pymatgen's ``get_rms_dist(pred, truth)[0]``.
    """
    if not same_fractional_composition(prediction, truth):
        return None, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = structure_matcher().get_rms_dist(prediction, truth)
    except Exception:
        return None, True
    return (None if result is None else float(result[0])), False


def best_of_samples(*, rms_per_sample: Sequence[float | None]) -> float | None:
    """Smallest RMS among matched samples of one test crystal; ``None`` if none matched."""
    matched = [value for value in rms_per_sample if value is not None]
    return min(matched) if matched else None


def match_rate_and_rmse(*, rms_per_truth: Sequence[float | None]) -> dict[str, float | int | None]:
    """Aggregate per-test-crystal results: ``match_rate`` (%), ``rmse`` (dimensionless, matched only).

    ``rmse`` is ``None`` when nothing matched (the papers' ``mean`` of an empty array is NaN).
    """
    total = len(rms_per_truth)
    if total == 0:
        raise ValueError("match rate of an empty test set is undefined")
    matched = [value for value in rms_per_truth if value is not None]
    return {
        "match_rate": 100.0 * len(matched) / total,
        "rmse": (sum(matched) / len(matched)) if matched else None,
        "num_matched": len(matched),
        "num_truth": total,
    }
