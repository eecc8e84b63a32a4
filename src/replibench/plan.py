"""What a sweep will cost before it is launched: ``replibench plan`` and the paper preset's start-up table.

For every planned run and stage (train, evaluate) the table gives the job's GPUs and CPUs, its wall
time per attempt (the run's :class:`~replibench.families.base.Resources`), the expected wall time,
the number of attempts that needs, the GPU-hours (wall × GPUs) and CPU core-hours of CPU jobs, and
the source of the figure. Figures come, in this order, from:

1. a **measured** paper run of the same run id: ``recorded/<run>/metrics.json`` or the published
   ``leaderboard/results.parquet`` (its train and evaluate wall seconds, on the device it names);
2. the **family's** :meth:`~replibench.families.base.Family.paper_cost`: a paper's or repository's
   log scaled to the run's steps, or an estimate with its model, each stating its source;
3. a **rehearsal** (``rehearsal/rehearsal.json``, :mod:`replibench.rehearsal`): seconds per step
   measured at the run's real sizes × the steps of its schedule on the official data;
4. **none**: the row says so and is left out of the total, which then counts those runs.

Training attempts chain through ``--signal`` + ``last.pt`` + requeue, so a long run needs several
attempts of ``runtime_min`` minutes (less the last :data:`SIGNAL_MARGIN_MIN`, which the trainer
spends writing its checkpoint); evaluation does not resume, so its one attempt must be long
enough — :func:`evaluation_minutes` sizes it from the same figures.

No torch (pyarrow only to read the published results table): ``snakemake`` at the paper preset
writes this table to ``logs/plan.tsv`` when it starts (:func:`write_plan_log`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replibench.config import PlannedRun

#: minutes before a training attempt's limit at which SLURM signals it (profiles/slurm: --signal=TERM@300)
SIGNAL_MARGIN_MIN = 5
#: an evaluation job asks for this multiple of its expected wall time (it cannot resume)
EVALUATE_SAFETY = 1.5
#: expected hours of one prediction shard (× EVALUATE_SAFETY per job): a long evaluation is split
#: into shards of about this size (config ``evaluate_shards: auto``), each a job that fits
#: any GPU partition and, when it fails, reruns alone
SHARD_HOURS = 4.0
#: the longest job a typical cluster accepts (SLURM MaxTime of common GPU partitions: 48 h); an
#: evaluation expected to take longer cannot run as one job and has to be sharded
MAX_JOB_HOURS = 48


@dataclass(frozen=True)
class Measured:
    """One measured paper run: wall hours of each stage and the device, from a metrics record."""

    train_hours: float
    evaluate_hours: float
    device: str
    source: str


@dataclass(frozen=True)
class PlanRow:
    """One job of the plan (a run's train or evaluate stage)."""

    run_id: str
    stage: str
    gpus: int
    cpus: int
    runtime_min: int
    wall_hours: float | None
    attempts: int | None
    gpu_hours: float | None
    cpu_hours: float | None
    device: str
    source: str


def measured_runs(root: str | Path = ".") -> dict[str, Measured]:
    """Paper runs measured before: recorded/ first (what anybody with the repository can inspect),
    then the published leaderboard's results table; keyed by run id."""
    from replibench.results import run_id_of

    root = Path(root)
    found: dict[str, Measured] = {}
    for path in sorted((root / "recorded").glob("**/metrics.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("preset") != "paper":
            continue
        run_id = run_id_of(record)
        found[run_id] = Measured(record["training"]["wall_s"] / 3600.0,
                                 record["provenance"].get("evaluate_wall_s", 0.0) / 3600.0,
                                 record["provenance"]["device"], f"measured: {path.relative_to(root)}")
    table_path = root / "leaderboard" / "results.parquet"
    if table_path.is_file():
        import pyarrow.parquet as pq

        table = pq.read_table(table_path, columns=["run_id", "preset", "train_wall_s", "evaluate_wall_s",
                                                   "device", "commit"]).to_pylist()
        for row in table:
            if row["preset"] != "paper" or row["run_id"] in found:
                continue
            found[row["run_id"]] = Measured(row["train_wall_s"] / 3600.0, (row["evaluate_wall_s"] or 0.0) / 3600.0,
                                            row["device"], f"measured: leaderboard/results.parquet "
                                                           f"(commit {str(row['commit'])[:7]})")
    return found


def preferred_costs(paper_cost: Any, gpu_rehearsal: Any) -> list[Any]:
    """A run's figures in the order the plan trusts them: the family's published figure (a paper's
    or repository's log), the GPU rehearsal (this code at the run's sizes on a named GPU), then the
    family's estimate from a model; missing ones left out."""
    order = [paper_cost if paper_cost is not None and not paper_cost.estimate else None, gpu_rehearsal,
             paper_cost if paper_cost is not None and paper_cost.estimate else None]
    return [cost for cost in order if cost is not None]


def _stage_cost(planned: PlannedRun, measured: dict[str, Measured],
                rehearsed: dict[str, Any]) -> dict[str, tuple[float, str, str] | None]:
    """Stage → (expected wall hours, device, source) from the first source that has a figure for
    it — a measured run, the family's published figure or estimate, a rehearsal — or None."""
    run_id = planned.run.run_id
    sources = []
    if run_id in measured:
        seen = measured[run_id]
        sources.append(({"train": seen.train_hours, "evaluate": seen.evaluate_hours}, seen.device, seen.source))
    for cost in (*planned.costs, rehearsed.get(run_id)):
        if cost is not None:
            sources.append(({"train": cost.train_hours, "evaluate": cost.evaluate_hours}, cost.device, cost.source))
    found: dict[str, tuple[float, str, str] | None] = {}
    for stage in ("train", "evaluate"):
        found[stage] = next(((hours[stage], device, source) for hours, device, source in sources
                             if hours[stage] is not None), None)
    score = next((cost for cost in (planned.cost, rehearsed.get(run_id))
                  if cost is not None and cost.score_core_hours is not None), None)
    cpus = planned.resources["score"].cpus if "score" in planned.resources else 1
    found["score"] = None if score is None else (score.score_core_hours / cpus, f"cpu ({cpus} cores)", score.source)
    return found


def training_attempts(wall_hours: float, runtime_min: int) -> int:
    """Attempts of ``runtime_min`` minutes a training of ``wall_hours`` needs (each attempt loses
    its last :data:`SIGNAL_MARGIN_MIN` minutes to the checkpoint before the limit)."""
    usable = max(runtime_min - SIGNAL_MARGIN_MIN, 1)
    return max(1, math.ceil(wall_hours * 60.0 / usable))


def evaluation_minutes(wall_hours: float) -> int:
    """Minutes an evaluation job of ``wall_hours`` asks for: it cannot resume, so
    :data:`EVALUATE_SAFETY` × the figure, rounded up to 10 minutes."""
    return int(math.ceil(wall_hours * 60.0 * EVALUATE_SAFETY / 10.0) * 10)


def plan_rows(planned_runs: list[PlannedRun], measured: dict[str, Measured],
              rehearsed: dict[str, Any] | None = None) -> list[PlanRow]:
    """The plan's jobs, in planning order (train before evaluate of each run); ``rehearsed``: run
    id → Cost from a rehearsal (:func:`replibench.rehearsal.rehearsal_costs`)."""
    rows = []
    for planned in planned_runs:
        costs = _stage_cost(planned, measured, rehearsed or {})
        for stage in ("train", "evaluate", "score") if planned.shards else ("train", "evaluate"):
            need = planned.resources[stage]
            cost = costs[stage]
            label = "predict" if stage == "evaluate" and planned.shards else stage
            if cost is None:
                rows.append(PlanRow(planned.run.run_id, label, need.gpus, need.cpus, need.runtime_min, None,
                                    None, None, None, "—",
                                    "none: no measured run, no published figure, no rehearsal"))
                continue
            wall, device, source = cost
            # training: attempts of one chained job; a sharded prediction: its shards, one job each
            attempts = (training_attempts(wall, need.runtime_min) if stage == "train"
                        else max(planned.shards, 1) if stage == "evaluate" else 1)
            stage = label
            if stage == "evaluate" and need.runtime_min > MAX_JOB_HOURS * 60:
                source = f"TOO LONG FOR ONE JOB (> {MAX_JOB_HOURS} h): shard this evaluation; {source}"
            rows.append(PlanRow(planned.run.run_id, stage, need.gpus, need.cpus, need.runtime_min, wall, attempts,
                                wall * need.gpus if need.gpus else 0.0,
                                wall * need.cpus if not need.gpus else 0.0, device, source))
    return rows


@dataclass(frozen=True)
class PlanTotals:
    jobs: int
    runs: int
    gpu_hours: float
    cpu_hours: float
    unknown_jobs: int
    max_training_attempts: int
    too_long_jobs: int


def plan_totals(rows: list[PlanRow]) -> PlanTotals:
    known = [row for row in rows if row.wall_hours is not None]
    return PlanTotals(jobs=len(rows), runs=len({row.run_id for row in rows}),
                      gpu_hours=sum(row.gpu_hours for row in known), cpu_hours=sum(row.cpu_hours for row in known),
                      unknown_jobs=len(rows) - len(known),
                      max_training_attempts=max([row.attempts for row in known if row.stage == "train"], default=1),
                      too_long_jobs=sum(row.runtime_min > MAX_JOB_HOURS * 60 for row in rows))


def _hours(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.3g}" if value < 10 else f"{value:,.0f}"


def plan_text(rows: list[PlanRow], *, sources: bool = True) -> str:
    """The table (tab-separated, one job per line) and its totals, as ``replibench plan`` prints them."""
    header = ["run", "stage", "gpus", "cpus", "min/attempt", "wall h", "attempts", "GPU-h", "CPU core-h", "device"]
    lines = ["\t".join(header + (["source"] if sources else []))]
    for row in rows:
        cells = [row.run_id, row.stage, str(row.gpus), str(row.cpus), str(row.runtime_min), _hours(row.wall_hours),
                 "?" if row.attempts is None else str(row.attempts), _hours(row.gpu_hours), _hours(row.cpu_hours),
                 row.device]
        lines.append("\t".join(cells + ([row.source] if sources else [])))
    totals = plan_totals(rows)
    lines.append(f"total: {totals.runs} runs, {totals.jobs} jobs; {totals.gpu_hours:,.1f} GPU-hours and "
                 f"{totals.cpu_hours:,.1f} CPU core-hours where a figure exists (each on the device named: "
                 f"GPU-hours on a T4 and on an H200 are not the same work); {totals.unknown_jobs} jobs have no "
                 f"figure yet; the longest training needs {totals.max_training_attempts} attempts; "
                 f"{totals.too_long_jobs} jobs exceed {MAX_JOB_HOURS} h")
    return "\n".join(lines) + "\n"


def train_retries(planned_runs: list[PlannedRun], preemptions: int = 2) -> int:
    """Snakemake ``retries`` of the train rule: the most attempts any planned training needs by
    its cost (:func:`training_attempts`), plus ``preemptions`` spare, and never fewer than 3."""
    hours = [(p, next((c.train_hours for c in p.costs if c.train_hours is not None), None)) for p in planned_runs]
    needed = [training_attempts(wall, p.resources["train"].runtime_min) for p, wall in hours if wall is not None]
    return max([3, *(n - 1 + preemptions for n in needed)])


def plan_for_config(config: dict[str, Any], root: str | Path = ".",
                    rehearsal_table: str | Path | None = None) -> list[PlanRow]:
    """The plan of a validated config (paper runs only: smoke jobs are minutes on one CPU core);
    measured runs under ``root``, rehearsal figures from ``rehearsal_table`` (default
    ``<root>/rehearsal/rehearsal.json``)."""
    from replibench.config import plan_runs
    from replibench.rehearsal import REHEARSAL_TABLE, rehearsal_costs

    planned = [p for p in plan_runs(config) if p.run.preset == "paper"]
    table = Path(root) / REHEARSAL_TABLE if rehearsal_table is None else Path(rehearsal_table)
    return plan_rows(planned, measured_runs(root), rehearsal_costs(planned, table))


def write_plan_log(planned_runs: list[PlannedRun], path: str | Path, root: str | Path = ".") -> str:
    """Write the plan of the paper runs among ``planned_runs`` to ``path`` (atomically) and log its
    totals: what ``snakemake`` shows at start-up for the paper preset."""
    import logging

    from replibench.atomic import write_text_atomic

    from replibench.rehearsal import REHEARSAL_TABLE, rehearsal_costs

    paper = [p for p in planned_runs if p.run.preset == "paper"]
    text = plan_text(plan_rows(paper, measured_runs(root), rehearsal_costs(paper, Path(root) / REHEARSAL_TABLE)))
    write_text_atomic(path, text)
    logging.getLogger("replibench.plan").warning("paper preset plan (%s): %s", path, text.splitlines()[-1])
    return text
