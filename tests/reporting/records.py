"""Hand-built metrics.json records of several families (ETT and two stand-ins shaped like the
crystal and LRA families), so the leaderboard is tested on more than one family's metrics."""

from __future__ import annotations

from pathlib import Path

from replibench.results import write_metrics

SHA = {"a": "a" * 64, "b": "b" * 64, "c": "c" * 64}

METRIC_INFO = {
    "mse": {"direction": "min", "unit": "scaled units²"},
    "mae": {"direction": "min", "unit": "scaled units"},
    "match_rate": {"direction": "max", "unit": "%"},
    "rmse": {"direction": "min", "unit": "Å (normalised)"},
    "accuracy": {"direction": "max", "unit": "%"},
    "mse_droplast32": {"direction": "min", "unit": "scaled units²", "comparison_only": True},
}


def make_record(*, family="ett", dataset="etth1", task="forecast", model="dlinear", variant="h96", seed=2021,
                preset="smoke", metrics=None, steps=100, device="cpu (x86_64, 2 cores)", train_device=None,
                slurm_job_id=None, data_origin=None, wall_s=10.0, evaluate_wall_s=2.0, world_size=None,
                commit="0123456789abcdef0123456789abcdef01234567", curve=True):
    metrics = {"mse": 0.4, "mae": 0.41} if metrics is None else metrics
    protocol = {"test_windows": 2785}
    if data_origin:
        protocol["data_origin"] = data_origin
    if world_size:
        protocol["world_size"] = world_size
    points = [{"epoch": e, "step": e * steps // 3, "lr": 1e-4, "train_loss": 1.0 / e, "val_loss": 1.2 / e}
              for e in (1, 2, 3)] if curve else []
    return {
        "family": family, "dataset": dataset, "task": task, "model": model, "variant": variant,
        "variant_values": fixture_variant_values(task, variant), "seed": seed, "preset": preset, "split": "test",
        "metrics": metrics,
        "metric_info": {name: METRIC_INFO[name] for name in metrics},
        "protocol": protocol,
        "training": {"steps": steps, "epochs": 3, "wall_s": wall_s, "max_steps": None, "curve": points,
                     "device": train_device or device.split(" ")[0]},
        "settings": {},
        "provenance": {"commit": commit, "commit_dirty": False, "config_sha256": SHA["a"],
                       "data_sha256": {f"{dataset}.csv": SHA["b"]}, "lock_sha256": SHA["c"],
                       "packages": {"torch": "2.13.0"}, "device": device, "slurm_job_id": slurm_job_id,
                       "created": "2026-11-27T00:00:00+00:00", "evaluate_wall_s": evaluate_wall_s},
    }


def write_records(root: Path, records: list[dict]) -> list[Path]:
    """Write each record where the workflow would: results/<run>/metrics.json under ``root``."""
    paths = []
    for record in records:
        run = "/".join([record["family"], record["dataset"], record["task"], record["model"], record["variant"],
                        f"seed{record['seed']}"])
        path = Path(root) / "results" / run / "metrics.json"
        write_metrics(path, record)
        paths.append(path)
    return paths


def several_families() -> list[dict]:
    """ETT (two seeds, a smoke and a paper row, all four horizons of one model), a crystal-like
    family (match rate in %, higher is better) and an LRA-like one (accuracy), both unregistered."""
    records = []
    for seed, mse in ((1, 0.380), (2, 0.390)):
        records.append(make_record(preset="paper", seed=seed, metrics={"mse": mse, "mae": 0.40}))
    for horizon, mse in ((96, 0.39), (192, 0.44), (336, 0.48), (720, 0.52)):
        records.append(make_record(model="naive", variant=f"h{horizon}", metrics={"mse": mse, "mae": 0.7}, steps=0,
                                   curve=False))
    records.append(make_record(dataset="etth2", model="timesnet", metrics={"mse": 0.340, "mae": 0.374},
                               device="cuda:0 (NVIDIA H100)", slurm_job_id="4242", wall_s=3600.0,
                               evaluate_wall_s=360.0))
    records.append(make_record(family="crystal-toy", dataset="mp-20", task="csp", model="diffcsp", variant="default",
                               preset="paper", metrics={"match_rate": 51.0, "rmse": 0.0470}, data_origin="official"))
    records.append(make_record(family="crystal-toy", dataset="perov-5", task="csp", model="diffcsp",
                               variant="default", preset="smoke", metrics={"match_rate": 52.02, "rmse": 0.0760}))
    records.append(make_record(family="lra-toy", dataset="listops", task="lra-classify", model="s4", variant="default",
                               preset="paper", metrics={"accuracy": 55.0}, data_origin="generated"))
    return records


TOY_REFERENCES = """\
defaults: {family: crystal-toy, paper: "DiffCSP (Jiao et al., NeurIPS 2023)", tolerance: {relative: 0.05}}
entries:
  - {dataset: mp-20, task: csp, variant: default, model: diffcsp, metric: match_rate, value: 51.49, table: "Table 1", averaging: "one sample per test structure", source: "arXiv 2309.04475"}
  - {dataset: mp-20, task: csp, variant: default, model: diffcsp, metric: rmse, value: 0.0631, table: "Table 1", averaging: "over matched structures", source: "arXiv 2309.04475", note: "<b>unescaped?</b>"}
  - {dataset: perov-5, task: csp, variant: default, model: diffcsp, metric: match_rate, value: 52.02, table: "Table 1", averaging: "one sample per test structure", source: "arXiv 2309.04475"}
  - {family: lra-toy, paper: "S4 (Gu et al., ICLR 2022)", dataset: listops, task: lra-classify, variant: default, model: s4, metric: accuracy, value: 59.60, table: "Table 4", averaging: "best of runs", source: "arXiv 2111.00396", tolerance: {absolute: 1.0}}
  - {family: lra-toy, paper: "S4 (Gu et al., ICLR 2022)", dataset: pathfinder, task: lra-classify, variant: default, model: s4, metric: accuracy, value: 94.2, table: "Table 4", averaging: "best of runs", source: "arXiv 2111.00396", tolerance: {absolute: 1.0}}
"""


def build_report(root: Path) -> dict[str, Path]:
    """Run the report stage on :func:`several_families` under ``root`` as the workflow would."""
    from replibench.report import report_stage

    toy = Path(root) / "references" / "toy.yaml"
    toy.parent.mkdir(parents=True, exist_ok=True)
    toy.write_text(TOY_REFERENCES)
    results = Path(root) / "results"
    paths = {"results": results / "results.parquet", "markdown": results / "leaderboard.md",
             "html": results / "leaderboard.html", "plots": results / "plots"}
    metrics = write_records(root, several_families())
    report_stage(metrics_paths=metrics, reference_paths=[Path(__file__).resolve().parents[2] / "references" / "ett.yaml",
                                                         toy],
                 results_out=paths["results"], leaderboard_out=paths["markdown"], html_out=paths["html"],
                 plots_dir=paths["plots"])
    return paths


def fixture_variant_values(task: str, variant: str) -> dict:
    """The typed values behind the fixtures' variant names (``h96`` → ``{"horizon": 96}``)."""
    if task == "forecast":
        return {"horizon": int(variant.removeprefix("h"))}
    if variant == "default":
        return {}
    raise ValueError(f"no fixture values for variant {variant!r}")
