"""Headless Chromium for the portal's UI tests: Debian's `chromium` driven by Selenium.

No download at run time: the browser is /usr/bin/chromium and the driver
/usr/bin/chromedriver (`make install` puts them there); Selenium Manager stays offline.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
DESKTOP = (1280, 900)
PHONE = (390, 844)
WAIT_SECONDS = 15

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--password-store=basic",
    "--lang=en-US",
)


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(path)):
            return (
                f"{path} is missing: run `make install` (apt-get install chromium chromium-driver)"
            )
    return None


class Browser:
    """One Chromium for a test module, with waits, screenshots and small helpers."""

    def __init__(self, base_url: str) -> None:
        os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download
        self.base_url = base_url
        self.profile = tempfile.mkdtemp(prefix="lp-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(30)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # --- navigation and waiting ---------------------------------------------------------

    def open(self, path: str) -> None:
        url = path if path.startswith("http") else self.base_url + path
        self.driver.get(url)

    @property
    def path(self) -> str:
        return self.driver.execute_script("return location.pathname + location.search")

    def wait(self, condition: Callable[[Any], Any], timeout: float = WAIT_SECONDS, what: str = ""):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(condition)
        except TimeoutException as exc:
            shot = self.screenshot("timeout")
            raise AssertionError(
                f"timed out waiting for {what or condition}; at {self.driver.current_url}; "
                f"screenshot {shot}; console: {self.console()}"
            ) from exc

    def find(self, selector: str):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector: str) -> list:
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def visible(self, selector: str, timeout: float = WAIT_SECONDS):
        """The element once it is displayed."""

        def shown(_):
            for element in self.find_all(selector):
                if element.is_displayed():
                    return element
            return False

        return self.wait(shown, timeout, what=f"{selector} to be visible")

    def text_in(self, selector: str, text: str, timeout: float = WAIT_SECONDS) -> str:
        """Waits until the element's visible text contains `text`; returns all of it."""

        def has(_):
            for element in self.find_all(selector):
                if element.is_displayed() and text.lower() in element.text.lower():
                    return element.text
            return False

        return self.wait(has, timeout, what=f"{text!r} in {selector}")

    def at(self, path_prefix: str, timeout: float = WAIT_SECONDS) -> None:
        self.wait(lambda _: self.path.startswith(path_prefix), timeout, what=f"page {path_prefix}")

    def fill(self, selector: str, value: str) -> None:
        element = self.find(selector)
        element.clear()
        element.send_keys(value)

    def click(self, selector: str) -> None:
        self.visible(selector).click()

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def fetch(
        self, path: str, method: str = "GET", headers: dict | None = None, body: str | None = None
    ) -> dict:
        """A fetch() from the page (with its cookies): `{status, body}`."""
        return self.driver.execute_async_script(
            """
            const [path, method, headers, body, done] = arguments;
            fetch(path, {method, headers, body, credentials: "same-origin"})
              .then(async (r) => done({status: r.status, body: await r.text()}))
              .catch((e) => done({status: 0, body: String(e)}));
            """,
            path,
            method,
            headers or {},
            body,
        )

    def console(self) -> list[str]:
        try:
            return [entry["message"] for entry in self.driver.get_log("browser")]
        except Exception:
            return []

    def set_size(self, size: tuple[int, int]) -> None:
        self.driver.set_window_size(*size)

    def horizontal_overflow(self) -> int:
        """How many CSS pixels the page is wider than the viewport (0: no horizontal scroll)."""
        return self.js(
            "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
            " - document.documentElement.clientWidth"
        )

    def screenshot(self, name: str) -> Path:
        """The whole page (beyond the viewport) as test-artifacts/ui/<name>.png."""
        path = ARTIFACTS / f"{name}.png"
        try:
            metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            width = self.js("return window.innerWidth")  # no scrollbar beyond the viewport
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {
                        "x": 0,
                        "y": 0,
                        "width": width,
                        "height": min(int(size["height"]), 6000),
                        "scale": 1,
                    },
                },
            )
            path.write_bytes(base64.b64decode(shot["data"]))
        except Exception:
            self.driver.save_screenshot(str(path))
        return path

    def reset(self) -> None:
        """A fresh visitor: no cookies, desktop size, on a blank page of the portal."""
        self.set_size(DESKTOP)
        self.open("/static/favicon.svg")
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
        self.js("try { localStorage.clear(); sessionStorage.clear(); } catch (e) {}")
