"""Flat files for DVC, from every run's metrics.json (any family): ``dvc metrics`` reads one
nested JSON of the numbers, ``dvc plots`` one CSV of training curve per run.

metrics.json → ``{family: {dataset: {task: {model: {variant: {"seed<seed>": {metric: value}}}}}}}``
(DVC shows keys as ``ett.etth1.forecast.dlinear.h96.seed2021.mse``); a metric without a value
(null) is left out. Curves: ``<curves_dir>/<family>__<dataset>__<task>__<model>__<variant>__seed<seed>.csv``
with columns ``epoch, step, lr, train_loss, val_loss`` (runs without training epochs have none).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

CURVE_COLUMNS = ("epoch", "step", "lr", "train_loss", "val_loss")


def nested_metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for record in records:
        leaf = tree
        for key in (record["family"], record["dataset"], record["task"], record["model"], record["variant"],
                    f"seed{record['seed']}"):
            leaf = leaf.setdefault(key, {})
        leaf.update({name: value for name, value in sorted(record["metrics"].items()) if value is not None})
    return tree


def curve_csv(record: dict[str, Any]) -> str | None:
    curve = record["training"].get("curve") or []
    if not curve:
        return None
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CURVE_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in curve:
        writer.writerow({column: "" if row.get(column) is None else repr(row[column]) for column in CURVE_COLUMNS})
    return buffer.getvalue()


def summary_stage(*, metrics_paths: list[Path], metrics_out: Path, curves_dir: Path) -> None:
    from replibench.atomic import write_json_atomic, write_text_atomic
    from replibench.results import read_metrics

    records = [read_metrics(path) for path in metrics_paths]
    write_json_atomic(metrics_out, nested_metrics(records))
    curves_dir = Path(curves_dir)
    curves_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for record in records:
        text = curve_csv(record)
        if text is None:
            continue
        name = "__".join([record["family"], record["dataset"], record["task"], record["model"], record["variant"],
                          f"seed{record['seed']}"]) + ".csv"
        write_text_atomic(curves_dir / name, text)
        written += 1
    print(f"{metrics_out}: {len(records)} runs; {written} training curves in {curves_dir}")
