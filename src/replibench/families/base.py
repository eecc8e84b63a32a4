"""What every family provides to the workflow: the runs a config asks for and their settings.

This module is imported by ``snakemake -n``: it must stay free of heavy imports.
"""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from replibench.runs import RunSpec, VariantValue


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it, recursively for nested dicts (inputs untouched)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def entry_preset(entry: dict[str, Any], preset: str) -> str | None:
    """The preset an entry's runs use under the global ``preset``, or None when it is skipped.

    ``presets`` limits an entry to some global presets; ``preset`` pins its runs to one preset
    whatever the global one — e.g. cheap baselines run at the papers' settings even in the
    default ``smoke`` run, so it reproduces what one CPU can.
    """
    if "presets" in entry and preset not in entry["presets"]:
        return None
    return entry.get("preset", preset)


def entry_seeds(entry: dict[str, Any], family_config: dict[str, Any]) -> list[int]:
    """An entry's own ``seeds``, else the family's (else seed 0)."""
    return [int(seed) for seed in entry.get("seeds", family_config.get("seeds", [0]))]


def expand_sweep(
    family: Family,
    family_config: dict[str, Any],
    preset: str,
    variant_axes: dict[str, tuple[str, Callable[[Any], dict[str, VariantValue]]]] | None = None,
) -> list[RunSpec]:
    """Expand ``family_config["runs"]`` (a list of sweep entries) into run specs, in order.

    Each entry names a ``task``, ``datasets``, ``models`` and, for a task with variants, the list
    its variants come from: ``variant_axes[task] = (entry key, value → variant values)``, e.g.
    ``("horizons", lambda h: {"horizon": int(h)})``; a task without an axis has one variant with no
    values (``default``). Names are spelled by ``family.make_run``. An optional ``presets`` list
    limits the entry to those presets and an optional ``preset`` pins its runs to one
    (:func:`entry_preset`). Seeds come from the entry's ``seeds``, else ``family_config["seeds"]``.
    Duplicates (same run id) are dropped, keeping the first.
    """
    variant_axes = variant_axes or {}
    runs: list[RunSpec] = []
    seen: set[str] = set()
    for entry in family_config.get("runs", []):
        run_preset = entry_preset(entry, preset)
        if run_preset is None:
            continue
        task = entry["task"]
        if task in variant_axes:
            key, to_values = variant_axes[task]
            variants = [to_values(value) for value in entry[key]]
        else:
            variants = [{}]
        for dataset in entry["datasets"]:
            for model in entry["models"]:
                for values in variants:
                    for seed in entry_seeds(entry, family_config):
                        run = family.make_run(dataset, task, model, values, seed, run_preset)
                        if run.run_id not in seen:
                            seen.add(run.run_id)
                            runs.append(run)
    return runs


#: the stages whose jobs belong to one run (preprocessing belongs to a dataset)
RUN_STAGES = ("train", "evaluate", "score")  # score: the CPU job gathering a sharded evaluation


@dataclass(frozen=True)
class Resources:
    """What one job asks the cluster for, with the reason: ``gpus`` (0 = a CPU job), ``cpus``,
    ``mem_mb`` (MiB of host memory), ``runtime_min`` (minutes per attempt: a training attempt that
    reaches it writes ``last.pt`` and the next attempt resumes). The SLURM profile reads them
    through the rules' ``resources``; local runs ignore all but the thread count."""

    gpus: int
    cpus: int
    mem_mb: int
    runtime_min: int
    reason: str

    def __post_init__(self) -> None:
        if self.gpus < 0 or self.cpus < 1 or self.mem_mb < 100 or self.runtime_min < 1:
            raise ValueError(f"resources out of range: {self}")

    def overridden(self, overrides: Mapping[str, int], source: str) -> Resources:
        """These resources with ``overrides`` (some of gpus, cpus, mem_mb, runtime_min: the keys
        the config schema allows under ``resources``) laid over them."""
        if not overrides:
            return self
        changed = ", ".join(f"{key} {value}" for key, value in sorted(overrides.items()))
        return dataclasses.replace(self, **{key: int(value) for key, value in overrides.items()},
                                   reason=f"{self.reason} [{source}: {changed}]")


