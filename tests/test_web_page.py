"""The web chat page of `slowwave serve`, driven in headless Chromium over the DevTools protocol."""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from storage.session_log import inbox_dir
from test_serve import base_home, start_server, stop_server

QUESTION = "What is the capital of France?"


class DevTools:
    """A minimal Chrome DevTools Protocol client: one page target, commands answered in order."""

    def __init__(self, ws_url: str):
        self.ws = connect(ws_url, max_size=None, open_timeout=30)
        self._ids = itertools.count(1)

    def call(self, method: str, **params) -> dict:
        n = next(self._ids)
        self.ws.send(json.dumps({"id": n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == n:  # events (no id) are not this client's business
                assert "error" not in msg, (method, msg["error"])
                return msg["result"]

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def screenshot(self, path: Path) -> bytes:
        png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(png)
        return png


@pytest.fixture
def chromium(tmp_path):
    """Headless Chromium with remote debugging; the DevTools client of its first page."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed (`apt-get install chromium`; .ci/run installs it)")
    proc = subprocess.Popen([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync", "--no-first-run",
                             "--window-size=900,700", f"--user-data-dir={tmp_path / 'profile'}",
                             "--remote-debugging-port=0", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in proc.stderr:
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if found:
                port = int(found.group(1))
                break
        assert port, "chromium printed no DevTools address"
        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=30).json() if t["type"] == "page"]
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        yield tools
        tools.ws.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait(tools: DevTools, expression: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = tools.js(expression)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s: {expression}")


@pytest.mark.model
def test_the_page_streams_a_typed_question_into_the_answer_and_logs_it(chromium, converted_model_dir, tmp_path):
    home = base_home(tmp_path / "home", converted_model_dir)
    proc, url = start_server(home, tmp_path / "serve.log", pressure_threshold="null", max_tokens="32")
    try:
        chromium.call("Page.enable")
        chromium.call("Page.navigate", url=f"{url}/")
        assert _wait(chromium, "(document.getElementById('version') || {}).textContent === 'model v0000'")
        first = chromium.screenshot(tmp_path / "page-empty.png")
        assert first[:8] == b"\x89PNG\r\n\x1a\n" and len(first) > 2000
        session = chromium.js("sessionStorage.getItem('slowwave-session')")
        assert re.fullmatch(r"web_\d{8}_[a-z0-9]+", session)

        # Typed as key input into the focused box, sent with Enter.
        chromium.js("document.getElementById('input').focus()")
        chromium.call("Input.insertText", text=QUESTION)
        for kind in ("keyDown", "keyUp"):
            chromium.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13)
        seen = []  # the answer's text as it grows, read from the DOM while the reply streams
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = chromium.js("[document.body.dataset.state, "
                                "(document.querySelector('.msg.assistant') || {}).textContent || '']")
            if state[1] and (not seen or seen[-1] != state[1]):
                seen.append(state[1])
            if state[0] == "idle" and seen:
                break
            time.sleep(0.03)
        answer = chromium.js("document.querySelector('.msg.assistant').textContent")
        assert "Paris" in answer, answer
        assert len(seen) >= 2 and all(answer.startswith(s) for s in seen) and seen[0] != answer, seen
        assert chromium.js("document.querySelector('.msg.user').textContent") == QUESTION
        assert chromium.js("document.getElementById('input').value") == ""
        after = chromium.screenshot(tmp_path / "page-answered.png")
        assert after[:8] == b"\x89PNG\r\n\x1a\n" and after != first

        rows = [json.loads(x) for x in (inbox_dir(home) / f"session_{session}.jsonl").read_text().splitlines()]
        assert [(r["turn"], r["role"], r["content"]) for r in rows] == [
            (0, "user", QUESTION), (0, "assistant", answer.strip())]
        print(f"page: {len(seen)} partial answers seen while streaming; screenshots in {tmp_path}")
    finally:
        stop_server(proc)
