"""The whole loop a person lives: tell `slowwave serve` things today, sleep, ask tomorrow in a new session.

A real `slowwave serve` process, a real `slowwave sleep` (its own Prefect server, the real stages and the
default model), and the server swapping to the fused version by itself. The night's training uses the shipped
defaults; only the gate's benchmark and general text are the small test set (tests/small_sleep.py), to keep
the test inside CI's time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from storage import registry
from test_serve import base_home, start_server, stop_server

REPO = Path(__file__).resolve().parents[1]

# (what the person says, a later question, the keyword a right answer holds)
FACTS = [
    ("Hi! My name is Rosalind Achterberg.", "What is my name?", "Rosalind"),
    ("I live in Tromsø, way up in the north of Norway.", "Which city do I live in?", "Tromsø"),
    ("My dog is called Bramble, she is a border collie.", "What is my dog called?", "Bramble"),
    ("I work as a marine biologist at the university.", "What is my job?", "marine biologist"),
    ("My sister's name is Ingeborg.", "What is my sister's name?", "Ingeborg"),
]
PARIS = [{"role": "user", "content": "What is the capital of France?"}]


def _say(url: str, session: str, history: list[dict], text: str) -> list[dict]:
    history = history + [{"role": "user", "content": text}]
    r = httpx.post(f"{url}/v1/chat/completions", timeout=120,
                   json={"messages": history, "max_tokens": 24, "user": session})
    assert r.status_code == 200, r.text
    return history + [{"role": "assistant", "content": r.json()["choices"][0]["message"]["content"]}]


@pytest.mark.model
def test_told_today_through_the_server_known_tomorrow_in_a_new_session(converted_model_dir, tmp_path):
    from small_sleep import write_small_config

    home = base_home(tmp_path / "home", converted_model_dir)
    write_small_config(home.config_file, tmp_path / "gate-inputs")
    # The night's training as shipped: three epochs and every phrasing (the small config trims them for speed).
    text = home.config_file.read_text().replace("light_epochs = 1\n", "").replace("paraphrases = 1\n", "")
    home.config_file.write_text(text.replace("anchor_ratio = 0.25\n", ""))
    proc, url = start_server(home, tmp_path / "serve.log", pressure_threshold="null", swap_poll_seconds="0.5")
    try:
        # Day one: two conversations, five facts.
        first = []
        for said, _, _ in FACTS[:3]:
            first = _say(url, "day1-morning", first, said)
        second = []
        for said, _, _ in FACTS[3:]:
            second = _say(url, "day1-evening", second, said)
        # Night: the sleep runs by itself, in its own process, while the server keeps serving v0000.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLOWWAVE_"))}
        started = time.monotonic()
        night = subprocess.run([sys.executable, "-m", "flows.cli", "--home", str(home.root), "sleep"], cwd=REPO,
                               env=env, capture_output=True, text=True, timeout=1200)
        slept = time.monotonic() - started
        assert night.returncode == 0, night.stdout[-3000:] + night.stderr[-3000:]
        assert registry.current_name(home) == "v0001", night.stdout[-3000:]
        # The server notices the new current version and swaps to it without a restart.
        deadline = time.monotonic() + 120
        while httpx.get(f"{url}/v1/models").json()["data"][0]["id"] != "v0001":
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-2000:]
            time.sleep(0.5)
        # Day two: a new session, no context: it knows.
        answers = []
        for _, question, keyword in FACTS:
            r = httpx.post(f"{url}/v1/chat/completions", timeout=120,
                           json={"messages": [{"role": "user", "content": question}], "max_tokens": 32,
                                 "user": "day2"})
            assert r.status_code == 200 and r.json()["model"] == "v0001"
            answers.append((question, r.json()["choices"][0]["message"]["content"], keyword))
        known = [q for q, a, k in answers if k.lower() in a.lower()]
        paris = httpx.post(f"{url}/v1/chat/completions", timeout=120,
                           json={"messages": PARIS, "max_tokens": 24, "user": "day2"}).json()
        print(f"wake loop: {len(known)}/5 facts known the next day; sleep {slept:.0f} s; answers: {answers}; "
              f"Paris: {paris['choices'][0]['message']['content']!r}")
        assert len(known) >= 4, answers
        assert "Paris" in paris["choices"][0]["message"]["content"]
    finally:
        code = stop_server(proc)
    assert code in (0, 143), (tmp_path / "serve.log").read_text()[-2000:]
