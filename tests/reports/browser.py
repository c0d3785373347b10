"""Drive headless Chromium over the DevTools protocol (``--remote-debugging-pipe``), stdlib only.

Why not parse ``--enable-logging=stderr``: Chromium logs every console message there at INFO
level ("INFO:CONSOLE"), so console.error cannot be told from console.log, and a failed resource
load (an <img> whose file is missing) is not logged at all. Over the DevTools pipe the browser
reports each problem as a typed event, which is what :func:`render` collects as ``errors``:

* ``Runtime.exceptionThrown``              uncaught exceptions ("Uncaught ...");
* ``Runtime.consoleAPICalled`` type error/assert   console.error / console.assert;
* ``Log.entryAdded`` level error           browser-side errors: failed resource loads
                                           ("Failed to load resource: net::ERR_FILE_NOT_FOUND"),
                                           blocked content, CSP violations;
* ``Network.loadingFailed``                any request that failed;
* ``Page.javascriptDialogOpening``         an alert()/confirm() (e.g. injected script) - the dialog
                                           is dismissed and recorded.

Every requested URL is recorded too (``requests``), so a test can assert that a page fetched
nothing from the network. After the load event, :func:`render` waits ``settle_s`` for late
errors, reads the DOM (``document.documentElement.outerHTML``), the state of every <img>
(complete, naturalWidth), the number of <script> elements, and takes a screenshot.

Usage::

    exe = find_chromium()                       # None -> pytest.skip(...)
    page = render(exe, Path("site/index.html"), screenshot=Path("shot.png"))
    assert not page.errors, page.errors
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe"]

PAGE_STATE_JS = """JSON.stringify({
  title: document.title,
  scripts: document.scripts.length,
  images: Array.from(document.images).map(i => ({src: i.getAttribute('src'), url: i.currentSrc || i.src,
                                                 complete: i.complete, naturalWidth: i.naturalWidth,
                                                 naturalHeight: i.naturalHeight})),
  text: document.body ? document.body.innerText : ''
})"""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable on PATH, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    url: str
    dom: str = ""
    title: str = ""
    scripts: int = 0
    text: str = ""
    images: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console: list[dict] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    stderr: str = ""


class _Pipe:
    """Null-terminated JSON messages over the two DevTools pipe fds."""

    def __init__(self, write_fd: int, read_fd: int, deadline: float):
        self.w, self.r, self.deadline = write_fd, read_fd, deadline
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            n = os.write(self.w, data)
            data = data[n:]
        return self.next_id

    def _read_one(self, timeout: float) -> dict | None:
        while b"\0" not in self.buf:
            remaining = min(timeout, self.deadline - time.monotonic())
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.r], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        mid = self.send(method, params, session)
        while True:
            msg = self._read_one(self.deadline - time.monotonic())
            if msg is None:
                raise TimeoutError(f"no answer to {method}")
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self._event(msg)

    def _event(self, msg: dict) -> None:
        self.events.append(msg)
        if msg["method"] == "Page.javascriptDialogOpening":  # never let a dialog block the page
            self.send("Page.handleJavaScriptDialog", {"accept": False}, msg.get("sessionId"))

    def pump(self, seconds: float, until: str | None = None) -> bool:
        """Collect events for ``seconds`` (or until an event named ``until``); True if it came."""
        end = min(time.monotonic() + seconds, self.deadline)
        while time.monotonic() < end:
            msg = self._read_one(end - time.monotonic())
            if msg is None:
                break
            if "method" in msg:
                self._event(msg)
                if until and msg["method"] == until:
                    return True
        return False


def _high_fd(fd: int) -> int:
    """Duplicate fd to a number >= 10 (so dup2 onto 3 and 4 in the child cannot clobber it)."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


