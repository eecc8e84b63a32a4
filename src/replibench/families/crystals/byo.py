"""Bring your own predictions, crystals: ``replibench metrics crystals csp|gen`` (see :mod:`replibench.byo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replibench.atomic import write_json_atomic
from replibench.data.checksum import sha256_file
from replibench.errors import DataError


def add_crystal_arguments(parser, task: str) -> None:  # (argparse.ArgumentParser, str) -> None
    from replibench.families.crystals.metrics.conventions import COV_CUTOFFS, CONVENTIONS

    parser.add_argument("--pred", required=True, type=Path,
                        help="CSV (material_id, cif); " + ("several rows per material_id = k samples in file order"
                                                           if task == "csp" else "one row per generated crystal"))
    parser.add_argument("--truth", required=True, type=Path, help="test CSV (e.g. the dataset's test.csv)")
    parser.add_argument("--convention", required=True, choices=sorted(CONVENTIONS),
                        help="whose evaluation rules: CDVAE, DiffCSP or CrysBFN's metric code")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--dataset", required=task == "gen", default=None, choices=sorted(COV_CUTOFFS),
                        help="the dataset's COV cutoffs (gen)" if task == "gen" else "recorded with the scores")
    parser.add_argument("--workers", type=int, default=1, help="processes (results do not depend on it)")
    if task == "csp":
        parser.add_argument("--samples", type=int, nargs="*", default=[1],
                            help="also report the first k samples per test crystal (default 1)")
    else:
        parser.add_argument("--seed", type=int, default=0, help="seed of the 1,000-valid EMD subsample")
        parser.add_argument("--allow-fewer-valid", action="store_true",
                            help="EMDs on all valid crystals when fewer than 1,000 (the papers stop)")


def score_crystal_files(*, task: str, pred: Path, truth: Path, convention: str, out: Path, dataset: str | None = None,
                        workers: int = 1, seed: int = 0, samples: list[int] | None = None,
                        allow_fewer_valid: bool = False) -> dict[str, Any]:
    """Score crystals in two CSVs (``material_id``, ``cif``) with the papers' metric suite.

    CSP: PRED rows sharing a ``material_id`` are that test crystal's samples in file order; the
    metrics of all K samples have plain names, smaller counts (``samples``, default 1) ``_k<k>``.
    Gen: every PRED row is one generated crystal; ``dataset`` picks the COV cutoffs. The metric
    names are those of the pipeline's ``metrics.json`` (see README, "Bring your own predictions").
    """
    from replibench.families.crystals.metrics import evaluate_crystal_files, flatten_evaluation, get_convention, metric_info_for
    from replibench.families.crystals.metrics.conventions import COV_CUTOFFS

    try:
        get_convention(convention)
    except ValueError as error:
        raise DataError(str(error)) from error
    if task == "gen" and dataset not in COV_CUTOFFS:
        raise DataError(f"--dataset {dataset!r}: generation needs the dataset's COV cutoffs; "
                        f"expected one of {sorted(COV_CUTOFFS)}")
    for path, role in ((pred, "prediction"), (truth, "ground-truth")):
        if not Path(path).is_file():
            raise DataError(f"{path}: {role} CSV not found")
    result = evaluate_crystal_files(Path(pred), Path(truth), task=task, convention=convention, workers=workers,
                                    dataset=dataset or "unknown", seed=seed, allow_fewer_valid=allow_fewer_valid,
                                    ks=sorted({*(samples or [1])}) if task == "csp" else None)
    from replibench.families.crystals.family import variant_name, variant_values

    values = variant_values(task, samples=result["counts"]["k_max"]) if task == "csp" else {}
    variant = variant_name(task, values)
    metrics, unavailable = flatten_evaluation(result, primary_variant=variant)
    info = {name: metric_info_for(name) for name in metrics}
    record = {
        "task": task, "dataset": dataset, "convention": convention, "variant": variant,
        "variant_values": values, "split": "test",
        "metrics": metrics,
        "metric_info": {k: {"direction": v.direction, "unit": v.unit, "description": v.description} for k, v in info.items()},
        "protocol": {"unavailable": unavailable, "counts": result["counts"], **result["protocol"],
                     **({"distributions": result["distributions"]} if "distributions" in result else {})},
        "predictions": {"path": str(pred), "sha256": sha256_file(pred)},
        "truth": {"path": str(truth), "sha256": sha256_file(truth)},
    }
    write_json_atomic(out, record)
    shown = ", ".join(f"{name} {value:.6g}" if value is not None else f"{name} unavailable"
                      for name, value in metrics.items())
    print(f"crystals {task} ({convention} convention, {variant}): {shown} → {out}")
    for name, reason in unavailable.items():
        print(f"  {name}: {reason}")
    return record
