"""The headless browser the portal's browser tests drive: Debian's chromium and
chromium-driver, through Selenium."""

from __future__ import annotations

import shutil

from tests.integration.fixtures import unavailable


def chromium() -> tuple[str, str]:
    browser = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        unavailable("chromium or chromedriver missing: apt-get install chromium chromium-driver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        unavailable("selenium missing: .venv/bin/pip install selenium")
    return browser, driver  # type: ignore[return-value]