def _describe(event: dict) -> str | None:
    m, p = event["method"], event.get("params", {})
    if m == "Runtime.exceptionThrown":
        d = p.get("exceptionDetails", {})
        exc = d.get("exception", {}).get("description") or d.get("text", "exception")
        return f"uncaught: {exc} at {d.get('url', '')}:{d.get('lineNumber', '')}"
    if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
        args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
        return f"console.{p.get('type')}: {args}"
    if m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
        en = p["entry"]
        return f"log error ({en.get('source')}): {en.get('text')} {en.get('url', '')}".strip()
    if m == "Network.loadingFailed" and not p.get("canceled"):
        return f"request failed: {p.get('errorText')} ({p.get('type', '')})"
    if m == "Page.javascriptDialogOpening":
        return f"javascript dialog: {p.get('type')} {p.get('message')!r}"
    return None


def render(exe: str, target: Path | str, *, screenshot: Path | None = None, width: int = 1280,
           height: int = 900, full_page: bool = False, settle_s: float = 0.5,
           timeout: float = 60.0) -> PageReport:
    """Load ``target`` (a path or URL) in headless Chromium and report what happened.

    Bounded by ``timeout`` seconds overall; the browser (its own process group) is always closed.
    """
    url = Path(target).resolve().as_uri() if not str(target).startswith(("file:", "http:", "https:")) \
        else str(target)
    report = PageReport(url=url)
    deadline = time.monotonic() + timeout
    cmd_r, cmd_w = os.pipe()     # we write commands, chromium reads fd 3
    res_r, res_w = os.pipe()     # chromium writes fd 4, we read
    cmd_r, res_w = _high_fd(cmd_r), _high_fd(res_w)

    def child_setup():  # runs in the child between fork and exec
        os.setsid()
        os.dup2(cmd_r, 3)
        os.dup2(res_w, 4)

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, \
            tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}",
                                 f"--window-size={width},{height}", "about:blank"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                preexec_fn=child_setup, close_fds=False)
        os.close(cmd_r)
        os.close(res_w)
        pipe = _Pipe(cmd_w, res_r, deadline)
        try:
            target_id = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            sid = pipe.call("Target.attachToTarget", {"targetId": target_id, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.call(f"{domain}.enable", {}, sid)
            pipe.call("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, sid)
            pipe.events.clear()
            pipe.call("Page.navigate", {"url": url}, sid)
            loaded = any(ev["method"] == "Page.loadEventFired" for ev in pipe.events) or \
                pipe.pump(deadline - time.monotonic(), until="Page.loadEventFired")
            if not loaded:
                report.errors.append("page load event never fired")
            pipe.pump(settle_s)
            state = json.loads(pipe.call("Runtime.evaluate", {"expression": PAGE_STATE_JS,
                                                              "returnByValue": True}, sid)["result"]["value"])
            report.title, report.scripts = state["title"], state["scripts"]
            report.images, report.text = state["images"], state["text"]
            report.dom = pipe.call("Runtime.evaluate", {"expression": "document.documentElement.outerHTML",
                                                        "returnByValue": True}, sid)["result"]["value"]
            if screenshot is not None:
                params: dict[str, Any] = {"format": "png"}
                if full_page:
                    size = pipe.call("Page.getLayoutMetrics", {}, sid)["cssContentSize"]
                    params.update(captureBeyondViewport=True,
                                  clip={"x": 0, "y": 0, "width": width,
                                        "height": min(size["height"], 16000), "scale": 1})
                data = pipe.call("Page.captureScreenshot", params, sid)["data"]
                Path(screenshot).write_bytes(base64.b64decode(data))
                report.screenshot = Path(screenshot)
            pipe.pump(0.05)
        finally:
            try:
                pipe.send("Browser.close")
                proc.wait(timeout=10)
            except Exception:
                pass
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the group we created with setsid
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
            os.close(cmd_w)
            os.close(res_r)
            err.seek(0)
            report.stderr = err.read().decode(errors="replace")
    for ev in pipe.events:
        p = ev.get("params", {})
        if ev["method"] == "Network.requestWillBeSent":
            report.requests.append(p.get("request", {}).get("url", ""))
        if ev["method"] == "Runtime.consoleAPICalled":
            report.console.append({"type": p.get("type"), "args": p.get("args", [])})
        msg = _describe(ev)
        if msg:
            report.errors.append(msg)
    return report