#: every smoke job: minutes on one CPU core (the whole default run takes ~57 CPU-minutes, README);
#: a smoke run on a cluster checks the pipeline and needs no GPU
@dataclass(frozen=True)
class Cost:
    """What one paper run is expected to take, before it is launched: wall hours of its training
    and of its evaluation on ``device`` (the GPU or CPU the figure was measured or reported on),
    and where the figure comes from (a paper's or repository's log, a measured run, a rehearsal,
    an estimate and its model). :mod:`replibench.plan` turns it into attempts and GPU-hours."""

    train_hours: float | None  # None: no figure for the training (a figure for the evaluation only)
    evaluate_hours: float | None  # None: no figure for the evaluation (its prediction, on ``device``)
    device: str
    source: str
    #: single-core hours of scoring that runs on the CPU (crystals: StructureMatcher, CrystalNN) in
    #: the job that gathers the prediction shards; None where scoring is negligible or unknown
    score_core_hours: float | None = None
    #: an estimate from a model (not a log, not a measurement): a rehearsal on the GPU beats it
    estimate: bool = False


@dataclass(frozen=True)
class RehearsalProxy:
    """A rehearsed run that prices another's stages from above (:meth:`Family.rehearsal_proxies`):
    its run id starts with ``prefix``; its seconds per predicted row (and, when ``train``, per
    training example) × ``factor`` stand for the other run's; ``why`` says why that bounds it."""

    prefix: str
    factor: float
    why: str
    train: bool = False


SMOKE_RESOURCES = Resources(gpus=0, cpus=1, mem_mb=4000, runtime_min=30,
                            reason="smoke preset: minutes on one CPU core, no GPU needed")
#: preprocessing a downloaded or generated dataset (CPU only; a family may ask for more)
PREPROCESS_RESOURCES = Resources(gpus=0, cpus=2, mem_mb=4000, runtime_min=30,
                                 reason="CSV/JSON → Parquet on the CPU: seconds to minutes")


@dataclass(frozen=True)
class PaperTable:
    """One table of a paper, laid out as the paper prints it, for the leaderboard's per-paper views.

    Its cells are the paper numbers of ``references/<family>.yaml`` that match: every field named in
    ``select`` has one of the listed values, the entry's ``paper`` contains ``paper`` and its
    ``table`` contains ``table``. Rows are the distinct values of the ``rows`` key fields (e.g.
    dataset × variant), columns those of ``columns`` (e.g. model × metric), in the paper's ``order``
    of each field's values (values it does not list follow in natural order); ``labels`` spell values
    as the paper does (``h96`` → ``96``). Every key field must be in ``rows``, ``columns`` or fixed
    by ``select`` to one value, or a cell would hold two numbers (checked when the view is built).
    """

    title: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    select: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    paper: str = ""
    table: str = ""
    order: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


