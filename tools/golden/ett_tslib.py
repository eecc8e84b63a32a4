"""Golden outputs of the ETT models and the ETTh1 windows, computed by Time-Series-Library (TSLib).

Usage::

    python tools/golden/ett_tslib.py /path/to/Time-Series-Library-checkout [/path/to/ETTh1-folder]

The checkout must be thuml/Time-Series-Library at the commit the research notes pin (``4e938a1``,
2026-04-18). The paper-era commit differs in one place: at ``e08ddc0`` (2023-02-13, TSLib's init;
thuml/TimesNet holds no code) a TimesBlock padded a fold with the window's **last steps**;
``fd74cbc`` (2023-02-22) made that zeros, as TSLib has done since and as we do. Loaded with these
fixtures' weights, ``e08ddc0``'s TimesNet gives the ETTh1 window's forecast to 2e-16 but the random
batch's to 3.1e-3 (max abs; imputation 5e-10); DLinear is identical at both commits. The ETTh1
folder defaults to ``/work/shared/data/ett`` (the pinned ETDataset CSVs).

Writes (float64, upstream modules imported from the checkout, nothing of them copied here):

* ``tests/golden/ett_timesnet_forecast.npz`` and ``ett_timesnet_impute.npz`` — TimesNet
  (``task_name`` long_term_forecast / imputation) on two batches: two random windows, and the
  first ETTh1 test window with its calendar features; the outputs and, per layer, the FFT-chosen
  periods and their softmax mixing weights.
* ``tests/golden/ett_dlinear.npz`` — DLinear (``individual=False``) on the same inputs.
* ``tests/golden/ett_data_etth1.npz`` and ``ett_data_ettm1.npz`` — ``Dataset_ETT_hour`` /
  ``Dataset_ETT_minute`` (features M, timeF, freq h as the scripts run them, also for ETTm1): window
  counts of every split and horizon, the train scaler's mean/scale, and the first and last test
  windows (inputs, targets, calendar features) at horizon 96.

Small sizes keep the fixtures tens of KB: horizon 24 (input 96, so TimesNet folds 120 steps and pads
for most periods), d_model 4, d_ff 8, 3 Inception kernels (1, 3, 5) instead of the scripts'
16/32/6 — the code path is the same loop, only shorter. Weights are drawn at random
on a coarse binary grid, stored as float32 (exact: 4-bit mantissas) and used in float64.

TSLib's ``data_provider.data_loader`` imports sktime, datasets, huggingface_hub and patoolib at
import time for other datasets; they are replaced by empty stand-in modules here, since the ETT
loader does not call them when the CSV is present.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np

REPO = "thuml/Time-Series-Library"
ROOT = Path(__file__).resolve().parents[2]


def _stub_modules() -> None:
    """Empty stand-ins for loader imports that the ETT path never calls."""
    for name, attrs in (("sktime", {}), ("sktime.datasets", {"load_from_tsfile_to_dataframe": None}),
                        ("datasets", {"load_dataset": None}), ("huggingface_hub", {"hf_hub_download": None}),
                        ("patoolib", {})):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            sys.modules[name] = module


def _configs(**values):
    return types.SimpleNamespace(**values)


def _randomise(model, seed: int) -> None:
    """Replace every parameter with random values k/8 · 2^-e (exact in float64, few distinct values
    so the fixture compresses), 2^-e ≈ 1/sqrt(fan_in)."""
    import math

    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            fan_in = parameter[0].numel() if parameter.dim() > 1 else parameter.numel()
            scale = 2.0 ** -round(math.log2(max(fan_in, 1) ** 0.5))
            values = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            parameter.copy_(torch.round(values * 8) / 8 * scale)


def _stored(parameter) -> np.ndarray:
    """A grid weight as float32: exact (k/8 · 2^-e has a 4-bit mantissa), half the bytes; the test
    casts it back to float64."""
    values = parameter.detach().numpy()
    stored = values.astype(np.float32)
    assert np.array_equal(stored.astype(np.float64), values), "weights must be exact in float32"
    return stored


def _period_hooks(blocks, fft_for_period, top_k: int, record: list):
    """Forward pre-hooks that record each block's FFT periods and softmax weights on its input."""
    import torch

    def hook(_module, inputs):
        periods, weights = fft_for_period(inputs[0], top_k)
        record.append((np.asarray(periods, dtype=np.int64), torch.softmax(weights, dim=1).detach().numpy()))

    return [block.register_forward_pre_hook(hook) for block in blocks]


def _timesnet_weight_map(state_names) -> dict[str, str]:
    """Upstream TimesNet parameter name → ours (no transforms: same shapes)."""
    renames = (("enc_embedding.value_embedding.tokenConv.", "embedding.value."),
               ("enc_embedding.temporal_embedding.embed.", "embedding.temporal."),
               ("model.", "blocks."))
    out = {}
    for name in state_names:
        ours = name
        for old, new in renames:
            if ours.startswith(old):
                ours = new + ours[len(old):]
        out[name] = ours
    return out


