# One declared remote file → data/raw/{family}/{file}, verified against its published checksum.
# The mirror is not a param on purpose: it cannot change the bytes, so switching it never reruns.
rule download:
    output:
        "data/raw/{family}/{file}",
    log:
        "logs/download/{family}/{file}.log",
    params:
        mirror=lambda wildcards: f"--mirror {MIRROR}" if MIRROR else "",
        checksum=pinned_checksum_arg,
    localrule: True
    retries: 2
    conda:
        "../envs/core.yaml"
    shell:
        "replibench download --family {wildcards.family} --file {wildcards.file} --out {output} "
        "{params.mirror} {params.checksum} --no-progress > {log} 2>&1"
