"""COV-R/COV-P on tiny sets counted by hand, diversity, EMDs, and the EMD subsample."""

from __future__ import annotations

import numpy as np
import pytest

from replibench.families.crystals.metrics.conventions import COV_CUTOFFS, EMD_SAMPLE_SIZE, cov_cutoffs
from replibench.families.crystals.metrics.coverage import coverage, mean_pairwise_distance
from replibench.families.crystals.metrics.fingerprints import cdvae_composition_scaler, scale_composition_fingerprints
from replibench.families.crystals.metrics.properties import (
    earth_movers_distance,
    formation_energy_emd,
    sample_valid,
)


def struct_fp(x: float) -> np.ndarray:
    fp = np.zeros(61)
    fp[0] = x
    return fp


def raw_comp_fp(x: float) -> np.ndarray:
    """Raw Magpie vector whose CDVAE-scaled form is (x, 0, 0, …)."""
    means, stds = cdvae_composition_scaler()
    scaled = np.zeros(132)
    scaled[0] = x
    return means + stds * scaled


def test_cov_cutoffs_per_dataset():
    assert COV_CUTOFFS == {"mp-20": {"struc": 0.4, "comp": 10.0}, "carbon-24": {"struc": 0.2, "comp": 4.0},
                           "perov-5": {"struc": 0.2, "comp": 4.0}}
    with pytest.raises(ValueError):
        cov_cutoffs("mp20")


def test_scaler_is_cdvae_constants_and_nan_becomes_zero():
    means, stds = cdvae_composition_scaler()
    assert means.shape == stds.shape == (132,) and means[0] == 21.194441759304013 and stds[-1] == 85.980205895116
    raw = means.copy()
    raw[5] = np.nan
    assert np.all(scale_composition_fingerprints(raw) == 0.0)


def test_coverage_counted_by_hand():
    # test crystals at (struct, comp) = (0, 0), (1, 0), (5, 5); generated at (0.1, 0.0), (1.0, 2.6),
    # (9, 9) and one without fingerprints. Cutoffs 0.4 (struct) and 2.0 (comp).
    truth_s = [struct_fp(0), struct_fp(1), struct_fp(5)]
    truth_c = [raw_comp_fp(0), raw_comp_fp(0), raw_comp_fp(5)]
    gen_s = [struct_fp(0.1), struct_fp(1.0), struct_fp(9), None]
    gen_c = [raw_comp_fp(0.0), raw_comp_fp(2.6), raw_comp_fp(9), None]
    result = coverage(gen_struct_fps=gen_s, gen_comp_fps=gen_c, truth_struct_fps=truth_s,
                      truth_comp_fps=truth_c, struc_cutoff=0.4, comp_cutoff=2.0)
    # Recall: truth 0 → nearest struct 0.1 ✓, nearest comp 0 ✓; truth 1 → struct 0 ✓ (gen 1),
    # comp 0 ✓ (gen 0: a different crystal may supply each); truth 2 → struct 4 ✗. 2/3.
    assert result["cov_recall"] == pytest.approx(200.0 / 3.0)
    # Precision over all 4 generated: gen 0 ✓; gen 1 struct 0 ✓ but comp 2.4 ✗; gen 2 ✗; gen 3 no fp. 1/4.
    assert result["cov_precision"] == pytest.approx(25.0)
    assert result["cov_struc_precision"] == pytest.approx(50.0) and result["cov_comp_recall"] == pytest.approx(200.0 / 3)
    assert result["gen_without_fp"] == 1
    assert result["amsd_recall"] == pytest.approx((0.1 + 0.0 + 4.0) / 3.0)


def test_diversity_is_the_mean_pairwise_distance():
    assert mean_pairwise_distance(fingerprints=np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 8.0]])) == pytest.approx(
        (5.0 + 8.0 + 5.0) / 3.0)
    assert mean_pairwise_distance(fingerprints=np.zeros((1, 2))) is None


def test_earth_movers_distance_by_hand():
    assert earth_movers_distance(generated=[0.0, 1.0], reference=[0.0, 1.0]) == 0.0
    assert earth_movers_distance(generated=[0.0], reference=[1.0]) == pytest.approx(1.0)
    assert earth_movers_distance(generated=[1, 1, 2], reference=[1, 2, 2]) == pytest.approx(1.0 / 3.0)


def test_emd_subsample_is_seeded_and_refuses_too_few_valid():
    assert EMD_SAMPLE_SIZE == 1000
    first, second = sample_valid(num_valid=1500, seed=3), sample_valid(num_valid=1500, seed=3)
    assert np.array_equal(first, second) and len(np.unique(first)) == 1000
    with pytest.raises(ValueError, match="not enough valid"):
        sample_valid(num_valid=999, seed=0)
    assert np.array_equal(sample_valid(num_valid=5, seed=0, allow_fewer=True), np.arange(5))


def test_formation_energy_emd_is_unavailable_without_a_model():
    value, reason = formation_energy_emd(generated_structures=[], reference_structures=[], property_model=None)
    assert value is None and "property model" in reason
    value, _ = formation_energy_emd(generated_structures=[1, 2], reference_structures=[3, 4],
                                    property_model=lambda structures: [float(s) for s in structures])
    assert value == pytest.approx(2.0)
