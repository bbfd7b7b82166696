"""Headless Chromium for the page tests (Debian's chromium + chromium-driver, selenium)."""

from __future__ import annotations

import contextlib
import shutil

import pytest


@contextlib.contextmanager
def headless_chrome():
    """A driver logging the browser console (``driver.get_log("browser")``); skips the test
    where chromium, its driver or selenium is missing."""
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("needs chromium and chromium-driver (scripts/setup.sh installs them)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def decoded_images(driver) -> tuple[int, int]:
    """(images on the page, images that decoded)."""
    return tuple(driver.execute_script(
        "const im = Array.from(document.images);"
        "return [im.length, im.filter(i => i.complete && i.naturalWidth > 0).length];"
    ))  # fmt: skip
