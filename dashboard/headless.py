"""Drive the dashboard in a real headless Chromium: the browser smoke test and the
screenshots in docs/ (`python -m dashboard.headless --out docs`).

Streamlit renders in the browser over a websocket, so `chromium --dump-dom` returns
the page before any element exists. This module speaks the Chrome DevTools Protocol
(over `websockets`, which Streamlit already depends on) to wait until the script has
finished running and the expected elements are in the DOM, then reads or photographs it.
"""
from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from websockets.sync.client import connect

CHROMIUM_ENV = "CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
# The flags the machine's notes ask for: no sandbox (root in a container), no GPU, no
# network chatter of the browser itself.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars")
# True when the app has rendered a page: no script run in progress, a page title, no
# placeholder (skeleton) left. Polled until it holds STABLE_POLLS times in a row.
JS_PAGE_DONE = ("!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')"
                " && !!document.querySelector('[data-testid=\"stMain\"] h1')"
                " && !document.querySelector('[data-testid=\"stSkeleton\"]')")
STABLE_POLLS = 4
JS_COUNT = "document.querySelectorAll('[data-testid=\"{testid}\"]').length"
JS_TEXTS = ("Array.from(document.querySelectorAll('[data-testid=\"{testid}\"]'))"
            ".map(e => e.innerText)")
# Pages photographed for docs/screenshots (url path under the app; "" = KPIs).
SCREENSHOTS = ("", "funnel", "heatmap", "products", "segments", "cohorts", "churn_clv",
               "pricing", "fraud", "forecast")


def find_chromium() -> str | None:
    """The Chromium binary: env CHROMIUM, else the first of CHROMIUM_NAMES on PATH."""
    if os.environ.get(CHROMIUM_ENV):
        return os.environ[CHROMIUM_ENV]
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class Browser:
    """One headless Chromium tab over the DevTools protocol."""

    def __init__(self, socket) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events in between are skipped)."""
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method,
                                      "params": params}))
        while True:
            reply = json.loads(self._socket.recv(timeout=60))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"javascript error in {expression!r}: "
                               f"{result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, timeout: float = 60) -> None:
        """Load `url` and wait until Streamlit has finished running the page."""
        self.call("Page.navigate", url=url)
        time.sleep(0.5)  # let the old document go before polling the new one
        streak = 0

        def settled() -> bool:
            nonlocal streak
            streak = streak + 1 if self.evaluate(JS_PAGE_DONE) else 0
            return streak >= STABLE_POLLS

        _wait(settled, timeout, f"the page {url}", interval=0.5)

    def count(self, testid: str) -> int:
        return int(self.evaluate(JS_COUNT.format(testid=testid)))

    def texts(self, testid: str) -> list[str]:
        return list(self.evaluate(JS_TEXTS.format(testid=testid)))

    def wait_for(self, testid: str, at_least: int = 1, timeout: float = 30) -> int:
        return _wait(lambda: (n := self.count(testid)) >= at_least and n, timeout,
                     f"{at_least} element(s) {testid}")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))


@contextmanager
def chromium(binary: str, width: int = 1440, height: int = 1100) -> Iterator[Browser]:
    """A headless Chromium with a fresh profile; yields its first tab."""
    # Chromium's helper processes (crashpad, GPU, renderers) outlive the main one and
    # keep writing into the profile, so the whole process group is stopped and the
    # profile removed with retries rather than by TemporaryDirectory's single pass.
    profile = tempfile.mkdtemp(prefix="rees46-chromium-")
    try:
        process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             "--remote-debugging-port=0", f"--window-size={width},{height}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            active = Path(profile) / "DevToolsActivePort"
            _wait(lambda: active.exists() and len(active.read_text().split()) >= 2,
                  30, "Chromium's DevTools port")
            port = active.read_text().split()[0]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                        timeout=10) as reply:
                tabs = [t for t in json.load(reply) if t.get("type") == "page"]
            with connect(tabs[0]["webSocketDebuggerUrl"], max_size=None,
                         open_timeout=30) as socket:
                browser = Browser(socket)
                browser.call("Page.enable")
                yield browser
        finally:
            _stop_group(process)
    finally:
        _remove_tree(Path(profile))


def _stop_group(process: subprocess.Popen) -> None:
    """Terminate a process and every helper it started in its session."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # helpers that ignored SIGTERM
    except ProcessLookupError:
        pass
    process.wait()


def _remove_tree(path: Path, attempts: int = 20) -> None:
    for _ in range(attempts):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.25)
    raise OSError(f"could not remove Chromium's profile {path}")


@contextmanager
def dashboard_server(serving_db: Path, port: int | None = None,
                     timeout: float = 60) -> Iterator[str]:
    """`streamlit run dashboard/app.py` on `serving_db`; yields its base URL."""
    port = port or free_port()
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "REES46_SERVING_DB": str(serving_db),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(repo),
                                                       os.environ.get("PYTHONPATH")]))}
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(repo / "dashboard" / "app.py"),
         "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"],
        cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"streamlit exited: {log.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    try:
        _wait(healthy, timeout, f"streamlit on {url}", interval=0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def take_screenshots(serving_db: Path, out: Path, binary: str) -> list[Path]:
    """A PNG of each page of SCREENSHOTS, default filters, into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with dashboard_server(serving_db) as url, chromium(binary) as browser:
        for path in SCREENSHOTS:
            name = path or "kpis"
            browser.open(f"{url}/{path}")
            if browser.count("stException"):
                raise RuntimeError(f"page {name}: {browser.texts('stException')}")
            time.sleep(2.0)  # let the Vega charts draw
            target = out / f"dashboard_{name}.png"
            browser.screenshot(target)
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serving-db", type=Path, default=Path(
        os.environ.get("REES46_SERVING_DB", "warehouse/serving.duckdb")))
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args(argv)
    binary = find_chromium()
    if binary is None:
        parser.error("no Chromium found: apt-get install chromium, or set CHROMIUM")
    for path in take_screenshots(args.serving_db, args.out, binary):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
