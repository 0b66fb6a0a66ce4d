"""Headless Chromium (Debian's `chromium`, driven by Playwright) for the report page.

Playwright cannot download its own browser here, so it drives the system one; `make install`
installs it. Used by the browser tests, `make report-screenshot` and the benchmarks.

    python -m license_sync_local.browser PAGE.html SCREENSHOT.png
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class ChromiumMissing(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            f"Debian's chromium is not at {CHROMIUM}: `make install` installs it "
            "(apt-get install chromium)"
        )


def chromium_path() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found is None:
        raise ChromiumMissing
    return found


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium with a fresh profile (Playwright's default), closed afterwards."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=list(CHROMIUM_FLAGS)
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class LoadedPage:
    page: Page
    seconds: float
    """From navigation to the load event, the page's script having drawn every table."""
    console_errors: list[str] = field(default_factory=list)


@contextmanager
def load(
    browser: Browser, path: Path, *, width: int = 1400, height: int = 900
) -> Iterator[LoadedPage]:
    """Open `path` in a new page, recording console errors and uncaught exceptions."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    def on_page_error(error: Error) -> None:
        errors.append(f"uncaught: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    try:
        started = time.perf_counter()
        page.goto(path.resolve().as_uri(), wait_until="load")
        seconds = time.perf_counter() - started
        yield LoadedPage(page, seconds, errors)
    finally:
        context.close()


def screenshot(page_path: Path, image_path: Path, *, width: int = 1400) -> LoadedPage:
    """A full-page screenshot of `page_path`; fails on console errors."""
    with chromium() as browser, load(browser, page_path, width=width) as loaded:
        if loaded.console_errors:
            raise RuntimeError(f"{page_path}: console errors {loaded.console_errors}")
        # Open the collapsed lists, so the picture shows every section's content.
        loaded.page.evaluate(
            "document.querySelectorAll('details').forEach(d => d.setAttribute('open', ''))"
        )
        image_path.parent.mkdir(parents=True, exist_ok=True)
        loaded.page.screenshot(path=str(image_path), full_page=True)
        return loaded


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A full-page screenshot of a local page")
    parser.add_argument("page", type=Path)
    parser.add_argument("image", type=Path)
    arguments = parser.parse_args(argv)
    try:
        loaded = screenshot(arguments.page, arguments.image)
    except (ChromiumMissing, RuntimeError) as exc:
        print(f"screenshot: {exc}", file=sys.stderr)
        return 1
    print(f"{arguments.image} ({loaded.seconds:.2f} s to load {arguments.page})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
