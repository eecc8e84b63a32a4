# Raw files of one dataset → Parquet with an explicit schema + card.json + rejects.parquet.
# Each raw file is verified again against its checksum first (it may have changed since its download).
rule preprocess:
    input:
        raw_files,
    output:
        directory("data/parquet/{family}/{dataset}"),
    log:
        "logs/preprocess/{family}/{dataset}.log",
    params:
        options=dataset_options_json,
        checksums=dataset_pinned_checksums_json,
    threads: WORKERS  # data.workers: the results do not depend on it
    resources:
        mem_mb=preprocess_resource("mem_mb"),
        runtime=preprocess_resource("runtime_min"),
    conda:
        "../envs/core.yaml"
    shell:
        "replibench preprocess --dataset {wildcards.dataset:q} --raw {input:q} --out {output:q} "
        "--options={params.options:q} --checksums={params.checksums:q} --workers {threads} > {log:q} 2>&1"
