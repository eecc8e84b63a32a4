"""Bring your own predictions, OC20: ``replibench metrics oc20 s2ef|is2re`` (see :mod:`replibench.byo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replibench.atomic import write_json_atomic
from replibench.byo import read_predictions_parquet
from replibench.data.checksum import sha256_file
from replibench.errors import DataError


def _oc20_split_name(truth: Path) -> str:
    """``val_id`` for ``…/s2ef-2m/val_id`` (a shard folder) or ``…/val_id.parquet``."""
    truth = Path(truth)
    return truth.name if truth.is_dir() else truth.stem


def add_oc20_arguments(parser, task: str) -> None:  # (argparse.ArgumentParser, str) -> None
    parser.add_argument("--pred", dest="preds", required=True, nargs="+", type=Path,
                        help="prediction Parquet file(s)")
    parser.add_argument("--truth", dest="truths", required=True, nargs="+", type=Path,
                        help="preprocessed split(s): a Parquet file or a folder of part-*.parquet (one per --pred)")
    parser.add_argument("--out", required=True, type=Path)
    if task == "s2ef":
        parser.add_argument("--energy-column", default="energy_ref", choices=("energy_ref", "energy"),
                            help="truth energy: adsorption (OC20 models, default) or total DFT energy")


def score_oc20_files(*, task: str, preds: list[Path], truths: list[Path], out: Path,
                     energy_column: str = "energy_ref") -> dict[str, Any]:
    """Score OC20 prediction files (S2EF or IS2RE) against preprocessed splits with our metric code.

    One ``--pred``/``--truth`` pair gives the split's metrics under their plain names; several
    pairs (the truths named by their split, e.g. ``…/val_id``) give ``<split>_<metric>`` and, for
    the four validation splits, ``val_avg_<metric>`` — exactly what the leaderboard shows.
    """
    from replibench.families.oc20.types import VAL_SPLITS
    from replibench.families.oc20.metrics.energy_forces import (
        ENERGY_THRESHOLD_EV, FORCE_THRESHOLD_EV_PER_A, IS2RE_METRICS, METRICS, S2EF_METRICS, metrics_over_splits,
        split_metric_infos,
    )
    from replibench.families.oc20.metrics.files import score_is2re_files, score_s2ef_files

    if len(preds) != len(truths):
        raise DataError(f"give one --pred per --truth: {len(preds)} predictions, {len(truths)} truths")
    for pred in preds:
        read_predictions_parquet(pred)  # a clear error for a missing or unreadable file
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
