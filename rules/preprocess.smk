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
    threads: WORKERS
    resources:
        mem_mb=resource("preprocess", "mem_mb", 4000),
        runtime=resource("preprocess", "runtime_min", 30),
    conda:
        "../envs/core.yaml"
    shell:
        "replibench preprocess --dataset {wildcards.dataset:q} --raw {input:q} --out {output:q} "
        "--options={params.options:q} --checksums={params.checksums:q} --workers {threads} > {log:q} 2>&1"
