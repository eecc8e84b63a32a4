"""Golden CRPS and MASE: GluonTS's own ``gluonts.ev`` evaluation of random sample forecasts.

Usage (a throw-away venv with the GluonTS release uni2ts evaluates with)::

    python3 -m venv /work/venvs/gluonts
    /work/venvs/gluonts/bin/pip install "gluonts==0.14.4" "numpy<2" "pandas<2.2"
    /work/venvs/gluonts/bin/python tools/golden/ett_gluonts_metrics.py [--uni2ts /path/to/uni2ts-checkout]

For two frequencies ("h", seasonality 24, and "15min", 96) a handful of series of different lengths
(one shorter than the seasonality, so GluonTS falls back to lag 1; one with missing values in its
history and in its label, which GluonTS masks) are each forecast 24 steps ahead with 100 random
sample paths (``SampleForecast``), and scored by ``gluonts.model.evaluation.evaluate_forecasts`` with
``axis=None``, ``mask_invalid_label=True``, ``seasonality=get_seasonality(freq)`` and the metric
objects uni2ts uses (``cli/conf/eval/default.yaml``: ``MASE()``,
``MeanWeightedSumQuantileLoss([0.1, …, 0.9])``), plus ``WeightedSumQuantileLoss(q)`` per level.
Everything is float64 (a plain list of dict entries, not ``ListDataset``, which would cast the
targets to float32), so the test can ask for 1e-9 relative. With ``--uni2ts`` the same forecasts
are also scored by uni2ts ``eval_util.evaluation.evaluate_forecasts`` (the function Moirai's table
went through) and the script checks both agree. Only numbers are kept in
``tests/golden/ett_gluonts_metrics.npz``: per frequency ``<f>/histories`` (NaN-padded,
``<f>/lengths`` says how long), ``<f>/targets``, ``<f>/samples``, ``<f>/quantiles`` (GluonTS
``SampleForecast.quantile`` at each level), ``<f>/crps``, ``<f>/mase``, ``<f>/wql``, ``<f>/seasonality``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fixture import upstream_commit, write_fixture  # noqa: E402

OUT = HERE.parents[1] / "tests" / "golden" / "ett_gluonts_metrics.npz"
#: awslabs/gluonts tag v0.14.4 (``git rev-parse 'v0.14.4^{commit}'``)
GLUONTS_V0_14_4 = "0cc3cd95de2a0086f370f5f05d5d5821c604634f"
HORIZON, SAMPLES = 24, 100
LEVELS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
#: history lengths per frequency; the item marked with a NaN gets missing values
CASES = {"h": (200, 150, 96, 60, 30, 20, 120), "15min": (400, 300, 193, 97, 50)}
NAN_ITEM = {"h": 6, "15min": 2}


def build(freq: str, rng: np.random.Generator):
    import pandas as pd

    lengths = CASES[freq]
    period = {"h": 24, "15min": 96}[freq]
    series = [10 + 3 * np.sin(np.arange(n + HORIZON) * 2 * np.pi / period) + rng.normal(0, 1, n + HORIZON)
              for n in lengths]
    nan_item = series[NAN_ITEM[freq]]
    nan_item[[3, 40, 41]] = np.nan  # in the history
    nan_item[lengths[NAN_ITEM[freq]] + 5] = np.nan  # in the label
    start = pd.Period("2016-07-01 00:00", freq=freq)
    dataset = [{"target": s, "start": start, "item_id": f"{freq}-{i}"} for i, s in enumerate(series)]
    samples = np.stack([rng.normal(10, 3, size=(SAMPLES, HORIZON)) for _ in lengths])  # (N, S, H) float64
    return lengths, series, dataset, samples


def evaluate(freq: str, rng: np.random.Generator, uni2ts: Path | None) -> tuple[dict[str, np.ndarray], str]:
    from gluonts.dataset.split import split
    from gluonts.ev.metrics import MASE, MeanWeightedSumQuantileLoss, WeightedSumQuantileLoss
    from gluonts.model.evaluation import evaluate_forecasts
    from gluonts.model.forecast import SampleForecast
    from gluonts.time_feature import get_seasonality

    lengths, series, dataset, samples = build(freq, rng)
    _, template = split(dataset, offset=-HORIZON)
    test_data = template.generate_instances(HORIZON)
    labels = list(test_data.label)
    inputs = list(test_data.input)
    for n, entry, label in zip(lengths, inputs, labels):
        assert len(entry["target"]) == n and len(label["target"]) == HORIZON and label["target"].dtype == np.float64
    forecasts = [SampleForecast(samples=samples[i], start_date=label["start"], item_id=label["item_id"])
                 for i, label in enumerate(labels)]
    seasonality = get_seasonality(freq)
    metrics = [MASE(), MeanWeightedSumQuantileLoss(quantile_levels=LEVELS),
               *[WeightedSumQuantileLoss(q=q) for q in LEVELS]]
    kwargs = dict(test_data=test_data, metrics=metrics, axis=None, mask_invalid_label=True,
                  allow_nan_forecast=False, seasonality=seasonality)
    result = evaluate_forecasts(forecasts, **kwargs)
    values = {column: float(result[column].iloc[0]) for column in result.columns}
    note = ""
    if uni2ts is not None:
        sys.path.insert(0, str(uni2ts / "src"))
        from uni2ts.eval_util.evaluation import evaluate_forecasts as uni2ts_evaluate

        theirs = uni2ts_evaluate(forecasts, batch_size=3, **kwargs)
        for column in result.columns:
            a, b = values[column], float(theirs[column].iloc[0])
            assert abs(a - b) <= 1e-12 * abs(a), (freq, column, a, b)
        note = (f"; uni2ts@{upstream_commit(uni2ts)} eval_util.evaluation.evaluate_forecasts(batch_size=3) "
                "agrees to 1e-12")
    width = max(lengths)
    histories = np.full((len(lengths), width), np.nan)
    for i, entry in enumerate(inputs):
        histories[i, :lengths[i]] = entry["target"]
    arrays = {
        f"{freq}/histories": histories, f"{freq}/lengths": np.array(lengths),
        f"{freq}/targets": np.stack([label["target"] for label in labels]), f"{freq}/samples": samples,
        f"{freq}/quantiles": np.stack([np.stack([f.quantile(q) for f in forecasts]) for q in LEVELS]),
        f"{freq}/levels": np.array(LEVELS), f"{freq}/seasonality": np.array(seasonality),
        f"{freq}/mase": np.array(values["MASE[0.5]"]),
        f"{freq}/crps": np.array(values["mean_weighted_sum_quantile_loss"]),
        f"{freq}/wql": np.array([values[f"weighted_sum_quantile_loss[{q}]"] for q in LEVELS]),
    }
    print(f"{freq}: seasonality {seasonality}, MASE {values['MASE[0.5]']!r}, "
          f"CRPS {values['mean_weighted_sum_quantile_loss']!r}{note}")
    return arrays, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uni2ts", type=Path, default=None, help="optional uni2ts checkout to cross-check with")
    args = parser.parse_args()
    import gluonts
    import pandas as pd

    if gluonts.__version__ != "0.14.4":
        raise SystemExit(f"expected gluonts 0.14.4 (what uni2ts pins), found {gluonts.__version__}")
    from gluonts.time_feature import get_seasonality

    rng = np.random.default_rng(5)
    arrays, notes = {}, []
    for freq in CASES:
        part, note = evaluate(freq, rng, args.uni2ts.resolve() if args.uni2ts else None)
        arrays.update(part)
        notes.append(note)
    aliases = ["h", "H", "15min", "15T"]
    arrays["seasonality_of/aliases"] = np.array([get_seasonality(f) for f in aliases])
    write_fixture(OUT, arrays, repo="awslabs/gluonts", commit=GLUONTS_V0_14_4, weight_map={},
                  generator="tools/golden/ett_gluonts_metrics.py",
                  notes=(f"gluonts {gluonts.__version__} (PyPI, = tag v0.14.4), numpy {np.__version__}, pandas "
                         f"{pd.__version__}: model.evaluation.evaluate_forecasts(axis=None, mask_invalid_label=True) "
                         f"with ev.metrics MASE(), MeanWeightedSumQuantileLoss(0.1..0.9), WeightedSumQuantileLoss(q); "
                         f"float64; horizon {HORIZON}, {SAMPLES} samples; history lengths {CASES}; items "
                         f"{NAN_ITEM} have NaN at history steps 3, 40, 41 and label step 5; "
                         f"seasonality_of/aliases = get_seasonality of {aliases}{''.join(dict.fromkeys(notes))}"))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
