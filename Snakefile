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
include: "rules/report.smk"
include: "rules/summary.smk"
include: "rules/rehearse.smk"


# The paper preset's cost before anything runs: every job's GPUs, minutes per attempt, attempts,
# GPU-hours and the source of each figure (`replibench plan` prints the same) → logs/plan.tsv.
onstart:
    if config["preset"] == "paper" and not config.get("rehearsal"):
        from replibench.plan import write_plan_log

        write_plan_log(list(PLAN.values()), "logs/plan.tsv")


rule all:
    input:
        ["rehearsal/rehearsal.md"] if config.get("rehearsal") else [
            "results/leaderboard.md",
            "results/leaderboard.html",
            "results/results.parquet",
            "summary/metrics.json",
        ],
    default_target: True
