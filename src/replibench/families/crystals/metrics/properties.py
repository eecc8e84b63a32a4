"""Property distribution distances (CDVAE ``GenEval``): 1-D Wasserstein (earth mover's) distances.

Between :data:`EMD_SAMPLE_SIZE` (1,000) valid generated crystals drawn without replacement and the
whole test set, as in the papers; the draw here takes an explicit seed (the papers' is unseeded).

- ``wdist_density``: pymatgen ``Structure.density`` (g/cm^3).
- ``wdist_num_elems``: number of distinct elements (count).
- ``wdist_volume`` (CrysBFN only): cell volume (Å^3).
- ``wdist_prop``: formation energy per atom (eV/atom) predicted by a property model for both
  sides (CDVAE's DimeNet++ ``prop_models/mp20``), so model-vs-model, never DFT. Without a model
  it is reported unavailable with the reason, never estimated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from replibench.families.crystals.metrics.conventions import EMD_SAMPLE_SIZE


def earth_movers_distance(*, generated: Sequence[float], reference: Sequence[float]) -> float:
    """``scipy.stats.wasserstein_distance`` of two 1-D samples (unit of the samples)."""
    from scipy.stats import wasserstein_distance

    if len(generated) == 0 or len(reference) == 0:
        raise ValueError(f"EMD needs two non-empty samples (got {len(generated)} and {len(reference)})")
    return float(wasserstein_distance(np.asarray(generated, float), np.asarray(reference, float)))


def sample_valid(*, num_valid: int, sample_size: int = EMD_SAMPLE_SIZE, seed: int,
                 allow_fewer: bool = False) -> np.ndarray:
    """Indices (into the valid crystals) of the EMD subsample, drawn without replacement.

    Fewer valid crystals than ``sample_size``: the papers abort; with ``allow_fewer`` (smoke runs)
    all valid crystals are used instead and the caller records the size actually used.
    """
    if num_valid >= sample_size:
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(num_valid, size=sample_size, replace=False))
    if allow_fewer and num_valid > 0:
        return np.arange(num_valid)
    raise ValueError(f"not enough valid crystals for the property EMDs: {num_valid}/{sample_size}")


def property_emds(
    *,
    generated: dict[str, Sequence[float]],
    reference: dict[str, Sequence[float]],
) -> dict[str, float]:
    """EMD per property present on both sides; keys ``density``/``num_elems``/``volume`` → ``wdist_*``."""
    return {f"wdist_{name}": earth_movers_distance(generated=generated[name], reference=reference[name])
            for name in generated if name in reference}


def property_histograms(*, generated: dict[str, Sequence[float]], reference: dict[str, Sequence[float]],
                        bins: int = 40) -> dict[str, dict[str, list]]:
    """Histograms of the EMD samples, generated vs reference, on shared bins (for plots).

    ``density`` (g/cm^3): ``bins`` equal bins over the range of both samples; ``num_elems``: one bin
    per integer count. Each entry holds ``edges`` (or ``values``) and the two count lists.
    """
    histograms: dict[str, dict[str, list]] = {}
    if "density" in generated and "density" in reference:
        both = np.concatenate([np.asarray(generated["density"], float), np.asarray(reference["density"], float)])
        low, high = float(both.min()), float(both.max())
        edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
        histograms["density"] = {
            "edges": [round(float(edge), 6) for edge in edges],  # for plotting; counts use the exact edges
            "generated": np.histogram(generated["density"], bins=edges)[0].tolist(),
            "test": np.histogram(reference["density"], bins=edges)[0].tolist(),
        }
    if "num_elems" in generated and "num_elems" in reference:
        values = sorted({int(v) for v in (*generated["num_elems"], *reference["num_elems"])})
        histograms["num_elems"] = {
            "values": values,
            "generated": [int(sum(1 for v in generated["num_elems"] if int(v) == x)) for x in values],
            "test": [int(sum(1 for v in reference["num_elems"] if int(v) == x)) for x in values],
        }
    return histograms


PropertyModel = Callable[[list], Sequence[float]]


def formation_energy_emd(
    *, generated_structures: list, reference_structures: list, property_model: PropertyModel | None,
) -> tuple[float | None, str]:
    """(``wdist_prop`` in eV/atom, "") or (``None``, reason) when no property model is given."""
    if property_model is None:
        return None, ("no formation-energy property model checkpoint was provided (the papers use "
                      "CDVAE's DimeNet++ prop_models/mp20); not estimated")
    generated = list(property_model(generated_structures))
    reference = list(property_model(reference_structures))
    return earth_movers_distance(generated=generated, reference=reference), ""
