"""``metrics.json`` (one per run, schema-validated) and the tidy results table built from them.

The leaderboard is a pure function of the results table and the paper references; the results
table is built only from ``metrics.json`` files, which are built only from stored predictions.

Two origins of a metrics.json: ``local`` (``results/<run>/metrics.json``, made by this checkout's
``snakemake``) and ``recorded`` (``recorded/<run>/metrics.json``, committed to git: a run made
elsewhere — a long CPU run, a cluster, a lent GPU — copied there by ``replibench record``). When both
hold the same run (run id and preset), the recorded one is used and the local one is set aside: a
recorded run is the one anybody with the repository can inspect, and re-recording is how it is
replaced. A replaced recording is kept under ``recorded/<run>/superseded/`` and listed by the report
(with its device and numbers) but not counted in any row.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from replibench.atomic import write_json_atomic
from replibench.errors import DataError

#: columns of results.parquet, in order (one row per run × metric): the run's coordinates, the
#: metric, then provenance (what was run, on what data, where, for how long). ``variant_values`` is
#: the JSON text of the run's typed variant values (sorted keys); a derived row holds the values its
#: rows share, null where they differ (ETT's Avg over horizons).
RESULT_COLUMNS = (
    "family", "dataset", "task", "model", "variant", "variant_values", "preset", "seed", "split", "metric",
    "value", "direction", "unit", "comparison_only", "data_origin", "steps", "epochs", "max_steps", "train_wall_s",
    "evaluate_wall_s",
    "gpu_hours", "cpu_hours", "device", "slurm_job_id", "commit", "commit_dirty", "config_sha256", "data_sha256",
    "lock_sha256", "created", "run_id", "metrics_path", "origin",
)

LOCAL = "local"
RECORDED = "recorded"

#: the columns a results table must have to be compared or reported (older tables may lack others)
RESULT_KEY_COLUMNS = ("family", "dataset", "task", "model", "variant", "preset", "seed", "split", "metric",
                      "value", "direction", "unit", "data_origin", "run_id")


def results_schema():  # -> pa.Schema (pyarrow imported lazily)
    """The explicit Arrow schema of ``results.parquet`` (columns :data:`RESULT_COLUMNS`)."""
    import pyarrow as pa

    string, integer, number = pa.string(), pa.int64(), pa.float64()
    types = {"seed": integer, "value": number, "steps": integer, "epochs": integer, "max_steps": integer,
             "train_wall_s": number, "evaluate_wall_s": number, "gpu_hours": number, "cpu_hours": number,
             "commit_dirty": pa.bool_(),
             "comparison_only": pa.bool_()}
    return pa.schema([pa.field(name, types.get(name, string)) for name in RESULT_COLUMNS])


def metrics_schema() -> dict[str, Any]:
    return json.loads(resources.files("replibench").joinpath("schemas", "metrics.schema.json").read_text())


def validate_metrics_record(record: dict[str, Any], source: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(metrics_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(record))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise DataError(f"{source}: {where}: {error.message}")


def write_metrics(path: str | Path, record: dict[str, Any], *, validate: bool = True) -> None:
    """Validate ``record`` against ``schemas/metrics.schema.json`` and write it atomically.

    ``validate=False`` is for a machine without jsonschema (``benchmarks/gpu_reproduce.py`` on a
    bare GPU host): the record is then validated when it is read back (:func:`read_metrics`)."""
    if validate:
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
    """GPU-hours of the run: each stage's wall time × GPUs where that stage ran on CUDA, 0 on CPU.

    Training's device is ``training.device``, evaluation's is ``provenance.device``; the number of
    GPUs is ``protocol.world_size`` (1 when absent).
    """
    gpus = int(record["protocol"].get("world_size", 1))
    training, provenance = record["training"], record["provenance"]
    train_device = training.get("device") or provenance["device"]
    hours = training["wall_s"] / 3600.0 if train_device.startswith("cuda") else 0.0
    if provenance["device"].startswith("cuda"):
        hours += provenance.get("evaluate_wall_s", 0.0) / 3600.0
    return hours * gpus


def cpu_hours(record: dict[str, Any]) -> float:
    """CPU-hours of the run: each stage's wall time (hours) where that stage ran on the CPU, 0 where
    it ran on a GPU (counted by :func:`gpu_hours`). Wall-clock hours of one process, not core-hours:
    the threads a stage used are not multiplied in (metrics.json does not record them per stage)."""
    training, provenance = record["training"], record["provenance"]
    train_device = training.get("device") or provenance["device"]
    hours = training["wall_s"] / 3600.0 if train_device.startswith("cpu") else 0.0
    if provenance["device"].startswith("cpu"):
        hours += provenance.get("evaluate_wall_s", 0.0) / 3600.0
    return hours


def run_id_of(record: dict[str, Any]) -> str:
    """``family/dataset/task/model/variant/seed<N>``: the run's path under results/ and recorded/."""
    return "/".join([record["family"], record["dataset"], record["task"], record["model"],
                     record["variant"], f"seed{record['seed']}"])


