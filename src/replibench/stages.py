"""The pipeline stages behind ``replibench <stage>``: each takes explicit paths and writes only
the outputs it is given. The Snakemake rules call these through the CLI; tests call them directly.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from replibench.config import parse_settings_json
from replibench.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def download_stage(*, family: str, file_name: str, out: Path, mirror: str | None, progress: bool = True,
                   pinned_checksum: str | None = None) -> None:
    from replibench.data.download import fetch
    from replibench.registry import remote_file

    remote = remote_file(family, file_name)
    result = fetch(remote, out, mirror=mirror or None, progress=progress, pinned_checksum=pinned_checksum or None)
    print(f"{out}: {result.bytes} bytes from {result.source}, sha256 {result.sha256}"
          + (f" (resumed at byte {result.resumed_from})" if result.resumed_from else "")
          + ("" if result.downloaded else " (already present)"))


def verify_raw_files(dataset: str, raw_files: list[Path], pinned: dict[str, str] | None = None) -> None:
    """Check every raw file against its declared checksum before it is read.

    A raw file is trusted because its download verified it; a file changed on disk afterwards (an
    edit, a copy over it, a partial restore) would otherwise be preprocessed as if it were the
    published one. The checksum is the published one, else the user's ``data.checksums`` pin
    (``pinned``, keyed by mirror path).

    Raises:
        DataError: a file that is not one of the dataset's declared files.
        ChecksumError: a file with no checksum to check against, or whose bytes differ.
    """
    from replibench.data.checksum import verify_checksum
    from replibench.registry import dataset_spec
    from replibench.errors import ChecksumError

    spec = dataset_spec(dataset)
    declared = {remote.name: remote for remote in spec.remote_files}
    pinned = pinned or {}
    for path in map(Path, raw_files):
        remote = declared.get(path.name)
        if remote is None:
            raise DataError(f"{path}: not a declared raw file of dataset {dataset!r} "
                            f"(declared: {', '.join(sorted(declared)) or 'none'})")
        checksum = remote.checksum or pinned.get(remote.mirror_path)
        if checksum is None:
            raise ChecksumError(f"{path}: upstream publishes no checksum and none is pinned for it "
                                f"(data.checksums['{remote.mirror_path}']); it is not read unverified")
        try:
            matches, actual = verify_checksum(path, checksum)
        except ValueError as error:  # a malformed pin given on the command line
            raise ChecksumError(f"{path}: {error}") from error
        except OSError as error:
            raise DataError(f"{path}: cannot read the raw file: {error}") from error
        if not matches:
            raise ChecksumError(f"{path}: changed since it was downloaded: expected {checksum}, found {actual}; "
                                "delete it and the workflow downloads it again")


def preprocess_stage(*, dataset: str, raw_files: list[Path], out_dir: Path, workers: int = 1,
                     options_json: str = "{}", pinned_checksums_json: str = "{}") -> None:
    import json

    from replibench.registry import dataset_spec

    verify_raw_files(dataset, raw_files, json.loads(pinned_checksums_json))
    spec = dataset_spec(dataset)
    card = spec.preprocess([Path(p) for p in raw_files], Path(out_dir), workers=workers,
                           options=json.loads(options_json))
    print(f"{dataset}: rows {card['rows']}, rejected {card['rejected_rows']} → {out_dir}")


def _data_sha256(data_dir: Path) -> dict[str, str]:
    from replibench.data.tables import read_data_card

    card = read_data_card(data_dir)
    return {source["name"]: source["sha256"] for source in card["sources"] if source.get("sha256")}


def train_stage(*, settings_json: str, data_dir: Path, out_model: Path, out_summary: Path, checkpoint: Path,
                threads: int = 1, progress: bool = True, processes: int = 1) -> dict[str, Any]:
    """Train one run; write ``model.pt`` (best-validation weights) and ``train.json`` (curve).

    ``checkpoint`` is the resume checkpoint (the train rule declares ``checkpoints/<run>/last.pt``):
    written while training, resumed by the next attempt of the same run.

    ``processes`` > 1: this process is one rank of a torchrun data-parallel group of that size
    (see :mod:`replibench.distributed`); only rank 0 writes files.
    """
    import torch

    from replibench.atomic import atomic_path, write_json_atomic
    from replibench.distributed import init_process_group
    from replibench.registry import resolve
    from replibench.train import train

    world = init_process_group(max(1, processes))
    torch.set_num_threads(max(1, threads // world.size))  # the job's CPUs, shared by its processes
    run, settings = parse_settings_json(settings_json)
    task = resolve("task", run.task)
    data = task.load(Path(data_dir), run, settings)
    try:
        model, summary = train(task, data, run, settings, last_checkpoint=Path(checkpoint), progress=progress,
                               data_sha256=_data_sha256(Path(data_dir)))
    finally:
        if world.size > 1:
            torch.distributed.destroy_process_group()
    if not world.is_main:
        return summary
    with atomic_path(out_model) as tmp:
        torch.save({"state_dict": model.state_dict(), "run_id": run.run_id,
                    "settings_sha256": summary["settings_sha256"], "code": summary["code"]}, tmp)
    write_json_atomic(out_summary, {"run": run.as_dict(), "settings": settings, **summary})
    best = summary["best_val_loss"]  # None: a task with no validation split (zero-shot)
    print(f"{run.run_id}: {summary['steps']} steps, {summary['epochs']} epochs, "
          f"best val {'none' if best is None else f'{best:.6f}'}, {summary['wall_s']:.1f} s")
    return summary


def weights_code(summary: dict[str, Any], evaluating: dict[str, Any]) -> dict[str, Any]:
    """Provenance of the code: ``commit``/``commit_dirty``/``source_sha256`` are the training's
    (what produced the weights, from ``train.json``), never the evaluating checkout's; when the
    evaluation ran other code, that is recorded beside them as ``evaluate_code``. A train.json of
    an older version has no code record: the commit is then unknown (``None``), not guessed."""
    trained = summary.get("code") or {"commit": None, "commit_dirty": None, "source_sha256": None}
    fields = {key: trained.get(key) for key in ("commit", "commit_dirty", "source_sha256")}
    if any(evaluating.get(key) != fields[key] for key in fields):
        fields["evaluate_code"] = dict(evaluating)
    return fields


def _trained_model(*, settings_json: str, data_dir: Path, model_path: Path | None, train_summary: Path):
    """(run, settings, train summary, task, data, model, device) of a trained run: the settings must
    be the ones it was trained with; ``model_path`` None (a job that only gathers and scores
    predictions) builds no model: model None, device the CPU."""
    import json

    import torch

    from replibench.registry import resolve
    from replibench.train import resolve_device, seed_everything, settings_digest

    run, settings = parse_settings_json(settings_json)
    summary = json.loads(Path(train_summary).read_text(encoding="utf-8"))
    if summary["settings_sha256"] != settings_digest(settings):
        raise DataError(f"{train_summary}: trained with other settings than this evaluation asks for; retrain")
    task = resolve("task", run.task)
    data = task.load(Path(data_dir), run, settings)
    model, device = None, torch.device("cpu")
    if model_path is not None:
        seed_everything(run.seed)
        model = task.build_model(data, run, settings)
        checkpoint = torch.load(model_path, map_location="cpu", weights_only=True)
        model.load_state_dict(checkpoint["state_dict"])
        device = resolve_device(settings["train"].get("device", "auto"))
        model.to(device)
    return run, settings, summary, task, data, model, device


def shard_units(total: int, shard: int, shards: int) -> range:
    """The units of shard ``shard`` (0-based) of ``shards``: consecutive, sizes differing by at most one."""
    if not 0 <= shard < shards:
        raise ConfigError(f"shard {shard} of {shards}: must be in 0..{shards - 1}")
    return range(total * shard // shards, total * (shard + 1) // shards)


#: schema metadata key of a prediction shard's record (run, settings, units, device, wall time)
SHARD_KEY = b"replibench_shard"


def predict_shard_stage(*, settings_json: str, data_dir: Path, model_path: Path, train_summary: Path,
                        shard: int, shards: int, out: Path, threads: int = 1) -> dict[str, Any]:
    """Predict shard ``shard`` of ``shards`` of a run's test set (:meth:`Task.predict_units` of its
    range of units) on the run's device and write the table atomically, its provenance in the
    schema metadata; the CPU job that gathers the shards scores them (:func:`evaluate_stage`). A
    shard is one job: one that fails reruns alone, the finished ones stay."""
    import json

    import torch

    from replibench.data.tables import write_parquet_atomic
    from replibench.provenance import device_name
    from replibench.train import settings_digest

    torch.set_num_threads(threads)
    started = time.perf_counter()
    run, settings, _, task, data, model, device = _trained_model(
        settings_json=settings_json, data_dir=data_dir, model_path=model_path, train_summary=train_summary)
    total = task.prediction_units(data, settings)
    if total is None:
        raise ConfigError(f"{run.run_id}: task {run.task!r} cannot split its prediction into shards")
    units = shard_units(total, shard, shards)
    table = task.predict_units(model, data, run, settings, units)
    record = {"run_id": run.run_id, "settings_sha256": settings_digest(settings), "shard": shard, "shards": shards,
              "units": [units.start, units.stop], "total_units": total, "device": device_name(str(device)),
              "batch_dependent_model": bool(getattr(model, "batch_dependent", False)),
              "wall_s": time.perf_counter() - started}
    write_parquet_atomic(table.replace_schema_metadata(
        {**(table.schema.metadata or {}), SHARD_KEY: json.dumps(record).encode()}), out)
    print(f"{run.run_id}: shard {shard + 1}/{shards}, units {units.start}–{units.stop} of {total}, "
          f"{table.num_rows} rows, {record['wall_s']:.1f} s → {out}")
    return record


def gather_shards(shard_files: list[Path], *, run_id: str, settings_sha256: str) -> tuple[list, dict[str, Any]]:
    """The shards' tables (their shard records removed from the metadata) in unit order, and what
    the evaluation records of them. Refuses files of another run or settings, and a set of shards
    that does not cover every unit exactly once, naming the file."""
    import json

    import pyarrow.parquet as pq

    tables, records = [], []
    for path in shard_files:
        table = pq.read_table(path)
        metadata = dict(table.schema.metadata or {})
        if SHARD_KEY not in metadata:
            raise DataError(f"{path}: not a prediction shard (no {SHARD_KEY.decode()} metadata)")
        record = json.loads(metadata.pop(SHARD_KEY))
        if record["run_id"] != run_id or record["settings_sha256"] != settings_sha256:
            raise DataError(f"{path}: a shard of {record['run_id']} with settings {record['settings_sha256'][:12]}, "
                            f"expected {run_id} with {settings_sha256[:12]}")
        tables.append(table.replace_schema_metadata(metadata))
        records.append((path, record))
    records_in_order = sorted(records, key=lambda item: item[1]["units"][0])
    expected_start = 0
    for path, record in records_in_order:
        if record["units"][0] != expected_start:
            raise DataError(f"{path}: starts at unit {record['units'][0]}, expected {expected_start} "
                            f"(shards must cover units 0–{record['total_units']} once)")
        expected_start = record["units"][1]
    total = records_in_order[0][1]["total_units"] if records_in_order else 0
    if expected_start != total:
        raise DataError(f"shards {', '.join(map(str, shard_files))} cover units 0–{expected_start} of {total}")
    order = sorted(range(len(records)), key=lambda i: records[i][1]["units"][0])
    return [tables[i] for i in order], {
        "shards": len(records), "units": total,
        "predict_wall_s": sum(record["wall_s"] for _, record in records),
        "devices": sorted({record["device"] for _, record in records}),
        "batch_dependent_model": any(record["batch_dependent_model"] for _, record in records)}


def evaluate_stage(*, settings_json: str, data_dir: Path, model_path: Path | None, train_summary: Path,
                   out_metrics: Path, out_predictions: Path, lock_file: Path | None,
                   threads: int = 1, validate: bool = True, shard_files: list[Path] | None = None) -> dict[str, Any]:
    """Predict the test split — or gather the predictions of ``shard_files``
    (:func:`predict_shard_stage`) on the CPU, without the weights — store the predictions, score
    them **from the stored file**, and write the schema-validated ``metrics.json`` with provenance
    (``validate=False``: written unvalidated, for a host without jsonschema; see
    :func:`replibench.results.write_metrics`)."""
    import pyarrow.parquet as pq
    import torch

    from replibench import provenance
    from replibench.data.tables import write_parquet_atomic
    from replibench.results import write_metrics
    from replibench.train import settings_digest

    torch.set_num_threads(threads)
    started = time.perf_counter()
    if shard_files and model_path is not None:
        raise ConfigError("evaluate: give either --model (predict here) or --shards (gather), not both")
    if not shard_files and model_path is None:
        raise ConfigError("evaluate: --model or --shards is required")
    run, settings, summary, task, data, model, device = _trained_model(
        settings_json=settings_json, data_dir=data_dir, model_path=None if shard_files else model_path,
        train_summary=train_summary)
    sharding = None
    if shard_files:
        tables, sharding = gather_shards(list(shard_files), run_id=run.run_id, settings_sha256=settings_digest(settings))
        write_parquet_atomic(task.merge_predictions(tables, data, settings), out_predictions)
    else:
        write_parquet_atomic(task.predict(model, data, run, settings), out_predictions)
    metrics = task.score(pq.read_table(out_predictions), data, settings)
    info = task.metric_info()  # may also answer for parametrised names (``match_rate_k1@crysbfn``)
    protocol = {**task.protocol(data, settings),
                "batch_dependent_model": (sharding["batch_dependent_model"] if sharding
                                          else bool(getattr(model, "batch_dependent", False))),
                **({"prediction_shards": {k: v for k, v in sharding.items() if k != "batch_dependent_model"}}
                   if sharding else {}),
                "world_size": summary.get("world_size", 1)}
    record = {
        **{key: getattr(run, key) for key in ("family", "dataset", "task", "model", "variant", "seed", "preset")},
        "variant_values": run.values,
        "split": "test",
        "metrics": metrics,
        "metric_info": {name: {"direction": info[name].direction, "unit": info[name].unit,
                               "description": info[name].description,
                               **({"comparison_only": True} if info[name].comparison_only else {})}
                        for name in metrics if name in info},
        "protocol": protocol,
        "training": {
            "steps": summary["steps"], "epochs": summary["epochs"], "best_epoch": summary["best_epoch"],
            "best_val_loss": summary["best_val_loss"], "wall_s": summary["wall_s"],
            "max_steps": summary["max_steps"], "stopped_early": summary["stopped_early"],
            "device": summary["device"],
            "attempts": summary.get("attempts", []),
            "curve": [{k: e[k] for k in ("epoch", "step", "lr", "train_loss", "val_loss")} for e in summary["history"]],
        },
        "settings": settings,
        "provenance": {
            **provenance.collect(settings_sha256=settings_digest(settings), data_sha256=_data_sha256(Path(data_dir)),
                                 device=sharding["devices"][0] if sharding else str(device), lock_file=lock_file),
            **weights_code(summary, provenance.code_version()),
            "evaluate_wall_s": time.perf_counter() - started + (sharding["predict_wall_s"] if sharding else 0.0),
        },
    }
    write_metrics(out_metrics, record, validate=validate)
    print(f"{run.run_id}: " + ", ".join(f"{k} {v:.6g}" for k, v in metrics.items() if v is not None))
    return record


def rehearse_one(*, settings_json: str, data_dir: Path, checkpoint: Path, stand_in: str, steps: int,
                 amp: str | None = None, predict_units: int = 0) -> dict[str, Any]:
    """Rehearse one paper run (:func:`replibench.train.rehearse_steps`) on ``data_dir`` — the
    official data or the stand-in ``stand_in`` names; ``amp`` (``off``/``fp16``/``bf16``) replaces
    the run's ``train.amp`` (mixed precision applies on CUDA only). The rehearsal record:
    seconds per step at the run's real sizes, peak memory, parameters, whether resuming
    reproduced the weights. Never a result: no metric of the paper is computed."""
    import resource

    from replibench.registry import resolve
    from replibench.train import rehearse_steps

    started = time.perf_counter()
    run, settings = parse_settings_json(settings_json)
    if amp is not None:
        settings = {**settings, "train": {**settings["train"], "amp": amp}}
    task = resolve("task", run.task)
    data = task.load(Path(data_dir), run, settings)
    facts = rehearse_steps(task, data, run, settings, last_checkpoint=Path(checkpoint), steps=steps,
                           predict_units=predict_units)
    return {"run": run.as_dict(), "run_id": run.run_id, "status": "ok", "data": str(data_dir), "stand_in": stand_in,
            **facts, "peak_resident_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "wall_s": time.perf_counter() - started}


def available_memory_mb(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """The machine's ``MemAvailable`` (MiB), None where the kernel does not say (not Linux)."""
    try:
        for line in meminfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


