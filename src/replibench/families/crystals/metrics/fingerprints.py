"""Structure and composition fingerprints for COV and diversity, as ``Crystal.get_fingerprints``.

- Structure: mean over sites of matminer ``CrystalNNFingerprint.from_preset("ops")`` (61 values).
  If any site raises, the crystal has no fingerprints and is invalid (the papers' rule).
- Composition: matminer ``ElementProperty.from_preset("magpie")`` (132 values) of the element
  counts, standardised with CDVAE's fixed means/stds (``cdvae_magpie_scaler.json``) and NaN → 0.

Version trap: matminer >= 0.10 imputes missing element data by default (``impute_nan=True``);
the papers ran matminer 0.7.x, which had no imputation and left NaN (then 0 after scaling). We
pass ``impute_nan=False`` to get the papers' features.
"""

from __future__ import annotations

import json
import warnings
from functools import lru_cache
from importlib import resources

import numpy as np

STRUCTURE_FP_SIZE = 61
COMPOSITION_FP_SIZE = 132


@lru_cache(maxsize=1)
def _site_featurizer():
    from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

    return CrystalNNFingerprint.from_preset("ops")


@lru_cache(maxsize=1)
def _composition_featurizer():
    from matminer.featurizers.composition.composite import ElementProperty

    return ElementProperty.from_preset("magpie", impute_nan=False)


@lru_cache(maxsize=1)
def cdvae_composition_scaler() -> tuple[np.ndarray, np.ndarray]:
    """(means, stds), each (132,), of CDVAE ``CompScalerMeans`` / ``CompScalerStds``."""
    text = resources.files("replibench.families.crystals.metrics").joinpath("cdvae_magpie_scaler.json").read_text()
    data = json.loads(text)
    return np.asarray(data["means"], dtype=np.float64), np.asarray(data["stds"], dtype=np.float64)


def structure_fingerprint(structure) -> np.ndarray | None:
    """Mean CrystalNN "ops" site fingerprint, (61,); ``None`` if any site's fingerprint raises."""
    featurizer = _site_featurizer()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sites = [featurizer.featurize(structure, i) for i in range(len(structure))]  # N × (61,)
    except Exception:
        return None
    return np.asarray(sites, dtype=np.float64).mean(axis=0)  # (61,)


def composition_fingerprint(atomic_numbers) -> np.ndarray:
    """Raw Magpie features of the element counts, (132,), NaN where element data is missing."""
    from pymatgen.core import Composition

    counts: dict[int, int] = {}
    for z in atomic_numbers:
        counts[int(z)] = counts.get(int(z), 0) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        features = _composition_featurizer().featurize(Composition(counts))
    return np.asarray(features, dtype=np.float64)  # (132,)


def scale_composition_fingerprints(raw: np.ndarray) -> np.ndarray:
    """CDVAE ``CompScaler.transform``: (x - mean) / std, NaN → 0. ``raw`` (M, 132) → (M, 132)."""
    means, stds = cdvae_composition_scaler()
    raw = np.asarray(raw, dtype=np.float64).reshape(-1, COMPOSITION_FP_SIZE)
    scaled = (raw - means) / stds
    return np.where(np.isnan(scaled), 0.0, scaled)
