"""`slowwave serve`: a real uvicorn process on a free port, spoken to over HTTP in OpenAI's wire format."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from flows.wake.sleeper import over_threshold
from storage import registry
from storage.home import Home
from storage.lock import holder
from storage.session_log import inbox_dir

ASK = [{"role": "user", "content": "What is the capital of France?"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_home(root: Path, model_dir: Path) -> Home:
    """A home whose current version v0000 is the default model (hard links, no copy)."""
    home = Home(root).ensure()
    v0 = registry.register(home, model_dir, run_id="r-test", parent=None, adapter_id=None, base="test", link=True)
    registry.set_current(home, v0.name, run_id="r-test", action="register", reason="base")
    return home


def start_server(home: Home, log: Path, **settings: str) -> tuple[subprocess.Popen, str]:
    """`slowwave serve` in its own process, with [wake] settings from the environment; (process, base URL)."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLOWWAVE_"))}
    env = {**clean, **{f"SLOWWAVE_WAKE__{k.upper()}": v for k, v in settings.items()}}
    out = open(log, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "--home", str(home.root), "serve", "--port",
                             str(port)], stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"serve did not answer within 120 s: {log.read_text()}")


def stop_server(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def sse_events(response: httpx.Response) -> list[str]:
    """The `data:` payloads of a server-sent event stream, in order."""
    return [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]


@pytest.fixture(scope="module")
def server(converted_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    home = base_home(root / "home", converted_model_dir)
    proc, url = start_server(home, root / "serve.log", pressure_threshold="null", max_tokens="24",
                             context_tokens="128", swap_poll_seconds="0.2")
    yield {"home": home, "url": url, "proc": proc, "log": root / "serve.log"}
    code = stop_server(proc)
    assert code in (0, 128 + signal.SIGTERM), (root / "serve.log").read_text()


def _session_rows(home: Home, session: str) -> list[dict]:
    return [json.loads(x) for x in (inbox_dir(home) / f"session_{session}.jsonl").read_text().splitlines()]


@pytest.mark.model
def test_a_whole_reply_in_openai_shape_is_logged_under_the_user_field(server):
    r = httpx.post(f"{server['url']}/v1/chat/completions", timeout=120,
                   json={"model": "anything", "messages": ASK, "user": "alice-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-") and body["model"] == "v0000"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and "Paris" in choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 10 and 0 < usage["completion_tokens"] <= 24
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    rows = _session_rows(server["home"], "alice-1")
    assert [(r["turn"], r["role"], r["content"]) for r in rows] == [
        (0, "user", ASK[0]["content"]), (0, "assistant", choice["message"]["content"].strip())]
    models = httpx.get(f"{server['url']}/v1/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["v0000"]


@pytest.mark.model
def test_the_openai_python_client_talks_to_it_whole_and_streamed(server):
    """The official `openai` client, unchanged but for its base URL, against the real server."""
    openai = pytest.importorskip("openai", reason="the openai client is a test dependency (pyproject [test])")
    client = openai.OpenAI(base_url=f"{server['url']}/v1", api_key="unused", max_retries=0, timeout=120)
    assert [m.id for m in client.models.list()] == ["v0000"]
    whole = client.chat.completions.create(model="v0000", messages=ASK, user="openai-whole")
    assert whole.object == "chat.completion" and whole.model == "v0000"
    assert whole.choices[0].message.role == "assistant" and "Paris" in whole.choices[0].message.content
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens > 10
    stream = client.chat.completions.create(model="v0000", messages=ASK, stream=True, user="openai-stream")
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert len([p for p in pieces if p]) >= 3 and "Paris" in "".join(pieces)
    for session, reply in (("openai-whole", whole.choices[0].message.content), ("openai-stream", "".join(pieces))):
        rows = _session_rows(server["home"], session)
        assert [(r["role"], r["content"]) for r in rows] == [("user", ASK[0]["content"]), ("assistant", reply.strip())]
    # Its errors arrive as the client's own exception types, with the server's message.
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="v0000", messages=[])
    with pytest.raises(openai.NotFoundError, match="v0099"):
        client.chat.completions.create(model="v0099", messages=ASK)


@pytest.mark.model
def test_a_streamed_reply_is_openai_chunks_ending_with_done_and_logged_under_the_header(server):
    payload = {"messages": ASK, "stream": True,
               "stream_options": {"include_usage": True}, "user": "ignored-when-the-header-is-given"}
    with httpx.stream("POST", f"{server['url']}/v1/chat/completions", json=payload, timeout=120,
                      headers={"X-Session-Id": "web_bob"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "v0000" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]]
    assert len([p for p in pieces if p]) >= 3  # token by token, not one block
    text = "".join(pieces)
    assert "Paris" in text
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and finals[0]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= len([p for p in pieces if p])
    rows = _session_rows(server["home"], "web_bob")
    assert [(r["turn"], r["role"]) for r in rows] == [(0, "user"), (0, "assistant")]
    assert rows[1]["content"] == text.strip()
    assert not (inbox_dir(server["home"]) / "session_ignored-when-the-header-is-given.jsonl").exists()


@pytest.mark.model
def test_stop_strings_end_the_reply_unshown_and_a_client_that_leaves_gets_its_partial_reply_logged(server):
    url = f"{server['url']}/v1/chat/completions"
    whole = httpx.post(url, json={"messages": ASK, "stop": ["Paris"], "user": "stop-1"}, timeout=120).json()
    assert whole["choices"][0]["message"]["content"] == "The capital of France is "
    assert whole["choices"][0]["finish_reason"] == "stop"
    with httpx.stream("POST", url, json={"messages": ASK, "stream": True, "stop": "Paris", "user": "stop-2"},
                      timeout=120) as r:
        chunks = [json.loads(e) for e in sse_events(r) if e != "[DONE]"]
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert streamed == "The capital of France is " and not any("Par" in json.dumps(c) for c in chunks)
    # A client that goes away after the first words: the reply stops, what it was sent is logged.
    long_ask = [{"role": "user", "content": "Write a long story about a dragon."}]
    with httpx.stream("POST", url, json={"messages": long_ask, "stream": True, "max_tokens": 24, "user": "gone-1"},
                      timeout=120) as r:
        lines = r.iter_lines()
        got = [json.loads(line[6:]) for line in itertools.islice((x for x in lines if x.startswith("data: ")), 4)]
    sent = "".join(c["choices"][0]["delta"].get("content", "") for c in got)
    deadline = time.monotonic() + 30
    while len(_session_rows(server["home"], "gone-1")) < 2:
        assert time.monotonic() < deadline, "the partial reply was not logged"
        time.sleep(0.1)
    rows = _session_rows(server["home"], "gone-1")
    assert rows[1]["role"] == "assistant" and rows[1]["content"].startswith(sent.strip())
    assert httpx.post(url, json={"messages": ASK, "max_tokens": 4}, timeout=60).status_code == 200


@pytest.mark.model
def test_bad_requests_get_openai_errors_naming_the_culprit_and_log_nothing(server):
    url = f"{server['url']}/v1/chat/completions"
    before = sorted(p.name for p in inbox_dir(server["home"]).glob("*.jsonl"))
    cases = [
        (b'{"messages": [', 400, "Invalid JSON", None),
        (json.dumps({"messages": []}), 400, "messages: List should have at least 1 item", "messages"),
        (json.dumps({"messages": [{"role": "wizard", "content": "hi"}]}), 400, "messages.0.role", "messages.0.role"),
        (json.dumps({"messages": ASK + [{"role": "assistant", "content": "Paris"}]}), 400,
         "the last message must be the user's", "messages"),
        (json.dumps({"messages": ASK, "max_tokens": 0}), 400, "max_tokens: Input should be greater than or equal to 1",
         "max_tokens"),
        (json.dumps({"messages": ASK, "n": 2}), 400, "n: Input should be less than or equal to 1", "n"),
        (json.dumps({"messages": ASK, "user": "../../etc/passwd"}), 400, "session id '../../etc/passwd' is not usable",
         "user"),
        (json.dumps({"messages": [{"role": "user", "content": "word " * 300}]}), 400,
         "over wake.context_tokens = 128", "messages"),
        (json.dumps({"model": "v0007", "messages": ASK}), 404, "model 'v0007' is not served", "model"),
    ]
    for raw, status, message, param in cases:
        r = httpx.post(url, content=raw, headers={"Content-Type": "application/json"}, timeout=60)
        assert r.status_code == status, (raw, r.text)
        err = r.json()["error"]
        assert message in err["message"] and err["param"] == param and err["type"], (raw, err)
    assert httpx.post(url, content=json.dumps({"messages": [{"role": "user", "content": "word " * 300}]}),
                      timeout=60).json()["error"]["code"] == "context_length_exceeded"
    missing = httpx.get(f"{server['url']}/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "GET /v1/nothing-here: Not Found"
    assert sorted(p.name for p in inbox_dir(server["home"]).glob("*.jsonl")) == before


@pytest.mark.model
def test_a_new_current_version_is_swapped_in_while_requests_keep_succeeding(server):
    home, url = server["home"], server["url"]
    v1 = registry.register(home, registry.get(home, "v0000").path, run_id="r-test", parent="v0000",
                           adapter_id="ad_test", base="test", link=True)
    results: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def keep_asking():
        while not stop.is_set():
            r = httpx.post(f"{url}/v1/chat/completions", timeout=120,
                           json={"messages": ASK, "max_tokens": 6, "user": "swap-test"})
            results.append((r.status_code, r.json().get("model")))

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        while len(results) < 2:
            time.sleep(0.05)
        moved = time.monotonic()
        registry.set_current(home, v1.name, run_id="r-test", action="promote", reason="test")
        served = None
        while time.monotonic() - moved < 60:
            served = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
            if served == "v0001":
                break
            time.sleep(0.1)
        swap_s = time.monotonic() - moved
        assert served == "v0001", server["log"].read_text()
        count = len(results)
        while len(results) < count + 2:
            time.sleep(0.05)
        # A rollback moves `current` too.
        registry.set_current(home, "v0000", run_id="r-test", action="rollback", reason="test")
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/v1/models").json()["data"][0]["id"] != "v0000" and time.monotonic() < deadline:
            time.sleep(0.1)
        count = len(results)
        while len(results) < count + 1:
            time.sleep(0.05)
    finally:
        stop.set()
        asker.join(timeout=120)
    assert all(status == 200 for status, _ in results), results
    models = [m for _, m in results]
    first_new, back = models.index("v0001"), len(models) - 1 - models[::-1].index("v0001")
    assert set(models[:first_new]) == {"v0000"} and set(models[first_new:back + 1]) == {"v0001"}
    assert models[-1] == "v0000"
    print(f"swap: /v1/models named v0001 {swap_s:.1f} s after `current` moved; {len(results)} requests, all 200")
    log = server["log"].read_text()
    assert "now serving v0001 (was v0000; loaded and verified in" in log
    assert "now serving v0000 (was v0001;" in log
    # A damaged version is never served: the server says why and keeps the one it has.
    bad = registry.register(home, registry.get(home, "v0000").path, run_id="r-test", parent="v0000",
                            adapter_id="ad_bad", base="test")  # a copy, so the damage stays in it
    with open(bad.path / "config.json", "a") as f:
        f.write(" ")
    registry.set_current(home, bad.name, run_id="r-test", action="promote", reason="test")
    deadline = time.monotonic() + 60
    while f"cannot load {bad.name}" not in server["log"].read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "config.json sha256 differs from the manifest" in server["log"].read_text()
    assert f"still serving v0000" in server["log"].read_text()
    r = httpx.post(f"{url}/v1/chat/completions", json={"messages": ASK, "max_tokens": 4}, timeout=60)
    assert r.status_code == 200 and r.json()["model"] == "v0000"
    registry.set_current(home, "v0000", run_id="r-test", action="rollback", reason="test")


@pytest.mark.parametrize("new_turns, logged, threshold, expected", [
    (0, 0, 1, False), (0, 1, 1, True), (38, 1, 40, False), (38, 2, 40, True), (45, 0, 40, True),
    (1000, 1000, None, False),
])
def test_the_sleep_starts_when_turns_awaiting_it_reach_the_threshold(new_turns, logged, threshold, expected):
    assert over_threshold(new_turns, logged, threshold) is expected


@pytest.mark.model
def test_pressure_past_the_threshold_starts_one_light_sleep_that_takes_the_lock(converted_model_dir, tmp_path):
    home = base_home(tmp_path / "home", converted_model_dir)
    proc, url = start_server(home, tmp_path / "serve.log", pressure_threshold="1", max_tokens="4")
    sleep_pid = None
    try:
        r = httpx.post(f"{url}/v1/chat/completions", json={"messages": ASK, "user": "p1"}, timeout=120)
        assert r.status_code == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            who = holder(home.root) or {}
            if who.get("pid") not in (None, proc.pid) and "sleep" in who.get("command", ""):
                sleep_pid = who["pid"]
                break
            time.sleep(0.1)
        log = (tmp_path / "serve.log").read_text()
        assert sleep_pid is not None, log
        command = Path(f"/proc/{sleep_pid}/cmdline").read_bytes().split(b"\0")
        assert command[-4:] == [b"sleep", b"--depth", b"light", b""], command  # NUL-terminated arguments
        assert f"(pid {sleep_pid}, output in" in log, log
        assert "sleep pressure 1 new turn(s) reached wake.pressure_threshold = 1" in log
        # While it runs, more turns start no second sleep, and the old version keeps answering.
        r = httpx.post(f"{url}/v1/chat/completions", json={"messages": ASK, "user": "p1"}, timeout=120)
        assert r.status_code == 200 and r.json()["model"] == "v0000"
        deadline = time.monotonic() + 30
        while "still runs; not starting another" not in (tmp_path / "serve.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        assert httpx.get(f"{url}/health").json()["sleep_running"] is True
        os.kill(sleep_pid, signal.SIGTERM)  # a clean cancel; a full sleep is not this test's business
        deadline = time.monotonic() + 60
        while f"(pid {sleep_pid}) ended with exit code" not in (tmp_path / "serve.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        assert f"(pid {sleep_pid}) ended with exit code {128 + signal.SIGTERM}" in (tmp_path / "serve.log").read_text()
    finally:
        if sleep_pid is not None and Path(f"/proc/{sleep_pid}").exists():
            os.kill(sleep_pid, signal.SIGKILL)
        stop_server(proc)
