"""benchmarks/gpu_reproduce.py: TimesNet at the paper preset on a bare GPU host, tested on the CPU.

A bare host is simulated by a folder holding links to torch, numpy, pandas, pyarrow and what they
require (nothing else), put on ``PYTHONPATH`` of ``python -S`` (no site-packages): YAML,
jsonschema, tqdm, Snakemake and pymatgen are then simply not installed.

The one-run test shrinks the validation and test segments to 33 windows (TimesNet's paper test
loader has batch size 1, and 2,785 single-window forwards take minutes on this CPU); the
settings, the trainer, the evaluation and the record are the paper preset's, which is what it checks.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from replibench.families.ett.datasets.ett import preprocess

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_reproduce.py"
RUN = "ett/etth1/forecast/timesnet/h96/seed2021"


def _script():
    spec = importlib.util.spec_from_file_location("gpu_reproduce", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _requirement_closure(roots: tuple[str, ...]) -> set[str]:
    """Distributions ``roots`` need to run (their requirements without extras, recursively)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                todo.append(re.split(r"[ ;<>=!~\[(]", requirement.strip(), maxsplit=1)[0])
    return seen


def _bare_site(folder: Path) -> Path:
    """Links to torch, numpy, pandas, pyarrow and their requirements only."""
    folder.mkdir()
    for name in _requirement_closure(("torch", "numpy", "pandas", "pyarrow")):
        dist = metadata.distribution(name)
        base = Path(dist.locate_file(""))
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            if top not in ("..", "__pycache__") and (base / top).exists() and not (folder / top).exists():
                os.symlink(base / top, folder / top)
    return folder