def etth1_first_test_window(dataset_module, data_folder: Path, pred_len: int):
    """TSLib's first ETTh1 test window at seq_len 96: (x (1, 96, 7), x_mark (1, 96, 4))."""
    dataset = dataset_module.Dataset_ETT_hour(_configs(augmentation_ratio=0), str(data_folder), flag="test",
                                              size=[96, 48, pred_len], features="M", data_path="ETTh1.csv",
                                              target="OT", scale=True, timeenc=1, freq="h")
    seq_x, _, seq_x_mark, _ = dataset[0]
    return np.asarray(seq_x, dtype=np.float64)[None], np.asarray(seq_x_mark, dtype=np.float64)[None]


def inputs(dataset_module, data_folder: Path) -> dict[str, np.ndarray]:
    """Two batches: two random windows (seed 11, on a 2^-6 grid so they compress) and the first
    ETTh1 test window."""
    rng = np.random.default_rng(11)
    random_x = rng.standard_normal((2, 96, 7)) * np.array([1, 2, 0.5, 1, 3, 1, 0.2]) + rng.standard_normal(7)
    random_x += np.sin(np.arange(96) * 2 * np.pi / 24)[None, :, None]  # a daily cycle, so periods are not noise
    random_x = np.round(random_x * 64) / 64
    random_mark = np.round(rng.uniform(-0.5, 0.5, (2, 96, 4)) * 64) / 64
    real_x, real_mark = etth1_first_test_window(dataset_module, data_folder, 96)
    return {"random_x": random_x, "random_mark": random_mark, "etth1_x": real_x, "etth1_mark": real_mark}


def run_timesnet(task: str, data: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, str], dict]:
    import torch
    from models import TimesNet as upstream

    if task == "forecast":
        config = dict(task_name="long_term_forecast", seq_len=96, label_len=48, pred_len=24, top_k=5)
    else:
        config = dict(task_name="imputation", seq_len=96, label_len=0, pred_len=0, top_k=3)
    config.update(enc_in=7, dec_in=7, c_out=7, d_model=4, d_ff=8, e_layers=2, num_kernels=3, embed="timeF",
                  freq="h", dropout=0.1)
    model = upstream.Model(_configs(**config)).double().eval()
    _randomise(model, seed=21 if task == "forecast" else 22)
    arrays = {f"weight/{k}": _stored(v) for k, v in model.named_parameters()}
    mask_rng = np.random.default_rng(31)
    for batch in ("random", "etth1"):
        x = torch.from_numpy(data[f"{batch}_x"])
        mark = torch.from_numpy(data[f"{batch}_mark"])
        arrays[f"{batch}_x"], arrays[f"{batch}_mark"] = x.numpy(), mark.numpy()
        record: list = []
        hooks = _period_hooks(model.model, upstream.FFT_for_Period, config["top_k"], record)
        with torch.no_grad():
            if task == "forecast":
                out = model(x, mark, None, None)
            else:
                mask = torch.from_numpy((mask_rng.uniform(size=x.shape) > 0.25).astype(np.float64))
                x = x.masked_fill(mask == 0, 0.0)  # TSLib's exp_imputation zeroes masked inputs
                arrays[f"{batch}_x"], arrays[f"{batch}_mask"] = x.numpy(), mask.numpy()
                out = model(x, mark, None, None, mask)
        for hook in hooks:
            hook.remove()
        arrays[f"{batch}_out"] = out.numpy()
        arrays[f"{batch}_periods"] = np.stack([p for p, _ in record])  # (e_layers, k)
        arrays[f"{batch}_period_weights"] = np.stack([w for _, w in record])  # (e_layers, B, k)
    ours = {"task": task, "seq_len": 96, "pred_len": config["pred_len"], "enc_in": 7, "c_out": 7, "d_model": 4,
            "d_ff": 8, "e_layers": 2, "top_k": config["top_k"], "num_kernels": 3, "dropout": 0.1}
    return arrays, _timesnet_weight_map(n for n, _ in model.named_parameters()), ours


