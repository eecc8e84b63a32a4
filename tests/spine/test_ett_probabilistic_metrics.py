"""GluonTS's CRPS (mean weighted sum quantile loss) and MASE as uni2ts scores Moirai-MoE: values
worked out by hand, and (tests/golden/ett_gluonts_metrics.npz) GluonTS 0.14.4's own numbers."""

from __future__ import annotations

import numpy as np
import pytest

from replibench.families.ett.metrics.probabilistic import (CRPS_QUANTILE_LEVELS, SEASONALITY, mase,
                                                           mean_weighted_sum_quantile_loss, sample_quantiles,
                                                           seasonal_error, weighted_sum_quantile_loss)

NAN = np.nan


def test_crps_by_hand():
    # samples {0, 10}: the q-quantile is sorted sample round(1·q) (half to even): 0 for q ≤ .5, 10 above.
    # y = 5. q ≤ .5: 2|(5 − 0)(0 − q)| = 10q → 1 2 3 4 5 (sum 15); q ≥ .6: 2|(5 − 10)(1 − q)| = 10(1 − q)
    # → 4 3 2 1 (sum 10). Total 25 / Σ|y| = 5, mean over the 9 levels → 25 / 45
    samples = np.array([[[0.0], [10.0]]])  # (N=1, S=2, H=1)
    assert mean_weighted_sum_quantile_loss(samples, np.array([[5.0]])) == pytest.approx(25.0 / 5 / 9, rel=1e-15)
    # one level alone: q = .3 → 2·|(5 − 0)(0 − .3)| = 3, / 5
    assert weighted_sum_quantile_loss(samples, np.array([[5.0]]), 0.3) == pytest.approx(0.6, rel=1e-15)


def test_crps_weights_by_the_total_not_per_item():
    # two items: item 1 is exact at 100 (loss 0) but its |y| = 100 joins the one denominator:
    # Σ loss = 25 (as above), Σ|y| = 5 + 100 → 25 / 105 / 9 (a per-item mean would give (5/9 + 0) / 2)
    samples = np.array([[[0.0], [10.0]], [[100.0], [100.0]]])
    value = mean_weighted_sum_quantile_loss(samples, np.array([[5.0], [100.0]]))
    assert value == pytest.approx(25.0 / 105 / 9, rel=1e-15)


def test_seasonal_error_and_mase_by_hand():
    assert seasonal_error(np.array([1.0, 3.0, 2.0, 6.0]), 2) == 2.0  # (|2 − 1| + |6 − 3|) / 2
    assert seasonal_error(np.array([1.0, 3.0, 2.0]), 24) == 1.5  # shorter than m → lag 1: (2 + 1) / 2
    with pytest.raises(ValueError, match="no valid pair at lag 24"):  # 24 values, m = 24: GluonTS gives NaN
        seasonal_error(np.arange(24.0), 24)
    samples = np.array([[[1.0, 4.0], [2.0, 5.0], [3.0, 9.0]]])  # S = 3: median = sorted[round(1.0)] → (2, 5)
    # history [1, 3, 2, 6], m = 2 → seasonal error 2; |4 − 2| / 2 = 1 and |5 − 5| / 2 = 0 → mean 0.5
    assert mase(samples, np.array([[4.0, 5.0]]), [np.array([1.0, 3.0, 2.0, 6.0])], 2) == 0.5


def test_mase_is_a_mean_over_every_step_not_over_items():
    # S = 1: the median is the sample itself (index round(0 · .5) = 0), here 0 everywhere.
    # histories [0, 1] (shorter than 24 → lag 1) → seasonal error 1 for both items.
    # item A: |1|, |3|; item B: |5| and a missing label step. Mean over the 3 valid steps: 9 / 3 = 3
    # (a mean of per-item MASEs would be (2 + 5) / 2 = 3.5)
    samples = np.zeros((2, 1, 2))
    target = np.array([[1.0, 3.0], [5.0, NAN]])
    assert mase(samples, target, [np.array([0.0, 1.0])] * 2, 24) == 3.0


def test_quantiles_are_sorted_samples_without_interpolation():
    # sorted (1, 2, 3, 4): q = .5 → index round(3 · .5 = 1.5) = 2 → 3; q = .9 → round(2.7) = 3 → 4;
    # q = .1 → round(0.3) = 0 → 1
    samples = np.array([[[3.0], [1.0], [2.0], [4.0]]])
    np.testing.assert_array_equal(sample_quantiles(samples, (0.5, 0.9, 0.1))[:, 0, 0], [3.0, 4.0, 1.0])
    # S = 6 (0 … 5): indices round(5q), half to even:
    # .1 → 0.5 → 0; .3 → 1.5 → 2; .7 → 3.5 → 4; .9 → 4.5 → 4
    six = np.arange(6.0)[::-1].reshape(1, 6, 1)
    np.testing.assert_array_equal(sample_quantiles(six, (0.1, 0.3, 0.7, 0.9))[:, 0, 0], [0.0, 2.0, 4.0, 4.0])
    # 100 samples 0 … 99: the median is sorted[round(49.5) = 50] = 50, not np.quantile's 49.5
    hundred = np.random.default_rng(0).permutation(np.arange(100.0)).reshape(1, 100, 1)
    assert sample_quantiles(hundred, (0.5,))[0, 0, 0] == 50.0


