"""The headless browser the portal's browser tests drive (Debian's chromium and
chromium-driver, through Selenium), and `bitkey-dir serve` as the process it talks to."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.command_line import toml_value
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


@contextmanager
def headless(profile: Path, *arguments: str) -> Iterator[Any]:
    """A headless Chromium with a profile of its own (and ``arguments``), quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1100,900",
        f"--user-data-dir={profile}",
        *arguments,
    ):
        options.add_argument(argument)  # fmt: skip
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


@contextmanager
def serving(config: Path, serve: dict[str, object], port: int, log: Path) -> Iterator[None]:
    """`bitkey-dir serve` on 127.0.0.1:``port`` with ``serve`` as its [serve] table (appended
    to ``config``), as a process of its own, from when it answers until it is stopped; its
    output goes to ``log``."""
    with config.open("a", encoding="utf-8") as out:
        out.write("\n[serve]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in serve.items()))
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "bitkey_dir", "--config", str(config), "serve",
             "--listen", f"127.0.0.1:{port}"],
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/sign-in", timeout=2)
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(log.read_text()) from None
                    time.sleep(0.2)
            yield
        finally:
            server.terminate()
            server.wait(timeout=20)
