"""What "reproduced" means (the band and every status, on hand-made rows), recorded runs, CPU-hours
and the per-paper table views."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from replibench.errors import DataError
from replibench.families.base import PaperTable
from replibench.report import (NO_PAPER, NO_VALUE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, SMOKE, build_leaderboard,
                               declared_paper_tables, load_references, paper_views, printed_precisions,
                               reproduction_band, status_of, summary_class)
from replibench.results import cpu_hours, gather_results, gpu_hours, read_runs, record_run

from .records import make_record, write_records

ROOT = Path(__file__).resolve().parents[2]


def row(**changes):
    """A leaderboard row as status_of sees it: paper 0.400 (printed to 3 digits), tolerance 5 %."""
    base = {"paper_value": 0.400, "value_precision": 0.0005, "tolerance": {"relative": 0.05}, "ours": 0.410,
            "ours_std": math.nan, "seeds": 1, "preset": "paper", "data_origin": "official", "note": None}
    return {**base, **changes}


# ---- the rule, one hand-made row per status -------------------------------------------------------

def test_reproduced_within_the_stated_tolerance():
    assert reproduction_band(row()) == (pytest.approx(0.02), "tolerance")  # 5 % of 0.400
    assert status_of(row(ours=0.4199)) == REPRODUCED


def test_not_reproduced_outside_it():
    assert status_of(row(ours=0.4201)) == NOT_REPRODUCED
    assert status_of(row(ours=0.3799)) == NOT_REPRODUCED  # both directions


def test_not_yet_run_is_a_paper_number_without_any_row(tmp_path):
    references = _toy_references(tmp_path)
    views = paper_views(build_leaderboard(gather_results([]), references), references, [("toy", TOY_TABLE)],
                        gather_results([]))
    statuses = {cell["status"] for cell in views[0]["cells"].values()}
    assert statuses == {NOT_RUN, NO_PAPER + " (our row only)"}
    assert views[0]["counts"]["not-run"] == 3  # the null reference is not a paper number


def test_smoke_only_never_counts_even_when_equal():
    assert status_of(row(ours=0.400, preset="smoke")) == SMOKE
    assert summary_class(SMOKE) == "smoke"


def test_generated_or_synthetic_data_never_counts():
    for origin in ("generated", "synthetic"):
        status = status_of(row(ours=0.400, data_origin=origin))
        assert status == f"{origin} data: not a reproduction" and summary_class(status) == "not-real-data"


def test_no_value_when_a_seed_gave_none():
    assert status_of(row(ours=math.nan, seeds=3)) == NO_VALUE
    assert status_of(row(ours=None)) == NO_VALUE


def test_no_paper_number_is_explained_not_judged():
    assert status_of(row(paper_value=math.nan, note="not in the paper")) == NO_PAPER + " (not in the paper)"


# ---- the band: stated tolerance, printed precision, seed spread ----------------------------------

def test_the_seed_spread_widens_the_band_only_with_two_or_more_seeds():
    # 3 seeds, std 0.02: 2 × 0.02 × √(1 + 1/3) = 0.04619 > 5 % of 0.400 = 0.02
    noisy = row(ours=0.440, ours_std=0.02, seeds=3)
    band, source = reproduction_band(noisy)
    assert band == pytest.approx(0.046188, abs=1e-6) and source == "seed spread"
    assert status_of(noisy) == REPRODUCED
    assert status_of(row(ours=0.440, ours_std=0.02, seeds=1)) == NOT_REPRODUCED  # one seed: no spread known
    assert status_of(row(ours=0.447, ours_std=0.02, seeds=3)) == NOT_REPRODUCED  # beyond 0.0462
    # a deterministic model (std 0) keeps the stated tolerance as its floor
    assert reproduction_band(row(ours_std=0.0, seeds=3)) == (pytest.approx(0.02), "tolerance")


def test_the_papers_printed_precision_is_a_floor():
    # the paper printed "2" (a unit): its number is 1.5 … 2.5; a 1 % tolerance (0.02) would be false precision
    coarse = row(paper_value=2.0, value_precision=0.5, tolerance={"relative": 0.01}, ours=2.3)
    assert reproduction_band(coarse) == (0.5, "paper precision") and status_of(coarse) == REPRODUCED
    assert status_of({**coarse, "ours": 2.51}) == NOT_REPRODUCED


def test_printed_precision_is_read_from_the_yaml_text_with_its_trailing_zeros():
    text = """\
