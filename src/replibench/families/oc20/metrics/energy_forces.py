"""OC20 metrics exactly as fairchem's evaluator computes them (``fairchem.core.modules.evaluator``).

Pooling over a split (the evaluator keeps a running ``total`` and ``numel`` over all batches and
reports ``total / numel``):

* energy MAE and EwT: one term per structure, averaged over structures;
* force MAE / MSE: one term per Cartesian component of every *free* atom of the split, i.e. pooled
  over atoms — structures with more free atoms weigh more (not a mean of per-structure MAEs);
* ``forcesx_mae`` … ``forcesz_mse``: one term per free atom (that component only);
* force cosine similarity and force magnitude error: one term per free atom, pooled over atoms;
* EFwT: one term per structure.

Names are fairchem's (``<target>_<fn>``, e.g. ``forces_cosine_similarity``), so our
``metrics.json`` and fairchem's logs can be compared key by key. The S2EF list is the union of
``Evaluator.task_metrics["s2ef"]`` (energy_mae, forcesx/y/z_mae, forces_mae,
forces_cosine_similarity, forces_magnitude_error, energy_forces_within_threshold), the MSE
counterparts of its MAEs (energy_mse, forces_mse, forcesx/y/z_mse: same functions, ``mse``) and EwT;
IS2RE is ``Evaluator.task_metrics["is2re"]`` (energy_mae, energy_mse, energy_within_threshold).
Checked against FAIR-Chem/fairchem@31c0963 ``src/fairchem/core/modules/evaluator.py``.

Free atoms: the OCP trainer evaluates atom-level targets on atoms with ``fixed == 0`` only
(``eval_on_free_atoms: True``, the default in every OC20 config); the per-structure atom counts
the evaluator sees are then free-atom counts.

Energies are in eV (OC20 configs: adsorption energies, i.e. DFT total minus the reference energy),
forces in eV/Å. Fractions (EwT, EFwT) are returned in [0, 1] as fairchem does; papers print them
in %. The Gaunt paper averages each metric over the four S2EF validation splits
(:func:`average_over_splits`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from replibench.families.oc20.types import VAL_SPLITS
from replibench.families.metric_info import MetricInfo

#: EwT / EFwT energy threshold (fairchem ``e_thresh = 0.02``, "set based on OC20 leaderboard"), eV.
ENERGY_THRESHOLD_EV = 0.02
#: EFwT force threshold on the largest per-component error over free atoms (fairchem
#: ``f_thresh = 0.03``), eV/Å.
FORCE_THRESHOLD_EV_PER_A = 0.03

METRICS: dict[str, MetricInfo] = {
    "energy_mae": MetricInfo("min", "eV", "mean |E_pred - E_DFT| over structures (adsorption energy)"),
    "energy_mse": MetricInfo("min", "eV^2", "mean (E_pred - E_DFT)^2 over structures (IS2RE configs log it)"),
    "energy_within_threshold": MetricInfo("max", "fraction", "EwT: share of structures with |dE| < 0.02 eV"),
    "forces_mae": MetricInfo(
        "min", "eV/A", "mean |F_pred - F_DFT| over every component of every free atom, pooled over the split"),
    "forces_mse": MetricInfo(
        "min", "eV^2/A^2", "mean (F_pred - F_DFT)^2 over every component of every free atom, pooled over the split"),
    **{f"forces{axis}_{kind}": MetricInfo(
        "min", unit, f"mean {what} of the {axis} force component over free atoms, pooled over the split")
       for kind, unit, what in (("mae", "eV/A", "|error|"), ("mse", "eV^2/A^2", "squared error"))
       for axis in "xyz"},
    "forces_cosine_similarity": MetricInfo(
        "max", "1", "mean over free atoms of the cosine between predicted and DFT force vectors (float32)"),
    "forces_magnitude_error": MetricInfo("min", "eV/A", "mean over free atoms of | |F_pred| - |F_DFT| |"),
    "energy_forces_within_threshold": MetricInfo(
        "max", "fraction",
        "EFwT: share of structures with |dE| < 0.02 eV and max per-component free-atom force error < 0.03 eV/A"),
}

#: Every metric fairchem's ``Evaluator`` reports for S2EF (plus the MSE counterparts of its MAEs and
#: EwT), and for IS2RE (``Evaluator.task_metrics``), under fairchem's names.
S2EF_METRICS = ("energy_mae", "energy_mse", "energy_within_threshold",
                "forces_mae", "forces_mse",
                "forcesx_mae", "forcesy_mae", "forcesz_mae", "forcesx_mse", "forcesy_mse", "forcesz_mse",
                "forces_cosine_similarity", "forces_magnitude_error", "energy_forces_within_threshold")
IS2RE_METRICS = ("energy_mae", "energy_mse", "energy_within_threshold")


def _energy_errors(pred_energy, true_energy) -> np.ndarray:
    pred = np.asarray(pred_energy, dtype=np.float64).reshape(-1)
    true = np.asarray(true_energy, dtype=np.float64).reshape(-1)
    if pred.shape != true.shape or pred.size == 0:
        raise ValueError(f"energies: expected two equal non-empty (S,) arrays, got {pred.shape} and {true.shape}")
    return pred - true  # (S,)


def _free_force_pairs(pred_forces, true_forces, free_mask) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred_forces, dtype=np.float64).reshape(-1, 3)
    true = np.asarray(true_forces, dtype=np.float64).reshape(-1, 3)
    free = np.asarray(free_mask, dtype=bool).reshape(-1)
    if pred.shape != true.shape or free.shape != (len(true),):
        raise ValueError(f"forces: expected (A, 3), (A, 3) and (A,), got {pred.shape}, {true.shape}, {free.shape}")
    if not free.any():
        raise ValueError("forces: no free atoms to evaluate (free_mask is all False)")
    return pred[free], true[free]  # (A_free, 3) each


def energy_mae(*, pred_energy, true_energy) -> float:
    """Mean absolute energy error over structures, eV."""
    return float(np.mean(np.abs(_energy_errors(pred_energy, true_energy))))


def energy_mse(*, pred_energy, true_energy) -> float:
    """Mean squared energy error over structures, eV²."""
    return float(np.mean(_energy_errors(pred_energy, true_energy) ** 2))


def energy_within_threshold(*, pred_energy, true_energy, threshold: float = ENERGY_THRESHOLD_EV) -> float:
    """EwT: fraction of structures with ``|E_pred - E_DFT| < threshold`` (strict), threshold in eV."""
    return float(np.mean(np.abs(_energy_errors(pred_energy, true_energy)) < threshold))


def forces_mae(*, pred_forces, true_forces, free_mask) -> float:
    """Force MAE in eV/Å over every Cartesian component of every free atom (pooled over atoms).

    ``pred_forces``/``true_forces``: (A, 3) for all atoms of the split; ``free_mask``: (A,) True
    where ``fixed == 0``.
    """
    pred, true = _free_force_pairs(pred_forces, true_forces, free_mask)
    return float(np.mean(np.abs(pred - true)))


def forces_mse(*, pred_forces, true_forces, free_mask) -> float:
    """Force MSE in eV²/Å² over every Cartesian component of every free atom (pooled over atoms)."""
    pred, true = _free_force_pairs(pred_forces, true_forces, free_mask)
    return float(np.mean((pred - true) ** 2))


def forces_component_errors(*, pred_forces, true_forces, free_mask) -> dict[str, float]:
    """``forces{x,y,z}_{mae,mse}``: each Cartesian component's MAE (eV/Å) and MSE (eV²/Å²) over
    free atoms, pooled over atoms — fairchem's ``forcesx_mae`` etc. (one term per free atom)."""
    pred, true = _free_force_pairs(pred_forces, true_forces, free_mask)
    error = pred - true  # (A_free, 3)
    out = {}
    for kind, values in (("mae", np.abs(error)), ("mse", error ** 2)):
        for index, axis in enumerate("xyz"):
            out[f"forces{axis}_{kind}"] = float(np.mean(values[:, index]))
    return out


