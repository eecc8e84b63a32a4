"""`replibench compare`: flag metrics that moved beyond their noise band, on hand-built tables."""

from __future__ import annotations

import pandas as pd
import pytest

from replibench.cli import main
from replibench.report.compare import (BECAME_MISSING, BECAME_PRESENT, MOVED, NEW, OK, VANISHED, WALL_CLOCK,
                                comparison_markdown, compare_results, family_tolerance, parse_tolerances)
from replibench.errors import ConfigError
from replibench.results import RESULT_COLUMNS


def table(rows: list[tuple]) -> pd.DataFrame:
    """Rows (family, dataset, model, metric, seed, value) → a results table (other columns filled)."""
    records = []
    for family, dataset, model, metric, seed, value in rows:
        record = {column: None for column in RESULT_COLUMNS}
        record.update(family=family, dataset=dataset, task="forecast", model=model, variant="h96", preset="smoke",
                      seed=seed, split="test", metric=metric, value=value, direction="min", unit="u",
                      data_origin="official", run_id=f"{family}/{dataset}/forecast/{model}/h96/seed{seed}")
        records.append(record)
    return pd.DataFrame(records, columns=list(RESULT_COLUMNS))


def status(diff: pd.DataFrame, **where) -> str:
    part = diff
    for key, value in where.items():
        part = part[part[key] == value]
    assert len(part) == 1, where
    return part.iloc[0]["status"]


def test_one_seed_uses_the_family_tolerance():
    assert family_tolerance("ett").relative == 0.01  # the stated default, 1 %
    baseline = table([("ett", "etth1", "dlinear", "mse", 1, 0.400), ("ett", "etth1", "dlinear", "mae", 1, 0.400)])
    candidate = table([("ett", "etth1", "dlinear", "mse", 1, 0.4039), ("ett", "etth1", "dlinear", "mae", 1, 0.4041)])
    diff = compare_results(baseline, candidate)
    assert status(diff, metric="mse") == OK  # moved 0.0039 < 1 % of 0.4
    assert status(diff, metric="mae") == MOVED  # moved 0.0041 > 0.004
    row = diff[diff.metric == "mae"].iloc[0]
    assert row.band == pytest.approx(0.004) and row.band_from == "tolerance"
    assert row.better is not None and not row.better  # an MAE that grew is worse


def test_seed_std_widens_the_band_where_there_are_seeds():
    # std over seeds 0.02 → band 2 × 0.02 = 0.04: a 0.03 move is noise, a 0.05 move is not
    baseline = table([("ett", "etth1", "dlinear", "mse", s, v) for s, v in ((1, 0.38), (2, 0.40), (3, 0.42))]
                     + [("ett", "etth2", "dlinear", "mse", s, v) for s, v in ((1, 0.38), (2, 0.40), (3, 0.42))])
    candidate = table([("ett", "etth1", "dlinear", "mse", s, v + 0.03) for s, v in ((1, 0.38), (2, 0.40), (3, 0.42))]
                      + [("ett", "etth2", "dlinear", "mse", s, v - 0.05) for s, v in ((1, 0.38), (2, 0.40), (3, 0.42))])
    diff = compare_results(baseline, candidate)
    assert status(diff, dataset="etth1") == OK and status(diff, dataset="etth2") == MOVED
    etth2 = diff[diff.dataset == "etth2"].iloc[0]
    assert etth2.band == pytest.approx(0.04) and etth2.band_from == "seed std" and etth2.better
    # tighter with fewer sigmas
    assert status(compare_results(baseline, candidate, sigmas=1.0), dataset="etth1") == MOVED


def test_deterministic_seeds_fall_back_to_the_tolerance_floor():
    baseline = table([("ett", "etth1", "naive", "mse", s, 1.294) for s in (1, 2)])
    candidate = table([("ett", "etth1", "naive", "mse", s, 1.294 + 1e-9) for s in (1, 2)])
    assert status(compare_results(baseline, candidate), model="naive") == OK


