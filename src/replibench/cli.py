"""``replibench`` command line: one subcommand per pipeline stage, plus tools for users.

Every path is explicit; nothing here decides where files go. Importing this module and running
``replibench --help`` imports no heavy library (torch, pymatgen, …): subcommands import what they
need when they run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from replibench.errors import ReplibenchError


def _add_download(sub) -> None:
    p = sub.add_parser("download", help="fetch one declared remote file and verify its checksum")
    p.add_argument("--family", required=True)
    p.add_argument("--file", required=True, dest="file_name", help="file name as declared, e.g. ETTh1.csv")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--mirror", default=None, help="mirror base URL or folder (<mirror>/<dataset folder>/<file>)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--checksum", default=None, help="your pinned checksum, for a file upstream publishes none for")
    p.set_defaults(handler=_cmd_download)


def _add_preprocess(sub) -> None:
    p = sub.add_parser("preprocess", help="raw files → Parquet + card.json + rejects.parquet")
    p.add_argument("--dataset", required=True)
    p.add_argument("--raw", nargs="*", default=[], type=Path, help="raw files (none for generated datasets)")
    p.add_argument("--options", default="{}", help="JSON options of the dataset (generator sizes, …)")
    p.add_argument("--checksums", default="{}",
                   help="JSON {mirror path: checksum}: your pins for raw files upstream publishes no checksum for")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(handler=_cmd_preprocess)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train one run (resumes from its last checkpoint)")
    p.add_argument("--settings", required=True, help="the run's settings JSON (from the workflow)")
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--model-out", required=True, type=Path)
    p.add_argument("--summary-out", required=True, type=Path)
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="resume checkpoint (written while training; resumed when the same run wrote it)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--processes", type=int, default=1,
                   help="data-parallel processes, one per GPU (> 1: relaunched under torchrun)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=_cmd_train)


def _add_rehearse(sub) -> None:
    p = sub.add_parser("rehearse", help="a paper run's few steps at its real sizes: s/step, memory, resume")
    p.add_argument("--settings", required=True, help="the run's settings JSON (from the workflow)")
    p.add_argument("--data", required=True, type=Path, help="its official data or the stand-in's folder")
    p.add_argument("--stand-in", default="", help="the stand-in dataset's name ('' = the official data)")
    p.add_argument("--out", required=True, type=Path, help="rehearsal.json")
    p.add_argument("--checkpoint", required=True, type=Path, help="where the rehearsal's checkpoint goes")
    p.add_argument("--steps", type=int, default=2, help="optimiser steps; the first is not timed (default 2)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--amp", choices=("off", "fp16", "bf16"), help="mixed precision instead of the run's own (CUDA)")
    p.add_argument("--predict-units", type=int, default=0,
                   help="also predict this many units of the test set (tasks that shard; default 0: none)")
    p.add_argument("--memory-mb", type=int, default=None,
                   help="the job's memory (MiB): without CUDA, the process is capped at it or at the machine's "
                        "free memory, so a run too large fails at once with a reason instead of being killed")
    p.set_defaults(handler=_cmd_rehearse)
    j = sub.add_parser("rehearsal-jobs", help="the rehearsal's runs as one JSON file, for rehearse-batch")
    j.add_argument("--configfile", type=Path, default=Path("config.yaml"))
    j.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                   help="overrides as snakemake --config, e.g. preset=paper")
    j.add_argument("--gpu-only", action="store_true", help="only runs whose training asks for a GPU")
    j.add_argument("--out", required=True, type=Path)
    j.set_defaults(handler=_cmd_rehearsal_jobs)
    b = sub.add_parser("rehearse-batch", help="rehearse many runs in one process (a GPU machine without Snakemake)")
    b.add_argument("--jobs", required=True, type=Path, help="from replibench rehearsal-jobs")
    b.add_argument("--out", required=True, type=Path, help="the combined rehearsal table (JSON)")
    b.add_argument("--checkpoint-dir", required=True, type=Path)
    b.add_argument("--steps", type=int, default=6, help="optimiser steps per run; the first is not timed")
    b.add_argument("--amp", nargs="+", default=["off"], choices=("off", "fp16", "bf16"),
                   help="rehearse each run under each of these mixed-precision settings")
    b.add_argument("--budget-s", type=float, help="start no run after this many seconds")
    b.add_argument("--predict-units", type=int, default=1,
                   help="units of the test prediction each run also makes (sharded tasks; 0: none)")
    b.add_argument("--threads", type=int, default=1)
    b.set_defaults(handler=_cmd_rehearse_batch)
    f = sub.add_parser("rehearsal-failure", help="record a rehearsal that did not finish (the rule calls it)")
    f.add_argument("--settings", required=True)
    f.add_argument("--out", required=True, type=Path)
    f.add_argument("--log", required=True, type=Path, help="the failed rehearsal's log")
    f.add_argument("--exit-code", required=True, type=int)
    f.set_defaults(handler=_cmd_rehearsal_failure)
    r = sub.add_parser("rehearsal-report", help="the rehearsal's table: every paper run, rehearsed or why not")
    r.add_argument("records", nargs="*", type=Path, help="rehearsal.json files")
    r.add_argument("--not-rehearsed", default="{}", help="JSON: run id → why it was not rehearsed")
    r.add_argument("--out-md", required=True, type=Path)
    r.add_argument("--out-json", required=True, type=Path)
    r.set_defaults(handler=_cmd_rehearsal_report)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="predict the test split, store predictions, score them")
    p.add_argument("--settings", required=True)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--model", type=lambda text: Path(text) if text else None,
                   help="model.pt: predict here (one job); '' or absent with --shards")
    p.add_argument("--shards", nargs="*", default=[], type=Path,
                   help="prediction shards (replibench predict-shard) to gather and score instead, on the CPU")
    p.add_argument("--summary", required=True, type=Path, help="train.json of the run")
    p.add_argument("--metrics-out", required=True, type=Path)
    p.add_argument("--predictions-out", required=True, type=Path)
    p.add_argument("--lock", type=Path, default=Path("requirements.lock"), help="lock file hashed into provenance")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(handler=_cmd_evaluate)
    s = sub.add_parser("predict-shard", help="predict one shard of a run's test set (a long evaluation, split)")
    s.add_argument("--settings", required=True)
    s.add_argument("--data", required=True, type=Path)
    s.add_argument("--model", required=True, type=Path)
    s.add_argument("--summary", required=True, type=Path, help="train.json of the run")
    s.add_argument("--shard", required=True, type=int, help="0-based")
    s.add_argument("--of", required=True, type=int, dest="shards", help="number of shards")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(handler=_cmd_predict_shard)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="results table, leaderboard and plots from metrics.json files")
    p.add_argument("--metrics", required=True, nargs="+", type=Path)
    p.add_argument("--recorded", nargs="*", default=[], type=Path,
                   help="committed metrics.json of runs made elsewhere (recorded/<run>/metrics.json); "
                        "one replaces a local run of the same run id and preset")
    p.add_argument("--superseded", nargs="*", default=[], type=Path,
                   help="replaced recordings (recorded/<run>/superseded/*.json): listed, not counted")
    p.add_argument("--references", required=True, nargs="+", type=Path)
    p.add_argument("--results-out", required=True, type=Path)
    p.add_argument("--leaderboard-out", required=True, type=Path, help="leaderboard.md (+ .parquet beside it)")
    p.add_argument("--html-out", type=Path, default=None, help="leaderboard.html (static, sortable, offline)")
    p.add_argument("--plots-dir", required=True, type=Path)
    p.add_argument("--claims", nargs="*", default=[], type=Path,
                   help="claim measurements (results/claims/<family>/<claim>/<setting>.json): rows of kind claim")
    p.set_defaults(handler=_cmd_report)


def _add_claim(sub) -> None:
    p = sub.add_parser("claim", help="measure one setting of a paper's claim (e.g. the Gaunt TP's speed) as JSON")
    p.add_argument("--family", required=True)
    p.add_argument("--claim", required=True)
    p.add_argument("--setting", required=True)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(handler=_cmd_claim)


def _add_summary(sub) -> None:
    p = sub.add_parser("summary", help="flat metrics JSON and training-curve CSVs for `dvc metrics` / `dvc plots`")
    p.add_argument("--metrics", required=True, nargs="+", type=Path)
    p.add_argument("--metrics-out", required=True, type=Path)
    p.add_argument("--curves-dir", required=True, type=Path)
    p.set_defaults(handler=_cmd_summary)


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="flag metrics that moved beyond their noise band between two results tables",
                       description="Exit status: 0 nothing flagged, 1 a metric moved beyond its noise band, "
                                   "vanished or lost its value, 2 an error. Noise band = max(SIGMAS x seed std "
                                   "where a table has >= 2 seeds, the family's stated tolerance).")
    p.add_argument("--baseline", required=True, type=Path, help="results.parquet to compare against (e.g. main's)")
    p.add_argument("--candidate", required=True, type=Path, help="results.parquet under test")
    p.add_argument("--tolerance", action="append", default=[], metavar="[FAMILY=]REL",
                   help="relative tolerance (0.01 = 1 %%) for every family or one; default: the family's stated one")
    p.add_argument("--absolute-tolerance", action="append", default=[], metavar="[FAMILY=]ABS",
                   help="absolute tolerance floor, for every family or one")
    p.add_argument("--sigmas", type=float, default=2.0, help="band width in seed standard deviations (default 2)")
    p.add_argument("--markdown-out", type=Path, default=None, help="also write the report here (PR comment)")
    p.set_defaults(handler=_cmd_compare)


def _add_metrics(sub) -> None:
    from replibench.registry import FAMILIES

    p = sub.add_parser("metrics", help="score your own predictions with a task's protocol and metric code",
                       description="replibench metrics <family> <task> [options]; "
                                   "`replibench metrics <family> <task> --help` lists the task's options")
    p.add_argument("family", choices=sorted(FAMILIES))
    p.add_argument("task", help="one of the family's tasks (e.g. ett forecast, crystals csp, oc20 s2ef)")
    p.add_argument("options", nargs=argparse.REMAINDER, help="the task's options (--pred, --out, …)")
    p.set_defaults(handler=_cmd_metrics)


def _add_record(sub) -> None:
    p = sub.add_parser("record", help="copy paper-preset runs' metrics.json (validated) into recorded/ for git")
    p.add_argument("metrics", nargs="+", type=Path, help="results/<run>/metrics.json (from any machine)")
    p.add_argument("--to", type=Path, default=Path("recorded"), help="the recorded tree (default: recorded)")
    p.add_argument("--replace", action="store_true", help="replace a different, already recorded run")
    p.set_defaults(handler=_cmd_record)


def _add_plan(sub) -> None:
    p = sub.add_parser("plan", help="the paper runs' cost before launch: GPUs, attempts, GPU-hours, sources",
                       description="Every paper-preset job of the config with its GPUs, CPUs, minutes per attempt, "
                                   "expected wall hours, attempts, GPU-hours and where each figure comes from "
                                   "(measured run, paper log, estimate), then the total.")
    p.add_argument("--configfile", type=Path, default=Path("config.yaml"))
    p.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                   help="overrides as snakemake --config, e.g. preset=paper")
    p.add_argument("--no-sources", action="store_true", help="leave the source column out")
    p.set_defaults(handler=_cmd_plan)


def _add_config(sub) -> None:
    p = sub.add_parser("config", help="validate a config and list the runs it plans (run id, preset)")
    p.add_argument("--config", type=Path, default=Path("config.yaml"))
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="dotted overrides, as snakemake --config")
    p.add_argument("--resources", action="store_true",
                   help="also each run's train/evaluate job resources (GPUs, CPUs, memory, minutes per attempt, why)")
    p.set_defaults(handler=_cmd_config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="replibench", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_download, _add_preprocess, _add_train, _add_evaluate, _add_report, _add_summary,
                _add_compare, _add_metrics, _add_record, _add_config, _add_plan, _add_rehearse, _add_claim):
        add(sub)
    return parser


def _cmd_download(args: argparse.Namespace) -> None:
    from replibench.stages import download_stage

    download_stage(family=args.family, file_name=args.file_name, out=args.out, mirror=args.mirror,
                   progress=not args.no_progress, pinned_checksum=args.checksum)


def _cmd_preprocess(args: argparse.Namespace) -> None:
    from replibench.stages import preprocess_stage

    preprocess_stage(dataset=args.dataset, raw_files=args.raw, out_dir=args.out, workers=args.workers,
                     options_json=args.options, pinned_checksums_json=args.checksums)


def _cmd_train(args: argparse.Namespace) -> None:
    import os

    from replibench.distributed import launched_by_torchrun, torchrun_command
    from replibench.stages import train_stage

    if args.processes > 1 and not launched_by_torchrun():  # the one place that decides to use torchrun
        command = torchrun_command(args.argv, args.processes)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(command[0], command)  # same PID: SLURM's signals and the exit status stay with this job
    train_stage(settings_json=args.settings, data_dir=args.data, out_model=args.model_out,
                out_summary=args.summary_out, checkpoint=args.checkpoint, threads=args.threads,
                progress=not args.no_progress,
                processes=args.processes)


def _cmd_rehearse(args: argparse.Namespace) -> None:
    from replibench.stages import rehearse_stage

    rehearse_stage(settings_json=args.settings, data_dir=args.data, out=args.out, checkpoint=args.checkpoint,
                   stand_in=args.stand_in, steps=args.steps, threads=args.threads, amp=args.amp,
                   predict_units=args.predict_units, memory_mb=args.memory_mb)


def _cmd_rehearsal_jobs(args: argparse.Namespace) -> None:
    from replibench.rehearsal import write_rehearsal_jobs

    jobs = write_rehearsal_jobs(_config_with_overrides(args.configfile, args.config), args.out,
                                gpu_only=args.gpu_only)
    print(f"{len(jobs)} rehearsal jobs → {args.out}")


def _cmd_rehearse_batch(args: argparse.Namespace) -> None:
    from replibench.stages import rehearse_batch_stage

    table = rehearse_batch_stage(jobs_file=args.jobs, out=args.out, checkpoint_dir=args.checkpoint_dir,
                                 steps=args.steps, amps=args.amp, budget_s=args.budget_s, threads=args.threads,
                                 predict_units=args.predict_units)
    print(f"{len(table['records'])} rehearsed, {len(table['failed'])} failed, {len(table['not_reached'])} not "
          f"reached in {table['wall_s']:.0f} s → {args.out}")


def _cmd_rehearsal_failure(args: argparse.Namespace) -> None:
    from replibench.stages import rehearsal_failure_stage

    rehearsal_failure_stage(settings_json=args.settings, out=args.out, log=args.log, exit_code=args.exit_code)


def _cmd_rehearsal_report(args: argparse.Namespace) -> None:
    import json

    from replibench.rehearsal import write_rehearsal_report

    write_rehearsal_report(args.records, json.loads(args.not_rehearsed), out_md=args.out_md, out_json=args.out_json)


def _cmd_predict_shard(args: argparse.Namespace) -> None:
    from replibench.stages import predict_shard_stage

    predict_shard_stage(settings_json=args.settings, data_dir=args.data, model_path=args.model,
                        train_summary=args.summary, shard=args.shard, shards=args.shards, out=args.out,
                        threads=args.threads)


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from replibench.stages import evaluate_stage

    evaluate_stage(settings_json=args.settings, data_dir=args.data, model_path=args.model,
                   shard_files=args.shards, train_summary=args.summary, out_metrics=args.metrics_out,
                   out_predictions=args.predictions_out, lock_file=args.lock, threads=args.threads)


def _cmd_report(args: argparse.Namespace) -> None:
    from replibench.report import report_stage

    report_stage(metrics_paths=args.metrics, reference_paths=args.references, results_out=args.results_out,
                 leaderboard_out=args.leaderboard_out, html_out=args.html_out, plots_dir=args.plots_dir,
                 recorded_paths=args.recorded, superseded_paths=args.superseded, claim_paths=args.claims)


def _cmd_claim(args: argparse.Namespace) -> None:
    from replibench.atomic import write_text_atomic
    import json

    from replibench.registry import resolve

    family = resolve("family", args.family)
    claim = family.measure_claim(args.claim, args.setting, device=args.device, threads=args.threads)
    write_text_atomic(args.out, json.dumps(claim, indent=1) + "\n")
    print(f"{args.family}/{args.claim}/{args.setting}: {len(claim['rows'])} rows on {claim['device']} → {args.out}")


def _cmd_record(args: argparse.Namespace) -> None:
    from replibench.results import record_run

    for path in args.metrics:
        print(f"{path} → {record_run(path, args.to, replace=args.replace)}")


def _cmd_summary(args: argparse.Namespace) -> None:
    from replibench.report.summary import summary_stage

    summary_stage(metrics_paths=args.metrics, metrics_out=args.metrics_out, curves_dir=args.curves_dir)


def _cmd_compare(args: argparse.Namespace) -> int:
    from replibench.report.compare import compare_stage

    return compare_stage(baseline=args.baseline, candidate=args.candidate, sigmas=args.sigmas,
                         tolerance=args.tolerance, absolute_tolerance=args.absolute_tolerance,
                         markdown_out=args.markdown_out)


def _cmd_metrics(args: argparse.Namespace) -> None:
    from replibench.byo import score_file

    score_file(args.family, args.task, args.options)


def _cmd_config(args: argparse.Namespace) -> None:
    import yaml

    from replibench.config import load_config, plan_runs, validate_config

    config = load_config(args.config)
    for item in args.set:
        key, _, value = item.partition("=")
        config[key] = yaml.safe_load(value)
    config = validate_config(config, str(args.config))
    for planned in plan_runs(config):  # the preset per run: an entry may pin its own (`preset:`)
        if not args.resources:
            print(f"{planned.run.run_id}\t{planned.run.preset}")
            continue
        for stage, need in planned.resources.items():
            print(f"{planned.run.run_id}\t{planned.run.preset}\t{stage}\tgpus={need.gpus}\tcpus={need.cpus}\t"
                  f"mem_mb={need.mem_mb}\truntime_min={need.runtime_min}\t{need.reason}")


def _config_with_overrides(configfile: Path, overrides: list[str]) -> dict:
    """``configfile`` with ``KEY=VALUE`` overrides (YAML values, as ``snakemake --config``), validated."""
    import yaml

    from replibench.config import load_config, validate_config

    config = load_config(configfile)
    for item in overrides:
        key, _, value = item.partition("=")
        config[key] = yaml.safe_load(value)
    return validate_config(config, str(configfile))


def _cmd_plan(args: argparse.Namespace) -> None:
    from replibench.plan import plan_for_config, plan_text

    config = _config_with_overrides(args.configfile, args.config)
    rows = plan_for_config(config)
    if not rows:
        print(f"no paper-preset runs in {args.configfile} under preset {config.get('preset')!r} "
              "(try --config preset=paper)")
        return
    sys.stdout.write(plan_text(rows, sources=not args.no_sources))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        status = args.handler(args)
    except ReplibenchError as error:
        print(f"replibench {args.command}: error: {error}", file=sys.stderr)
        return 2
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
