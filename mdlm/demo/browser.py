"""Drive the web demo in a headless Chromium (Playwright over the system's ``chromium``, Debian package
``chromium``): open a tab, type the prompt, click Generate, screenshot the page mid-generation and when done."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlparse

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# true once the tab's status line shows a step at or past ``frac`` of the budget but before the end
_MID_JS = """([id, frac]) => {
  const m = (document.querySelector('#' + id)?.innerText || '').match(/step (\\d+)\\/(\\d+)/);
  return m !== null && +m[1] >= frac * +m[2] && +m[1] < +m[2];
}"""
_DONE_JS = "(id) => (document.querySelector('#' + id)?.innerText || '').startsWith('done')"


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@dataclass
class Capture:
    """What the page said when each screenshot was taken."""

    mid_status: str
    mid_canvas: str
    done_status: str


def _local_only(route) -> None:
    """Let the page load from this machine only (the demo serves everything it needs)."""
    host = urlparse(route.request.url).hostname
    if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
        route.continue_()
    else:
        route.abort()


@contextmanager
def chromium_page(executable: str, width: int = 1280, height: int = 1000) -> Iterator:
    """A page of a headless Chromium that may fetch from 127.0.0.1 / localhost only."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])  # root in a container
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.route("**/*", _local_only)
            yield page
        finally:
            browser.close()


def capture_tab(page, url: str, tab: str, mid_png: str, done_png: str | None = None, prompt: str | None = None,
                frac: float = 0.5, timeout_s: float = 60.0, sliders: dict[str, float] | None = None,
                choices: dict[str, str] | None = None) -> Capture:
    """On tab ``tab`` ("text" or "image"): click Generate (after typing ``prompt``, setting ``sliders`` (elem id →
    number, also for number fields) and ``choices`` (elem id → dropdown option)), screenshot when the status shows
    a step ≥ ``frac`` of the budget (not the last), and again (``done_png``) when it says done."""
    page.goto(url)
    page.get_by_role("tab", name=tab.capitalize()).click()
    if prompt is not None:
        page.locator(f"#{tab}-prompt textarea").fill(prompt)
    for elem_id, value in (sliders or {}).items():
        box = page.locator(f"#{elem_id} input[type=number]").first
        box.fill(str(value))
        box.press("Enter")
    for elem_id, option in (choices or {}).items():
        page.locator(f"#{elem_id} input").click()
        page.get_by_role("option", name=option, exact=True).click()
    page.locator(f"#{tab}-run").click()
    status, canvas = f"{tab}-status", f"{tab}-canvas"
    page.wait_for_function(_MID_JS, arg=[status, frac], timeout=timeout_s * 1000)
    page.screenshot(path=mid_png, full_page=True)
    mid = Capture(page.locator(f"#{status}").inner_text(), page.locator(f"#{canvas}").inner_text(), "")
    page.wait_for_function(_DONE_JS, arg=status, timeout=timeout_s * 1000)
    if done_png:
        page.screenshot(path=done_png, full_page=True)
    mid.done_status = page.locator(f"#{status}").inner_text()
    return mid


def step_of(status: str) -> tuple[int, int]:
    """(step, budget) from a status line "step k/n · …"."""
    m = re.search(r"step (\d+)/(\d+)", status)
    if not m:
        raise ValueError(f"no step in status {status!r}")
    return int(m[1]), int(m[2])


def stop_mid_generation(page, url: str, tab: str, frac: float = 0.25, timeout_s: float = 60.0) -> tuple[str, str]:
    """Click Generate, then Stop once the status passes ``frac`` of the steps; returns the status right after the
    click and one second later (a stopped run does not move on)."""
    page.goto(url)
    page.get_by_role("tab", name=tab.capitalize()).click()
    page.locator(f"#{tab}-run").click()
    page.wait_for_function(_MID_JS, arg=[f"{tab}-status", frac], timeout=timeout_s * 1000)
    page.locator(f"#{tab}-stop").click()
    page.wait_for_timeout(300)
    first = page.locator(f"#{tab}-status").inner_text()
    page.wait_for_timeout(1000)
    return first, page.locator(f"#{tab}-status").inner_text()