def run_dlinear(data: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, str], dict]:
    import torch
    from models import DLinear as upstream

    model = upstream.Model(_configs(task_name="long_term_forecast", seq_len=96, pred_len=24, enc_in=7,
                                    moving_avg=25)).double().eval()
    _randomise(model, seed=23)
    arrays = {f"weight/{k}": _stored(v) for k, v in model.named_parameters()}
    for batch in ("random", "etth1"):
        x = torch.from_numpy(data[f"{batch}_x"])
        arrays[f"{batch}_x"] = x.numpy()
        with torch.no_grad():
            arrays[f"{batch}_out"] = model(x, None, None, None).numpy()
    weight_map = {"Linear_Seasonal.weight": "seasonal.0.weight", "Linear_Seasonal.bias": "seasonal.0.bias",
                  "Linear_Trend.weight": "trend.0.weight", "Linear_Trend.bias": "trend.0.bias"}
    return arrays, weight_map, {"seq_len": 96, "pred_len": 24, "enc_in": 7, "moving_avg": 25, "individual": False}


def run_data(dataset_module, data_folder: Path, name: str) -> dict[str, np.ndarray]:
    """TSLib's ETT loader on ``name`` (ETTh1: Dataset_ETT_hour, ETTm1: Dataset_ETT_minute) with the
    scripts' settings (features M, timeF, freq 'h' — also for the 15-minute file): window counts of
    every split × horizon, the train scaler, and the first/last test windows at horizon 96."""
    loader = dataset_module.Dataset_ETT_hour if name.startswith("ETTh") else dataset_module.Dataset_ETT_minute
    counts = np.zeros((3, 4), dtype=np.int64)
    arrays: dict[str, np.ndarray] = {}
    for j, horizon in enumerate((96, 192, 336, 720)):
        for i, flag in enumerate(("train", "val", "test")):
            dataset = loader(_configs(augmentation_ratio=0), str(data_folder), flag=flag, size=[96, 48, horizon],
                             features="M", data_path=f"{name}.csv", target="OT", scale=True, timeenc=1, freq="h")
            counts[i, j] = len(dataset)
            if flag == "test" and horizon == 96:
                arrays["scaler_mean"] = np.asarray(dataset.scaler.mean_, dtype=np.float64)
                arrays["scaler_scale"] = np.asarray(dataset.scaler.scale_, dtype=np.float64)
                for which, index in (("first", 0), ("last", len(dataset) - 1)):
                    seq_x, seq_y, seq_x_mark, _ = dataset[index]
                    arrays[f"test_{which}_x"] = np.asarray(seq_x, dtype=np.float64)
                    arrays[f"test_{which}_y"] = np.asarray(seq_y, dtype=np.float64)[-horizon:]
                    arrays[f"test_{which}_mark"] = np.asarray(seq_x_mark, dtype=np.float64)
    arrays["window_counts"] = counts  # rows train/val/test, columns horizons 96/192/336/720
    return arrays


def main(argv: list[str]) -> None:
    import json

    sys.path.insert(0, str(ROOT / "tools" / "golden"))
    from fixture import upstream_commit, write_fixture

    checkout = Path(argv[1]).resolve()
    data_folder = Path(argv[2]) if len(argv) > 2 else Path("/work/shared/data/ett")
    commit = upstream_commit(checkout)
    sys.path.insert(0, str(checkout))
    _stub_modules()
    from data_provider import data_loader

    data = inputs(data_loader, data_folder)
    generator = "tools/golden/ett_tslib.py"
    out_dir = ROOT / "tests" / "golden"
    for task in ("forecast", "impute"):
        arrays, weight_map, ours = run_timesnet(task, data)
        path = write_fixture(out_dir / f"ett_timesnet_{task}.npz", arrays, repo=REPO, commit=commit,
                             weight_map=weight_map, generator=generator,
                             notes=json.dumps({"model": "timesnet", "our_config": ours, "dtype": "float64",
                                               "upstream": "models/TimesNet.py, layers/Embed.py, layers/Conv_Blocks.py",
                                               "eval_mode": True, "mask": "uniform > 0.25 observed (impute)"}))
        print(path, path.stat().st_size, "bytes")
    arrays, weight_map, ours = run_dlinear(data)
    path = write_fixture(out_dir / "ett_dlinear.npz", arrays, repo=REPO, commit=commit, weight_map=weight_map,
                         generator=generator, notes=json.dumps({"model": "dlinear", "our_config": ours,
                                                                "dtype": "float64", "upstream": "models/DLinear.py"}))
    print(path, path.stat().st_size, "bytes")
    for name, loader in (("ETTh1", "Dataset_ETT_hour"), ("ETTm1", "Dataset_ETT_minute")):
        path = write_fixture(out_dir / f"ett_data_{name.lower()}.npz", run_data(data_loader, data_folder, name),
                             repo=REPO, commit=commit, weight_map={}, generator=generator,
                             notes=json.dumps({"dataset": name.lower(), "loader": f"data_provider/data_loader.py "
                                               f"{loader}", "seq_len": 96, "label_len": 48, "features": "M",
                                               "timeenc": 1, "freq": "h", "windows_at_horizon": 96}))
        print(path, path.stat().st_size, "bytes")

if __name__ == "__main__":
    main(sys.argv)
