"""Bring your own predictions, LRA: ``replibench metrics lra lra-classify`` (see :mod:`replibench.byo`).

A classifier trained anywhere is scored against the labels of our preprocessed test split with the
papers' metric (accuracy, %), one prediction per test example, keyed by ``example_id``: a missing,
repeated or unknown id is an error that names it, never a silently smaller test set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replibench.atomic import write_json_atomic
from replibench.byo import read_predictions_parquet
from replibench.data.checksum import sha256_file
from replibench.errors import DataError


def add_classify_arguments(parser) -> None:  # (argparse.ArgumentParser) -> None
    from replibench.families.lra.family import GENERATED_STAND_INS, LRA_DATASETS

    parser.add_argument("--dataset", required=True, choices=LRA_DATASETS + tuple(GENERATED_STAND_INS))
    parser.add_argument("--pred", required=True, type=Path,
                        help="Parquet: example_id (int), predicted (int class index), one row per test example")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--data-root", type=Path, default=Path("data/parquet"),
                        help="where the preprocessed datasets are (default: data/parquet)")


def _int_column(table, name: str, source: Path):
    import numpy as np
    import pyarrow as pa

    if name not in table.column_names:
        raise DataError(f"{source}: missing column {name!r}; expected example_id and predicted (found "
                        f"{table.column_names})")
    column = table.column(name)
    if not pa.types.is_integer(column.type):
        raise DataError(f"{source}: column {name!r} must hold integers, found {column.type}")
    if column.null_count:
        first = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{source}: row {first}: {name} is null")
    return column.to_numpy()


def score_classification_file(*, dataset: str, pred: Path, out: Path,
                              data_root: Path = Path("data/parquet")) -> dict[str, Any]:
    """Accuracy (%) of ``pred``'s classes against the labels of ``<data_root>/lra/<dataset>/test.parquet``."""
    import numpy as np
    import pyarrow.parquet as pq

    from replibench.families.lra.metrics.accuracy import METRICS, accuracy

    test_path = Path(data_root) / "lra" / dataset / "test.parquet"
    if not test_path.is_file():
        raise DataError(f"{test_path} not found: run `snakemake {test_path.parent}` first or pass --data-root")
    truth = pq.read_table(test_path, columns=["example_id", "label"])
    ids, labels = truth.column("example_id").to_numpy(), truth.column("label").to_numpy()
    table = read_predictions_parquet(pred)
    pred_ids, predicted = _int_column(table, "example_id", pred), _int_column(table, "predicted", pred)
    unique, first_row, counts = np.unique(pred_ids, return_index=True, return_counts=True)
    if (counts > 1).any():
        repeated = int(unique[counts > 1][0])
        rows = np.flatnonzero(pred_ids == repeated)[:2].tolist()
        raise DataError(f"{pred}: rows {rows}: example_id {repeated} is predicted more than once")
    unknown = np.setdiff1d(pred_ids, ids)
    if unknown.size:
        row = int(np.flatnonzero(pred_ids == unknown[0])[0])
        raise DataError(f"{pred}: row {row}: example_id {int(unknown[0])} is not in {test_path} "
                        f"({unknown.size} unknown ids)")
    missing = np.setdiff1d(ids, pred_ids)
    if missing.size:
        raise DataError(f"{pred}: {missing.size} of {ids.size} test examples have no prediction "
                        f"(first missing example_id {int(missing[0])}); every test example must be predicted")
    order = first_row[np.searchsorted(unique, ids)]  # the prediction row of each test example, in test order
    metrics = {"accuracy": accuracy(labels=labels, predicted=predicted[order])}
    record = {
        "dataset": dataset, "task": "lra-classify", "variant": "default", "variant_values": {}, "split": "test",
        "metrics": metrics,
        "metric_info": {"accuracy": {"direction": METRICS["accuracy"].direction, "unit": METRICS["accuracy"].unit}},
        "protocol": {"test_examples": int(ids.size), "metric": "accuracy (%) on the test split"},
        "predictions": {"path": str(pred), "sha256": sha256_file(pred)},
        "truth": {"path": str(test_path), "sha256": sha256_file(test_path)},
    }
    write_json_atomic(out, record)
    print(f"LRA {dataset}: accuracy {metrics['accuracy']:.4f} % over {ids.size} test examples → {out}")
    return record