class Family(ABC):
    name: str = ""
    datasets: tuple[str, ...] = ()
    #: registered datasets that only the paper preset's rehearsal reads (stand-ins for official
    #: data not at hand, :meth:`rehearsal_data`); no config can ask for a run on one
    rehearsal_datasets: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    #: files beside each run's metrics.json that :meth:`report_plots` reads (e.g.
    #: ``("predictions.parquet",)``); the report rule declares them as its inputs
    report_files: tuple[str, ...] = ()
    #: the noise band ``replibench compare`` allows a metric measured with fewer than two seeds:
    #: max(relative × |baseline|, absolute). CPU smoke runs are deterministic on one machine, so
    #: 1 % is far above the drift between machines and far below a real regression.
    regression_tolerance: dict[str, float] = {"relative": 0.01, "absolute": 1e-6}
    #: the papers' tables this family reproduces, each shown as its own view in the leaderboard
    paper_tables: tuple[PaperTable, ...] = ()
    #: claim → its settings: papers' measured claims (e.g. a speed-up) that a ``claim`` job measures
    #: here and the leaderboard shows as rows of kind "claim" (:mod:`replibench.report.claims`)
    claims: dict[str, tuple[str, ...]] = {}

    @property
    def models(self) -> dict[str, tuple[str, ...]]:
        """Task → the registered models that implement it, in registry order. Declared once: each
        model class's ``TASKS`` (read from its source, torch-free) and its registry line."""
        from replibench.registry import MODELS
        from replibench.settings import model_tasks

        return {task: tuple(name for name in MODELS if task in model_tasks(name)) for task in self.tasks}

    @abstractmethod
    def expand_runs(self, family_config: dict[str, Any], preset: str) -> list[RunSpec]:
        """Every run the family's config section asks for under ``preset``."""

    @abstractmethod
    def run_settings(self, family_config: dict[str, Any], run: RunSpec) -> dict[str, Any]:
        """``{"task": …, "model": …, "train": …}`` for one run: preset defaults + user overrides."""

    def run_resources(self, run: RunSpec, stage: str) -> Resources:
        """What the ``stage`` job (train or evaluate) of ``run`` asks the cluster for. Smoke runs are
        CPU jobs of minutes; a paper run's needs come from :meth:`paper_resources`."""
        if stage not in RUN_STAGES:
            raise ValueError(f"stage {stage!r} is not one of {RUN_STAGES}")
        if run.preset == "smoke":
            return SMOKE_RESOURCES
        return self.score_resources(run) if stage == "score" else self.paper_resources(run, stage)

    #: tasks whose prediction splits into shards (:meth:`Task.prediction_units`); a test checks the
    #: tasks agree
    shardable_tasks: tuple[str, ...] = ()
    #: whether a paper run's scoring is CPU work worth its own CPU job (the GPU job only predicts)
    scores_on_cpu: bool = False

    def score_resources(self, run: RunSpec) -> Resources:
        """The CPU job that gathers a paper run's prediction shards and scores them."""
        return Resources(gpus=0, cpus=4, mem_mb=16000, runtime_min=60,
                         reason="gathers the prediction shards and scores them on the CPU")

    def paper_resources(self, run: RunSpec, stage: str) -> Resources:
        """A paper run's needs; each family states its own, with the reason (this default is one
        GPU for four hours, an attempt that requeues)."""
        return Resources(gpus=1, cpus=4, mem_mb=16000, runtime_min=240,
                         reason="default: one GPU, 4 h per attempt (attempts resume from last.pt)")

    def rehearsal_data(self, dataset: str, family_config: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """The data a rehearsal of ``dataset``'s paper runs trains on: (dataset to preprocess, its
        options) — the official dataset itself where its files are at hand (this default), a
        shape-faithful generated stand-in where they are not, None where there is neither yet."""
        return dataset, self.dataset_options(family_config, dataset, "paper")

    def rehearsal_settings(self, run: RunSpec, settings: dict[str, Any]) -> dict[str, Any]:
        """The run's settings for its rehearsal: the paper's (this default), adjusted only where the
        rehearsal's data is laid out otherwise (e.g. which split file trains)."""
        return settings

    def measure_claim(self, claim: str, setting: str, *, device: str, threads: int) -> dict[str, Any]:
        """One setting of a claim in :attr:`claims`, measured on ``device`` with ``threads`` CPU
        threads: the JSON object :func:`replibench.report.claims.read_claims` reads."""
        from replibench.errors import ConfigError

        raise ConfigError(f"{self.name}: no claim {claim!r} (this family measures "
                          f"{', '.join(self.claims) or 'none'})")

    def official_train_examples(self, dataset: str) -> int | None:
        """Training examples of the official ``dataset`` when a rehearsal trains on other data
        (a stand-in, or a smaller official split); None when it trains on the official training
        split itself. Scales a rehearsal's steps to the paper schedule's (:mod:`replibench.rehearsal`)."""
        return None

    def official_prediction_rows(self, run: RunSpec, settings: dict[str, Any]) -> int | None:
        """Rows the paper run's test prediction has on the official data (crystals sampled, frames
        predicted), to scale a rehearsal's seconds per predicted row; None when unknown."""
        return None

    def prediction_is_one_forward_pass(self, run: RunSpec) -> bool:
        """Whether predicting a test row is one forward pass of the trained model (a forecast, an
        imputation, a classification) rather than many (a sampler): then a rehearsal's timed forward
        pass prices the evaluation where it made no prediction slice (:mod:`replibench.rehearsal`)."""
        return False

    def rehearsal_proxies(self, run: RunSpec, settings: dict[str, Any]) -> list[RehearsalProxy]:
        """Where a rehearsal table has no figure for ``run`` (or none for its prediction): rehearsed
        runs that cost at least as much per predicted row (and, with ``train``, per training
        example), best first. The plan marks a figure taken this way an estimate. None by default."""
        return []

    def paper_cost(self, run: RunSpec, settings: dict[str, Any]) -> Cost | None:
        """The family's best figure for a paper run's wall time (:class:`Cost`, with its source), or
        None when there is none (the plan then says so: a rehearsal has to measure it). A measured
        run of the same id (recorded/, the published leaderboard) takes precedence in the plan."""
        return None

    def preprocess_resources(self, dataset: str, preset: str) -> Resources:
        """What preprocessing ``dataset`` asks for (a CPU job)."""
        return PREPROCESS_RESOURCES

    def dataset_options(self, family_config: dict[str, Any], dataset: str, preset: str) -> dict[str, Any]:
        """Options a dataset's preprocessing depends on (generator sizes, lengths…); a Snakemake
        param, so changing them rebuilds only that dataset. Downloaded datasets need none."""
        return {}

    def released_files(self) -> tuple:
        """Files besides datasets that runs read, e.g. released weights a metric needs (CDVAE's property
        models): :class:`replibench.data.download.RemoteFile` specs, fetched by the download rule into
        ``data/raw/<family>/`` and verified like dataset files. None by default."""
        return ()

    def training_files(self, run: RunSpec, settings: dict[str, Any]) -> dict[str, str]:
        """Workflow files the train job of ``run`` reads beyond its data (name → path), e.g. the
        released weights a zero-shot model starts from under ``data/raw/<family>/``; Snakemake makes
        them first. None by default."""
        return {}

    def evaluation_files(self, run: RunSpec, settings: dict[str, Any]) -> dict[str, str]:
        """Workflow files the evaluate job of ``run`` reads beyond its data and weights (name → path),
        e.g. a released property model under ``data/raw/<family>/``; Snakemake makes them first."""
        return {}

    def report_plots(self, runs: list, board, out_dir) -> list:
        """The family's own figures for the leaderboard (e.g. distributions of generated crystals).

        ``runs`` are :class:`replibench.report.plots.ReportRun` (the metrics.json record, its path and the
        :attr:`report_files` beside it), ``board`` the family's leaderboard rows, ``out_dir`` the
        family's plot folder. Write figures there (``replibench.report.plots.save_figure``) and return a
        :class:`replibench.report.plots.PlotRef` for each; the leaderboards link them. None by default.
        """
        return []

    def variant_name(self, task: str, values: Mapping[str, VariantValue]) -> str:
        """The name of the variant with typed ``values`` in paths and table rows: spelled here,
        once, never parsed back. A task without variants has no values and the name ``default``."""
        if values:
            raise ValueError(f"{self.name}/{task}: variant values {dict(values)} but the family names none")
        return "default"

    def make_run(self, dataset: str, task: str, model: str, values: Mapping[str, VariantValue], seed: int,
                 preset: str = "smoke") -> RunSpec:
        """The run of ``values``, named by :meth:`variant_name` (the one way a family builds runs)."""
        return RunSpec(self.name, dataset, task, model, self.variant_name(task, values), int(seed), preset,
                       dict(values))

    def variant_settings(self, run: RunSpec) -> dict[str, Any]:
        """Dotted settings key → the value the run's variant fixes it to (``{"task.pred_len": 96}``
        for ``{"horizon": 96}``): an override may not change them, or the result would be labelled
        with the wrong variant."""
        return {}

    def check_run(self, run: RunSpec) -> None:
        """Refuse a run whose dataset/task/model combination the family does not implement."""
        from replibench.errors import ConfigError

        if run.dataset not in self.datasets:
            raise ConfigError(f"{self.name}: unknown dataset {run.dataset!r}; allowed: {', '.join(self.datasets)}")
        if run.task not in self.tasks:
            raise ConfigError(f"{self.name}: unknown task {run.task!r}; allowed: {', '.join(self.tasks)}")
        if run.model not in self.models.get(run.task, ()):
            raise ConfigError(f"{self.name}/{run.task}: model {run.model!r} not available; "
                              f"allowed: {', '.join(self.models.get(run.task, ()))}")