def test_missing_labels_and_history_values_are_masked():
    # label NaN: dropped from Σ loss and Σ|y| → the same 25 / 5 / 9 as the complete one-step case
    samples = np.array([[[0.0, 0.0], [10.0, 10.0]]])
    assert mean_weighted_sum_quantile_loss(samples, np.array([[5.0, NAN]])) == pytest.approx(25.0 / 45, rel=1e-15)
    # history [1, 3, NaN, 6, 2], m = 2: pairs (1, NaN) and (NaN, 2) dropped, (3, 6) → 3
    assert seasonal_error(np.array([1.0, 3.0, NAN, 6.0, 2.0]), 2) == 3.0
    # median (2, 5), label (4, NaN), seasonal error 2 → |4 − 2| / 2 = 1 over the one valid step
    three = np.array([[[1.0, 4.0], [2.0, 5.0], [3.0, 9.0]]])
    assert mase(three, np.array([[4.0, NAN]]), [np.array([1.0, 3.0, 2.0, 6.0])], 2) == 1.0


def test_what_gluonts_would_turn_into_nan_or_inf_is_refused():
    with pytest.raises(ValueError, match=r"samples: non-finite value at index \(0, 1, 0\)"):
        mean_weighted_sum_quantile_loss(np.array([[[1.0], [NAN]]]), np.array([[1.0]]))
    with pytest.raises(ValueError, match="constant history"):
        mase(np.ones((1, 2, 1)), np.ones((1, 1)), [np.ones(30)], 24)
    with pytest.raises(ValueError, match="no finite value"):
        mean_weighted_sum_quantile_loss(np.ones((1, 2, 1)), np.array([[NAN]]))
    with pytest.raises(ValueError, match="Σ|y|"):
        mean_weighted_sum_quantile_loss(np.ones((1, 2, 1)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="no valid pair"):
        seasonal_error(np.array([1.0, NAN, 2.0]), 24)
    with pytest.raises(ValueError, match="shapes disagree"):
        mase(np.ones((2, 2, 1)), np.ones((2, 1)), [np.arange(5.0)], 24)


@pytest.mark.parametrize("freq", ["h", "15min"])
def test_our_metrics_equal_gluonts_evaluation(freq):
    """tests/golden/ett_gluonts_metrics.npz: GluonTS 0.14.4 evaluate_forecasts(axis=None, mask_invalid_label=True)
    with uni2ts's metric objects, in float64, on random sample forecasts; histories of different lengths,
    one shorter than the seasonality (lag 1), one item with missing history and label values."""
    from golden.golden import load_fixture

    fixture = load_fixture("ett_gluonts_metrics")
    assert fixture.meta["repo"] == "awslabs/gluonts"
    assert fixture.meta["commit"] == "0cc3cd95de2a0086f370f5f05d5d5821c604634f"  # tag v0.14.4
    np.testing.assert_array_equal(fixture["seasonality_of/aliases"], [24, 24, 96, 96])  # h, H, 15min, 15T
    assert int(fixture[f"{freq}/seasonality"]) == SEASONALITY[freq]
    levels = tuple(float(q) for q in fixture[f"{freq}/levels"])
    assert levels == CRPS_QUANTILE_LEVELS
    samples, targets = fixture[f"{freq}/samples"], fixture[f"{freq}/targets"]
    histories = [row[:length] for row, length in zip(fixture[f"{freq}/histories"], fixture[f"{freq}/lengths"])]
    assert min(len(h) for h in histories) < SEASONALITY[freq] and np.isnan(targets).any()
    assert any(np.isnan(h).any() for h in histories)
    np.testing.assert_array_equal(sample_quantiles(samples, levels), fixture[f"{freq}/quantiles"])
    for level, expected in zip(levels, fixture[f"{freq}/wql"]):
        assert weighted_sum_quantile_loss(samples, targets, level) == pytest.approx(float(expected), rel=1e-9)
    assert mean_weighted_sum_quantile_loss(samples, targets) == pytest.approx(float(fixture[f"{freq}/crps"]),
                                                                              rel=1e-9)
    assert mase(samples, targets, histories, SEASONALITY[freq]) == pytest.approx(float(fixture[f"{freq}/mase"]),
                                                                                 rel=1e-9)
