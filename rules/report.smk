# All metrics.json + the papers' numbers → results table, leaderboard and plots.
rule report:
    input:
        metrics=all_metrics(),
        references=expand("references/{family}.yaml", family=config["families"]),
    output:
        results="results/results.parquet",
        leaderboard="results/leaderboard.md",
        table="results/leaderboard.parquet",
        plots=directory("results/plots"),
    log:
        "logs/report/report.log",
    localrule: True
    conda:
        "../envs/core.yaml"
    shell:
        "replibench report --metrics {input.metrics} --references {input.references} "
        "--results-out {output.results} --leaderboard-out {output.leaderboard} --plots-dir {output.plots} "
        "> {log} 2>&1"
