"""`slowwave serve` against mlx-lm directly: time to first token and decode speed through the HTTP API, side by side.

    python bench/serve.py [--tokens 96] [--repeat 3] [--clients 8]

A fresh home gets the default model as v0000. `mlx_lm.stream_generate` (in this process) and a streamed
`POST /v1/chat/completions` to a real `slowwave serve` process (uvicorn on a free loopback port) answer the same
prompt with greedy decoding, alternated --repeat times, never at the same time. Each prints time to first token
and decode tokens/s (tokens after the first ÷ the time after the first); the ratio HTTP ÷ direct is checked
against 0.9. Then --clients streaming clients ask at once: every one must end with [DONE] and no error; the
total wall time and tokens/s are printed. The load average is printed at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.model.blas import ensure_fast_blas  # noqa: E402

ensure_fast_blas()

PROMPT = [{"role": "user", "content": "Write a short story about a lighthouse keeper and a storm."}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def direct(model, tok, max_tokens: int) -> dict:
    """One greedy reply with mlx-lm's own stream_generate: first-token time and decode tokens/s."""
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_sampler

    prompt = tok.apply_chat_template(PROMPT, add_generation_prompt=True)
    started = time.perf_counter()
    first, n = None, 0
    for response in stream_generate(model, tok, prompt, max_tokens=max_tokens, sampler=make_sampler(temp=0.0)):
        n += 1
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    return {"ttft": first - started, "tokens": n, "tps": (n - 1) / (end - first) if n > 1 else 0.0}


def over_http(url: str, max_tokens: int, session: str) -> dict:
    """One greedy streamed reply through the server: first content chunk time and decode tokens/s."""
    import httpx

    payload = {"messages": PROMPT, "stream": True, "max_tokens": max_tokens, "temperature": 0,
               "stream_options": {"include_usage": True}, "user": session}
    started = time.perf_counter()
    first, usage, done = None, None, False
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=payload, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line[len("data: "):]
            if data == "[DONE]":
                done = True
                break
            chunk = json.loads(data)
            if chunk.get("usage"):
                usage = chunk["usage"]
            if first is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter()
    end = time.perf_counter()
    if not done or usage is None or first is None:
        raise RuntimeError(f"stream from {url} ended without [DONE], usage or content")
    n = usage["completion_tokens"]
    return {"ttft": first - started, "tokens": n, "tps": (n - 1) / (end - first) if n > 1 else 0.0}


def start_server(home_root: Path, log: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLOWWAVE_"))}
    env = {**clean, "SLOWWAVE_WAKE__PRESSURE_THRESHOLD": "null"}
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "--home", str(home_root), "serve", "--port",
                             str(port)], stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench/serve: the server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"bench/serve: no answer from the server within 180 s: {log.read_text()[-2000:]}")


def concurrent(url: str, clients: int, max_tokens: int) -> dict:
    """`clients` streamed requests at once; every one must end with [DONE]."""
    results: list[dict | None] = [None] * clients
    errors: list[str] = []

    def one(i: int) -> None:
        try:
            results[i] = over_http(url, max_tokens, f"bench-concurrent-{i}")
        except Exception as exc:  # noqa: BLE001 - every failure is counted and printed, none is hidden
            errors.append(f"client {i}: {type(exc).__name__}: {exc}")

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    tokens = sum(r["tokens"] for r in results if r)
    return {"wall": wall, "tokens": tokens, "errors": errors, "ok": sum(r is not None for r in results),
            "ttft_max": max((r["ttft"] for r in results if r), default=float("nan"))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=96, help="max tokens per reply (default %(default)s)")
    ap.add_argument("--repeat", type=int, default=3, help="alternated runs of each (default %(default)s)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent streaming clients (default %(default)s)")
    args = ap.parse_args(argv)

    from flows.config import Settings
    from storage.home import Home
    from tasks.model.loading import load_model
    from tasks.model.pull import ensure_model

    print(f"load average at start: {load()}")
    with tempfile.TemporaryDirectory(prefix="slowwave-bench-serve-") as tmp:
        home = Home(Path(tmp) / "home").ensure()
        version = ensure_model(home, Settings().model, "bench", say=lambda m: print(m, file=sys.stderr))
        model, tok = load_model(version.path)
        proc, url = start_server(home.root, Path(tmp) / "serve.log")
        try:
            direct(model, tok, 8)  # warm both up: first calls compile and fill caches
            over_http(url, 8, "bench-warm")
            rows = {"direct": [], "http": []}
            for i in range(args.repeat):
                rows["direct"].append(direct(model, tok, args.tokens))
                rows["http"].append(over_http(url, args.tokens, f"bench-{i}"))
            print(f"{'path':<28}{'first token s':>15}{'decode tokens/s':>17}{'tokens':>8}")
            med = {}
            for name, label in (("direct", "mlx_lm.stream_generate"), ("http", "slowwave serve (HTTP, SSE)")):
                ttft = statistics.median(r["ttft"] for r in rows[name])
                tps = statistics.median(r["tps"] for r in rows[name])
                med[name] = tps
                print(f"{label:<28}{ttft:>15.3f}{tps:>17.1f}{rows[name][0]['tokens']:>8}")
            ratio = med["http"] / med["direct"] if med["direct"] else float("nan")
            print(f"HTTP / direct decode tokens/s: {ratio:.2f}x (target >= 0.90: {'met' if ratio >= 0.9 else 'NOT met'})")
            many = concurrent(url, args.clients, args.tokens // 2)
            print(f"{args.clients} concurrent streaming clients: {many['ok']} ended with [DONE], "
                  f"{len(many['errors'])} errors, {many['tokens']} tokens in {many['wall']:.1f} s "
                  f"({many['tokens'] / many['wall']:.1f} tokens/s in all, slowest first token {many['ttft_max']:.1f} s)")
            for e in many["errors"]:
                print(f"  {e}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    print(f"load average at end: {load()}")
    return 0 if not many["errors"] else 1


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
