"""The results table, the paper references and the leaderboard built from both, on several families."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from replibench.errors import DataError
from replibench.report import (KEY, NO_PAPER, NO_VALUE, NOT_REPRODUCED, REPRODUCED, SMOKE, build_leaderboard,
                               describe_tolerance, load_references, natural_key, references_without_rows)
from replibench.report.markdown import leaderboard_markdown
from replibench.results import (RESULT_COLUMNS, gather_results, gpu_hours, read_results_table, results_schema,
                                write_results_table)

from .records import TOY_REFERENCES, make_record, several_families, write_records

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def references(tmp_path):
    toy = tmp_path / "toy.yaml"
    toy.write_text(TOY_REFERENCES)
    return load_references([ROOT / "references" / "ett.yaml", toy])


@pytest.fixture
def results(tmp_path):
    return gather_results(write_records(tmp_path, several_families()))


def test_results_table_has_the_issue_columns_and_provenance(results):
    for column in ("family", "dataset", "task", "model", "preset", "seed", "metric", "value", "direction",
                   "commit", "config_sha256", "data_sha256", "device", "train_wall_s", "evaluate_wall_s",
                   "gpu_hours", "slurm_job_id"):
        assert column in results.columns
    timesnet = results[(results.model == "timesnet") & (results.metric == "mse")].iloc[0]
    assert timesnet.slurm_job_id == "4242" and timesnet.device.startswith("cuda")
    assert timesnet.gpu_hours == pytest.approx(1.1)  # (3600 s train + 360 s evaluate) on one GPU
    assert timesnet.data_sha256 == '{"etth2.csv": "' + "b" * 64 + '"}'
    assert set(results[results.family == "crystal-toy"].metric) == {"match_rate", "rmse"}
    assert set(results[results.metric == "match_rate"].direction) == {"max"}


def test_gpu_hours_count_each_stage_on_its_own_device():
    cpu = make_record(wall_s=7200.0)
    assert gpu_hours(cpu) == 0.0
    trained_on_gpu = make_record(device="cpu (x86_64, 2 cores)", train_device="cuda:0", wall_s=7200.0,
                                 evaluate_wall_s=3600.0)
    assert gpu_hours(trained_on_gpu) == pytest.approx(2.0)
    two_gpus = make_record(device="cuda:0 (A100)", wall_s=3600.0, evaluate_wall_s=1800.0, world_size=2)
    assert gpu_hours(two_gpus) == pytest.approx(3.0)


def test_results_parquet_has_an_explicit_schema_and_reads_back(results, tmp_path):
    path = tmp_path / "results.parquet"
    write_results_table(results, path)
    assert pq.read_schema(path).equals(results_schema(), check_metadata=False)
    again = read_results_table(path)
    assert list(again.columns) == list(RESULT_COLUMNS) and len(again) == len(results)
    assert again.value.tolist() == results.value.tolist()
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~_umask())  # readable like any new file


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_table_without_the_key_columns_is_refused(tmp_path):
    path = tmp_path / "other.parquet"
    pd.DataFrame({"family": ["ett"], "value": [1.0]}).to_parquet(path)
    with pytest.raises(DataError, match=r"other.parquet: not a results table: missing columns \['dataset'"):
        read_results_table(path)


def test_the_same_run_twice_is_refused(tmp_path):
    first = write_records(tmp_path / "a", [make_record()])
    second = write_records(tmp_path / "b", [make_record(metrics={"mse": 0.5, "mae": 0.5})])
    with pytest.raises(DataError, match="ett/etth1/forecast/dlinear/h96/seed2021 \\(smoke\\) was already read"):
        gather_results(first + second)


def test_every_reference_has_all_fields_the_issue_lists():
    for path in sorted((ROOT / "references").glob("*.yaml")):
        for entry in load_references([path]):
            fields = ["family", "table", "dataset", "task", "variant", "model", "metric", "averaging", "source"]
            # a null value marks our row without a comparable published number: its note says why
            fields += ["paper", "value", "tolerance"] if entry["value"] is not None else ["note"]
            for field in fields:
                assert entry.get(field) not in (None, ""), (path.name, entry, field)


@pytest.mark.parametrize("missing", ["paper", "tolerance", "family"])
def test_a_reference_without_paper_tolerance_or_family_is_refused(tmp_path, missing):
    entry = {"family": "ett", "paper": "P", "tolerance": {"relative": 0.05}, "dataset": "etth1", "task": "forecast",
             "variant": "h96", "model": "dlinear", "metric": "mse", "value": 0.4, "table": "T1", "averaging": "all",
             "source": "arXiv 0000.00000"}
    del entry[missing]
    path = tmp_path / "refs.yaml"
    path.write_text(yaml.safe_dump({"entries": [entry]}))
    with pytest.raises(DataError, match=f"refs.yaml: entries/0: no '{missing}'"):
        load_references([path])


def test_rows_statuses_and_seed_statistics_across_families(results, references):
    board = build_leaderboard(results, references)
    # every (key, preset) of the results table is a leaderboard row, exactly once
    measured = results[KEY + ["preset"]].drop_duplicates()
    merged = measured.merge(board[~board.derived][KEY + ["preset"]], how="left", indicator=True)
    assert (merged["_merge"] == "both").all() and not board.duplicated(KEY + ["preset"]).any()

    def row(**where):
        part = board
        for key, value in where.items():
            part = part[part[key] == value]
        assert len(part) == 1, where
        return part.iloc[0]

    dlinear = row(model="dlinear", metric="mse")
    assert dlinear.ours == pytest.approx(0.385) and dlinear.ours_std == pytest.approx(math.sqrt(0.00005))
    assert dlinear.seeds == 2 and dlinear.paper_value == 0.386 and dlinear.status == REPRODUCED
    assert dlinear.seed_list == [1, 2] and dlinear.seed_values == [0.380, 0.390]
    assert row(dataset="mp-20", metric="match_rate").status == REPRODUCED  # 51.0 vs 51.49 within 5 %
    rmse = row(dataset="mp-20", metric="rmse")
    assert rmse.status == NOT_REPRODUCED and rmse.delta == pytest.approx(0.0470 - 0.0631)
    # smoke never counts, even when it equals the paper's number exactly
    perov = row(dataset="perov-5", metric="match_rate")
    assert perov.delta == 0 and perov.status == SMOKE
    assert row(dataset="listops").status == "generated data: not a reproduction"
    assert row(model="naive", variant="h96", metric="mse").status == NO_PAPER
    derived = row(model="naive", variant="avg", metric="mse")
    assert derived.derived and derived.ours == pytest.approx((0.39 + 0.44 + 0.48 + 0.52) / 4)
    missing = references_without_rows(board, references)
    assert [e["dataset"] for e in missing["lra-toy"]] == ["pathfinder"]


def test_a_seed_without_a_value_is_never_averaged_away(tmp_path, references):
    records = [make_record(preset="paper", seed=1, metrics={"mse": 0.385, "mae": 0.4}),
               make_record(preset="paper", seed=2, metrics={"mse": None, "mae": 0.4})]
    board = build_leaderboard(gather_results(write_records(tmp_path, records)), references)
    mse = board[board.metric == "mse"].iloc[0]
    assert math.isnan(mse.ours) and mse.status == NO_VALUE


def test_a_comparison_only_metric_is_shown_only_beside_its_paper(tmp_path, references):
    """``mse_droplast32`` exists to match the DLinear paper's Repeat rows: the naive row that has
    that reference keeps it, a DLinear row (no such reference) does not grow an extra line."""
    records = [make_record(model="naive", metrics={"mse": 1.30, "mse_droplast32": 1.2951}, steps=0, curve=False),
               make_record(model="dlinear", metrics={"mse": 0.39, "mse_droplast32": 0.388})]
    results = gather_results(write_records(tmp_path, records))
    assert results.set_index(["model", "metric"]).comparison_only.to_dict() == {
        ("naive", "mse"): False, ("naive", "mse_droplast32"): True,
        ("dlinear", "mse"): False, ("dlinear", "mse_droplast32"): True}
    board = build_leaderboard(results, references)
    assert sorted(zip(board.model, board.metric)) == [("dlinear", "mse"), ("naive", "mse"),
                                                      ("naive", "mse_droplast32")]
    kept = board[board.metric == "mse_droplast32"].iloc[0]
    assert kept.paper_value == pytest.approx(1.295) and kept.status == SMOKE


def test_rows_are_in_reading_order():
    assert sorted(["h720", "h96", "avg", "h192", "h336"], key=natural_key) == ["avg", "h96", "h192", "h336", "h720"]
    assert sorted(["mask0.5", "mask0.125", "mask0.25"], key=natural_key) == ["mask0.125", "mask0.25", "mask0.5"]
    assert describe_tolerance({"relative": 0.05}) == "±5 %"
    assert describe_tolerance({"absolute": 0.0015}) == "±0.0015"
    assert describe_tolerance({"relative": 0.02, "absolute": 1.0}) == "±max(2 %, 1)"


def test_markdown_is_grouped_by_family_and_holds_every_row(results, references):
    board = build_leaderboard(results, references)
    markdown = leaderboard_markdown(board, {}, references_without_rows(board, references))
    sections = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert sections == ["## crystal-toy", "## ett", "## lra-toy"]
    table_lines = [line for line in markdown.splitlines() if line.startswith("| ") and line.count("|") == 15]
    assert len(table_lines) == len(board) + 3  # + one header per family
    assert "| etth1 | forecast | h96 | dlinear | mse (min) | 0.385 ± 0.0071 | 2 | 0.386 | -0.001 | ±5 % | reproduced |" \
        in markdown
    assert "| mp-20 | csp | default | diffcsp | match_rate (max) | 51 | 1 | 51.49 | -0.49 | ±5 % | reproduced |" \
        in markdown
    assert "| etth1 | forecast | avg* | naive | mse (min) |" in markdown
    assert "1. DiffCSP (Jiao et al., NeurIPS 2023), Table 1 (arXiv 2309.04475); averaging: one sample" in markdown
    assert "1 paper numbers of" in markdown  # lra-toy's pathfinder
    # nothing that changes from one rerun to the next (so CI opens a PR only when a number changes)
    assert "2026-11-27" not in markdown and "0123456789abcdef" not in markdown


def test_a_reference_with_no_number_explains_the_row_and_is_not_counted_as_missing(tmp_path, results):
    path = tmp_path / "ours.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"family": "lra-toy"}, "entries": [
        {"paper": "S4 (Gu et al., ICLR 2022)", "dataset": "listops", "task": "lra-classify", "variant": "default",
         "model": "s4", "metric": "accuracy", "value": None, "table": "none", "averaging": "-", "source": "-",
         "note": "our variant, not the paper's"}]}))
    references = load_references([path])  # no tolerance needed without a number
    board = build_leaderboard(results, references)
    row = board[board.dataset == "listops"].iloc[0]
    assert row.status == "no published number (our variant, not the paper's)"
    assert references_without_rows(board, references) == {}
    from replibench.report import status_kind

    assert status_kind(row.status) == "no-paper"
