# All metrics.json → the flat files DVC reads: `dvc metrics show/diff` and `dvc plots show/diff`.
rule summary:
    input:
        metrics=all_metrics(),
    output:
        metrics="summary/metrics.json",
        curves=directory("summary/curves"),
    log:
        "logs/summary/summary.log",
    localrule: True
    conda:
        "../envs/core.yaml"
    shell:
        "replibench summary --metrics {input.metrics:q} --metrics-out {output.metrics:q} "
        "--curves-dir {output.curves:q} > {log:q} 2>&1"