def test_a_wall_clock_metric_is_listed_but_never_flagged():
    """A pull request's runner is not the baseline's machine: sampling time may double, a match rate may not."""
    baseline = table([("crystals", "perov-5", "crysbfn", "sampling_s_per_1000", 0, 2.6),
                      ("crystals", "perov-5", "crysbfn", "match_rate", 0, 40.0)])
    candidate = table([("crystals", "perov-5", "crysbfn", "sampling_s_per_1000", 0, 5.3),
                       ("crystals", "perov-5", "crysbfn", "match_rate", 0, 30.0)])
    baseline.loc[baseline.metric == "sampling_s_per_1000", "unit"] = "s"
    candidate.loc[candidate.metric == "sampling_s_per_1000", "unit"] = "s"
    diff = compare_results(baseline, candidate)
    assert status(diff, metric="sampling_s_per_1000") == WALL_CLOCK
    assert status(diff, metric="match_rate") == MOVED
    text = comparison_markdown(diff, baseline_name="b", candidate_name="c", sigmas=2.0)
    assert "**1 flagged**" in text and WALL_CLOCK in text


def test_vanished_new_and_missing_values():
    baseline = table([("ett", "etth1", "dlinear", "mse", 1, 0.4), ("ett", "etth1", "timesnet", "mse", 1, 0.5),
                      ("ett", "etth1", "naive", "mse", 1, None)])
    candidate = table([("ett", "etth1", "dlinear", "mse", 1, None), ("ett", "etth1", "naive", "mse", 1, 1.3),
                       ("crystal", "mp-20", "diffcsp", "mse", 1, 0.1)])
    diff = compare_results(baseline, candidate)
    assert status(diff, model="dlinear") == BECAME_MISSING
    assert status(diff, model="timesnet") == VANISHED
    assert status(diff, model="naive") == BECAME_PRESENT
    assert status(diff, family="crystal") == NEW


def test_tolerances_given_on_the_command_line():
    assert parse_tolerances(["0.02", "ett=0.05"], "tolerance") == (0.02, {"ett": 0.05})
    with pytest.raises(ConfigError, match="--tolerance 'ett=abc': expected NUMBER or FAMILY=NUMBER"):
        parse_tolerances(["ett=abc"], "tolerance")
    baseline = table([("ett", "etth1", "dlinear", "mse", 1, 0.40), ("lra", "listops", "s4", "mse", 1, 0.40)])
    candidate = table([("ett", "etth1", "dlinear", "mse", 1, 0.41), ("lra", "listops", "s4", "mse", 1, 0.41)])
    diff = compare_results(baseline, candidate, relative=(None, {"ett": 0.05}))
    assert status(diff, family="ett") == OK and status(diff, family="lra") == MOVED
    diff = compare_results(baseline, candidate, relative=(0.0, {}), absolute=(0.02, {}))
    assert set(diff.status) == {OK}


def test_the_command_exits_non_zero_on_a_flag_and_writes_the_comment(tmp_path, capsys):
    baseline, same, moved = tmp_path / "base.parquet", tmp_path / "same.parquet", tmp_path / "moved.parquet"
    table([("ett", "etth1", "dlinear", "mse", 1, 0.40)]).to_parquet(baseline)
    table([("ett", "etth1", "dlinear", "mse", 1, 0.40)]).to_parquet(same)
    table([("ett", "etth1", "dlinear", "mse", 1, 0.50)]).to_parquet(moved)
    assert main(["compare", "--baseline", str(baseline), "--candidate", str(same)]) == 0
    comment = tmp_path / "diff.md"
    assert main(["compare", "--baseline", str(baseline), "--candidate", str(moved), "--markdown-out", str(comment)]) == 1
    text = comment.read_text()
    assert "**1 flagged**" in text and "#### Flagged" in text
    assert "| ett | etth1 | forecast | h96 | dlinear | mse (min) | smoke | 0.4 | 0.5 | 0.1 (worse) | 0.004 (tolerance) |" \
        in text
    assert main(["compare", "--baseline", str(baseline), "--candidate", str(moved), "--tolerance", "0.5"]) == 0
    assert main(["compare", "--baseline", str(tmp_path / "absent.parquet"), "--candidate", str(moved)]) == 2
    assert "absent.parquet: cannot read a results table" in capsys.readouterr().err
