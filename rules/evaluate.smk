# One run's evaluation: predict the test split, store the predictions, score them from the stored
# file. A run whose plan splits its prediction (PlannedRun.shards, `replibench plan`) predicts in
# shards (one GPU job each, written atomically, rerun alone when it fails), then the evaluate job
# gathers and scores them on the CPU, without the weights.


def sharded(wildcards):
    return PLAN[run_id(wildcards)].shards


def shard_files(wildcards):
    shards = sharded(wildcards)
    return [f"results/{run_id(wildcards)}/shards/{shard}-of-{shards}.parquet" for shard in range(shards)]


def predictions_source(wildcards):
    """What the evaluate job predicts from: the run's shards when sharded, else its weights."""
    if sharded(wildcards):
        return {"shards": shard_files(wildcards)}
    return {"model": f"checkpoints/{run_id(wildcards)}/model.pt"}


def evaluation_files(wildcards):
    """Files the run's scoring reads besides data and weights (its family's ``evaluation_files``: e.g.
    CDVAE's released property model for wdist_prop and the SR rates), downloaded and verified first."""
    from replibench.config import family_object

    planned = PLAN[run_id(wildcards)]
    return family_object(wildcards.family).evaluation_files(planned.run, planned.settings)


def evaluation_resource(key):
    """The evaluate job's resource: the whole evaluation's, or the CPU scoring job's when sharded."""
    return lambda wildcards: getattr(run_resources("score" if sharded(wildcards) else "evaluate")(wildcards), key)


rule predict_shard:
    input:
        data="data/parquet/{family}/{dataset}",
        model="checkpoints/" + RUN + "/model.pt",
        summary="checkpoints/" + RUN + "/train.json",
    output:
        "results/" + RUN + "/shards/{shard}-of-{shards}.parquet",
    wildcard_constraints:
        shard="[0-9]+",
        shards="[0-9]+",
    log:
        "logs/predict_shard/" + RUN + "/{shard}-of-{shards}.log",
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
        "replibench predict-shard --settings {params.settings:q} --data {input.data:q} --model {input.model:q} "
        "--summary {input.summary:q} --shard {wildcards.shard:q} --of {wildcards.shards:q} --out {output:q} "
        "--threads {threads} > {log:q} 2>&1"


rule evaluate:
    input:
        unpack(predictions_source),
        unpack(evaluation_files),
        data="data/parquet/{family}/{dataset}",
        summary="checkpoints/" + RUN + "/train.json",
    output:
        metrics="results/" + RUN + "/metrics.json",
        predictions="results/" + RUN + "/predictions.parquet",
    log:
        "logs/evaluate/" + RUN + ".log",
    params:
        settings=run_settings_json,
        model=lambda wildcards: "" if sharded(wildcards) else f"checkpoints/{run_id(wildcards)}/model.pt",
        shards=shard_files,
    threads: evaluation_resource("cpus")
    resources:
        gpu=evaluation_resource("gpus"),
        mem_mb=evaluation_resource("mem_mb"),
        runtime=evaluation_resource("runtime_min"),
    conda:
        "../envs/core.yaml"
    shell:
        "replibench evaluate --settings {params.settings:q} --data {input.data:q} --model={params.model:q} "
        "--shards {params.shards:q} --summary {input.summary:q} --metrics-out {output.metrics:q} "
        "--predictions-out {output.predictions:q} --lock requirements.lock --threads {threads} > {log:q} 2>&1"