entries:
  - &base {dataset: a, value: 0.500}
  - {dataset: b, value: 0.5}
  - {dataset: c, value: 59.60}
  - {dataset: d, value: 94}
  - {dataset: e, value: null}
  - {<<: *base, dataset: f}
  - {dataset: g, value: 1.2e-3}
"""
    assert printed_precisions(text) == pytest.approx([0.0005, 0.05, 0.005, 0.5, None, 0.0005, 0.00005])


def test_every_reference_knows_its_printed_precision():
    references = load_references(sorted((ROOT / "references").glob("*.yaml")))
    by_key = {(e["family"], e["dataset"], e["variant"], e["model"], e["metric"]): e for e in references}
    assert by_key[("ett", "etth1", "h720", "timesnet", "mae")]["value_precision"] == pytest.approx(0.0005)  # 0.500
    for entry in references:
        assert (entry["value_precision"] is None) == (entry["value"] is None), entry


# ---- CPU-hours and recorded runs -------------------------------------------------------------------

def test_cpu_hours_count_the_stages_that_ran_on_the_cpu():
    assert cpu_hours(make_record(wall_s=7200.0, evaluate_wall_s=3600.0)) == pytest.approx(3.0)
    trained_on_gpu = make_record(train_device="cuda:0", wall_s=7200.0, evaluate_wall_s=3600.0)
    assert cpu_hours(trained_on_gpu) == pytest.approx(1.0) and gpu_hours(trained_on_gpu) == pytest.approx(2.0)
    assert cpu_hours(make_record(device="cuda:0 (H200)", wall_s=7200.0)) == 0.0


def test_record_copies_a_paper_run_byte_for_byte_to_its_run_path(tmp_path):
    [source] = write_records(tmp_path / "elsewhere", [make_record(preset="paper", model="timesnet")])
    recorded = tmp_path / "recorded"
    destination = record_run(source, recorded)
    assert destination == recorded / "ett/etth1/forecast/timesnet/h96/seed2021/metrics.json"
    assert destination.read_bytes() == source.read_bytes()
    assert record_run(source, recorded) == destination  # the same file again: nothing to do


def test_record_refuses_smoke_runs_invalid_files_and_silent_replacement(tmp_path):
    [smoke] = write_records(tmp_path / "a", [make_record(preset="smoke")])
    with pytest.raises(DataError, match="only paper-preset runs are recorded"):
        record_run(smoke, tmp_path / "recorded")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**make_record(preset="paper"), "seed": -1}))
    with pytest.raises(DataError, match="broken.json: seed"):
        record_run(broken, tmp_path / "recorded")
    [first] = write_records(tmp_path / "b", [make_record(preset="paper")])
    [second] = write_records(tmp_path / "c", [make_record(preset="paper", metrics={"mse": 0.5, "mae": 0.5})])
    record_run(first, tmp_path / "recorded")
    with pytest.raises(DataError, match="already there; pass --replace"):
        record_run(second, tmp_path / "recorded")
    assert json.loads(record_run(second, tmp_path / "recorded", replace=True).read_text())["metrics"]["mse"] == 0.5


def test_a_replaced_recording_is_kept_under_superseded_and_listed_not_counted(tmp_path):
    from replibench.report import superseded_rows
    from replibench.report.html import superseded_html
    from replibench.report.markdown import superseded_markdown
    from replibench.results import read_superseded

    cpu = make_record(preset="paper", metrics={"mse": 0.4322, "mae": 0.4416}, wall_s=3600.0, evaluate_wall_s=0.0)
    cpu["provenance"]["created"] = "2026-12-04T09:22:34+00:00"
    gpu = make_record(preset="paper", metrics={"mse": 0.4076, "mae": 0.4250}, device="cuda (NVIDIA H200)")
    [first], [second] = write_records(tmp_path / "cpu", [cpu]), write_records(tmp_path / "gpu", [gpu])
    recorded = tmp_path / "recorded"
    record_run(first, recorded)
    destination = record_run(second, recorded, replace=True)
    kept = destination.parent / "superseded" / "2026-12-04T09-22-34+00-00.json"
    assert kept.read_bytes() == first.read_bytes() and destination.read_bytes() == second.read_bytes()
    runs, _ = read_runs([], [destination])  # the rows count the newer recording only
    assert [record["metrics"]["mse"] for _, _, record in runs] == [0.4076]
    [listed] = superseded_rows(read_superseded([kept]), base=tmp_path)
    assert (listed["run_id"], listed["device"], listed["metrics"]) == (
        "ett/etth1/forecast/dlinear/h96/seed2021", "cpu (x86_64, 2 cores)", {"mae": 0.4416, "mse": 0.4322})
    assert listed["cpu_hours"] == pytest.approx(1.0)
    assert listed["path"] == "recorded/ett/etth1/forecast/dlinear/h96/seed2021/superseded/2026-12-04T09-22-34+00-00.json"
    markdown = "\n".join(superseded_markdown([listed]))
    assert "## Earlier recordings (replaced, not counted)" in markdown and "mse 0.4322" in markdown
    assert "mse 0.4322" in superseded_html([listed]) and superseded_html([]) == ""
    [third] = write_records(tmp_path / "cpu2", [{**cpu, "metrics": {"mse": 0.1, "mae": 0.1}}])
    record_run(third, recorded, replace=True)  # the GPU recording is kept in its turn
    assert len(list(kept.parent.iterdir())) == 2


def test_a_recorded_run_replaces_the_local_run_of_the_same_id_and_preset(tmp_path):
    local = write_records(tmp_path / "local", [make_record(preset="paper", metrics={"mse": 0.9, "mae": 0.9}),
                                               make_record(preset="smoke", seed=1),
                                               make_record(preset="paper", seed=7)])
    [recorded] = write_records(tmp_path / "rec", [make_record(preset="paper", metrics={"mse": 0.39, "mae": 0.40},
                                                              device="cuda:0 (NVIDIA H200)")])
    runs, superseded = read_runs(local, [recorded])
    assert superseded == [local[0]]
    table = gather_results(local, [recorded])
    mse = table[(table.metric == "mse") & (table.seed == 2021)].iloc[0]
    assert (mse.value, mse.origin, mse.metrics_path) == (0.39, "recorded", str(recorded))
    assert sorted(set(zip(table.seed, table.origin))) == [(1, "local"), (7, "local"), (2021, "recorded")]
    with pytest.raises(DataError, match="was already read"):
        read_runs([], [recorded, recorded])


def test_rows_show_device_origin_and_compute_of_their_runs(tmp_path):
    records = [make_record(preset="paper", seed=seed, wall_s=1800.0, evaluate_wall_s=0.0) for seed in (1, 2)]
    [gpu] = write_records(tmp_path / "rec", [make_record(preset="paper", seed=3, device="cuda:0 (NVIDIA H200)",
                                                         wall_s=360.0, evaluate_wall_s=0.0)])
    board = build_leaderboard(gather_results(write_records(tmp_path, records), [gpu]), [])
    mse = board[board.metric == "mse"].iloc[0]
    assert mse.seeds == 3 and mse.origins == "local, recorded"
    assert mse.devices == "cpu (x86_64, 2 cores); cuda:0 (NVIDIA H200)"
    assert (mse.cpu_hours, mse.gpu_hours) == (pytest.approx(1.0), pytest.approx(0.1))
    assert (mse.recorded_cpu_hours, mse.recorded_gpu_hours) == (0.0, pytest.approx(0.1))


# ---- per-paper views -------------------------------------------------------------------------------

TOY_TABLE = PaperTable("Toy Table 9", rows=("dataset", "variant"), columns=("model", "metric"),
                       select={"task": ("forecast",)}, paper="Toy",
                       order={"dataset": ("etth2", "etth1"), "metric": ("mse", "mae")},
                       labels={"h96": "96", "mse": "MSE"})


def _toy_references(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text("""\
defaults: {family: toy, paper: "Toy (2024)", tolerance: {relative: 0.05}}
entries:
  - {task: forecast, table: Table 9, averaging: x, source: y, dataset: etth1, variant: h96, model: dlinear, metric: mse, value: 0.400}
  - {task: forecast, table: Table 9, averaging: x, source: y, dataset: etth1, variant: h96, model: dlinear, metric: mae, value: 0.400}
  - {task: forecast, table: Table 9, averaging: x, source: y, dataset: etth2, variant: h96, model: dlinear, metric: mse, value: 0.300}
  - {task: forecast, table: Table 9, averaging: x, source: y, dataset: etth2, variant: h96, model: dlinear, metric: mae, value: null, note: "our row only"}
