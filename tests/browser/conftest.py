"""Browser fixtures: the system's Chromium driven by Playwright, and a real JupyterLab.

Playwright never downloads a browser here: it drives the Chromium that Debian's ``chromium``
package installs (``.ci/run`` installs it), or the one ``OPTIMLAB_CHROMIUM`` names. Without
Playwright or Chromium every browser test skips and says which is missing.

Each test's page is screenshotted at teardown, pass or fail, into ``test-artifacts/browser/``
(``OPTIMLAB_ARTIFACTS`` moves it), so a failing run keeps what the browser showed.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .lab import JupyterLab, start_lab

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("OPTIMLAB_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
VIEWPORT = {"width": 1400, "height": 1000}


def chromium_path() -> str | None:
    """The Chromium to drive: ``$OPTIMLAB_CHROMIUM``, else the first one on PATH."""
    named = os.environ.get("OPTIMLAB_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(page, name: str) -> Path:
    """Save what ``page`` shows as ``test-artifacts/browser/<name>.png``; returns the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def open_offline(page, path) -> list[str]:
    """Open ``path`` from disk with every non-file request aborted; the requests it tried."""
    tried: list[str] = []

    def route(r):
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            tried.append(r.request.url)
            r.abort()

    page.context.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return tried


@pytest.fixture(scope="session")
def browser() -> Iterator:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright: pip install playwright (no browser "
                    "download needed; it drives the system's Chromium)")
    executable = chromium_path()
    if executable is None:
        pytest.skip("browser tests need Chromium: apt-get install chromium (or set "
                    "OPTIMLAB_CHROMIUM=/path/to/chrome)")
    with sync_playwright() as pw:
        # --no-sandbox: Chromium's own sandbox needs user namespaces that CI containers lack
        browser = pw.chromium.launch(executable_path=executable,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request) -> Iterator:
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    try:
        screenshot(page, request.node.name)
    finally:
        context.close()


@pytest.fixture(scope="module")
def learner_lab(tmp_path_factory, browser) -> Iterator[JupyterLab]:
    """JupyterLab in a scratch copy of the student release, as a learner has it."""
    root = tmp_path_factory.mktemp("learner")
    shutil.copytree(ROOT / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    with start_lab(root) as lab:
        yield lab