def limit_cpu_memory(asked_mb: int) -> int:
    """Cap this process's address space at the memory its job asked for or nine tenths of the
    memory the machine has free (the rest stays for the machine), whichever is less (MiB; returned). Why: a CPU rehearsal of a run sized for a GPU node
    (Path-X: 16 sequences of 16,384 steps) would otherwise grow until the kernel's OOM killer ends
    it — minutes of swapping, then SIGKILL and no word of why. Under the cap, the allocation that
    does not fit fails at once with PyTorch's "can't allocate memory", which the rehearsal records.
    CPU only: CUDA reserves far more address space than it uses, so a GPU job is never capped."""
    import resource

    free_mb = available_memory_mb()
    cap_mb = min(asked_mb, free_mb * 9 // 10) if free_mb else asked_mb
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap_bytes = cap_mb * 2**20
    if hard != resource.RLIM_INFINITY:
        cap_bytes = min(cap_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, hard))
    return cap_bytes // 2**20


def rehearse_stage(*, settings_json: str, data_dir: Path, out: Path, checkpoint: Path, stand_in: str,
                   steps: int = 3, threads: int = 1, amp: str | None = None, predict_units: int = 0,
                   memory_mb: int | None = None) -> dict[str, Any]:
    """One paper run's rehearsal (:func:`rehearse_one`) written to ``out`` (``rehearsal.json``);
    on a machine without CUDA, ``memory_mb`` (the job's memory) caps the process (:func:`limit_cpu_memory`)."""
    import torch

    from replibench.atomic import write_json_atomic

    torch.set_num_threads(threads)
    memory_limit_mb = None
    if memory_mb and not torch.cuda.is_available():
        memory_limit_mb = limit_cpu_memory(memory_mb)
        print(f"address space capped at {memory_limit_mb:,} MiB (job asked {memory_mb:,})")
    record = {**rehearse_one(settings_json=settings_json, data_dir=data_dir, checkpoint=checkpoint,
                             stand_in=stand_in, steps=steps, amp=amp, predict_units=predict_units),
              "threads": threads, "memory_limit_mb": memory_limit_mb}
    write_json_atomic(out, record)
    print(f"{record['run_id']}: {record['parameters']:,} parameters, {record['seconds_per_step']:.3g} s/step "
          f"(batch {record['batch_size']}, {record['device']}, amp {record['amp']}), resume reproduces weights: "
          f"{record['resume_reproduces_weights']} → {out}")
    return record


