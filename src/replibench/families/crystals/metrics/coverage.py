"""COV-R / COV-P and fingerprint diversity (CDVAE ``compute_cov``, ``get_fp_pdist``).

Distances are Euclidean: structure fingerprints (61-d, unscaled) and CDVAE-scaled composition
fingerprints (132-d) between every generated and every test crystal.

- COV-R (%): test crystals whose nearest generated structure fp is within ``struc_cutoff`` AND
  whose nearest generated composition fp is within ``comp_cutoff`` (the two nearest neighbours may
  be different crystals), over all test crystals.
- COV-P (%): generated crystals whose nearest test distances satisfy both cutoffs, over ALL
  generated crystals, including those without fingerprints (those are left out of the distances
  but stay in the denominator, as the papers do).
- CrysBFN's separate coverages apply one cutoff at a time.
- AMSD/AMCD: mean nearest-neighbour structure/composition distance (recall: per test crystal).

Ground-truth crystals without fingerprints crash the papers' code; here they stay in the COV-R
denominator and are never covered, and their number is returned (``truth_without_fp``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from replibench.families.crystals.metrics.fingerprints import scale_composition_fingerprints


def _stack(fps: Sequence[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    keep = np.array([fp is not None for fp in fps], dtype=bool)
    rows = [np.asarray(fp, dtype=np.float64) for fp in fps if fp is not None]
    return (np.vstack(rows) if rows else np.zeros((0, 0))), keep


def coverage(
    *,
    gen_struct_fps: Sequence[np.ndarray | None],
    gen_comp_fps: Sequence[np.ndarray | None],
    truth_struct_fps: Sequence[np.ndarray | None],
    truth_comp_fps: Sequence[np.ndarray | None],
    struc_cutoff: float,
    comp_cutoff: float,
) -> dict[str, float | int | None]:
    """COV-R, COV-P (%) and AMSD/AMCD; composition fps are raw Magpie features (scaled here).

    A generated crystal counts as fingerprinted only if both of its fps are present.
    """
    from scipy.spatial.distance import cdist

    if len(gen_struct_fps) != len(gen_comp_fps) or len(truth_struct_fps) != len(truth_comp_fps):
        raise ValueError("structure and composition fingerprint lists differ in length")
    num_gen, num_truth = len(gen_struct_fps), len(truth_struct_fps)
    if num_gen == 0 or num_truth == 0:
        raise ValueError(f"coverage needs generated and test crystals (got {num_gen} and {num_truth})")
    gen_pairs = [(s, c) if (s is not None and c is not None) else (None, None)
                 for s, c in zip(gen_struct_fps, gen_comp_fps)]
    truth_pairs = [(s, c) if (s is not None and c is not None) else (None, None)
                   for s, c in zip(truth_struct_fps, truth_comp_fps)]
    gen_s, gen_keep = _stack([p[0] for p in gen_pairs])
    gen_c, _ = _stack([p[1] for p in gen_pairs])
    truth_s, truth_keep = _stack([p[0] for p in truth_pairs])
    truth_c, _ = _stack([p[1] for p in truth_pairs])
    result: dict[str, float | int | None] = {
        "num_gen": num_gen, "num_truth": num_truth,
        "gen_without_fp": int((~gen_keep).sum()), "truth_without_fp": int((~truth_keep).sum()),
    }
    if gen_s.shape[0] == 0 or truth_s.shape[0] == 0:
        result.update({k: 0.0 for k in ("cov_recall", "cov_precision", "cov_struc_recall",
                                        "cov_comp_recall", "cov_struc_precision", "cov_comp_precision")})
        result.update({k: None for k in ("amsd_recall", "amsd_precision", "amcd_recall", "amcd_precision")})
        return result
    struc_dist = cdist(gen_s, truth_s)  # (G', T') structure-fp distances
    comp_dist = cdist(scale_composition_fingerprints(gen_c), scale_composition_fingerprints(truth_c))  # (G', T')
    struc_recall = struc_dist.min(axis=0)  # (T',) nearest generated crystal per test crystal
    comp_recall = comp_dist.min(axis=0)
    struc_precision = struc_dist.min(axis=1)  # (G',) nearest test crystal per generated crystal
    comp_precision = comp_dist.min(axis=1)
    result.update({
        "cov_recall": 100.0 * np.sum((struc_recall <= struc_cutoff) & (comp_recall <= comp_cutoff)) / num_truth,
        "cov_precision": 100.0 * np.sum((struc_precision <= struc_cutoff) & (comp_precision <= comp_cutoff)) / num_gen,
        "cov_struc_recall": 100.0 * np.sum(struc_recall <= struc_cutoff) / num_truth,
        "cov_comp_recall": 100.0 * np.sum(comp_recall <= comp_cutoff) / num_truth,
        "cov_struc_precision": 100.0 * np.sum(struc_precision <= struc_cutoff) / num_gen,
        "cov_comp_precision": 100.0 * np.sum(comp_precision <= comp_cutoff) / num_gen,
        "amsd_recall": float(struc_recall.mean()),
        "amsd_precision": float(struc_precision.mean()),
        "amcd_recall": float(comp_recall.mean()),
        "amcd_precision": float(comp_precision.mean()),
    })
    for key in ("cov_recall", "cov_precision", "cov_struc_recall", "cov_comp_recall",
                "cov_struc_precision", "cov_comp_precision"):
        result[key] = float(result[key])
    return result


def mean_pairwise_distance(*, fingerprints: np.ndarray) -> float | None:
    """``get_fp_pdist``: mean Euclidean distance over all pairs of rows; ``None`` for < 2 rows."""
    from scipy.spatial.distance import pdist

    fingerprints = np.asarray(fingerprints, dtype=np.float64)
    if fingerprints.shape[0] < 2:
        return None
    return float(pdist(fingerprints).mean())
