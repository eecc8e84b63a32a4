# All metrics.json (this run's results/ and the committed recorded/ tree of runs made elsewhere) + the
# papers' numbers → results table, leaderboards (Markdown, HTML) and plots. A recorded run replaces a
# local run of the same run id and preset. The HTML and the plots are marked for `snakemake --report`;
# plots are grouped by family.
def recorded_metrics():
    """The committed metrics.json of runs made elsewhere, recorded/<run>/metrics.json (`replibench record`),
    of this config's families (the report reads those families' references only)."""
    return sorted(str(path) for family in config["families"]
                  for path in Path("recorded", family).glob("*/*/*/*/seed*/metrics.json"))


def superseded_metrics():
    """Recordings replaced by `replibench record --replace` (recorded/<run>/superseded/<created>.json):
    the leaderboards list them, no row counts them."""
    return sorted(str(path) for family in config["families"]
                  for path in Path("recorded", family).glob("*/*/*/*/seed*/superseded/*.json"))


rule report:
    input:
        metrics=all_metrics(),
        recorded=recorded_metrics(),
        superseded=superseded_metrics(),
        references=expand("references/{family}.yaml", family=config["families"]),
        run_files=report_run_files(),
        claims=claim_files(),
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
        "replibench report --metrics {input.metrics:q} --recorded {input.recorded:q} --superseded {input.superseded:q} --references {input.references:q} "
        "--results-out {output.results:q} --leaderboard-out {output.leaderboard:q} --html-out {output.html:q} "
        "--plots-dir {output.plots:q} --claims {input.claims:q} > {log:q} 2>&1"
