# One run: train (resuming from checkpoints/<run>/last.pt when it exists) → best-validation weights.
rule train:
    input:
        data="data/parquet/{family}/{dataset}",
    output:
        model="checkpoints/" + RUN + "/model.pt",
        summary="checkpoints/" + RUN + "/train.json",
    log:
        "logs/train/" + RUN + ".log",
    params:
        settings=run_settings_json,
    threads: resource("train", "cpus", 1)
    resources:
        gpu=resource("train", "gpus", 0),
        mem_mb=resource("train", "mem_mb", 8000),
        runtime=resource("train", "runtime_min", 240),
    retries: 3
    conda:
        "../envs/core.yaml"
    shell:
        "replibench train --settings {params.settings:q} --data {input.data} --model-out {output.model} "
        "--summary-out {output.summary} --threads {threads} --no-progress > {log} 2>&1"
