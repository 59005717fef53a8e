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


def marks(page: Path, profile: Path, names: tuple[str, ...], size: str = "1400,900", timeout: float = 60) -> dict:
    """The page's body attributes ``names`` once all are set, read in real time.

    ``--virtual-time-budget`` (:func:`dom`) virtualizes the page's clocks: ``performance.now()``
    then advances with the budget's policy, not with the seconds a script runs, so timings read
    that way are not wall time. Here Chromium runs in real time and is asked over the DevTools
    protocol on a pipe (``--remote-debugging-pipe``: JSON messages ended by NUL on file
    descriptors 3 and 4, no port, no extra package) every 20 ms whether the attributes are set.
    Returns ``{name: value}`` (the values as the page wrote them) and ``"console"``: what the page
    logged or threw."""
    import json
    import os
    import time

    to_chrome, from_us = os.pipe()
    to_us, from_chrome = os.pipe()
    # the child reads commands on its fd 3 and writes replies on fd 4
    args = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}", "--remote-debugging-pipe",
            "about:blank"]
    child = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             pass_fds=(3, 4), preexec_fn=lambda: (os.dup2(to_chrome, 3), os.dup2(from_chrome, 4)))
    os.close(to_chrome), os.close(from_chrome)
    buffer, ids, errors = b"", iter(range(1, 1 << 30)), []

    def call(method, session=None, **params):
        nonlocal buffer
        number = next(ids)
        message = {"id": number, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(from_us, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in buffer:
                chunk = os.read(to_us, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                buffer += chunk
            raw, buffer = buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("method") == "Runtime.exceptionThrown":
                errors.append(reply["params"]["exceptionDetails"].get("text", ""))
            if reply.get("method") == "Runtime.consoleAPICalled" and reply["params"].get("type") == "error":
                errors.append(str(reply["params"].get("args")))
            if reply.get("id") == number:
                return reply.get("result", {})

    try:
        target = call("Target.createTarget", url="about:blank")["targetId"]
        session = call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        call("Runtime.enable", session)
        call("Page.enable", session)
        call("Page.navigate", session, url=page.resolve().as_uri())
        query = "JSON.stringify([%s].map(function (n) { return document.body && document.body.getAttribute(n); }))" % (
            ",".join(json.dumps(n) for n in names))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            values = json.loads(call("Runtime.evaluate", session, expression=query)["result"]["value"])
            if all(v is not None for v in values):
                return {**dict(zip(names, values)), "console": errors}
            time.sleep(0.02)
        raise TimeoutError(f"{page}: {names} not all set after {timeout} s")
    finally:
        child.kill()
        child.wait()
        os.close(from_us), os.close(to_us)
