"""OC20 metrics on hand-checked values (fairchem's definitions and pooling)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from replibench.families.oc20.metrics import energy_forces as m


def test_protocol_constants():
    assert m.ENERGY_THRESHOLD_EV == 0.02
    assert m.FORCE_THRESHOLD_EV_PER_A == 0.03
    assert set(m.S2EF_METRICS) <= set(m.METRICS) and set(m.IS2RE_METRICS) <= set(m.METRICS)
    assert m.METRICS["forces_mae"].direction == "min" and m.METRICS["energy_forces_within_threshold"].direction == "max"


def test_energy_metrics_by_hand():
    pred, true = [1.0, 2.0, 3.5, -1.0], [1.01, 2.5, 3.5, -0.98]
    # |errors| = 0.01, 0.5, 0, 0.02 -> MAE 0.1325; EwT counts < 0.02 strictly: 2 of 4
    assert m.energy_mae(pred_energy=pred, true_energy=true) == pytest.approx(0.1325)
    assert m.energy_mse(pred_energy=pred, true_energy=true) == pytest.approx((1e-4 + 0.25 + 0 + 4e-4) / 4)
    assert m.energy_within_threshold(pred_energy=pred, true_energy=true) == pytest.approx(0.5)


def two_structures():
    """Structure A: 2 atoms (atom 0 fixed), structure B: 1 atom (free)."""
    true_forces = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    pred_forces = np.array([[9.0, 9.0, 9.0], [0.0, 1.01, 0.0], [0.0, 0.0, 1.0]])
    fixed = np.array([True, False, False])
    return pred_forces, true_forces, fixed


def test_forces_pooled_over_free_atoms():
    pred, true, fixed = two_structures()
    free = ~fixed
    # free components errors: (0, 0.01, 0) and (0, 0, 1) -> 1.01 / 6; the fixed atom is ignored
    assert m.forces_mae(pred_forces=pred, true_forces=true, free_mask=free) == pytest.approx(1.01 / 6)
    assert m.forces_cosine_similarity(pred_forces=pred, true_forces=true, free_mask=free) == pytest.approx(1.0, abs=1e-6)
    assert m.forces_magnitude_error(pred_forces=pred, true_forces=true, free_mask=free) == pytest.approx((0.01 + 1) / 2)


def test_mse_and_per_component_metrics_by_hand():
    pred, true, fixed = two_structures()
    free = ~fixed
    # free atoms' errors: (0, 0.01, 0) and (0, 0, -1); the fixed atom's 9s are ignored
    assert m.forces_mse(pred_forces=pred, true_forces=true, free_mask=free) == pytest.approx((1e-4 + 1) / 6)
    components = m.forces_component_errors(pred_forces=pred, true_forces=true, free_mask=free)
    assert components == pytest.approx({
        "forcesx_mae": 0.0, "forcesy_mae": 0.01 / 2, "forcesz_mae": 1.0 / 2,
        "forcesx_mse": 0.0, "forcesy_mse": 1e-4 / 2, "forcesz_mse": 1.0 / 2,
    })
    # fairchem's forces_mae pools all components: the mean of the three per-axis MAEs
    mean_of_axes = np.mean([components[f"forces{a}_mae"] for a in "xyz"])
    assert m.forces_mae(pred_forces=pred, true_forces=true, free_mask=free) == pytest.approx(mean_of_axes)


def test_metric_names_are_fairchems():
    """Every S2EF name fairchem's Evaluator reports (its default S2EF list), the MSE counterparts,
    and its IS2RE list; ``forces_cosine`` was our old name for ``forces_cosine_similarity``."""
    fairchem_s2ef = {"energy_mae", "forcesx_mae", "forcesy_mae", "forcesz_mae", "forces_mae",
                     "forces_cosine_similarity", "forces_magnitude_error", "energy_forces_within_threshold"}
    mses = {"energy_mse", "forces_mse", "forcesx_mse", "forcesy_mse", "forcesz_mse"}
    assert set(m.S2EF_METRICS) == fairchem_s2ef | mses | {"energy_within_threshold"}
    assert set(m.IS2RE_METRICS) == {"energy_mae", "energy_mse", "energy_within_threshold"}
    assert "forces_cosine" not in m.METRICS
    assert m.METRICS["forcesz_mse"].direction == "min" and m.METRICS["forces_cosine_similarity"].direction == "max"


def test_pooling_weighs_structures_by_free_atoms():
    """A: 1 free atom with component errors (3, 0, 0); B: 3 exact free atoms.
    Pooled over the 12 components: 3 / 12 = 0.25 (a mean of per-structure MAEs would be 0.5)."""
    true = np.zeros((4, 3))
    pred = np.zeros((4, 3))
    pred[0, 0] = 3.0
    assert m.forces_mae(pred_forces=pred, true_forces=true, free_mask=np.ones(4, bool)) == pytest.approx(0.25)


def test_cosine_by_hand_and_zero_vector():
    pred = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    true = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    # cosines: 0, 1/sqrt(2), 0 (a zero vector gives 0 with torch's eps)
    value = m.forces_cosine_similarity(pred_forces=pred, true_forces=true, free_mask=np.ones(3, bool))
    assert value == pytest.approx(math.sqrt(0.5) / 3, rel=1e-6)


def test_efwt_by_hand():
    pred_f, true_f, fixed = two_structures()
    natoms = [2, 1]
    # A: |dE| = 0.01 ok, free atom max component error 0.01 < 0.03 -> success (fixed atom's 9 ignored)
    # B: |dE| = 0.0 ok, max component error 1.0 -> fail
    value = m.energy_forces_within_threshold(pred_energy=[0.01, 5.0], true_energy=[0.0, 5.0], pred_forces=pred_f,
                                             true_forces=true_f, free_mask=~fixed, natoms=natoms)
    assert value == pytest.approx(0.5)
    pred_f[2] = [0.0, 0.0, 2.029]  # B's force error 0.029 < 0.03 now, but its energy misses
    value = m.energy_forces_within_threshold(pred_energy=[0.01, 5.03], true_energy=[0.0, 5.0], pred_forces=pred_f,
                                             true_forces=true_f, free_mask=~fixed, natoms=natoms)
    assert value == pytest.approx(0.5)  # B: |dE| = 0.03 misses
    value = m.energy_forces_within_threshold(pred_energy=[0.01, 5.0], true_energy=[0.0, 5.0], pred_forces=pred_f,
                                             true_forces=true_f, free_mask=~fixed, natoms=natoms)
    assert value == pytest.approx(1.0)


def test_efwt_uses_component_max_not_norm():
    true = np.zeros((1, 3))
    pred = np.array([[0.025, 0.025, 0.025]])  # norm 0.043 > 0.03, every component < 0.03
    value = m.energy_forces_within_threshold(pred_energy=[0.0], true_energy=[0.0], pred_forces=pred,
                                             true_forces=true, free_mask=[True], natoms=[1])
    assert value == 1.0


def test_s2ef_bundle_and_average():
    pred_f, true_f, fixed = two_structures()
    metrics = m.s2ef_metrics(pred_energy=[0.01, 5.0], true_energy=[0.0, 5.0], pred_forces=pred_f,
                             true_forces=true_f, fixed=fixed, natoms=[2, 1])
    assert set(metrics) == set(m.S2EF_METRICS)
    assert metrics["energy_mae"] == pytest.approx(0.005) and metrics["energy_mse"] == pytest.approx(0.01 ** 2 / 2)
    assert metrics["forces_mse"] == pytest.approx((1e-4 + 1) / 6) and metrics["forcesz_mae"] == pytest.approx(0.5)
    assert metrics["energy_within_threshold"] == 1.0
    averaged = m.average_over_splits({"a": {"x": 1.0, "y": 0.0}, "b": {"x": 3.0, "y": 1.0}})
    assert averaged == {"x": 2.0, "y": 0.5}
    with pytest.raises(ValueError):
        m.average_over_splits({"a": {"x": 1.0}, "b": {"y": 1.0}})


def test_shape_errors():
    with pytest.raises(ValueError):
        m.energy_mae(pred_energy=[1.0, 2.0], true_energy=[1.0])
    with pytest.raises(ValueError, match="no free atoms"):
        m.forces_mae(pred_forces=np.zeros((2, 3)), true_forces=np.zeros((2, 3)), free_mask=[False, False])
    with pytest.raises(ValueError):
        m.energy_forces_within_threshold(pred_energy=[0.0], true_energy=[0.0], pred_forces=np.zeros((2, 3)),
                                         true_forces=np.zeros((2, 3)), free_mask=[True, True], natoms=[3])


def test_reference_metrics_are_reported_names():
    """Every paper number in references/oc20.yaml names a metric our runs report
    (``<split>_<metric>`` / ``val_avg_<metric>``), so it meets a run on the leaderboard."""
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[2] / "references" / "oc20.yaml"
    entries = yaml.safe_load(path.read_text())["entries"]
    reported = set(m.split_metric_infos(m.S2EF_METRICS)) | set(m.split_metric_infos(m.IS2RE_METRICS))
    unknown = sorted({e["metric"] for e in entries} - reported)
    assert not unknown, f"{path}: metrics no run reports: {unknown}"
