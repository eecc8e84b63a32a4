# The paper preset's rehearsal (`--config preset=paper rehearsal=true`): every paper run (one seed)
# trains a few steps at its real sizes on its official data or a shape-faithful stand-in,
# checkpoints and resumes → rehearsal/<run>/rehearsal.json, then one table. Never results.
REHEARSED, NOT_REHEARSED = rehearsal_plan(list(PLAN.values()), config)
REHEARSAL_OPTIONS = rehearsal_dataset_options(REHEARSED)  # one option set per rehearsal dataset, checked now


def rehearsal_data_dir(wildcards):
    """The folder a rehearsal trains on: its official dataset's or its stand-in's, under data/rehearsal/."""
    planned, dataset, _, _ = REHEARSED[run_id(wildcards)]
    return rehearsal_data_folder(planned, dataset)


def rehearsal_options_json(wildcards):
    """Preprocessing options of a rehearsal dataset (the same for every run that rehearses on it)."""
    return REHEARSAL_OPTIONS[wildcards.dataset]


def rehearsal_raw_files(wildcards):
    return declared_raw_files(wildcards.dataset, rehearsal_options_json(wildcards))


rule preprocess_rehearsal:
    input:
        rehearsal_raw_files,
    output:
        directory("data/rehearsal/{family}/{dataset}"),
    log:
        "logs/preprocess_rehearsal/{family}/{dataset}.log",
    params:
        options=rehearsal_options_json,
    threads: WORKERS
    resources:
        mem_mb=preprocess_resource("mem_mb"),
        runtime=preprocess_resource("runtime_min"),
    conda:
        "../envs/core.yaml"
    shell:
        "replibench preprocess --dataset {wildcards.dataset:q} --raw {input:q} --out {output:q} "
        "--options={params.options:q} --workers {threads} > {log:q} 2>&1"


# one GPU at most: a run of several GPUs is rehearsed on one, all its micro-batches on it
rule rehearse:
    input:
        data=rehearsal_data_dir,
    output:
        "rehearsal/" + RUN + "/rehearsal.json",
    log:
        "logs/rehearse/" + RUN + ".log",
    params:
        settings=lambda wildcards: REHEARSED[run_id(wildcards)][3],
        checkpoint="rehearsal/" + RUN + "/last.pt",
        stand_in=lambda wildcards: stand_in_of(*REHEARSED[run_id(wildcards)][:2]),
        steps=REHEARSAL_STEPS,
    threads: run_resource("train", "cpus")
    resources:
        gpu=lambda wildcards: min(1, run_resources("train")(wildcards).gpus),
        mem_mb=run_resource("train", "mem_mb"),
        runtime=30,
    conda:
        "../envs/core.yaml"
    # without CUDA the process is capped at the job's memory or the machine's free memory (a run too
    # large for it fails at once, recorded "out of memory", instead of swapping until it is killed);
    # a run that cannot rehearse (out of memory, an error) is a finding, not a broken workflow:
    # it is recorded as failed (exit code, log tail) and listed by the report
    shell:
        "replibench rehearse --settings {params.settings:q} --data {input.data:q} --stand-in={params.stand_in:q} "
        "--out {output:q} --checkpoint {params.checkpoint:q} --steps {params.steps:q} --threads {threads} "
        "--memory-mb {resources.mem_mb:q} > {log:q} 2>&1 "
        "|| replibench rehearsal-failure --settings {params.settings:q} --out {output:q} --log {log:q} --exit-code $?"


rule rehearsal_report:
    input:
        [f"rehearsal/{run}/rehearsal.json" for run in REHEARSED],
    output:
        md="rehearsal/rehearsal.md",
        table="rehearsal/rehearsal.json",
    params:
        not_rehearsed=json.dumps(NOT_REHEARSED, sort_keys=True),
    log:
        "logs/rehearsal_report.log",
    shell:
        "replibench rehearsal-report {input:q} --not-rehearsed {params.not_rehearsed:q} --out-md {output.md:q} "
        "--out-json {output.table:q} > {log:q} 2>&1"