def forces_cosine_similarity(*, pred_forces, true_forces, free_mask) -> float:
    """Mean over free atoms of the cosine similarity of force vectors (dimensionless).

    Computed like fairchem: ``torch.cosine_similarity`` on float32 copies (eps 1e-8), so a zero
    predicted or DFT force contributes 0.
    """
    import torch

    pred, true = _free_force_pairs(pred_forces, true_forces, free_mask)
    cosine = torch.cosine_similarity(torch.from_numpy(pred).float(), torch.from_numpy(true).float())  # (A_free,)
    return float(cosine.double().mean())


def forces_magnitude_error(*, pred_forces, true_forces, free_mask) -> float:
    """Mean over free atoms of ``| |F_pred| - |F_DFT| |`` (L2 norms), eV/Å."""
    pred, true = _free_force_pairs(pred_forces, true_forces, free_mask)
    return float(np.mean(np.abs(np.linalg.norm(pred, axis=1) - np.linalg.norm(true, axis=1))))


def energy_forces_within_threshold(
    *, pred_energy, true_energy, pred_forces, true_forces, free_mask, natoms,
    energy_threshold: float = ENERGY_THRESHOLD_EV, force_threshold: float = FORCE_THRESHOLD_EV_PER_A,
) -> float:
    """EFwT: fraction of structures with ``|dE| < energy_threshold`` (eV) **and** the largest
    absolute per-component force error over the structure's free atoms ``< force_threshold``
    (eV/Å; max over x/y/z components, not the vector norm).

    ``natoms``: (S,) atom counts (all atoms) in the order the atoms of ``*_forces`` are stacked.
    A structure without free atoms passes the force test vacuously (the max over an empty set is
    −∞); fairchem would fail on it, and OC20 has none (adsorbates are always free).
    """
    energy_ok = np.abs(_energy_errors(pred_energy, true_energy)) < energy_threshold  # (S,)
    pred = np.asarray(pred_forces, dtype=np.float64).reshape(-1, 3)
    true = np.asarray(true_forces, dtype=np.float64).reshape(-1, 3)
    free = np.asarray(free_mask, dtype=bool).reshape(-1)
    counts = np.asarray(natoms, dtype=np.int64).reshape(-1)
    if counts.shape != energy_ok.shape or counts.sum() != len(true) or pred.shape != true.shape \
            or free.shape != (len(true),):
        raise ValueError(f"EFwT: natoms {counts.shape} (sum {counts.sum()}) must match {energy_ok.shape} energies "
                         f"and {true.shape} / {pred.shape} forces / {free.shape} free mask")
    max_error = np.where(free, np.abs(pred - true).max(axis=1), -np.inf)  # (A,) fixed atoms ignored
    structure = np.repeat(np.arange(len(counts)), counts)  # (A,)
    worst = np.full(len(counts), -np.inf)
    np.maximum.at(worst, structure, max_error)  # (S,) largest free-atom component error
    return float(np.mean(energy_ok & (worst < force_threshold)))


