# Validation and small input helpers only; every decision lives in the replibench package.
import json
import os
import sys
from pathlib import Path

from replibench.config import plan_runs, validate_config
from replibench.plan import train_retries
from replibench.rehearsal import (REHEARSAL_STEPS, rehearsal_data_folder, rehearsal_dataset_options, rehearsal_plan,
                                  stand_in_of)
from replibench.registry import dataset_spec

# Jobs call the `replibench` CLI installed beside this Snakemake (e.g. `.venv/bin/snakemake` run
# without activating the venv); a --use-conda job's own environment still comes first.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

_validated = validate_config(config, "config.yaml (+ --config)")
config.clear()
config.update(_validated)

PLAN = {planned.run.run_id: planned for planned in plan_runs(config)}
# a training chains attempts (SIGTERM before the limit → last.pt → requeue) until it is done: as
# many as the longest planned training needs by its cost (`replibench plan`), plus two preemptions
TRAIN_RETRIES = train_retries(list(PLAN.values()))
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


def declared_raw_files(dataset, options_json):
    """The dataset's declared files, or the subset its preprocessing options name (`files`)."""
    import json

    spec = dataset_spec(dataset)
    wanted = json.loads(options_json).get("files")
    return [f"data/raw/{spec.family}/{remote.name}" for remote in spec.remote_files
            if wanted is None or remote.name in wanted]


def raw_files(wildcards):
    """The dataset's files under this preset (its family's options)."""
    return declared_raw_files(wildcards.dataset, dataset_options_json(wildcards))


def dataset_options_json(wildcards):
    """Preprocessing options of a dataset under this preset (empty for downloaded files)."""
    import json

    from replibench.config import family_object

    family = dataset_spec(wildcards.dataset).family
    options = family_object(family).dataset_options(config.get(family, {}), wildcards.dataset, config["preset"])
    return json.dumps(options, sort_keys=True, separators=(",", ":"))


def pinned_checksum(wildcards):
    """The data.checksums pin of a file upstream publishes no checksum for, else "" (none needed or none given)."""
    from replibench.registry import remote_file

    remote = remote_file(wildcards.family, wildcards.file)
    pinned = config["data"].get("checksums", {}).get(remote.mirror_path)
    return pinned if remote.checksum is None and pinned else ""


def dataset_pinned_checksums_json(wildcards):
    """data.checksums pins of the dataset's raw files that have no published checksum, as JSON keyed by
    mirror path: preprocess verifies every raw file it reads again (published checksum, else this pin)."""
    import json

    spec = dataset_spec(wildcards.dataset)
    wanted = {Path(path).name for path in raw_files(wildcards)}
    pins = config["data"].get("checksums", {})
    chosen = {remote.mirror_path: pins[remote.mirror_path] for remote in spec.remote_files
              if remote.name in wanted and remote.checksum is None and remote.mirror_path in pins}
    return json.dumps(chosen, sort_keys=True, separators=(",", ":"))


def run_resources(stage):
    """A function of the wildcards giving that stage's resources of the run (family defaults for the
    run's preset, model and dataset, then config.yaml's `resources` overrides; see PlannedRun)."""

    def of_run(wildcards):
        key = run_id(wildcards)
        if key not in PLAN:
            raise ValueError(f"{key} is not a run of this config (preset {config['preset']})")
        return PLAN[key].resources[stage]

    return of_run


def run_resource(stage, key):
    """One resource (gpus, cpus, mem_mb, runtime_min) of a run's stage job, as a function of the wildcards."""
    return lambda wildcards: getattr(run_resources(stage)(wildcards), key)


def data_parallel_processes(wildcards):
    """One training process per GPU the run asks for; one on a CPU."""
    return max(1, run_resources("train")(wildcards).gpus)


def preprocess_resource(key):
    """One resource of a dataset's preprocessing job (its family's need, then config.yaml's overrides)."""
    from replibench.config import family_object, preprocess_resources

    def of_dataset(wildcards):
        family = family_object(dataset_spec(wildcards.dataset).family)
        return getattr(preprocess_resources(family, wildcards.dataset, config), key)

    return of_dataset


def all_metrics():
    return [f"results/{run}/metrics.json" for run in PLAN]


def refuse_local_threads_on_a_cluster():
    """Stop a cluster run that would silently give every job one CPU.

    `snakemake --profile profiles/slurm` also applies `profiles/default` (= profiles/local) as the
    *workflow* profile, whose keys win over --profile; its `set-threads` (one thread per job, right
    for a small workstation) would then cap every cluster job at one CPU. Cluster runs use
    `snakemake --workflow-profile profiles/slurm`, which replaces profiles/default. Runs at start
    (the executor is unknown while the Snakefile is parsed), in the submitting process only.
    """
    if workflow.local_exec or workflow.remote_exec:  # local runs, and the job steps inside SLURM jobs
        return
    import yaml
    from snakemake.exceptions import WorkflowError

    local_profile = Path(workflow.basedir) / "profiles" / "local" / "config.yaml"
    local_threads = yaml.safe_load(local_profile.read_text(encoding="utf-8")).get("set-threads") or {}
    active = getattr(workflow.resource_settings, "overwrite_threads", None) or {}
    active = {str(rule): str(getattr(value, "value", value)) for rule, value in active.items()}
    if local_threads and active == {rule: str(value) for rule, value in local_threads.items()}:
        raise WorkflowError(
            f"the local profile's set-threads {local_threads} ({local_profile}) would cap every cluster job "
            "at one CPU; start cluster runs with `snakemake --workflow-profile profiles/slurm` (not --profile)"
        )


def log_paper_plan():
    """The paper preset's cost before anything runs: every job's GPUs, minutes per attempt,
    attempts, GPU-hours and the source of each figure (`replibench plan` prints the same) →
    logs/plan.tsv, and its total in the log."""
    if config["preset"] == "paper" and not config.get("rehearsal"):
        from replibench.plan import write_plan_log

        write_plan_log(list(PLAN.values()), "logs/plan.tsv")


# one onstart handler per workflow (a second one would replace this one)
onstart:
    refuse_local_threads_on_a_cluster()
    log_paper_plan()


def report_run_files():
    """Files beside each run's metrics.json that its family's report plots read (Family.report_files)."""
    from replibench.config import family_object

    return [f"results/{run}/{name}" for run, planned in PLAN.items()
            for name in family_object(planned.run.family).report_files]


def claim_files():
    """The claim measurements the config asks for: results/claims/<family>/<claim>/<setting>.json
    (each family's `claims` entry; rows of kind "claim" in the leaderboards)."""
    return [f"results/claims/{family}/{claim}/{setting}.json" for family in config["families"]
            for claim, settings in config[family].get("claims", {}).items() for setting in settings]