@pytest.fixture(scope="module")
def ett_root(shared_data, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parquet")
    preprocess(shared_data / "ett" / "ETTh1.csv", root / "etth1", dataset="etth1")
    return root


def test_bare_host_imports_and_plan(ett_root: Path, tmp_path: Path) -> None:
    """No YAML/jsonschema/tqdm/Snakemake: the script still imports everything it uses and plans."""
    site = _bare_site(tmp_path / "site")
    probe = (
        "import importlib.util as u, sys\n"
        "assert all(u.find_spec(m) is None for m in ('yaml', 'jsonschema', 'tqdm', 'snakemake', 'pymatgen'))\n"
        "import torch, replibench.stages, replibench.train, replibench.results, replibench.families.ett.tasks.forecast\n"
        f"import runpy; sys.argv = [{str(SCRIPT)!r}, *sys.argv[1:]]\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n")
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{REPO / 'src'}", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-S", "-c", probe, "--data", str(ett_root), "--out", str(tmp_path / "out"),
                          "--runs", "etth1:96", "--plan-only", "--threads", "1"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert RUN in out.stdout and "jsonschema is not installed" in out.stdout
    report = json.loads((tmp_path / "out" / "gpu_reproduce.json").read_text())
    plan = report["runs"][0]
    # ETTh1, H = 96: 8,449 train windows // 32 = 264 steps per epoch, 10 epochs; 2,785 test windows
    assert (plan["steps_per_epoch"], plan["epochs"], plan["train_steps"]) == (264, 10, 2640)
    assert (plan["val_batches"], plan["test_windows"]) == (88, 2785)
    assert plan["estimate_s"] > 0 and plan["measured_s"] is None


def test_default_run_list_fits_the_budget(ett_root: Path, tmp_path: Path, capsys) -> None:
    """Without --runs the list is the prefix whose estimate fits --budget-s (here: a tiny one)."""
    script = _script()
    assert script.main(["--data", str(ett_root), "--out", str(tmp_path), "--budget-s", "1", "--plan-only",
                        "--threads", "1"]) == 0
    assert json.loads((tmp_path / "gpu_reproduce.json").read_text())["runs"] == []
    assert "0 runs" in capsys.readouterr().out


@pytest.mark.parametrize("workers", [1, 2])
def test_deadline_starts_no_run_and_says_so(ett_root: Path, tmp_path: Path, workers: int) -> None:
    """Past ``--deadline-s`` no run starts, in this process or in workers: each planned run is
    reported with the reason, the exit status says not every run has a record, nothing trained."""
    script = _script()
    assert script.main(["--data", str(ett_root), "--out", str(tmp_path), "--runs", "etth1:96,etth1:192",
                        "--workers", str(workers), "--deadline-s", "0", "--threads", "1"]) == 1
    report = json.loads((tmp_path / "gpu_reproduce.json").read_text())
    assert report["workers"] == workers and [r["measured_s"] for r in report["runs"]] == [None, None]
    assert all(r["error"] == "not started: past --deadline-s 0" for r in report["runs"])
    assert not (tmp_path / "results").exists()


def test_workers_shrink_the_default_lists_budget(ett_root: Path, tmp_path: Path) -> None:
    """With N workers a run counts estimate / N against --budget-s: more runs fit."""
    script = _script()
    budget = ["--data", str(ett_root), "--out", str(tmp_path), "--budget-s", "200", "--plan-only", "--threads", "1"]
    assert script.main(budget) == 0
    alone = len(json.loads((tmp_path / "gpu_reproduce.json").read_text())["runs"])
    assert script.main([*budget, "--workers", "4"]) == 0
    shared = len(json.loads((tmp_path / "gpu_reproduce.json").read_text())["runs"])
    assert (alone, shared) == (1, 3)  # alone: 20 + 150 s, then +164 s; shared: 20 + (150 + 164 + 183) / 4 s, then +230 / 4


def test_parse_runs() -> None:
    script = _script()
    assert script.parse_runs("etth1:96,ettm2:720") == [("etth1", 96), ("ettm2", 720)]
    assert len(script.parse_runs("all")) == 16
    with pytest.raises(SystemExit, match="etth3:96"):
        script.parse_runs("etth3:96")


def test_one_run_writes_a_valid_paper_record(ett_root: Path, tmp_path: Path, monkeypatch) -> None:
    import replibench.families.ett.tasks.timeseries as timeseries
    from replibench.config import PlannedRun
    from replibench.families.ett.family import FAMILY
    from replibench.results import read_metrics
    from replibench.families.ett.family import FAMILY as ETT_FAMILY

    real_borders = timeseries.split_borders_ett

    def few_windows(dataset: str, seq_len: int) -> dict[str, tuple[int, int]]:
        borders = real_borders(dataset, seq_len)
        for split in ("val", "test"):  # 33 windows (32 kept by drop_last): the shortcut of the module doc
            start = borders[split][0]
            borders[split] = (start, start + seq_len + 96 + 32)
        return borders

    monkeypatch.setattr(timeseries, "split_borders_ett", few_windows)
    script = _script()
    assert script.main(["--data", str(ett_root), "--out", str(tmp_path), "--runs", "etth1:96", "--max-steps", "2",
                        "--threads", "1"]) == 0
    record = read_metrics(tmp_path / "results" / RUN / "metrics.json")  # validates against the schema
    assert (tmp_path / "results" / RUN / "predictions.parquet").is_file()
    run = ETT_FAMILY.make_run("etth1", "forecast", "timesnet", {"horizon": 96}, 2021, "paper")
    expected = FAMILY.run_settings({"overrides": {}}, run)
    expected["train"]["max_steps"] = 2
    assert record["settings"] == expected
    assert record["preset"] == "paper" and record["settings"]["model"] == {}  # ETTh1: the script defaults
    assert record["settings"]["task"]["eval_batch_size"] == 1 and record["settings"]["train"]["epochs"] == 10
    assert record["training"]["steps"] == 2 and record["training"]["max_steps"] == 2
    assert record["training"]["device"] == "cpu" and record["provenance"]["device"].startswith("cpu")
    assert record["training"]["wall_s"] > 0 and record["provenance"]["evaluate_wall_s"] > 0
    assert record["protocol"]["test_windows"] == 33 and record["protocol"]["test_batch_size"] == 1
    assert set(record["metrics"]) >= {"mse", "mae"}
    # the digest a Snakemake job of the same run would record (same settings JSON)
    from replibench.train import settings_digest
    assert record["provenance"]["config_sha256"] == settings_digest(expected)
    assert PlannedRun(run, expected).settings_json == script.settings_json(run, expected)
    report = json.loads((tmp_path / "gpu_reproduce.json").read_text())
    assert report["runs"][0]["measured_s"] > 0


def test_trainer_progress_bar_without_tqdm(monkeypatch) -> None:
    """A bare host has no tqdm: the trainer's bar is then a silent stand-in (it used to import tqdm)."""
    from replibench import train

    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` now raises ImportError
    bar = train._progress_bar(total=3, disable=False)
    bar.update(1)
    bar.close()
    assert isinstance(bar, train._NoBar)


def test_unvalidated_metrics_are_caught_when_read(tmp_path: Path) -> None:
    """``write_metrics(validate=False)`` (no jsonschema on the GPU host) defers the check to
    ``read_metrics``, which every results gatherer goes through."""
    from replibench.errors import DataError
    from replibench.results import read_metrics, write_metrics

    path = tmp_path / "metrics.json"
    write_metrics(path, {"family": "ett"}, validate=False)
    with pytest.raises(DataError, match="metrics.json"):
        read_metrics(path)
    with pytest.raises(DataError):
        write_metrics(tmp_path / "other.json", {"family": "ett"})
    assert not (tmp_path / "other.json").exists()
