# Raw files of one dataset → Parquet with an explicit schema + card.json + rejects.parquet.
rule preprocess:
    input:
        raw_files,
    output:
        directory("data/parquet/{family}/{dataset}"),
    log:
        "logs/preprocess/{family}/{dataset}.log",
    params:
        options=dataset_options_json,
    threads: WORKERS
    resources:
        mem_mb=resource("preprocess", "mem_mb", 4000),
        runtime=resource("preprocess", "runtime_min", 30),
    conda:
        "../envs/core.yaml"
    shell:
        "replibench preprocess --dataset {wildcards.dataset} --raw {input} --out {output} "
        "--options {params.options:q} --workers {threads} > {log} 2>&1"
