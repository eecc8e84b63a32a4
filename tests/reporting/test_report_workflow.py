"""After a small smoke run of the real workflow: both leaderboards hold every row with the papers'
numbers, `snakemake --report` works, the page works in Chromium, and compare accepts the table."""

from __future__ import annotations

import re
import shutil
import zipfile

import pandas as pd
import pytest

from replibench.cli import main
from spine.test_workflow import make_workdir, snakemake

from .browser import start_chromium


CONFIG = {
    "preset": "smoke",
    "families": ["ett"],
    "data": {"mirror": None, "workers": 1},
    "ett": {
        "seeds": [2021, 2022],
        "runs": [{"task": "forecast", "models": ["naive", "dlinear"], "datasets": ["etth1"], "horizons": [96, 192]}],
        "overrides": {"dlinear": {"train": {"max_steps": 30}}},
    },
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, shared_data):
    workdir = make_workdir(tmp_path_factory.mktemp("workflow"), CONFIG)
    run = snakemake(workdir, "--config", f"data={{mirror: {shared_data}}}")
    assert run.returncode == 0, run.stderr[-5000:]
    return workdir


def markdown_rows(text: str) -> dict[tuple[str, ...], str]:
    """(dataset, task, variant, model, metric, preset) → status of every leaderboard row in the Markdown."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 14 and cells[0] not in ("dataset", "---"):
            rows[(cells[0], cells[1], cells[2].rstrip("*"), cells[3], cells[4].split(" ")[0],
                  cells[11].split(",")[0])] = cells[10]
    return rows


@pytest.mark.workflow
def test_leaderboards_hold_every_row_with_the_papers_numbers(finished):
    results = pd.read_parquet(finished / "results" / "results.parquet")
    board = pd.read_parquet(finished / "results" / "leaderboard.parquet")
    assert len(results) == 2 * 2 * 2 * 4  # models × horizons × seeds × metrics (mse, mae and the drop_last pair)
    measured = {tuple(r) for r in results[["dataset", "task", "variant", "model", "metric", "preset"]].itertuples(index=False)}
    listed = markdown_rows((finished / "results" / "leaderboard.md").read_text())
    # comparison-only metrics (the drop_last pair) appear only beside the paper that scored that way:
    # the naive baseline's DLinear-paper "Repeat" rows, not DLinear's own
    beside_no_paper = {row for row in measured if row[3] == "dlinear" and row[4].endswith("_droplast32")}
    assert len(beside_no_paper) == 4 and results.comparison_only.sum() == 2 * 2 * 2 * 2  # models × horizons × seeds
    assert measured - beside_no_paper <= set(listed) and not beside_no_paper & set(listed)
    assert len(listed) == len(board)
    html = (finished / "results" / "leaderboard.html").read_text()
    assert html.count('<tbody class="entry"') == len(board)
    markdown = (finished / "results" / "leaderboard.md").read_text()
    assert re.search(r"\| etth1 \| forecast \| h96 \| dlinear \| mse \(min\) \| [0-9.]+ ± [0-9.e-]+ \| 2 \| 0\.386 \|",
                     markdown)
    assert re.search(r"\| etth1 \| forecast \| h96 \| naive \| mse_droplast32 \(min\) \| 1\.29\d* ± 0 \| 2 \| 1\.295 \|"
                     r" [-0-9.e]+ \| ±0\.0015 \| smoke run: not a reproduction \|", markdown)
    assert "reproduced" not in listed.values()  # smoke rows never count
    assert set(listed.values()) == {"smoke run: not a reproduction", "no published number"}
    assert main(["compare", "--baseline", str(finished / "results" / "results.parquet"),
                 "--candidate", str(finished / "results" / "results.parquet")]) == 0


@pytest.mark.workflow
def test_snakemake_report_holds_the_leaderboard_and_the_figures_per_family(finished):
    done = snakemake(finished, "--report", str(finished / "report.zip"))
    assert done.returncode == 0, done.stderr[-3000:]
    with zipfile.ZipFile(finished / "report.zip") as archive:
        names = archive.namelist()
        page = archive.read("report/report.html").decode()
    assert any(name.endswith("/leaderboard.html") for name in names)
    assert any(name.endswith("/ett/paper_vs_ours.png") for name in names)
    assert any(name.endswith("/ett/learning_curves_etth1_forecast.png") for name in names)
    assert '"Leaderboard"' in page and '"ett": {' in page  # one category for the page, one per family


@pytest.mark.workflow
def test_the_generated_page_sorts_in_chromium(finished):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, profile = start_chromium()
    try:
        driver.get((finished / "results" / "leaderboard.html").as_uri())
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.documentElement.dataset.ready"))
        driver.find_element(By.XPATH, "//table[@id='leaderboard']/thead//th[normalize-space()='ours']").click()
        values = driver.execute_script("return [...document.querySelectorAll('#leaderboard tbody.entry')]"
                                       ".map(b => parseFloat(b.rows[0].cells[6].dataset.value))")
        assert len(values) > 10 and values == sorted(values)
        assert driver.find_element(By.ID, "leaderboard").is_displayed()
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
