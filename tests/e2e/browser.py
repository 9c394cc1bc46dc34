# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A real headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by Selenium,
to check pages as a person sees them: scripts run, single-page apps render.

Inside the browser every host name resolves to 127.0.0.1, so a page is opened by its routed
host name on the proxy's published port, and nothing the page or the browser asks for leaves
this machine. Screenshots go to tests/output/screenshots/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
from support import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = os.path.join(ROOT, "tests", "output", "screenshots")
ARGUMENTS = (
    "--headless=new",
    # The tests run as root, where Chromium's sandbox cannot start.
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
    "--host-resolver-rules=MAP * 127.0.0.1",
    # No traffic of the browser's own (updates, sync, metrics) to any other address.
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--metrics-recording-only",
)


@contextlib.contextmanager
def chromium() -> Iterator:
    """A selenium.webdriver.Chrome on Debian's Chromium, quit at the end."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: install Debian's chromium and chromium-driver (.ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    # Both paths given, so Selenium Manager (which would look for browsers online) never runs.
    options.binary_location = CHROMIUM
    for argument in ARGUMENTS:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver, name: str) -> str:
    """Save what the browser shows as tests/output/screenshots/<name>.png; return the path."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    path = os.path.join(SCREENSHOTS, name + ".png")
    if not driver.save_screenshot(path):
        pytest.fail(f"Chromium could not save the screenshot {path}")
    return path
