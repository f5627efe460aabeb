"""The wake side's session log and `slowwave chat`: what is logged is exactly what ingest reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from flows.config import load_settings
from storage import registry
from storage.errors import InputError
from storage.home import Home
from storage.lock import home_lock
from storage.session_log import SessionLog, check_session_id, inbox_dir
from storage.warehouse import read_table

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)


def _ingest(home: Home, path: Path):
    from flows.ingest import ingest_paths

    return ingest_paths(home, [path], load_settings(None, environ={}).ingest)


def test_logged_turns_are_ingested_and_a_line_cut_by_a_crash_is_quarantined(home):
    log = SessionLog(inbox_dir(home), "20261120_100000")
    for text, answer in [("My sister is called Karin.", "Nice to meet Karin!"), ("I live in Tromsø.", "Lovely.")]:
        turn = log.next_turn()
        log.append(turn, "user", text, T0)
        log.append(turn, "assistant", answer, T0)
        assert log.path.read_bytes().endswith(b"\n")  # on disk, whole, before the next message is written
    first = log.path.read_bytes().splitlines()[0]
    assert json.loads(first) == {"timestamp": "2026-11-20T10:00:00+00:00", "session_id": "20261120_100000",
                                 "turn": 0, "role": "user", "content": "My sister is called Karin."}
    # A crash while the third turn's answer was being written: the file ends in the middle of a line.
    turn = log.next_turn()
    log.append(turn, "user", "My dog is a beagle.", T0)
    log.append(turn, "assistant", "Beagles are great.", T0)
    whole = log.path.stat().st_size
    os.truncate(log.path, whole - 12)
    assert not log.path.read_bytes().endswith(b"\n")
    # The restarted process continues the session after the turns it can read, on a line of its own.
    again = SessionLog(inbox_dir(home), "20261120_100000")
    turn = again.next_turn()
    assert turn == 3
    again.append(turn, "user", "I work as a pilot.", T0)
    again.append(turn, "assistant", "Flying is fun.", T0)
    lines = log.path.read_bytes().split(b"\n")
    assert lines[5].endswith(b'"Beagles a') and json.loads(lines[6])["content"] == "I work as a pilot."

    report = _ingest(home, log.path)
    assert (report.exchanges_added, dict(report.quarantined)) == (3, {"invalid-json": 1, "no-answer": 1})
    ex = read_table(home, "exchanges").sort_by("turn").to_pylist()
    assert [(e["turn"], e["user_text"], e["assistant_text"]) for e in ex] == [
        (0, "My sister is called Karin.", "Nice to meet Karin!"), (1, "I live in Tromsø.", "Lovely."),
        (3, "I work as a pilot.", "Flying is fun.")]
    q = {r["reason"]: r for r in read_table(home, "quarantine").to_pylist()}
    assert q["invalid-json"]["line_no"] == 6 and q["invalid-json"]["raw"].endswith(b'"Beagles a')
    assert q["no-answer"]["line_no"] == 5


def test_session_ids_and_texts_that_cannot_be_logged_are_refused_by_name(home):
    for bad in ("", "../etc", ".hidden", "a b", "x" * 65, "ünï"):
        with pytest.raises(InputError, match=r"session id .* is not usable"):
            check_session_id(bad)
    assert check_session_id("web_20261120-abc.1") == "web_20261120-abc.1"
    log = SessionLog(inbox_dir(home), "s1")
    with pytest.raises(InputError, match=r"the user's message holds a lone surrogate \\ud800 at character 3"):
        log.append(0, "user", "abc\ud800")
    assert not log.path.exists()  # nothing was written


def _chat(home: Path, stdin: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLOWWAVE_"))}
    return subprocess.run([sys.executable, "-m", "flows.cli", "--home", str(home), "chat"], input=stdin,
                          capture_output=True, text=True, timeout=300,
                          env={**clean, "SLOWWAVE_WAKE__MAX_TOKENS": "24"})


@pytest.mark.model
def test_chat_from_a_pipe_answers_logs_forgets_and_skips_a_sleep_while_the_home_is_busy(converted_model_dir,
                                                                                        tmp_path):
    home = Home(tmp_path / "home").ensure()
    v0 = registry.register(home, converted_model_dir, run_id="r-test", parent=None, adapter_id=None, base="test",
                           link=True)
    registry.set_current(home, v0.name, run_id="r-test", action="register", reason="base")
    with home_lock(home.root, "slowwave ingest (test)"):
        out = _chat(home.root, "What is the capital of France?\n/forget-session\n\n/nope\n"
                               "What is the capital of France?\n/sleep\n/quit\nnever read\n")
    assert out.returncode == 0, out.stderr
    replies = out.stdout.splitlines()
    assert len(replies) == 2 and all("Paris" in r for r in replies), out.stdout
    sessions = re.findall(r"session (\d{8}_\d{6}(?:_\d+)?)", out.stderr)
    first, second = sessions[0], sessions[-1]
    assert first != second
    assert f"forgot session {first}: deleted" in out.stderr
    assert "unknown command '/nope'" in out.stderr
    assert re.search(rf"light sleep asked for in chat: skipped, {re.escape(str(home.root))} is in use by pid "
                     rf"{os.getpid()} \(`slowwave ingest \(test\)`", out.stderr), out.stderr
    assert list(inbox_dir(home).iterdir()) == [inbox_dir(home) / f"session_{second}.jsonl"]
    rows = [json.loads(x) for x in (inbox_dir(home) / f"session_{second}.jsonl").read_text().splitlines()]
    assert [(r["session_id"], r["turn"], r["role"]) for r in rows] == [(second, 0, "user"), (second, 0, "assistant")]
    assert rows[0]["content"] == "What is the capital of France?" and rows[1]["content"] == replies[1].strip()
    report = _ingest(home, inbox_dir(home))
    assert (report.exchanges_added, sum(report.quarantined.values())) == (1, 0)


def test_a_new_session_never_reuses_an_id_this_chat_used_even_when_its_file_is_gone(tmp_path, monkeypatch):
    import flows.chat as chat

    monkeypatch.setattr(chat, "new_session_id", lambda now=None: "20261207_151717")
    home = Home(tmp_path / "home").ensure()
    first = chat.open_session(home)
    assert first.session_id == "20261207_151717" and not first.path.exists()  # forgotten before a line was logged
    again = chat.open_session(home, frozenset({first.session_id}))
    assert again.session_id == "20261207_151717_2"
    assert chat.open_session(home, frozenset({first.session_id, again.session_id})).session_id == "20261207_151717_3"
