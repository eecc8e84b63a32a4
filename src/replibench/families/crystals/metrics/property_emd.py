"""CDVAE's ``wdist_prop``: the earth mover's distance between predicted properties of two crystal sets.

txie-93/cdvae@f857f59 ``scripts/compute_metrics.py`` ``GenEval.get_prop_wdist`` (l. 188-197), read,
not copied:

* generated side: ``GenEval.valid_samples`` -- the crystals that are both compositionally (SMACT)
  and structurally valid and have fingerprints, of which 1,000 are drawn without replacement by
  an unseeded ``np.random.choice`` (l. 149-156; fewer than 1,000 valid crystals aborts);
* reference side: ALL ground-truth crystals ``gt_crys`` -- the test set as stored in the
  reconstruction file's ``input_data_batch`` (l. 331-337), not subsampled and not filtered for
  validity;
* both sides go through ``scripts/eval_utils.py`` ``prop_model_eval`` with the dataset's
  ``eval_model_name`` model (``mp20`` / ``perovskite`` / ``carbon``): a CrystalNN graph of
  ``Structure(Lattice.from_parameters(...), atom_types, frac_coords)`` (no Niggli reduction),
  batches of 256, the DimeNet++ output mapped back with the prop scaler
  (``preds * stds + means``);
* ``scipy.stats.wasserstein_distance(pred_props, gt_props)`` (unweighted, 1-D), in the property's
  unit (eV/atom for all three released models).
"""

from __future__ import annotations

from collections.abc import Sequence

from replibench.families.crystals.metrics.properties import earth_movers_distance


def wdist_prop(generated_values: Sequence[float], test_values: Sequence[float]) -> float:
    """``scipy.stats.wasserstein_distance(generated_values, test_values)``: the 1-D earth mover's
    distance between the property-model predictions for the generated sample and for the test set,
    in the property's unit (eV/atom). Raises ``ValueError`` on an empty side or a non-finite value
    (scipy would return nan)."""
    import numpy as np

    for side, values in (("generated", generated_values), ("test", test_values)):
        array = np.asarray(values, dtype=float)
        if array.ndim != 1:
            raise ValueError(f"wdist_prop: {side} values must be 1-D, got shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"wdist_prop: {side} values hold {int((~np.isfinite(array)).sum())} non-finite entries")
    return earth_movers_distance(generated=generated_values, reference=test_values)
