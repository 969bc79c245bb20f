"""Headless Chromium for tests, driven by Selenium: Debian's chromium and chromedriver, which
`make test` installs, with no network and a fresh profile."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PAGE_LOAD_S = 60


@contextlib.contextmanager
def chromium(profile_dir: Path, width: int = 1366, height: int = 900) -> Iterator[object]:
    """A Selenium driver for a headless Chromium window of `width` × `height`, its console
    logged, closed on exit."""
    from selenium import webdriver

    for binary in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(binary), f"{binary} is missing: `make test` installs it"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Background networking reaches for hosts this machine cannot; none of it is needed.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile_dir / 'chromium-profile'}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(PAGE_LOAD_S)
        driver.set_script_timeout(PAGE_LOAD_S)
        yield driver
    finally:
        driver.quit()
