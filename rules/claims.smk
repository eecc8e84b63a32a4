# A paper's measured claim (e.g. the Gaunt tensor product's speed-up over Clebsch-Gordan ones),
# measured here, one job per setting: results/claims/<family>/<claim>/<setting>.json. The family
# does the measuring (`replibench claim`; families/*/family.py `measure_claim`). One thread: the
# times are process CPU time of one core, comparable between settings and runs on one machine.
rule claim:
    output:
        "results/claims/{family}/{claim}/{setting}.json",
    log:
        "logs/claims/{family}/{claim}/{setting}.log",
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/core.yaml"
    shell:
        "replibench claim --family {wildcards.family:q} --claim {wildcards.claim:q} --setting {wildcards.setting:q} "
        "--device cpu --threads 1 --out {output:q} > {log:q} 2>&1"