def record_rows(record: dict[str, Any], metrics_path: str, origin: str = LOCAL) -> list[dict[str, Any]]:
    """The tidy rows of one metrics.json: one per metric; ``origin`` is local or recorded."""
    run_id = run_id_of(record)
    provenance, training = record["provenance"], record["training"]
    common = {
        "family": record["family"], "dataset": record["dataset"], "task": record["task"],
        "model": record["model"], "variant": record["variant"],
        "variant_values": json.dumps(record["variant_values"], sort_keys=True), "preset": record["preset"],
        "seed": record["seed"], "split": record["split"],
        "data_origin": record["protocol"].get("data_origin", "official"),
        "steps": training["steps"], "epochs": training["epochs"], "max_steps": training.get("max_steps"),
        "train_wall_s": training["wall_s"], "evaluate_wall_s": provenance.get("evaluate_wall_s"),
        "gpu_hours": gpu_hours(record), "cpu_hours": cpu_hours(record), "device": provenance["device"],
        "slurm_job_id": provenance.get("slurm_job_id"), "commit": provenance["commit"],
        "commit_dirty": provenance.get("commit_dirty"), "config_sha256": provenance["config_sha256"],
        "data_sha256": json.dumps(provenance["data_sha256"], sort_keys=True),
        "lock_sha256": provenance["lock_sha256"], "created": provenance["created"], "run_id": run_id,
        "metrics_path": metrics_path, "origin": origin,
    }
    rows = []
    for metric, value in sorted(record["metrics"].items()):
        info = record["metric_info"].get(metric, {})
        rows.append({**common, "metric": metric, "value": value,
                     "direction": info.get("direction"), "unit": info.get("unit"),
                     "comparison_only": bool(info.get("comparison_only", False))})
    return rows


def read_runs(paths: list[str | Path], recorded_paths: list[str | Path] = ()) -> tuple[list, list[Path]]:
    """Read local and recorded metrics.json files: ``([(path, origin, record), …], superseded)``.

    Two files of the same run (run id and preset) of the same origin are refused: the table would
    count that run twice. A local run that is also recorded is set aside (listed in ``superseded``):
    the recorded one is used.
    """
    chosen: dict[tuple[str, str], tuple[Path, str, dict[str, Any]]] = {}
    superseded: list[Path] = []
    for origin, group in ((RECORDED, recorded_paths), (LOCAL, paths)):
        mine: dict[tuple[str, str], Path] = {}
        for path in group:
            path = Path(path)
            record = read_metrics(path)
            key = (run_id_of(record), record["preset"])
            if key in mine:
                raise DataError(f"{path}: run {key[0]} ({key[1]}) was already read from {mine[key]}")
            mine[key] = path
            if key in chosen:  # local, already recorded
                superseded.append(path)
                continue
            chosen[key] = (path, origin, record)
    return list(chosen.values()), superseded


