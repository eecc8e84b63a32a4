"""Bring your own predictions, ETT: ``replibench metrics ett forecast`` (see :mod:`replibench.byo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replibench.atomic import write_json_atomic
from replibench.byo import read_predictions_parquet
from replibench.data.checksum import sha256_file
from replibench.errors import DataError


def add_forecast_arguments(parser) -> None:  # (argparse.ArgumentParser) -> None
    from replibench.families.ett.family import HORIZONS

    parser.add_argument("--dataset", required=True, help="ETTh1, ETTh2, ETTm1 or ETTm2")
    parser.add_argument("--horizon", required=True, type=int, choices=HORIZONS)
    parser.add_argument("--pred", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--data-root", type=Path, default=Path("data/parquet"),
                        help="where the preprocessed datasets are (default: data/parquet)")


def score_forecast_file(*, dataset: str, horizon: int, pred: Path, out: Path,
                        data_root: Path = Path("data/parquet"), seq_len: int = 96) -> dict[str, Any]:
    """Score an ETT forecast file (one row per test window, in test order, scaled space)."""
    from replibench.families.ett.datasets.ett import FAMILY, dataset_by_name
    from replibench.families.ett.family import variant_name, variant_values
    from replibench.families.ett.metrics.forecast import METRICS
    from replibench.families.ett.tasks.forecast import FORECAST, forecast_metrics, table_to_predictions
    from replibench.families.ett.tasks.timeseries import load_series

    spec = dataset_by_name(dataset)
    series_dir = Path(data_root) / FAMILY / spec.name
    if not (series_dir / "series.parquet").is_file():
        raise DataError(f"{series_dir}/series.parquet not found: run `snakemake {series_dir}` first "
                        "or pass --data-root")
    data = load_series(series_dir, dataset=spec.name, seq_len=seq_len, pred_len=horizon)
    forecasts = table_to_predictions(read_predictions_parquet(pred), channels=data.channels,
                                     windows=data.window_count("test"), horizon=horizon, source=str(pred))
    metrics = forecast_metrics(forecasts, FORECAST.targets(data, "test"))
    values = variant_values("forecast", horizon)
    record = {
        "dataset": spec.name, "task": "forecast", "variant": variant_name("forecast", values),
        "variant_values": values, "split": "test",
        "metrics": metrics,
        "metric_info": {k: {"direction": v.direction, "unit": v.unit} for k, v in METRICS.items()},
        "protocol": {"seq_len": seq_len, "pred_len": horizon, "test_windows": data.window_count("test"),
                     "features": "M", "scaled": True},
        "predictions": {"path": str(pred), "sha256": sha256_file(pred)},
    }
    write_json_atomic(out, record)
    print(f"{spec.display_name} {record['variant']}: MSE {metrics['mse']:.6f} MAE {metrics['mae']:.6f} "
          f"over {data.window_count('test')} windows → {out}")
    return record
