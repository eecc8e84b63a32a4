"""The rehearsal of the paper preset: every paper run's training for a few steps at its real sizes.

``snakemake --config preset=paper rehearsal=true`` rehearses each paper run of the config (one seed
per run: seeds change no size) on its official data where that is at hand and on a shape-faithful
stand-in where it is not (:meth:`~replibench.families.base.Family.rehearsal_data`): the model at
the paper's size, one GPU's share of the paper's global batch (``batch_size / micro_batches``), a few optimiser steps, a checkpoint and a
resume from it that must reproduce the weights, and one forward pass in evaluation mode. Each run
writes ``rehearsal/<run>/rehearsal.json`` (:func:`replibench.train.rehearse_steps`); the report
``rehearsal/rehearsal.md`` lists every paper run, rehearsed or why not. Nothing here is a result:
no paper metric is computed, and the leaderboard never reads these files.

``replibench plan`` uses ``rehearsal/rehearsal.json`` for runs that have no measured run and no
published figure: seconds per step × the steps of the run's schedule on the official data
(scaled from the stand-in's by the official training-set size the family states).

Imported by the Snakefile (which runs only the helpers without torch here).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from replibench.config import PlannedRun, family_object

#: optimiser steps per rehearsal: one warm-up step and one timed; with the resume check and the
#: forward pass a run costs ~3 step times, which keeps the whole CPU rehearsal of config.yaml's
#: paper preset well under an hour on 2 cores (README); a cluster can afford more (--config is not
#: needed: `replibench rehearse --steps N`)
REHEARSAL_STEPS = 2
#: where the rehearsal's combined table is written (and read by ``replibench plan``)
REHEARSAL_TABLE = Path("rehearsal") / "rehearsal.json"
#: the rehearsal of the GPU-bound paper runs on a lent H200 (``replibench rehearse-batch``, README
#: "Rehearsal"), committed with the package: every plan, on any machine, sizes jobs from it
GPU_REHEARSAL_TABLE = Path(__file__).parent / "recorded" / "rehearsal-h200.json"
#: the fields a rehearsal's prediction slice adds to a record (:func:`replibench.train.rehearse_steps`)
PREDICTION_FIELDS = ("predicted_units", "predicted_rows", "predict_seconds", "predict_seconds_per_row")


def group_key(run_id: str) -> str:
    """The run id without its seed: runs that differ only in seed have the same sizes."""
    return run_id.rsplit("/", 1)[0]


def rehearsal_plan(planned_runs: list[PlannedRun], config: dict[str, Any]) -> tuple[
        dict[str, tuple[PlannedRun, str, dict[str, Any], str]], dict[str, str]]:
    """(run id → (planned run, data dataset, its options, the rehearsal's settings JSON)) of the
    runs to rehearse — the first seed of every paper run — and (run id → reason) of the paper runs
    that cannot be rehearsed yet."""
    rehearsed: dict[str, tuple[PlannedRun, str, dict[str, Any], str]] = {}
    not_rehearsed: dict[str, str] = {}
    seen: set[str] = set()
    for planned in planned_runs:
        run = planned.run
        if run.preset != "paper" or group_key(run.run_id) in seen:
            continue
        seen.add(group_key(run.run_id))
        family = family_object(run.family)
        data = family.rehearsal_data(run.dataset, config.get(run.family, {}))
        if data is None:
            not_rehearsed[run.run_id] = (f"{run.dataset}: official data not at hand here and no "
                                         "shape-faithful stand-in yet")
            continue
        settings = family.rehearsal_settings(run, planned.settings)
        settings_json = json.dumps({"run": run.as_dict(), **settings}, sort_keys=True, separators=(",", ":"))
        rehearsed[run.run_id] = (planned, data[0], data[1], settings_json)
    return rehearsed, not_rehearsed


def rehearsal_data_folder(planned: PlannedRun, dataset: str) -> str:
    """The folder a run rehearses on: its official dataset's or its stand-in's (``dataset``)."""
    return f"data/rehearsal/{planned.run.family}/{dataset}"


def stand_in_of(planned: PlannedRun, dataset: str) -> str:
    """The stand-in's name when a run rehearses on one, '' on its official data."""
    return "" if dataset == planned.run.dataset else dataset


def rehearsal_dataset_options(rehearsed: dict[str, tuple[PlannedRun, str, dict[str, Any], str]]) -> dict[str, str]:
    """Rehearsal dataset → its preprocessing options (canonical JSON), checked when the plan is made:
    every run that rehearses on a dataset must ask for the same options (one folder serves them)."""
    options: dict[str, str] = {}
    for run_id, (_, dataset, dataset_options, _) in rehearsed.items():
        text = json.dumps(dataset_options, sort_keys=True, separators=(",", ":"))
        if options.setdefault(dataset, text) != text:
            raise ValueError(f"rehearsal dataset {dataset}: {run_id} asks for options {text}, "
                             f"another run for {options[dataset]}; expected one set")
    return options


def write_rehearsal_jobs(config: dict[str, Any], out: str | Path, *, gpu_only: bool = False) -> list[dict[str, Any]]:
    """The rehearsal's runs of a validated config as one JSON file (``{"jobs": [...]}``: run id,
    settings JSON, data folder, stand-in, the GPUs its training asks for), for
    ``replibench rehearse-batch`` on a machine without Snakemake; GPU-bound runs first. The data
    folders are the ones ``snakemake --config preset=paper rehearsal=true`` preprocesses."""
    from replibench.atomic import write_json_atomic
    from replibench.config import plan_runs

    rehearsed, _ = rehearsal_plan(plan_runs(config), config)
    jobs = [{"run_id": run_id, "settings_json": settings_json, "data": rehearsal_data_folder(planned, dataset),
             "stand_in": stand_in_of(planned, dataset), "gpus": planned.resources["train"].gpus}
            for run_id, (planned, dataset, _, settings_json) in rehearsed.items()]
    jobs = [job for job in jobs if job["gpus"] > 0 or not gpu_only]
    # GPU-bound runs first, the families taking turns: a batch cut short by its time budget has
    # measured some runs of every family rather than all of one
    turn: dict[str, int] = {}
    for job in jobs:
        family = job["run_id"].split("/", 1)[0]
        job["_turn"] = turn[family] = turn.get(family, -1) + 1
    jobs.sort(key=lambda job: (job["gpus"] == 0, job.pop("_turn")))
    write_json_atomic(Path(out), {"jobs": jobs})
    return jobs


def write_rehearsal_report(records: list[Path], not_rehearsed: dict[str, str], *, out_md: Path,
                           out_json: Path) -> None:
    """``rehearsal.md`` (one line per paper run: its rehearsal's figures or why there is none)
    and ``rehearsal.json`` (the records and the reasons), atomically."""
    from replibench.atomic import write_json_atomic, write_text_atomic

    everything = sorted((json.loads(Path(path).read_text(encoding="utf-8")) for path in records),
                        key=lambda record: record["run_id"])
    loaded = [record for record in everything if record.get("status", "ok") == "ok"]
    broken = [record for record in everything if record.get("status", "ok") != "ok"]
    lines = ["# Rehearsal of the paper preset", "",
             "A few optimiser steps of every paper run at its real model and batch sizes, on its official "
             "data or a shape-faithful stand-in: a check that the jobs run, stop and resume, and a cost "
             "figure for `replibench plan`. **Not results**: no paper metric is computed here.", "",
             "| run | data | parameters | batch (micro) | s/step | forward s/example | peak RSS (MB) | "
             "peak GPU (MB) | resume | device |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for record in loaded:
        gpu = record.get("peak_gpu_memory_mb")
        forward = record.get("forward_seconds_per_example")
        lines.append(" | ".join([
            f"| {record['run_id']}", record["stand_in"] or "official", f"{record['parameters']:,}",
            f"{record['batch_size']} ({record['micro_batches']})", f"{record['seconds_per_step']:.3g}",
            "—" if forward is None else f"{forward:.3g}", f"{record['peak_resident_memory_mb']:,.0f}",
            "—" if gpu is None else f"{gpu:,.0f}", "ok" if record["resume_reproduces_weights"] else "FAILED",
            f"{record['device']} |"]))
    if broken:
        lines += ["", f"Failed ({len(broken)}): the job did not finish — what a rehearsal is for:", ""]
        lines += [f"- {record['run_id']}: exit {record['exit_code']}, {record['reason']}"
                  + (f"; log: `{record['log_tail'][-1]}`" if record["log_tail"] else "") for record in broken]
    if not_rehearsed:
        lines += ["", f"Not rehearsed ({len(not_rehearsed)}):", ""]
        lines += [f"- {run_id}: {reason}" for run_id, reason in sorted(not_rehearsed.items())]
    resume_failures = [record["run_id"] for record in loaded if not record["resume_reproduces_weights"]]
    lines += ["", f"{len(loaded)} runs rehearsed, {len(resume_failures)} resume failures, {len(broken)} failed, "
                  f"{len(not_rehearsed)} not rehearsed."]
    write_text_atomic(out_md, "\n".join(lines) + "\n")
    write_json_atomic(out_json, {"records": loaded, "failed": broken, "not_rehearsed": not_rehearsed})
    if resume_failures:  # a trainer bug, not a limit of the machine: the workflow stops on it
        from replibench.errors import DataError

        raise DataError(f"resuming did not reproduce the weights of {', '.join(resume_failures)} (see {out_md})")


def combine_rehearsal_tables(tables: list[dict[str, Any]], provenance: dict[str, Any]) -> dict[str, Any]:
    """One table of several ``rehearse-batch`` tables of one machine: a record per (run, mixed
    precision); a later table's record of the same pair replaces an earlier one's, except that a
    record of fewer steps only adds its prediction slice (:data:`PREDICTION_FIELDS`) to the
    earlier one; a failure stays listed only while no table has that pair rehearsed."""
    records: dict[tuple[str, str], dict[str, Any]] = {}
    failed: dict[tuple[str, str], dict[str, Any]] = {}
    for table in tables:
        for record in table["records"]:
            key = (record["run_id"], record["amp_asked"])
            earlier = records.get(key)
            if earlier is not None and record["steps"] < earlier["steps"]:
                earlier.update({field: record[field] for field in PREDICTION_FIELDS if field in record})
            else:
                records[key] = dict(record)
            failed.pop(key, None)
        for failure in table["failed"]:
            if (failure["run_id"], failure["amp"]) not in records:
                failed[failure["run_id"], failure["amp"]] = failure
    return {**provenance, "records": [records[key] for key in sorted(records)],
            "failed": [failed[key] for key in sorted(failed)]}


def _record_for(records: dict[str, list[dict[str, Any]]], planned: PlannedRun) -> dict[str, Any] | None:
    """The rehearsal record of a run's seed group at the run's own mixed precision (``train.amp``);
    a CPU table's single record otherwise (mixed precision is CUDA only)."""
    group = records.get(group_key(planned.run.run_id), [])
    amp = planned.settings.get("train", {}).get("amp", "off")
    return next((record for record in group if record.get("amp_asked", amp) == amp), None)


def _evaluation_hours(record: dict[str, Any], planned: PlannedRun, family: Any) -> tuple[float | None, str]:
    """Hours of the run's evaluation on the official test rows, and how they were found: seconds
    per predicted row of the rehearsal's prediction slice; else, where predicting a row is one
    forward pass, the rehearsal's timed forward pass — a batch of ``eval_batch_size`` at most the
    rehearsed batch costs at most that batch's forward (an upper bound where launches dominate)."""
    import math

    rows = family.official_prediction_rows(planned.run, planned.settings)
    if rows is None:
        return None, "evaluation not rehearsed"
    per_row = record.get("predict_seconds_per_row")
    if per_row is not None:
        return per_row * rows / 3600, (f"evaluation: {per_row:.3g} s per predicted row ({record['predicted_rows']:,} rows"
                                       f"{' of the stand-in' if record['stand_in'] else ''}) × {rows:,} official rows")
    per_example = record.get("forward_seconds_per_example")
    if per_example is None or not family.prediction_is_one_forward_pass(planned.run):
        return None, "evaluation not rehearsed"
    batch_here = record["batch_per_step_here"]
    eval_batch = int(planned.settings.get("task", {}).get("eval_batch_size") or batch_here)
    if eval_batch > batch_here:
        return per_example * rows / 3600, (f"evaluation: {per_example:.3g} s per example of a forward pass × "
                                           f"{rows:,} official rows")
    per_batch = per_example * batch_here
    batches = math.ceil(rows / eval_batch)
    return batches * per_batch / 3600, (f"evaluation: {batches:,} forward passes of {eval_batch} of the {rows:,} "
                                        f"official rows, each at most the rehearsed batch of {batch_here}'s "
                                        f"{per_batch:.3g} s (an upper bound)")


def _proxy_cost(records: dict[str, list[dict[str, Any]]], planned: PlannedRun, family: Any, path: Path):
    """A :class:`~replibench.families.base.Cost` (an estimate) from the first of the family's
    :meth:`~replibench.families.base.Family.rehearsal_proxies` that the table rehearsed at the run's
    mixed precision with a prediction slice: its seconds per predicted row × the official rows, and,
    for a proxy that prices training, its seconds per training example × the official training
    examples × the run's epochs on its GPUs; None if there is none."""
    from replibench.families.base import Cost

    rows = family.official_prediction_rows(planned.run, planned.settings)
    amp = planned.settings.get("train", {}).get("amp", "off")
    for proxy in family.rehearsal_proxies(planned.run, planned.settings):
        for key, group in records.items():
            record = next((r for r in group if r.get("amp_asked", amp) == amp
                           and r.get("predict_seconds_per_row") is not None), None)
            if not (key + "/").startswith(proxy.prefix) or record is None:
                continue
            device = record.get("device_name") or record["device"]
            per_row = record["predict_seconds_per_row"] * proxy.factor
            evaluate_hours = per_row * rows / 3600 if rows is not None else None
            notes = [f"{per_row:.3g} s per predicted row × {rows:,} official rows"] if rows is not None else []
            train_hours = None
            examples = family.official_train_examples(planned.run.dataset)
            epochs = planned.settings.get("train", {}).get("epochs")
            if proxy.train and examples and epochs:
                gpus = max(1, planned.resources["train"].gpus)
                per_example = record["seconds_per_step"] / record["batch_per_step_here"] * proxy.factor
                train_hours = per_example * examples * epochs / gpus / 3600
                notes.insert(0, f"training {per_example:.3g} s per example × {examples:,} × {epochs} epochs "
                                f"on {gpus} GPUs")
            if train_hours is None and evaluate_hours is None:
                continue
            return Cost(train_hours, evaluate_hours, device,
                        f"estimate from the rehearsal ({path.name}, amp {amp}) of {record['run_id']} on {device} "
                        f"({proxy.why}): " + "; ".join(notes), estimate=True)
    return None


def rehearsal_costs(planned_runs: list[PlannedRun], table: str | Path = REHEARSAL_TABLE):  # -> dict[str, Cost]
    """Run id → :class:`~replibench.families.base.Cost` from a rehearsal table, for every planned
    paper run whose seed group was rehearsed at its own mixed precision: training = s/step × the
    schedule's steps on the official data (the stand-in's steps × official / stand-in training
    examples, where the family states the official size), each global step ⌈micro_batches / GPUs⌉
    one-GPU steps; evaluation = s per predicted row × the official test rows, where the rehearsal
    made a prediction slice and the family states the rows, else the timed forward pass where a
    row is one (:func:`_evaluation_hours`), else the family's proxies (:func:`_proxy_cost`:
    an estimate; a run the table did not rehearse may get its figures that way)."""
    from replibench.families.base import Cost

    path = Path(table)
    if not path.is_file():
        return {}
    records: dict[str, list[dict[str, Any]]] = {}
    for record in json.loads(path.read_text(encoding="utf-8"))["records"]:
        records.setdefault(group_key(record["run_id"]), []).append(record)
    costs = {}
    for planned in planned_runs:
        family = family_object(planned.run.family)
        record = _record_for(records, planned)
        if record is None or not record["steps"]:
            proxy = _proxy_cost(records, planned, family, path)
            if proxy is not None:
                costs[planned.run.run_id] = proxy
            continue
        official = family.official_train_examples(planned.run.dataset)
        steps = record["steps_of_the_schedule_here"]
        scale_note = "on its own official data"
        if official is not None and official != record["train_examples_here"]:
            steps = steps * official / record["train_examples_here"]
            scale_note = f"scaled from {record['train_examples_here']:,} to {official:,} training examples"
        elif record["stand_in"]:
            continue  # a stand-in's schedule says nothing about the official one without its size
        gpus = max(1, planned.resources["train"].gpus)
        shares = -(-record["micro_batches"] // gpus)  # one GPU's steps per global step
        device = record.get("device_name") or record["device"]
        evaluate_hours, evaluation = _evaluation_hours(record, planned, family)
        costs[planned.run.run_id] = Cost(
            record["seconds_per_step"] * shares * steps / 3600, evaluate_hours, device,
            f"rehearsal ({path.name}, amp {record.get('amp', 'off')}): {record['seconds_per_step']:.3g} s per "
            f"one-GPU batch of {record['batch_per_step_here']} on {device} × {shares} per global step on {gpus} GPUs "
            f"× {steps:,.0f} steps ({scale_note}); {evaluation}")
        if evaluate_hours is None:
            proxy = _proxy_cost(records, planned, family, path)
            if proxy is not None and proxy.evaluate_hours is not None:
                costs[planned.run.run_id] = replace(costs[planned.run.run_id], evaluate_hours=proxy.evaluate_hours,
                                                    source=costs[planned.run.run_id].source + "; " + proxy.source)
    return costs
