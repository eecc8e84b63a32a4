# replibench workflow: download → preprocess → train → evaluate → report, for every family in
# config.yaml. All logic lives in the `replibench` package; rules only call its CLI with explicit
# paths. Plan without running: `snakemake -n` (imports no torch).

# Every config file is read first by replibench's loader, which names the line of a YAML syntax error
# and refuses a duplicated key (Snakemake's loader reports neither and keeps the last value silently).
from replibench.config import check_config_files

check_config_files(["config.yaml", *workflow.config_settings.configfiles])


configfile: "config.yaml"
report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/preprocess.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/claims.smk"
include: "rules/report.smk"
include: "rules/summary.smk"
include: "rules/rehearse.smk"


rule all:
    input:
        ["rehearsal/rehearsal.md"] if config.get("rehearsal") else [
            "results/leaderboard.md",
            "results/leaderboard.html",
            "results/results.parquet",
            "summary/metrics.json",
        ],
    default_target: True
