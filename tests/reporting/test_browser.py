"""leaderboard.html in a real browser (headless Chromium): visible, sortable, filterable, offline,
one click from a row to its provenance and figures. Skipped without Chromium locally, required in
CI (``REPLIBENCH_REQUIRE_BROWSER=1``)."""

from __future__ import annotations

import io
import json
import math
import shutil

import pytest

from .browser import start_chromium
from .records import build_report


@pytest.fixture(scope="module")
def chromium():
    driver, profile = start_chromium()
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return build_report(tmp_path_factory.mktemp("browser"))


def open_page(driver, path):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.as_uri())
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.documentElement.dataset.ready"))


def column_values(driver, header: str) -> list[str]:
    """The data-value of column ``header`` in the rows' current DOM order."""
    return driver.execute_script("""
        const index = [...document.querySelectorAll('#leaderboard thead th')].findIndex(th => th.textContent.trim() === arguments[0]);
        return [...document.querySelectorAll('#leaderboard tbody.entry')].map(b => b.rows[0].cells[index].dataset.value);
    """, header)


def header(driver, name: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, f"//table[@id='leaderboard']/thead//th[normalize-space()='{name}']")


def as_numbers(values: list[str]) -> list[float]:
    return [float(v) if v else math.nan for v in values]


def test_table_is_visible_and_sorts_when_a_header_is_clicked(chromium, report, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By

    open_page(chromium, report["html"])
    table = chromium.find_element(By.ID, "leaderboard")
    assert table.is_displayed()
    rows = chromium.find_elements(By.CSS_SELECTOR, "#leaderboard tbody.entry")
    assert len(rows) >= 15

    header(chromium, "paper").click()
    paper = as_numbers(column_values(chromium, "paper"))
    present = [v for v in paper if not math.isnan(v)]
    assert present == sorted(present) and len(present) >= 5
    assert all(math.isnan(v) for v in paper[len(present):])  # rows without a paper number last
    assert header(chromium, "paper").get_attribute("aria-sort") == "ascending"
    first_row_text = rows[0].text
    header(chromium, "paper").click()
    descending = as_numbers(column_values(chromium, "paper"))
    assert [v for v in descending if not math.isnan(v)] == sorted(present, reverse=True)
    header(chromium, "model").click()
    models = column_values(chromium, "model")
    assert models == sorted(models)

    # the pixels: the sorted table is drawn (dark text, the coloured status badges) where the DOM says
    header(chromium, "paper").click()
    chromium.execute_script("document.getElementById('leaderboard').scrollIntoView()")  # the papers' tables come first
    shot = tmp_path / "leaderboard.png"
    assert chromium.save_screenshot(str(shot))
    image = Image.open(shot).convert("RGB")
    rect = chromium.execute_script("const r = document.getElementById('leaderboard').getBoundingClientRect();"
                                   "return [r.left, r.top, Math.min(r.right, innerWidth), Math.min(r.bottom, innerHeight)];")
    crop = image.crop(tuple(int(v) for v in rect))
    assert crop.width > 800 and crop.height > 300
    pixels = list(crop.get_flattened_data())
    dark = sum(1 for r, g, b in pixels if r + g + b < 200) / len(pixels)
    assert dark > 0.01, f"only {dark:.3%} dark (text) pixels where the table should be"
    green = sum(1 for r, g, b in pixels if (r, g, b) == (0xda, 0xfb, 0xe1))  # 'reproduced' badge background
    yellow = sum(1 for r, g, b in pixels if (r, g, b) == (0xff, 0xf8, 0xc5))  # 'smoke run' badge background
    assert green > 50 and yellow > 50, (green, yellow)
    # the first row drawn is the smallest paper number: its text is what the DOM sorted first
    first = chromium.find_elements(By.CSS_SELECTOR, "#leaderboard tbody.entry")[0]
    assert first.find_elements(By.TAG_NAME, "td")[8].text == "0.0631"
    assert first.text != first_row_text or present[0] == 0.0631
    assert Image.open(io.BytesIO(chromium.get_screenshot_as_png())).size == image.size


def test_the_papers_tables_are_drawn_with_cells_coloured_by_status(chromium, report, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By

    open_page(chromium, report["html"])
    summary = chromium.find_element(By.CSS_SELECTOR, "table.views")
    assert "TimesNet Table 13 (ETT part)" in summary.text
    table13 = chromium.find_elements(By.CSS_SELECTOR, "table.paper-table")[0]
    rows = table13.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [row.find_element(By.TAG_NAME, "th").text for row in rows[:2]] == ["ETTh1 96", "ETTh1 192"]
    dlinear_mse = rows[0].find_elements(By.TAG_NAME, "td")[2]  # TimesNet MSE, TimesNet MAE, DLinear MSE
    assert "reproduced" in dlinear_mse.get_attribute("class").split()
    assert dlinear_mse.text.replace("\n", " ") == "0.386 | 0.385 ± 0.0071 | -0.001"
    assert "not-run" in rows[1].find_elements(By.TAG_NAME, "td")[0].get_attribute("class").split()
    chromium.execute_script("arguments[0].scrollIntoView()", table13)
    shot = tmp_path / "views.png"
    assert chromium.save_screenshot(str(shot))
    rect = chromium.execute_script("const r = arguments[0].getBoundingClientRect();"
                                   "return [r.left, r.top, Math.min(r.right, innerWidth), Math.min(r.bottom, innerHeight)];",
                                   table13)
    pixels = list(Image.open(shot).convert("RGB").crop(tuple(int(v) for v in rect)).get_flattened_data())
    green = sum(1 for r, g, b in pixels if (r, g, b) == (0xda, 0xfb, 0xe1))  # a reproduced cell's background
    assert green > 500, green


def test_filters_by_family_dataset_and_model(chromium, report):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(chromium, report["html"])
    total = len(chromium.find_elements(By.CSS_SELECTOR, "#leaderboard tbody.entry"))
    Select(chromium.find_element(By.ID, "filter-family")).select_by_value("crystal-toy")
    visible = [b for b in chromium.find_elements(By.CSS_SELECTOR, "#leaderboard tbody.entry") if b.is_displayed()]
    assert len(visible) == 4 and {b.get_attribute("data-family") for b in visible} == {"crystal-toy"}
    assert chromium.find_element(By.ID, "shown-count").text == f"4 of {total} rows"
    Select(chromium.find_element(By.ID, "filter-dataset")).select_by_value("mp-20")
    visible = [b for b in chromium.find_elements(By.CSS_SELECTOR, "#leaderboard tbody.entry") if b.is_displayed()]
    assert {b.get_attribute("data-dataset") for b in visible} == {"mp-20"} and len(visible) == 2
    Select(chromium.find_element(By.ID, "filter-family")).select_by_value("")
    Select(chromium.find_element(By.ID, "filter-dataset")).select_by_value("")
    Select(chromium.find_element(By.ID, "filter-model")).select_by_value("naive")
    visible = [b for b in chromium.find_elements(By.CSS_SELECTOR, "#leaderboard tbody.entry") if b.is_displayed()]
    assert visible and {b.get_attribute("data-model") for b in visible} == {"naive"}
    search = chromium.find_element(By.ID, "filter-text")
    search.send_keys("avg")
    visible = [b for b in chromium.find_elements(By.CSS_SELECTOR, "#leaderboard tbody.entry") if b.is_displayed()]
    assert len(visible) == 2 and all("avg" in b.text for b in visible)


def test_one_click_from_a_row_to_its_provenance_and_figures(chromium, report):
    from selenium.webdriver.common.by import By

    open_page(chromium, report["html"])
    row = chromium.find_element(By.XPATH, "//tbody[@data-model='timesnet']/tr[@class='row']")
    details = row.find_element(By.XPATH, "following-sibling::tr[1]")
    assert not details.is_displayed()
    row.click()
    assert details.is_displayed() and row.get_attribute("aria-expanded") == "true"
    for fact in ("4242", "cuda:0 (NVIDIA H100)", "0123456789abcdef0123456789abcdef01234567", "etth2.csv", "1.1"):
        assert fact in details.text, fact
    links = {a.text: a.get_attribute("href") for a in details.find_elements(By.TAG_NAME, "a")}
    assert links["metrics.json"].endswith("/results/ett/etth2/forecast/timesnet/h96/seed2021/metrics.json")
    assert links["ett: paper vs ours"].endswith("/results/plots/ett/paper_vs_ours.png")
    row.click()
    assert not details.is_displayed()
    # a link to a row (leaderboard.html#row-N) opens its details
    row_id = row.get_attribute("id")
    chromium.get(report["html"].as_uri() + "#" + row_id)
    chromium.refresh()
    again = chromium.find_element(By.ID, row_id)
    assert again.find_element(By.XPATH, "following-sibling::tr[1]").is_displayed()


def test_figures_load_and_nothing_is_fetched_from_the_network(chromium, report):
    from selenium.webdriver.common.by import By

    chromium.get_log("performance")  # drain what the browser itself loaded before (its new-tab page)
    open_page(chromium, report["html"])
    chromium.execute_script("document.getElementById('plots').scrollIntoView();"
                            "document.querySelectorAll('img').forEach(i => i.loading = 'eager');")
    images = chromium.find_elements(By.CSS_SELECTOR, ".gallery img")
    assert len(images) >= 3
    for image in images:
        chromium.execute_script("arguments[0].scrollIntoView();", image)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(chromium, 30).until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('.gallery img')].every(i => i.complete && i.naturalWidth > 0)"))
    requested = [json.loads(entry["message"])["message"]["params"]["request"]["url"]
                 for entry in chromium.get_log("performance")
                 if '"Network.requestWillBeSent"' in entry["message"]]
    assert any(url.endswith(".png") for url in requested), requested
    assert all(url.startswith(("file://", "data:")) for url in requested), requested
    severe = [entry for entry in chromium.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe  # a CSP violation or script error would be logged here


def test_a_missing_browser_skips_locally_but_fails_in_ci(monkeypatch):
    from . import browser

    monkeypatch.setattr(browser, "find_executable", lambda *names: None)
    monkeypatch.delenv("REPLIBENCH_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium or chromedriver is not installed"):
        browser.start_chromium()
    monkeypatch.setenv("REPLIBENCH_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="REPLIBENCH_REQUIRE_BROWSER=1 but chromium or chromedriver"):
        browser.start_chromium()
