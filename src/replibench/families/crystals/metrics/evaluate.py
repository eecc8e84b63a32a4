"""Full metric suites for CSP and ab initio generation, and the "bring your own samples" entry point.

:func:`evaluate_csp` and :func:`evaluate_gen` take crystals as :class:`CrystalArrays` or CIF text
(truth CIFs let the convention choose raw vs Niggli ground truth, as each paper did) and return a
JSON-ready dict: ``variants`` (``k1``/``k{K}`` for CSP, ``default`` for gen) → metric values in the
units of :data:`METRICS`, plus ``counts``, ``unavailable`` (metric → reason) and ``protocol``.
:func:`evaluate_crystal_files` reads two CSVs with ``material_id`` and ``cif`` columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from replibench.errors import DataError
from replibench.families.crystals.metrics.assess import CrystalInput, assess_crystal, assess_csp
from replibench.families.crystals.metrics.conventions import (
    EMD_SAMPLE_SIZE,
    STRUCTURE_MATCHER_TOLERANCES,
    cov_cutoffs,
    get_convention,
)
from replibench.families.crystals.metrics.coverage import coverage, mean_pairwise_distance
from replibench.families.crystals.metrics.fingerprints import scale_composition_fingerprints
from replibench.families.crystals.metrics.matching import MATCH_TIME_LIMIT_S, match_rate_and_rmse
from replibench.families.crystals.metrics.properties import (
    PropertyModel,
    formation_energy_emd,
    property_emds,
    property_histograms,
    sample_valid,
)
from replibench.parallel import ordered_map


def _packages() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("pymatgen", "pymatgen-core", "smact", "matminer", "scipy", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _protocol(convention: str, **extra: Any) -> dict[str, Any]:
    return {
        "convention": get_convention(convention).as_dict(),
        "structure_matcher": STRUCTURE_MATCHER_TOLERANCES,
        "smact_table": "SMACT-2014 oxidation states and electronegativities as in smact 2.2.1",
        "magpie_impute_nan": False,
        "packages": _packages(),
        **extra,
    }


def evaluate_csp(
    *, predictions: Sequence[Sequence[CrystalInput]], truths: Sequence[CrystalInput],
    convention: str, workers: int = 1, ks: Sequence[int] | None = None,
    match_time_limit_s: float = MATCH_TIME_LIMIT_S,
) -> dict[str, Any]:
    """Match rate (%) and RMSE for 1 sample (the first of each list) and for all k samples.

    Each sample's match is stopped after ``match_time_limit_s`` seconds (then unmatched, counted
    in ``matcher_timeouts``); samples with absurd cells are refused unmatched (``absurd_cells``).

    ``predictions[i]`` lists the samples for ``truths[i]`` (possibly empty: unmatched). ``ks`` asks
    for more sample counts: variant ``k{k}`` counts the first k samples of each test crystal
    (default 1; the largest number of samples given is always evaluated).
    """
    rules = get_convention(convention)
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} prediction lists for {len(truths)} test crystals")
    if not truths:
        raise ValueError("CSP evaluation needs at least one test crystal")
    jobs = [(truth, list(samples), convention, match_time_limit_s) for truth, samples in zip(truths, predictions)]
    results = ordered_map(assess_csp, jobs, workers=workers)
    bad_truth = [i for i, r in enumerate(results) if r.truth_error]
    if bad_truth:
        raise DataError(f"test crystals #{[i + 1 for i in bad_truth[:5]]} (1-based, test-set order) cannot be "
                        f"built: {results[bad_truth[0]].truth_error}")
    k_values = [r.num_samples for r in results]
    k_max = max(k_values)
    wanted = sorted({*(ks or [1]), max(k_max, 1)})
    if any(k < 1 for k in wanted):
        raise ValueError(f"sample counts must be >= 1, got {wanted}")
    variants = {f"k{k}": match_rate_and_rmse(rms_per_truth=[r.rms_best_of_first(k, rules) for r in results])
                for k in wanted}
    unavailable = {f"{name}.rmse": "no test crystal was matched" for name, v in variants.items() if v["rmse"] is None}
    counts = {
        "num_truth": len(truths), "samples_total": sum(k_values), "k_min": min(k_values), "k_max": k_max,
        "samples_constructed": sum(r.constructed for r in results),
        "samples_gated_out": sum(r.gated_out for r in results),
        "fingerprint_failures": sum(r.fingerprint_failures for r in results),
        "matcher_errors": sum(r.matcher_errors for r in results),
        "matcher_timeouts": sum(r.matcher_timeouts for r in results),
        "absurd_cells": sum(r.absurd_cells for r in results),
    }
    return {"task": "csp", "variants": {name: {"match_rate": v["match_rate"], "rmse": v["rmse"]}
                                        for name, v in variants.items()},
            "counts": counts, "unavailable": unavailable, "protocol": _protocol(convention)}


def evaluate_gen(
    *, generated: Sequence[CrystalInput], truths: Sequence[CrystalInput], dataset: str, convention: str,
    workers: int = 1, seed: int = 0, allow_fewer_valid: bool = False,
    property_model: PropertyModel | None = None,
) -> dict[str, Any]:
    """Validity (%), COV-R/COV-P (%), property EMDs and diversity of generated crystals vs the test set."""
    get_convention(convention)
    cutoffs = cov_cutoffs(dataset)
    if not generated or not truths:
        raise ValueError(f"generation evaluation needs crystals (got {len(generated)} generated, {len(truths)} test)")
    keep = property_model is not None
    jobs = [(g, convention, False, keep) for g in generated] + [(t, convention, True, keep) for t in truths]
    records = ordered_map(assess_crystal, jobs, workers=workers)  # one pool for both sides
    gen, ref = records[: len(generated)], records[len(generated):]
    bad_truth = [i for i, r in enumerate(ref) if not r.constructed]
    if bad_truth:
        raise DataError(f"test crystals #{[i + 1 for i in bad_truth[:5]]} (1-based, test-set order) cannot be "
                        f"built: {ref[bad_truth[0]].invalid_reason}")
    metrics: dict[str, Any] = {
        "struct_validity": float(100.0 * np.mean([r.struct_valid for r in gen])),
        "comp_validity": float(100.0 * np.mean([r.comp_valid for r in gen])),
        "validity": float(100.0 * np.mean([r.valid for r in gen])),
    }
    cov = coverage(gen_struct_fps=[r.struct_fp for r in gen], gen_comp_fps=[r.comp_fp for r in gen],
                   truth_struct_fps=[r.struct_fp for r in ref], truth_comp_fps=[r.comp_fp for r in ref],
                   struc_cutoff=cutoffs["struc"], comp_cutoff=cutoffs["comp"])
    metrics.update({k: cov[k] for k in ("cov_recall", "cov_precision", "cov_struc_recall", "cov_comp_recall",
                                        "cov_struc_precision", "cov_comp_precision", "amsd_recall",
                                        "amsd_precision", "amcd_recall", "amcd_precision")})
    unavailable: dict[str, str] = {}
    valid = [r for r in gen if r.valid]
    sample_size = None
    props = ("density", "num_elems", "volume")
    test_props = {p: [getattr(r, p) for r in ref] for p in props}
    # histograms for plots: the EMD sample when there is one, else the generated side is empty
    distributions = property_histograms(generated={p: [] for p in props}, reference=test_props)
    try:
        chosen = [valid[i] for i in sample_valid(num_valid=len(valid), seed=seed, allow_fewer=allow_fewer_valid)]
        sample_size = len(chosen)
        sample_props = {p: [getattr(r, p) for r in chosen] for p in props}
        distributions = property_histograms(generated=sample_props, reference=test_props)
        metrics.update(property_emds(generated=sample_props, reference=test_props))
        metrics["comp_div"] = mean_pairwise_distance(
            fingerprints=scale_composition_fingerprints(np.vstack([r.comp_fp for r in chosen])))
        metrics["struct_div"] = mean_pairwise_distance(fingerprints=np.vstack([r.struct_fp for r in chosen]))
        if keep:
            from pymatgen.core import Structure

            value, reason = formation_energy_emd(
                generated_structures=[Structure.from_dict(r.structure_dict) for r in chosen],
                reference_structures=[Structure.from_dict(r.structure_dict) for r in ref],
                property_model=property_model)
        else:
            value, reason = formation_energy_emd(generated_structures=[], reference_structures=[],
                                                 property_model=None)
        metrics["wdist_prop"] = value
        if value is None:
            unavailable["wdist_prop"] = reason
    except ValueError as error:
        for name in ("wdist_density", "wdist_num_elems", "wdist_volume", "wdist_prop", "comp_div", "struct_div"):
            metrics[name] = None
            unavailable[name] = str(error)
        if property_model is None:  # the first reason, whatever the samples: no model to predict with
            unavailable["wdist_prop"] = formation_energy_emd(generated_structures=[], reference_structures=[],
                                                             property_model=None)[1] + f"; also: {error}"
    for name in ("comp_div", "struct_div", "amsd_recall", "amsd_precision", "amcd_recall", "amcd_precision"):
        if metrics.get(name) is None and name not in unavailable:
            unavailable[name] = "fewer than two valid crystals or no fingerprints"
    counts = {"num_generated": len(gen), "num_truth": len(ref), "num_valid": len(valid),
              "generated_without_fp": cov["gen_without_fp"], "truth_without_fp": cov["truth_without_fp"],
              "constructed": sum(r.constructed for r in gen),
              "absurd_cells": sum(r.invalid_reason.startswith("absurd_cell") for r in gen)}
    return {"task": "gen", "variants": {"default": metrics}, "counts": counts, "unavailable": unavailable,
            "distributions": distributions,
            "protocol": _protocol(convention, dataset=dataset, cov_cutoffs=cutoffs, emd_seed=seed,
                                  emd_sample_size=sample_size, emd_sample_size_protocol=EMD_SAMPLE_SIZE)}


def _read_cif_csv(path: Path, role: str) -> list[tuple[str, str]]:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{path}: cannot read {role} CSV: {error}") from error
    missing = [c for c in ("material_id", "cif") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: {role} CSV lacks columns {missing}; expected material_id and cif, "
                        f"found {list(frame.columns)}")
    if len(frame) == 0:
        raise DataError(f"{path}: {role} CSV has no rows; expected at least one crystal")
    return list(zip(frame["material_id"].tolist(), frame["cif"].tolist()))


def evaluate_crystal_files(
    pred_csv: Path, truth_csv: Path, *, task: Literal["csp", "gen"], convention: str, workers: int = 1,
    dataset: str, seed: int = 0, allow_fewer_valid: bool = False, ks: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Score PRED against TRUTH (both CSVs with ``material_id`` and ``cif``); see the module docstring.

    CSP: several PRED rows per ``material_id`` are k samples in file order (the first is the
    1-sample prediction); a test crystal without PRED rows is unmatched; a PRED id absent from
    TRUTH is an error. Gen: PRED ids are ignored; every row is one generated crystal. A PRED CIF that
    does not parse is a crystal that could not be constructed: structurally and compositionally
    invalid, no fingerprints (out of the COV distances, in the COV-P denominator), unmatched in CSP.
    """
    pred_rows = _read_cif_csv(Path(pred_csv), "prediction")
    truth_rows = _read_cif_csv(Path(truth_csv), "ground-truth")
    ids = [mid for mid, _ in truth_rows]
    if len(set(ids)) != len(ids):
        duplicates = sorted({m for m in ids if ids.count(m) > 1})[:5]
        raise DataError(f"{truth_csv}: material_id must be unique; repeated: {duplicates}")
    if task == "gen":
        result = evaluate_gen(generated=[cif for _, cif in pred_rows], truths=[cif for _, cif in truth_rows],
                              dataset=dataset, convention=convention, workers=workers, seed=seed,
                              allow_fewer_valid=allow_fewer_valid)
    elif task == "csp":
        samples: dict[str, list[str]] = {mid: [] for mid in ids}
        unknown = sorted({mid for mid, _ in pred_rows if mid not in samples})
        if unknown:
            raise DataError(f"{pred_csv}: material_id values not in {truth_csv}: {unknown[:5]}"
                            + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))
        for mid, cif in pred_rows:
            samples[mid].append(cif)
        result = evaluate_csp(predictions=[samples[mid] for mid in ids], truths=[cif for _, cif in truth_rows],
                              convention=convention, workers=workers, ks=ks)
    else:
        raise ValueError(f"unknown task {task!r}; expected 'csp' or 'gen'")
    result.update({"convention": convention, "dataset": dataset,
                   "inputs": {"pred": str(pred_csv), "truth": str(truth_csv)}})
    return result
