# One declared remote file → data/raw/{family}/{file}, verified against its published checksum.
# The mirror is not a param on purpose: it cannot change the bytes, so switching it never reruns.
# Every value reaches the shell quoted (`:q`): data.mirror is user text (validated at plan time as
# an http(s) URL or an existing folder, but a URL may hold `$(…)` and a folder a space).
rule download:
    output:
        "data/raw/{family}/{file}",
    log:
        "logs/download/{family}/{file}.log",
    params:
        checksum=pinned_checksum,
    localrule: True
    retries: 2
    conda:
        "../envs/core.yaml"
    shell:
        "replibench download --family {wildcards.family:q} --file {wildcards.file:q} --out {output:q} "
        "--mirror={MIRROR:q} --checksum={params.checksum:q} --no-progress > {log:q} 2>&1"