def results_from_runs(runs: list):  # -> pandas.DataFrame
    """The tidy table (columns :data:`RESULT_COLUMNS`) of :func:`read_runs`' runs, sorted."""
    import pandas as pd

    rows = [row for path, origin, record in runs for row in record_rows(record, str(path), origin)]
    table = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    return table.sort_values(["family", "dataset", "task", "model", "variant", "seed", "metric"],
                             kind="stable").reset_index(drop=True)


def gather_results(paths: list[str | Path], recorded_paths: list[str | Path] = ()):  # -> pandas.DataFrame
    """Read every metrics.json into one tidy table (columns :data:`RESULT_COLUMNS`), sorted;
    recorded runs replace local runs of the same run id and preset (:func:`read_runs`)."""
    return results_from_runs(read_runs(paths, recorded_paths)[0])


def write_results_table(table, path: str | Path) -> None:
    """results.parquet, atomically, with the explicit schema of :func:`results_schema`."""
    import pyarrow as pa

    from replibench.data.tables import write_parquet_atomic

    schema = results_schema()
    write_parquet_atomic(pa.Table.from_pandas(table[list(RESULT_COLUMNS)], schema=schema, preserve_index=False),
                         path, schema=schema)


def read_results_table(path: str | Path):  # -> pandas.DataFrame
    """Read a ``results.parquet``; it must have at least :data:`RESULT_KEY_COLUMNS` (a table
    written by an older version may lack later provenance columns, which are then empty)."""
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path).to_pandas()
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read a results table: {error}") from error
    missing = [name for name in RESULT_KEY_COLUMNS if name not in table.columns]
    if missing:
        raise DataError(f"{path}: not a results table: missing columns {missing} (found {list(table.columns)})")
    for name in RESULT_COLUMNS:
        if name not in table.columns:
            table[name] = pd.NA
    return table


def record_run(metrics_path: str | Path, recorded_dir: str | Path = "recorded", *, replace: bool = False) -> Path:
    """Copy a run's metrics.json, byte for byte, to ``<recorded_dir>/<run id>/metrics.json``.

    The record is schema-validated first and its destination follows from its own fields (family,
    dataset, task, model, variant, seed), not from where it was found. Only ``paper``-preset runs
    are recorded: a smoke run is cheap to remake and never counts as a reproduction. An existing,
    different recorded file is replaced only with ``replace=True``. Returns the destination.
    """
    from replibench.atomic import write_text_atomic

    source = Path(metrics_path)
    record = read_metrics(source)
    if record["preset"] != "paper":
        raise DataError(f"{source}: preset {record['preset']!r}: only paper-preset runs are recorded "
                        "(a smoke run is remade by `snakemake` and never counts as a reproduction)")
    destination = Path(recorded_dir) / run_id_of(record) / "metrics.json"
    text = source.read_text(encoding="utf-8")
    if destination.is_file():
        old_text = destination.read_text(encoding="utf-8")
        if old_text == text:
            return destination
        if not replace:
            raise DataError(f"{destination}: a different recording of run {run_id_of(record)} is already there; "
                            "pass --replace to replace it (the old one moves to superseded/ and stays listed)")
        old = read_metrics(destination)
        kept = superseded_path(destination, old)
        if kept.exists():
            raise DataError(f"{kept}: already holds a superseded recording made at the same time; "
                            "remove one of them by hand")
        kept.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(kept, old_text)  # kept first: a crash between the two writes loses nothing
    destination.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(destination, text)
    return destination


def superseded_path(recorded_file: Path, record: dict[str, Any]) -> Path:
    """Where a replaced recording is kept: ``<run>/superseded/<its creation time>.json`` (the run's
    earlier result stays in the tree, listed by the report, not counted in its rows)."""
    created = str(record["provenance"]["created"]).replace(":", "-")
    return recorded_file.parent / "superseded" / f"{created}.json"


def read_superseded(paths: list[str | Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Superseded recordings (``recorded/<run>/superseded/*.json``), validated, oldest first per run."""
    records = [(Path(path), read_metrics(path)) for path in paths]
    return sorted(records, key=lambda item: (run_id_of(item[1]), str(item[1]["provenance"]["created"])))