""")
    return load_references([path])


def test_a_paper_view_lays_cells_out_as_the_paper_and_prefers_the_paper_preset(tmp_path):
    references = _toy_references(tmp_path)
    paper = write_records(tmp_path / "paper", [make_record(family="toy", preset="paper", seed=1,
                                                           metrics={"mse": 0.401}, wall_s=3600.0, evaluate_wall_s=0.0)])
    smoke = write_records(tmp_path / "smoke", [make_record(family="toy", preset="smoke", seed=1,
                                                           metrics={"mse": 0.9, "mae": 0.39}, wall_s=36.0,
                                                           evaluate_wall_s=0.0)])
    results = gather_results(paper + smoke)
    board = build_leaderboard(results, references)
    [view] = paper_views(board, references, [("toy", TOY_TABLE)], results)
    assert view["row_labels"] == ["etth2 96", "etth1 96"]  # the paper's order, not alphabetical
    assert view["column_labels"] == ["dlinear MSE", "dlinear mae"]
    cells = view["cells"]
    assert (cells[(1, 0)]["preset"], cells[(1, 0)]["ours"], cells[(1, 0)]["status"]) == ("paper", 0.401, REPRODUCED)
    assert (cells[(1, 1)]["preset"], cells[(1, 1)]["status"]) == ("smoke", SMOKE)  # mae: only a smoke run
    assert cells[(0, 0)]["status"] == NOT_RUN and cells[(0, 1)]["kind"] == "no-paper"
    assert view["counts"] == {"reproduced": 1, "not-reproduced": 0, "not-run": 1, "smoke": 1, "not-real-data": 0,
                              "no-value": 0}
    assert view["paper_numbers"] == 3
    assert view["cpu_hours"] == pytest.approx(1.01)  # the paper run (1 h) + the smoke run (0.01 h), once each


def test_a_layout_that_puts_two_numbers_in_one_cell_is_refused(tmp_path):
    references = _toy_references(tmp_path)
    flat = PaperTable("Toy flat", rows=("dataset",), columns=("model",), paper="Toy")
    with pytest.raises(DataError, match="'metric' takes the values \\['mae', 'mse'\\] but is neither"):
        paper_views(build_leaderboard(gather_results([]), references), references, [("toy", flat)],
                    gather_results([]))


def test_every_declared_paper_table_fits_its_references():
    """Each family's declared layouts select paper numbers and give each its own cell."""
    references = load_references(sorted((ROOT / "references").glob("*.yaml")))
    tables = declared_paper_tables([entry["family"] for entry in references])
    empty = gather_results([])
    views = paper_views(build_leaderboard(empty, references), references, tables, empty)
    assert len(views) == len(tables) and {view["family"] for view in views} == {"crystals", "ett", "lra", "oc20"}
    by_title = {view["title"].split(":")[0]: view for view in views}
    table13 = by_title["TimesNet Table 13 (ETT part)"]
    assert len(table13["row_labels"]) == 20 and table13["row_labels"][:2] == ["ETTh1 96", "ETTh1 192"]
    assert table13["column_labels"] == ["TimesNet MSE", "TimesNet MAE", "DLinear MSE", "DLinear MAE"]
    assert table13["paper_numbers"] == 80 and table13["counts"]["not-run"] == 80
    diffcsp = by_title["DiffCSP Table 1"]
    assert diffcsp["column_labels"] == ["k = 1 match rate (%)", "k = 1 RMSE", "k = 20 match rate (%)", "k = 20 RMSE"]
    assert by_title["Long Range Arena"]["row_labels"][0] == "Transformer"
    gaunt = by_title["Gaunt Tensor Product Table 1"]
    assert gaunt["row_labels"][:3] == ["SchNet", "DimeNet++", "EquiformerV2 (L = 4)"]
    assert gaunt["column_labels"] == ["energy MAE (eV)", "forces MAE (eV/Å)", "forces cos", "EFwT"]
    for view in views:
        assert len(view["cells"]) == sum(1 for _ in view["cells"])  # one entry per cell


