"""``metrics.json`` (one per run, schema-validated) and the tidy results table built from them.

The leaderboard is a pure function of the results table and the paper references; the results
table is built only from ``metrics.json`` files, which are built only from stored predictions.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from replibench.atomic import write_json_atomic
from replibench.errors import DataError

#: columns of results.parquet, in order (one row per run × metric)
RESULT_COLUMNS = (
    "family", "dataset", "task", "model", "variant", "preset", "seed", "split", "metric", "value",
    "direction", "unit", "data_origin", "steps", "epochs", "max_steps", "train_wall_s", "gpu_hours",
    "device", "slurm_job_id", "commit", "config_sha256", "data_sha256", "lock_sha256", "run_id", "metrics_path",
)


def metrics_schema() -> dict[str, Any]:
    return json.loads(resources.files("replibench").joinpath("schemas", "metrics.schema.json").read_text())


def validate_metrics_record(record: dict[str, Any], source: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(metrics_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(record))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise DataError(f"{source}: {where}: {error.message}")


def write_metrics(path: str | Path, record: dict[str, Any]) -> None:
    """Validate ``record`` against ``schemas/metrics.schema.json`` and write it atomically."""
    validate_metrics_record(record, str(path))
    write_json_atomic(path, record)


def read_metrics(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read metrics JSON: {error}") from error
    validate_metrics_record(record, str(path))
    return record


def gpu_hours(record: dict[str, Any]) -> float:
    """Training GPU-hours: wall time × GPUs for CUDA runs, 0 on CPU."""
    device = record["provenance"]["device"]
    if not device.startswith("cuda"):
        return 0.0
    gpus = int(record["protocol"].get("world_size", 1))
    return record["training"]["wall_s"] / 3600.0 * gpus


def record_rows(record: dict[str, Any], metrics_path: str) -> list[dict[str, Any]]:
    """The tidy rows of one metrics.json: one per metric."""
    run_id = "/".join([record["family"], record["dataset"], record["task"], record["model"],
                       record["variant"], f"seed{record['seed']}"])
    provenance, training = record["provenance"], record["training"]
    common = {
        "family": record["family"], "dataset": record["dataset"], "task": record["task"],
        "model": record["model"], "variant": record["variant"], "preset": record["preset"],
        "seed": record["seed"], "split": record["split"],
        "data_origin": record["protocol"].get("data_origin", "official"),
        "steps": training["steps"], "epochs": training["epochs"], "max_steps": training.get("max_steps"),
        "train_wall_s": training["wall_s"], "gpu_hours": gpu_hours(record),
        "device": provenance["device"], "slurm_job_id": provenance.get("slurm_job_id"),
        "commit": provenance["commit"], "config_sha256": provenance["config_sha256"],
        "data_sha256": json.dumps(provenance["data_sha256"], sort_keys=True),
        "lock_sha256": provenance["lock_sha256"], "run_id": run_id, "metrics_path": metrics_path,
    }
    rows = []
    for metric, value in sorted(record["metrics"].items()):
        info = record["metric_info"].get(metric, {})
        rows.append({**common, "metric": metric, "value": value,
                     "direction": info.get("direction"), "unit": info.get("unit")})
    return rows


def gather_results(paths: list[str | Path]):  # -> pandas.DataFrame
    """Read every metrics.json into one tidy table (columns :data:`RESULT_COLUMNS`), sorted."""
    import pandas as pd

    rows = [row for path in paths for row in record_rows(read_metrics(path), str(path))]
    table = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    return table.sort_values(["family", "dataset", "task", "model", "variant", "seed", "metric"],
                             kind="stable").reset_index(drop=True)


def write_results_table(table, path: str | Path) -> None:
    """results.parquet, atomically, with the column order of :data:`RESULT_COLUMNS`."""
    import pyarrow as pa

    from replibench.data.tables import write_parquet_atomic

    write_parquet_atomic(pa.Table.from_pandas(table[list(RESULT_COLUMNS)], preserve_index=False), path)
