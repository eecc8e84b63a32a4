# All metrics.json + the papers' numbers → results table, leaderboards (Markdown, HTML) and plots.
# The HTML and the plots are marked for `snakemake --report`; plots are grouped by family.
rule report:
    input:
        metrics=all_metrics(),
        references=expand("references/{family}.yaml", family=config["families"]),
        run_files=report_run_files(),
    output:
        results="results/results.parquet",
        leaderboard="results/leaderboard.md",
        html=report("results/leaderboard.html", caption="../report/leaderboard.rst", category="Leaderboard"),
        table="results/leaderboard.parquet",
        plots=report(directory("results/plots"), patterns=["{family}/{name}.png"], caption="../report/plot.rst",
                     category="{family}", labels={"family": "{family}", "figure": "{name}"}),
    log:
        "logs/report/report.log",
    localrule: True
    conda:
        "../envs/core.yaml"
    shell:
        "replibench report --metrics {input.metrics:q} --references {input.references:q} "
        "--results-out {output.results:q} --leaderboard-out {output.leaderboard:q} --html-out {output.html:q} "
        "--plots-dir {output.plots:q} > {log:q} 2>&1"
