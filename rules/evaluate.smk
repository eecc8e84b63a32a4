# One run: predict the test split, store predictions, score them from the stored file.
rule evaluate:
    input:
        data="data/parquet/{family}/{dataset}",
        model="checkpoints/" + RUN + "/model.pt",
        summary="checkpoints/" + RUN + "/train.json",
    output:
        metrics="results/" + RUN + "/metrics.json",
        predictions="results/" + RUN + "/predictions.parquet",
    log:
        "logs/evaluate/" + RUN + ".log",
    params:
        settings=run_settings_json,
    threads: run_resource("evaluate", "cpus")
    resources:
        gpu=run_resource("evaluate", "gpus"),
        mem_mb=run_resource("evaluate", "mem_mb"),
        runtime=run_resource("evaluate", "runtime_min"),
    conda:
        "../envs/core.yaml"
    shell:
        "replibench evaluate --settings {params.settings:q} --data {input.data:q} --model {input.model:q} "
        "--summary {input.summary:q} --metrics-out {output.metrics:q} --predictions-out {output.predictions:q} "
        "--lock requirements.lock --threads {threads} > {log:q} 2>&1"
