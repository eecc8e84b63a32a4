"""Figures: paper vs ours and learning curves per family, and the hook for a family's own figures."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replibench.errors import DataError
from replibench.families.base import Family
from replibench.report.plots import PlotRef, save_figure
from replibench.registry import FAMILIES

from .records import build_report, make_record, write_records


class DensityFamily(Family):
    """A stand-in for the crystal family: plots the density of its generated structures, read from
    each run's predictions.parquet (declared in ``report_files``)."""

    name = "crystal-toy"
    report_files = ("predictions.parquet",)

    def expand_runs(self, family_config, preset):
        return []

    def run_settings(self, family_config, run):
        return {}

    def report_plots(self, runs, board, out_dir):
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots()
        for run in runs:
            axis.hist(pq.read_table(run.files["predictions.parquet"])["density"].to_numpy(), label=run.record["model"])
        path = save_figure(figure, Path(out_dir) / "density.png")
        self.seen = sorted(run.record["dataset"] for run in runs)
        self.board_families = sorted(set(board["family"]))
        return [PlotRef(self.name, path, "density of generated crystals", {"task": "csp"})]


@pytest.fixture
def density_family(monkeypatch):
    family = DensityFamily()
    module = types.ModuleType("replibench_test_density_family")
    module.FAMILY = family
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(FAMILIES, "crystal-toy", f"{module.__name__}:FAMILY")
    return family


def write_predictions(root: Path, dataset: str, densities: list[float]) -> None:
    path = Path(root) / "results/crystal-toy" / dataset / "csp/diffcsp/default/seed2021/predictions.parquet"
    pq.write_table(pa.table({"density": densities}), path)


def test_every_family_gets_paper_vs_ours_and_learning_curves(tmp_path):
    paths = build_report(tmp_path)
    names = sorted(str(p.relative_to(paths["plots"])) for p in paths["plots"].rglob("*.png"))
    assert names == ["crystal-toy/learning_curves_mp-20_csp.png", "crystal-toy/learning_curves_perov-5_csp.png",
                     "crystal-toy/paper_vs_ours.png", "ett/learning_curves_etth1_forecast.png",
                     "ett/learning_curves_etth2_forecast.png", "ett/paper_vs_ours.png",
                     "lra-toy/learning_curves_listops_lra-classify.png", "lra-toy/paper_vs_ours.png"]
    markdown = paths["markdown"].read_text()
    assert "* [crystal-toy: paper vs ours](plots/crystal-toy/paper_vs_ours.png)" in markdown
    assert "![ett: paper vs ours](plots/ett/paper_vs_ours.png)" in markdown
    assert "* [etth2/forecast: learning curves](plots/ett/learning_curves_etth2_forecast.png)" in markdown
    # same data, same bytes: figures do not churn in git when nothing changed
    first = (paths["plots"] / "ett" / "paper_vs_ours.png").read_bytes()
    again = build_report(tmp_path)
    assert (again["plots"] / "ett" / "paper_vs_ours.png").read_bytes() == first


def test_a_family_adds_its_own_figures_from_its_declared_files(tmp_path, density_family):
    records = [make_record(family="crystal-toy", dataset=d, task="csp", model="diffcsp", variant="default",
                           metrics={"match_rate": 50.0}) for d in ("mp-20", "perov-5")]
    metrics = write_records(tmp_path, records)
    write_predictions(tmp_path, "mp-20", [2.1, 3.3, 4.0])
    write_predictions(tmp_path, "perov-5", [5.0, 5.5])
    from replibench.report import report_stage

    results = tmp_path / "results"
    report_stage(metrics_paths=metrics, reference_paths=[], results_out=results / "results.parquet",
                 leaderboard_out=results / "leaderboard.md", html_out=results / "leaderboard.html",
                 plots_dir=results / "plots")
    assert (results / "plots/crystal-toy/density.png").is_file()
    assert density_family.seen == ["mp-20", "perov-5"] and density_family.board_families == ["crystal-toy"]
    assert "* [density of generated crystals](plots/crystal-toy/density.png)" in (results / "leaderboard.md").read_text()
    html = (results / "leaderboard.html").read_text()
    assert html.count('href="plots/crystal-toy/density.png"') == 2 + 1  # each csp row's details + the gallery


def test_missing_declared_files_are_an_error_not_a_silent_gap(tmp_path, density_family):
    metrics = write_records(tmp_path, [make_record(family="crystal-toy", dataset="mp-20", task="csp", model="diffcsp",
                                                   variant="default", metrics={"match_rate": 50.0})])
    from replibench.report import report_stage

    with pytest.raises(DataError, match=r"metrics.json: the crystal-toy report plots need .*predictions.parquet"):
        report_stage(metrics_paths=metrics, reference_paths=[], results_out=tmp_path / "r.parquet",
                     leaderboard_out=tmp_path / "l.md", html_out=None, plots_dir=tmp_path / "plots")


def test_the_report_rule_declares_the_files_the_family_plots_read():
    text = (Path(__file__).resolve().parents[2] / "rules" / "report.smk").read_text()
    assert "run_files=report_run_files()" in text
    assert Family.report_files == () and Family.report_plots(DensityFamily(), [], None, None) == []
