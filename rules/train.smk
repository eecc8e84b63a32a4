# One run: train (resuming from checkpoints/<run>/last.pt when it exists) → best-validation weights.
# A preempted or timed-out attempt exits 75 after writing last.pt; `retries` resubmits it and the new
# attempt resumes, as many times as the longest planned training needs (TRAIN_RETRIES, rules/common.smk).
def training_files(wildcards):
    """Files the run's training reads besides its data (its family's ``training_files``: e.g.
    Moirai-MoE's released config.json and model.safetensors), downloaded and verified first."""
    from replibench.config import family_object

    planned = PLAN[run_id(wildcards)]
    return family_object(wildcards.family).training_files(planned.run, planned.settings)


rule train:
    input:
        unpack(training_files),
        data="data/parquet/{family}/{dataset}",
    output:
        model="checkpoints/" + RUN + "/model.pt",
        summary="checkpoints/" + RUN + "/train.json",
    log:
        "logs/train/" + RUN + ".log",
    params:
        settings=run_settings_json,
        processes=data_parallel_processes,
        # the resume checkpoint: not an output (Snakemake deletes a job's outputs before it
        # starts, and the next attempt must find it); kept after success for `replibench train` reruns
        checkpoint="checkpoints/" + RUN + "/last.pt",
    # what the run needs (families/*.py `paper_resources`, with its reason; config.yaml may override)
    threads: run_resource("train", "cpus")
    resources:
        gpu=run_resource("train", "gpus"),
        mem_mb=run_resource("train", "mem_mb"),
        runtime=run_resource("train", "runtime_min"),
    retries: TRAIN_RETRIES
    conda:
        "../envs/core.yaml"
    # `exec`: the trainer replaces the shell, so a signal SLURM sends to the job step reaches it
    # directly and its exit status (75 = preempted, checkpoint written) is the job's.
    # `--processes`: one data-parallel process per GPU the run asks for (> 1 → torchrun).
    shell:
        "exec replibench train --settings {params.settings:q} --data {input.data:q} --model-out {output.model:q} "
        "--summary-out {output.summary:q} --checkpoint {params.checkpoint:q} --threads {threads} --processes {params.processes:q} --no-progress > {log:q} 2>&1"
