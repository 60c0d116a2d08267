"""Headless Chromium for the pictures of the HTML report (``make figures``) and its
browser tests: Debian's ``chromium``, driven by Playwright's Python package (its own
browser download is not used, and nothing is fetched).

    from browser import chromium
    with chromium() as browser:
        page = browser.new_page()
        page.goto("file:///tmp/report.html")
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Chromium as root in a container: no sandbox, no GPU, nothing reached on the network
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def executable() -> str | None:
    """The Chromium to drive: ``$CHROMIUM``, else the first of Debian's names on PATH."""
    given = os.environ.get("CHROMIUM")
    if given:
        return given
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser",
                                               "google-chrome")) if p), None)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``), closed at the end; each context
    it opens has a fresh profile. Raises ``RuntimeError`` when Chromium or Playwright
    is missing."""
    exe = executable()
    if exe is None:
        raise RuntimeError("no Chromium found (apt-get install chromium, or set CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise RuntimeError("Playwright is not installed (pip install playwright)") from None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(browser: Any, path: str, out: str, *, width: int = 1100, height: int = 760,
               clicks: tuple[str, ...] = ()) -> None:
    """Open the page at ``path``, click ``clicks`` (CSS selectors) in order, and save
    the top of the page as a PNG at ``out``."""
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        page.goto("file://" + os.path.abspath(path))
        page.wait_for_selector("html[data-ready]")
        for selector in clicks:
            page.click(selector)
        page.screenshot(path=out)
    finally:
        page.close()
