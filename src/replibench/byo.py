"""Bring your own predictions: score external files with exactly our protocol and metric code.

Each family adds its own ``replibench metrics <kind>`` entry here; the formats are documented in
the README ("Bring your own predictions").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replibench.atomic import write_json_atomic
from replibench.data.checksum import sha256_file
from replibench.errors import DataError


def _read_parquet(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not Path(path).is_file():
        raise DataError(f"{path}: prediction file not found")
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(f"{path}: not a readable Parquet file: {error}") from error


def score_forecast_file(*, dataset: str, horizon: int, pred: Path, out: Path,
                        data_root: Path = Path("data/parquet"), seq_len: int = 96) -> dict[str, Any]:
    """Score an ETT forecast file (one row per test window, in test order, scaled space)."""
    from replibench.families.ett.datasets.ett import FAMILY, dataset_by_name
    from replibench.families.ett.metrics.forecast import METRICS
    from replibench.families.ett.tasks.forecast import FORECAST, forecast_metrics, table_to_predictions
    from replibench.families.ett.tasks.timeseries import load_series

    spec = dataset_by_name(dataset)
    series_dir = Path(data_root) / FAMILY / spec.name
    if not (series_dir / "series.parquet").is_file():
        raise DataError(f"{series_dir}/series.parquet not found: run `snakemake {series_dir}` first "
                        "or pass --data-root")
    data = load_series(series_dir, dataset=spec.name, seq_len=seq_len, pred_len=horizon)
    forecasts = table_to_predictions(_read_parquet(pred), channels=data.channels,
                                     windows=data.window_count("test"), horizon=horizon, source=str(pred))
    metrics = forecast_metrics(forecasts, FORECAST.targets(data, "test"))
    record = {
        "dataset": spec.name, "task": "forecast", "variant": f"h{horizon}", "split": "test",
        "metrics": metrics,
        "metric_info": {k: {"direction": v.direction, "unit": v.unit} for k, v in METRICS.items()},
        "protocol": {"seq_len": seq_len, "pred_len": horizon, "test_windows": data.window_count("test"),
                     "features": "M", "scaled": True},
        "predictions": {"path": str(pred), "sha256": sha256_file(pred)},
    }
    write_json_atomic(out, record)
    print(f"{spec.display_name} h{horizon}: MSE {metrics['mse']:.6f} MAE {metrics['mae']:.6f} "
          f"over {data.window_count('test')} windows → {out}")
    return record


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
    variant = f"k{result['counts']['k_max']}" if task == "csp" else "default"
    metrics, unavailable = flatten_evaluation(result, primary_variant=variant)
    info = {name: metric_info_for(name) for name in metrics}
    record = {
        "task": task, "dataset": dataset, "convention": convention, "variant": variant, "split": "test",
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


def _oc20_split_name(truth: Path) -> str:
    """``val_id`` for ``…/s2ef-2m/val_id`` (a shard folder) or ``…/val_id.parquet``."""
    truth = Path(truth)
    return truth.name if truth.is_dir() else truth.stem


def score_oc20_files(*, task: str, preds: list[Path], truths: list[Path], out: Path,
                     energy_column: str = "energy_ref") -> dict[str, Any]:
    """Score OC20 prediction files (S2EF or IS2RE) against preprocessed splits with our metric code.

    One ``--pred``/``--truth`` pair gives the split's metrics under their plain names; several
    pairs (the truths named by their split, e.g. ``…/val_id``) give ``<split>_<metric>`` and, for
    the four validation splits, ``val_avg_<metric>`` — exactly what the leaderboard shows.
    """
    from replibench.families.oc20.datasets.sources import VAL_SPLITS
    from replibench.families.oc20.metrics.energy_forces import (
        ENERGY_THRESHOLD_EV, FORCE_THRESHOLD_EV_PER_A, IS2RE_METRICS, METRICS, S2EF_METRICS, metrics_over_splits,
        split_metric_infos,
    )
    from replibench.families.oc20.metrics.files import score_is2re_files, score_s2ef_files

    if len(preds) != len(truths):
        raise DataError(f"give one --pred per --truth: {len(preds)} predictions, {len(truths)} truths")
    for pred in preds:
        _read_parquet(pred)  # a clear error for a missing or unreadable file
    splits = [_oc20_split_name(t) for t in truths]
    if len(truths) > 1 and (len(set(splits)) != len(splits) or set(splits) - set(VAL_SPLITS)):
        raise DataError(f"several truths must be distinct validation splits named {list(VAL_SPLITS)} "
                        f"(folder or file name); got {splits}")
    if task == "s2ef":
        per_pair = [score_s2ef_files(p, t, energy_column=energy_column) for p, t in zip(preds, truths)]
        names = S2EF_METRICS
    else:
        per_pair = [score_is2re_files(p, t) for p, t in zip(preds, truths)]
        names = IS2RE_METRICS
    if len(per_pair) == 1:
        metrics, info = per_pair[0], {name: METRICS[name] for name in names}
    else:
        metrics, info = metrics_over_splits(dict(zip(splits, per_pair))), split_metric_infos(names)
    record = {
        "task": task, "splits": splits,
        "metrics": metrics,
        "metric_info": {k: {"direction": v.direction, "unit": v.unit} for k, v in info.items() if k in metrics},
        "protocol": {"energy_target": energy_column if task == "s2ef" else "energy_relaxed",
                     "eval_on_free_atoms": task == "s2ef", "energy_threshold_ev": ENERGY_THRESHOLD_EV,
                     **({"force_threshold_ev_per_a": FORCE_THRESHOLD_EV_PER_A} if task == "s2ef" else {}),
                     "split_average": "val_avg_<metric> = unweighted mean over the four val splits"},
        "predictions": [{"path": str(p), "sha256": sha256_file(p)} for p in preds],
        "truth": [str(t) for t in truths],
    }
    write_json_atomic(out, record)
    summary = ", ".join(f"{k} {v:.6g}" for k, v in metrics.items() if k.startswith("val_avg") or len(per_pair) == 1)
    print(f"OC20 {task}: {summary} → {out}")
    return record
