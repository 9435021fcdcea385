"""axe-core for the portal's UI tests: the serious and critical violations of a page.

The engine is read from this disk and handed to the page by the driver (never from a CDN,
and the page's CSP does not apply to a driver's script): the current axe-core that
`make install` puts under .venv/axe with npm (`AXE_JS` in the environment names another
copy), else the older copy the `selenium-axe-python` dev dependency ships.

    found = axe.problems(browser)   # [("color-contrast", "serious", ["#pay"]), ...]
"""

from __future__ import annotations

import functools
import importlib.resources
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# where `make axe` installs axe-core with npm (the Makefile's AXE_JS)
NPM_RELATIVE = Path("axe") / "node_modules" / "axe-core" / "axe.min.js"
NPM_COPIES = (ROOT / ".venv" / NPM_RELATIVE, Path(sys.prefix) / NPM_RELATIVE)
PACKAGE = "selenium_axe_python"  # ships axe-core (an older one) in its package data
MINIMUM_NPM = (4, 14)  # the version `make install` pins (4.14.1), at least
SERIOUS = ("serious", "critical")
VERSION = re.compile(r"axe v(\d+)\.(\d+)\.(\d+)")


def npm_copy() -> Path | None:
    """The axe.min.js npm installed (or `AXE_JS`), when there is one."""
    named = os.environ.get("AXE_JS")
    for path in ((Path(named),) if named else ()) + NPM_COPIES:
        if path.is_file():
            return path
    return None


def package_copy() -> Path | None:
    """selenium-axe-python's axe.min.js, when the package is installed."""
    if importlib.util.find_spec(PACKAGE) is None:
        return None
    path = Path(str(importlib.resources.files(PACKAGE) / "axe-core" / "axe.min.js"))
    return path if path.is_file() else None


def source_path() -> Path | None:
    """The copy the tests inject: npm's when present, else the package's (None: no axe)."""
    return npm_copy() or package_copy()


def available() -> bool:
    return source_path() is not None


@functools.cache
def _source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def version_of(path: Path) -> tuple[int, int, int]:
    """The version in the file's banner (`/*! axe v4.14.1`)."""
    found = VERSION.search(_source(path)[:200])
    assert found, f"no axe-core version banner in {path}"
    return tuple(int(part) for part in found.groups())  # type: ignore[return-value]


def describe() -> str:
    """`"axe-core 4.14.1 from .venv/axe/…/axe.min.js"` (or why there is none), for reports."""
    path = source_path()
    if path is None:
        return "no axe-core: run `make install`"
    return f"axe-core {'.'.join(map(str, version_of(path)))} from {path}"


def inject(browser: Any) -> str:
    """Puts axe into the page (unless it is there already); the version the page runs."""
    path = source_path()
    assert path is not None, describe()
    if not browser.js("return typeof window.axe === 'object' && window.axe.version || ''"):
        browser.js(_source(path))  # through the driver: the page's CSP does not apply
    return browser.js("return window.axe.version")


def problems(browser: Any, context: Any = None) -> list[tuple[str, str, list[str]]]:
    """The serious and critical violations of the page as it is now: `(rule, impact,
    [up to 5 selectors])`."""
    inject(browser)
    result = browser.driver.execute_async_script(
        """
        const [context, done] = [arguments[0], arguments[arguments.length - 1]];
        axe.run(context || document, {resultTypes: ["violations"]}).then(
          (r) => done({passes: r.passes.length, violations: r.violations.map(
            (v) => [v.id, v.impact, v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
                    v.help])}),
          (e) => done({error: String(e)}));
        """,
        context,
    )
    assert "error" not in result, result
    assert result["passes"] > 0, result  # axe really looked at the page
    return [tuple(v[:3]) for v in result["violations"] if v[1] in SERIOUS]  # type: ignore[misc]
