"""Opens a page in headless Chromium from ``file://``, offline: the DOM once its scripts ran,
what the browser logged (console messages included), and a screenshot. Shared by
tests/e2e/test_report_html.py and benchmarks/report_html.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
# Software WebGL must be asked for where there is no GPU (the report draws none since it went SVG, kept
# for pages that do).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars", *OFFLINE]


def _chromium(page: Path, profile: Path, extra: list[str], timeout: float) -> subprocess.CompletedProcess:
    args = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *extra,
            page.resolve().as_uri()]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def dom(page: Path, profile: Path, budget_ms: int = 5000, timeout: float = 120,
        size: str = "800,600") -> tuple[str, list[str]]:
    """The page's DOM after ``budget_ms`` of virtual time, and the console lines the browser logged."""
    done = _chromium(page, profile, [f"--virtual-time-budget={budget_ms}", "--dump-dom", f"--window-size={size}"], timeout)
    return done.stdout, console_lines(done.stderr)


def screenshot(page: Path, profile: Path, png: Path, size: str = "1400,4000", budget_ms: int = 5000,
               timeout: float = 120) -> list[str]:
    """Writes a screenshot of the page to ``png``; returns the console lines logged."""
    done = _chromium(page, profile, [f"--virtual-time-budget={budget_ms}", f"--screenshot={png.resolve()}",
                                     f"--window-size={size}"], timeout)
    return console_lines(done.stderr)


def console_lines(log: str) -> list[str]:
    """What the page's scripts logged or threw: Chromium's CONSOLE lines and uncaught errors,
    but the software renderer's own performance notes ("GL Driver Message ... GPU stall"), which
    Chromium logs as console lines of any page that draws WebGL without a GPU."""
    return [line for line in log.splitlines() if (":CONSOLE" in line or "Uncaught" in line)
            and "GL Driver Message" not in line]