def rehearse_batch_stage(*, jobs_file: Path, out: Path, checkpoint_dir: Path, steps: int, amps: list[str],
                         budget_s: float | None = None, threads: int = 1, predict_units: int = 1) -> dict[str, Any]:
    """Rehearse every job of ``jobs_file`` (``replibench rehearsal-jobs``) under each mixed-precision
    setting of ``amps``, in one process: a GPU machine lent for minutes, without Snakemake, pays
    Python's and CUDA's start-up once instead of once per run. A run that fails (out of GPU memory,
    an error) is recorded as failed with the error and the next one starts; the table is rewritten
    atomically after every run, so a batch cut short keeps what it measured. With ``budget_s``, no
    run starts after that many seconds (the rest are listed as not reached). Each run also predicts
    ``predict_units`` units of its test set (tasks that split their prediction), with mixed
    precision as its training."""
    import json
    import traceback

    import torch

    from replibench.atomic import write_json_atomic

    torch.set_num_threads(threads)
    jobs = json.loads(Path(jobs_file).read_text(encoding="utf-8"))["jobs"]
    device = (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
    table: dict[str, Any] = {"device_name": device, "torch": torch.__version__, "steps": steps, "amps": list(amps),
                             "predict_units": predict_units,
                             "records": [], "failed": [], "not_reached": []}
    began = time.perf_counter()
    for number, job in enumerate(jobs):
        for amp in amps:
            if budget_s is not None and time.perf_counter() - began > budget_s:
                table["not_reached"].append({"run_id": job["run_id"], "amp": amp})
                continue
            checkpoint = Path(checkpoint_dir) / f"{number}-{amp}.pt"
            try:
                record = rehearse_one(settings_json=job["settings_json"], data_dir=Path(job["data"]),
                                      checkpoint=checkpoint, stand_in=job["stand_in"], steps=steps, amp=amp,
                                      predict_units=predict_units)
                table["records"].append({**record, "device_name": device, "amp_asked": amp})
                print(f"{record['run_id']} amp {amp}: {record['seconds_per_step']:.4g} s/step, "
                      f"peak GPU {record.get('peak_gpu_memory_mb') or 0:,.0f} MB", flush=True)
            except Exception as error:  # a finding of the rehearsal, not a reason to stop the others
                out_of_memory = isinstance(error, torch.cuda.OutOfMemoryError)
                table["failed"].append({"run_id": job["run_id"], "amp": amp, "status": "failed",
                                        "reason": "out of GPU memory" if out_of_memory else "error",
                                        "error": f"{type(error).__name__}: {error}"[:2000],
                                        "log_tail": traceback.format_exc().splitlines()[-5:]})
                print(f"{job['run_id']} amp {amp}: FAILED {type(error).__name__}: {str(error)[:300]}", flush=True)
            finally:
                checkpoint.unlink(missing_ok=True)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            table["wall_s"] = time.perf_counter() - began
            write_json_atomic(out, table)
    table["wall_s"] = time.perf_counter() - began
    write_json_atomic(out, table)
    return table


#: what PyTorch's CPU allocator says when an allocation exceeds the address-space cap
OUT_OF_HOST_MEMORY = "can't allocate memory"


def rehearsal_failure_stage(*, settings_json: str, out: Path, log: Path, exit_code: int) -> dict[str, Any]:
    """Record a rehearsal that did not finish (``replibench rehearse`` exited with ``exit_code``;
    137 = killed, usually for memory): what a rehearsal is for. The report lists it with the last
    lines of its log; the plan takes no figure from it."""
    from replibench.atomic import write_json_atomic

    run, _ = parse_settings_json(settings_json)
    lines = Path(log).read_text(encoding="utf-8", errors="replace").splitlines() if Path(log).is_file() else []
    reason = {137: "killed (SIGKILL; out of memory on this machine?)", 75: "preempted"}.get(exit_code, "error")
    if any(OUT_OF_HOST_MEMORY in line for line in lines):
        reason = "out of memory: an allocation did not fit under the job's memory (the CPU rehearsal's cap)"
    record = {"run": run.as_dict(), "run_id": run.run_id, "status": "failed", "exit_code": exit_code,
              "reason": reason, "log_tail": lines[-5:]}
    write_json_atomic(out, record)
    print(f"{run.run_id}: rehearsal failed, exit {exit_code} ({reason}) → {out}")
    return record
