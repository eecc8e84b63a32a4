"""Headless Chromium for the leaderboard tests (Debian's ``chromium`` + ``chromium-driver``).

Missing browser: the test is skipped with the reason, unless ``REPLIBENCH_REQUIRE_BROWSER=1``
(set by ``.ci/run``), where it fails: CI must never pass by skipping the browser test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000", "--force-device-scale-factor=1")


def unavailable(reason: str):
    if os.environ.get("REPLIBENCH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"REPLIBENCH_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(f"{reason} (apt-get install --no-install-recommends chromium chromium-driver; CI runs this)")


def find_executable(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None)
        if found:
            return found
    return None


def start_chromium():
    """A selenium WebDriver on headless Chromium with a fresh profile, logging the console."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed")
    browser = find_executable("chromium", "chromium-browser")
    driver_path = find_executable("chromedriver")
    if browser is None or driver_path is None:
        unavailable("chromium or chromedriver is not installed")
    profile = tempfile.mkdtemp(prefix="replibench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for drivers online
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    return driver, profile