def s2ef_metrics(*, pred_energy, true_energy, pred_forces, true_forces, fixed, natoms) -> dict[str, float]:
    """All S2EF metrics of one split. ``fixed`` (A,) is OC20's fixed flag; free = ``~fixed``."""
    free = ~np.asarray(fixed, dtype=bool).reshape(-1)
    force_args = {"pred_forces": pred_forces, "true_forces": true_forces, "free_mask": free}
    return {
        "energy_mae": energy_mae(pred_energy=pred_energy, true_energy=true_energy),
        "energy_mse": energy_mse(pred_energy=pred_energy, true_energy=true_energy),
        "energy_within_threshold": energy_within_threshold(pred_energy=pred_energy, true_energy=true_energy),
        "forces_mae": forces_mae(**force_args),
        "forces_mse": forces_mse(**force_args),
        **forces_component_errors(**force_args),
        "forces_cosine_similarity": forces_cosine_similarity(**force_args),
        "forces_magnitude_error": forces_magnitude_error(**force_args),
        "energy_forces_within_threshold": energy_forces_within_threshold(
            pred_energy=pred_energy, true_energy=true_energy, natoms=natoms, **force_args),
    }


def is2re_metrics(*, pred_energy, true_energy) -> dict[str, float]:
    """All IS2RE metrics of one split (relaxed adsorption energy, eV)."""
    return {
        "energy_mae": energy_mae(pred_energy=pred_energy, true_energy=true_energy),
        "energy_mse": energy_mse(pred_energy=pred_energy, true_energy=true_energy),
        "energy_within_threshold": energy_within_threshold(pred_energy=pred_energy, true_energy=true_energy),
    }


#: Label of the unweighted average over the four validation splits (``VAL_SPLITS``).
VAL_AVERAGE = "val_avg"


def split_metric_name(split: str, metric: str) -> str:
    """``val_id_forces_mae``: the name a split's metric carries in ``metrics.json``."""
    return f"{split}_{metric}"


def split_metric_infos(names: tuple[str, ...]) -> dict[str, MetricInfo]:
    """:data:`METRICS` entries of ``names`` for every val split and for the four-split average."""
    infos = {}
    for split in (*VAL_SPLITS, VAL_AVERAGE):
        where = "mean of the four val splits" if split == VAL_AVERAGE else f"split {split}"
        for name in names:
            info = METRICS[name]
            infos[split_metric_name(split, name)] = MetricInfo(info.direction, info.unit,
                                                               f"{info.description} ({where})")
    return infos


def metrics_over_splits(per_split: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Each split's metrics as ``<split>_<metric>``; when the four val splits are all there, also
    ``val_avg_<metric>``, their unweighted mean (:func:`average_over_splits`)."""
    out = {split_metric_name(split, name): float(value)
           for split, metrics in per_split.items() for name, value in metrics.items()}
    if set(per_split) == set(VAL_SPLITS):
        out.update({split_metric_name(VAL_AVERAGE, name): value
                    for name, value in average_over_splits(per_split).items()})
    return out


def average_over_splits(per_split: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Unweighted mean of each metric over splits (Gaunt paper: "averaged across the four OC20
    validation splits"; each split's metric is first pooled within the split)."""
    if not per_split:
        raise ValueError("average_over_splits: no splits given")
    names = [set(metrics) for metrics in per_split.values()]
    common = set.intersection(*names)
    if any(n != common for n in names):
        raise ValueError(f"average_over_splits: splits report different metrics: {[sorted(n) for n in names]}")
    return {name: float(np.mean([metrics[name] for metrics in per_split.values()])) for name in sorted(common)}
