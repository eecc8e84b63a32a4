"""GluonTS's CRPS (mean weighted sum quantile loss) and MASE as uni2ts scores Moirai-MoE: values
worked out by hand, and (tests/golden/ett_gluonts_metrics.npz) GluonTS's own numbers."""

from __future__ import annotations

import numpy as np
import pytest

from replibench.families.ett.metrics.probabilistic import (mase, mean_weighted_sum_quantile_loss, sample_quantiles,
                                                           seasonal_error)


def test_crps_by_hand():
    # samples {0, 10}: the q-quantile is sorted sample round(q) (half to even) → 0 for q ≤ .5, 10 above.
    # y = 5. q ≤ .5: 2|(5 − 0)(0 − q)| = 10q → 1 2 3 4 5 (sum 15); q ≥ .6: 2|(5 − 10)(1 − q)| = 10(1 − q)
    # → 4 3 2 1 (sum 10). Total 25 / Σ|y| = 5, mean over the 9 levels
    samples = np.array([[[0.0], [10.0]]])  # (N=1, S=2, H=1)
    assert mean_weighted_sum_quantile_loss(samples, np.array([[5.0]])) == pytest.approx(25.0 / 5 / 9, rel=1e-15)


def test_crps_weights_by_the_total_not_per_item():
    # two items: the one with the large label dominates (Σ over items before the division)
    samples = np.array([[[0.0], [10.0]], [[100.0], [100.0]]])  # item 1 is exact at 100
    value = mean_weighted_sum_quantile_loss(samples, np.array([[5.0], [100.0]]))
    assert value == pytest.approx(25.0 / 105 / 9, rel=1e-15)


def test_seasonal_error_and_mase_by_hand():
    assert seasonal_error(np.array([1.0, 3.0, 2.0, 6.0]), 2) == 2.0  # |2−1|, |6−3|
    assert seasonal_error(np.array([1.0, 3.0, 2.0]), 24) == 1.5  # history shorter than m: lag 1
    with pytest.raises(ValueError, match="no pair at that lag"):
        seasonal_error(np.arange(24.0), 24)
    samples = np.array([[[1.0, 4.0], [2.0, 5.0], [3.0, 9.0]]])  # median (2, 5)
    # |4 − 2| / 2 and |5 − 5| / 2 → mean 0.5
    assert mase(samples, np.array([[4.0, 5.0]]), [np.array([1.0, 3.0, 2.0, 6.0])], 2) == 0.5


def test_quantiles_are_sorted_samples_without_interpolation():
    # sorted (1, 2, 3, 4): q = .5 → index round(1.5) = 2 (half to even) → 3; q = .9 → round(2.7) = 3 → 4;
    # q = .1 → round(0.3) = 0 → 1
    samples = np.array([[[3.0], [1.0], [2.0], [4.0]]])
    np.testing.assert_array_equal(sample_quantiles(samples, (0.5, 0.9, 0.1))[:, 0, 0], [3.0, 4.0, 1.0])


def test_non_finite_input_is_refused():
    with pytest.raises(ValueError, match=r"samples: non-finite value at index \(0, 1, 0\)"):
        mean_weighted_sum_quantile_loss(np.array([[[1.0], [np.nan]]]), np.array([[1.0]]))
    with pytest.raises(ValueError, match="constant history"):
        mase(np.ones((1, 2, 1)), np.ones((1, 1)), [np.ones(30)], 24)


def test_our_metrics_equal_uni2ts_gluonts_evaluation():
    """tests/golden/ett_gluonts_metrics.npz: uni2ts evaluate_forecasts (GluonTS 0.14.4, axis=None) on six
    hourly series, one shorter than the seasonality (GluonTS then uses lag 1). GluonTS holds the values
    in float32 and averages in float32; we compute in float64 on the same values: 1e-6 relative."""
    from golden.golden import load_fixture

    fixture = load_fixture("ett_gluonts_metrics")
    histories = [row[:length] for row, length in zip(fixture["histories"], fixture["lengths"])]
    samples, targets = fixture["samples"], fixture["targets"]
    assert mase(samples, targets, histories, int(fixture["seasonality"])) == pytest.approx(float(fixture["mase"]),
                                                                                             rel=1e-6)
    assert mean_weighted_sum_quantile_loss(samples, targets) == pytest.approx(float(fixture["crps"]), rel=1e-6)
