"""Golden CRPS and MASE: uni2ts's evaluation (GluonTS ``gluonts.ev`` metrics) on random sample forecasts.

Usage (in the throw-away venv of ``ett_moirai_moe.py``: gluonts 0.14.4, pandas, numpy<2, torch …):

    python tools/golden/ett_gluonts_metrics.py /path/to/uni2ts-checkout   # at 8d2a08df4512ab3551e53dfbb7c147e95f06731b

Six hourly series of different lengths (one shorter than the seasonality 24, so GluonTS falls back
to lag 1), each forecast 24 steps ahead with 100 random sample paths; scored by uni2ts
``eval_util.evaluation.evaluate_forecasts`` with ``axis=None`` and the metric objects of uni2ts
``cli/conf/eval/default.yaml`` (``MASE()``, ``MeanWeightedSumQuantileLoss([0.1, …, 0.9])``),
seasonality from ``get_seasonality("h")`` as ``cli/eval.py`` passes it. Writes
``tests/golden/ett_gluonts_metrics.npz``: the histories (padded with NaN to one length, ``length/i``
says how long), targets, samples (all float32, as GluonTS holds them) and the two numbers. GluonTS
computes in float32 (our functions in float64): the test allows 1e-6 relative. Only numbers are kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fixture import upstream_commit, write_fixture  # noqa: E402

OUT = HERE.parents[1] / "tests" / "golden" / "ett_gluonts_metrics.npz"
HORIZON, SAMPLES, LENGTHS = 24, 100, (200, 150, 96, 60, 30, 20)


def main(checkout: Path) -> None:
    sys.path.insert(0, str(checkout / "src"))
    import gluonts
    import pandas as pd
    from gluonts.dataset.common import ListDataset
    from gluonts.dataset.split import split
    from gluonts.ev.metrics import MASE, MeanWeightedSumQuantileLoss
    from gluonts.model.forecast import SampleForecast
    from gluonts.time_feature import get_seasonality

    from uni2ts.eval_util.evaluation import evaluate_forecasts

    rng = np.random.default_rng(5)
    # float32 values: ListDataset stores targets as float32, so the fixture records what GluonTS scored
    series = [(10 + 3 * np.sin(np.arange(n + HORIZON) * 2 * np.pi / 24) + rng.normal(0, 1, n + HORIZON))
              .astype(np.float32) for n in LENGTHS]
    start = pd.Period("2016-07-01 00:00", freq="h")
    dataset = ListDataset([{"target": s, "start": start} for s in series], freq="h")
    _, template = split(dataset, offset=-HORIZON)
    test_data = template.generate_instances(HORIZON)
    samples = np.stack([rng.normal(10, 3, size=(SAMPLES, HORIZON)) for _ in LENGTHS]).astype(np.float32)  # (N, S, H)
    forecasts = [SampleForecast(samples=samples[i], start_date=label["start"])
                 for i, label in enumerate(test_data.label)]
    levels = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    result = evaluate_forecasts(forecasts, test_data=test_data,
                                metrics=[MASE(), MeanWeightedSumQuantileLoss(quantile_levels=levels)],
                                axis=None, seasonality=get_seasonality("h"))
    values = {column: float(result[column].iloc[0]) for column in result.columns}
    mase_key = next(k for k in values if k.startswith("MASE"))
    crps_key = next(k for k in values if k.startswith("mean_weighted_sum_quantile_loss"))
    width = max(LENGTHS)
    histories = np.full((len(LENGTHS), width), np.nan)
    for i, s in enumerate(series):
        histories[i, :LENGTHS[i]] = s[:LENGTHS[i]]
    arrays = {"histories": histories, "lengths": np.array(LENGTHS), "targets": np.stack([s[-HORIZON:] for s in series]),
              "samples": samples, "mase": np.array(values[mase_key]), "crps": np.array(values[crps_key]),
              "seasonality": np.array(get_seasonality("h"))}
    write_fixture(OUT, arrays, repo="SalesforceAIResearch/uni2ts", commit=upstream_commit(checkout), weight_map={},
                  generator="tools/golden/ett_gluonts_metrics.py",
                  notes=f"uni2ts evaluate_forecasts(axis=None) with gluonts {gluonts.__version__}: {mase_key}, "
                        f"{crps_key}; hourly, horizon 24, 100 samples, history lengths {LENGTHS}")
    print(f"wrote {OUT}: {values}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} /path/to/uni2ts-checkout")
    main(Path(sys.argv[1]).resolve())
