# Validation and small input helpers only; every decision lives in the replibench package.
import os
import sys
from pathlib import Path

from replibench.config import plan_runs, validate_config
from replibench.datasets import dataset_spec

# Jobs call the `replibench` CLI installed beside this Snakemake (e.g. `.venv/bin/snakemake` run
# without activating the venv); a --use-conda job's own environment still comes first.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

_validated = validate_config(config, "config.yaml (+ --config)")
config.clear()
config.update(_validated)

PLAN = {planned.run.run_id: planned for planned in plan_runs(config)}
MIRROR = config["data"].get("mirror") or ""
WORKERS = config["data"].get("workers", 1)

RUN = "{family}/{dataset}/{task}/{model}/{variant}/seed{seed}"


wildcard_constraints:
    family="[a-z0-9][a-z0-9-]*",
    dataset="[a-z0-9][a-z0-9-]*",
    task="[a-z0-9][a-z0-9-]*",
    model="[a-z0-9][a-z0-9-]*",
    variant="[a-z0-9][a-z0-9.-]*",
    seed="[0-9]+",
    file="[^/]+",


def run_id(wildcards):
    return RUN.format(**wildcards)


def run_settings_json(wildcards):
    """The run's resolved settings: the only config a train/evaluate job depends on."""
    key = run_id(wildcards)
    if key not in PLAN:
        raise ValueError(f"{key} is not a run of this config (preset {config['preset']})")
    return PLAN[key].settings_json


def raw_files(wildcards):
    spec = dataset_spec(wildcards.dataset)
    return [f"data/raw/{spec.family}/{remote.name}" for remote in spec.remote_files]


def dataset_options_json(wildcards):
    """Preprocessing options of a dataset under this preset (empty for downloaded files)."""
    import json

    from replibench.config import family_object

    family = dataset_spec(wildcards.dataset).family
    options = family_object(family).dataset_options(config.get(family, {}), wildcards.dataset, config["preset"])
    return json.dumps(options, sort_keys=True, separators=(",", ":"))


def pinned_checksum_arg(wildcards):
    """`--checksum …` for a file upstream publishes no checksum for, from data.checksums."""
    from replibench.datasets import remote_file

    remote = remote_file(wildcards.family, wildcards.file)
    pinned = config["data"].get("checksums", {}).get(remote.mirror_path)
    return f"--checksum {pinned}" if remote.checksum is None and pinned else ""


def resource(group, key, default):
    return config.get("resources", {}).get(group, {}).get(key, default)


def all_metrics():
    return [f"results/{run}/metrics.json" for run in PLAN]