def test_the_report_shows_recorded_runs_and_the_papers_tables_in_markdown_and_html(tmp_path, capsys):
    from replibench.report import report_stage

    local = write_records(tmp_path, [make_record(preset="paper", seed=seed, metrics={"mse": mse, "mae": 0.40})
                                     for seed, mse in ((1, 0.380), (2, 0.390))]
                          + [make_record(preset="paper", model="timesnet", metrics={"mse": 0.9, "mae": 0.9})])
    [elsewhere] = write_records(tmp_path / "elsewhere", [make_record(preset="paper", model="timesnet",
                                                                     metrics={"mse": 0.391, "mae": 0.409},
                                                                     wall_s=5.5 * 3600, evaluate_wall_s=0.0)])
    recorded = record_run(elsewhere, tmp_path / "recorded")
    out = tmp_path / "results"
    report_stage(metrics_paths=local, recorded_paths=[recorded], reference_paths=[ROOT / "references" / "ett.yaml"],
                 results_out=out / "results.parquet", leaderboard_out=out / "leaderboard.md",
                 html_out=out / "leaderboard.html", plots_dir=out / "plots")
    assert "set aside, the same run is recorded" in capsys.readouterr().out
    markdown = (out / "leaderboard.md").read_text()
    assert "## The papers' tables" in markdown
    assert ("| ETTh1 96 | 0.384 \\| 0.391 \\| +0.007 ✅ | 0.402 \\| 0.409 \\| +0.007 ✅ | "
            "0.386 \\| 0.385 ± 0.0071 \\| -0.001 ✅ | 0.400 \\| 0.4 ± 0 \\| +0 ✅ |") in markdown
    # TimesNet Table 13: 4 reproduced cells, 76 paper numbers not run; 5.5 CPU-h recorded
    assert "| 80 | 4 | 0 | 76 | 0 | 0 | 0 | 0 GPU-h, 5.5 CPU-h |" in markdown
    assert "| reproduced ✅ | not reproduced ❌ | not yet run ⬜ | smoke only 🟡 |" in markdown
    assert "| reproduced | paper, 100 steps | recorded: cpu (x86_64, 2 cores), 0 GPU-h, 5.5 CPU-h | [1] |" in markdown
    html = (out / "leaderboard.html").read_text()
    assert 'class="paper-table"' in html and "recorded: cpu (x86_64, 2 cores); 0 GPU-h, 5.5 CPU-h" in html


def test_a_smoke_only_report_never_prints_a_reproduced_cell(tmp_path):
    """The workflow tests check `"| reproduced |" not in leaderboard.md` after smoke runs: the papers'
    tables and their summary must not print it either."""
    from replibench.report import report_stage

    out = tmp_path / "results"
    report_stage(metrics_paths=write_records(tmp_path, [make_record()]), reference_paths=[ROOT / "references" / "ett.yaml"],
                 results_out=out / "results.parquet", leaderboard_out=out / "leaderboard.md",
                 html_out=None, plots_dir=out / "plots")
    markdown = (out / "leaderboard.md").read_text()
    assert "## The papers' tables" in markdown and "reproduced |" not in markdown
