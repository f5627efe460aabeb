"""`slowwave chat`: a terminal conversation with the current model version, every message logged for the sleep.

The reply streams token by token. Each message goes to `inbox/session_<id>.jsonl` as it is typed or
answered (fsynced), in the format ingest reads. `/sleep` starts a light sleep in the background (the chat
goes on with the version it has and switches when the sleep made a new one current), `/forget-session`
deletes this session's file and starts a new one, `/quit` (or end of input) ends the chat.
"""

from __future__ import annotations

import sys
from typing import Callable, Iterator, TextIO

from flows.wake.engine import Engine
from flows.wake.sleeper import Sleeper
from storage.errors import InputError
from storage.home import Home
from storage.session_log import SessionLog, inbox_dir, new_session_id
from storage.warehouse import read_table

COMMANDS = "/quit, /sleep, /forget-session"


def open_session(home: Home, used: frozenset[str] = frozenset()) -> SessionLog:
    """A new session log named after the local time (with a suffix when that name is taken, or was used by this
    chat before: a session forgotten within the same second left no file, but it is not the new one)."""
    base = new_session_id()
    name, n = base, 1
    while name in used or (inbox_dir(home) / f"session_{name}.jsonl").exists():
        n += 1
        name = f"{base}_{n}"
    return SessionLog(inbox_dir(home), name)


def ingested(home: Home, log: SessionLog) -> int:
    """How many ingests already read (some version of) this session's file."""
    files = read_table(home, "ingested_files", columns=["source_file"])["source_file"].to_pylist()
    return sum(1 for f in files if f == str(log.path.resolve()) or f == str(log.path))


def _lines(stream: TextIO) -> Iterator[str]:
    if stream.isatty():
        while True:
            try:
                yield input("you> ")
            except EOFError:
                return
    else:
        for line in stream:
            yield line.rstrip("\n")


def run_chat(home: Home, engine: Engine, sleeper: Sleeper, *, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout,
             say: Callable[[str], None] = print) -> int:
    """Talk until /quit or the end of input; return the exit code."""
    log = open_session(home)
    used: frozenset[str] = frozenset()
    history: list[dict[str, str]] = []
    say(f"chat with {engine.served.version}; session {log.session_id} is logged to {log.path}; "
        f"commands: {COMMANDS}")
    for line in _lines(stdin):
        text = line.strip()
        if not text:
            continue
        if text == "/quit":
            break
        if text == "/sleep":
            sleeper.start("light sleep asked for in chat")
            continue
        if text == "/forget-session":
            seen = ingested(home, log)
            removed = log.forget()
            say(f"forgot session {log.session_id}: " + (f"deleted {log.path}" if removed else "nothing was logged yet")
                + (f"; a sleep had already ingested it {seen} time(s), so those turns stay in the warehouse"
                   if seen else ""))
            used = used | {log.session_id}
            log, history = open_session(home, used), []
            say(f"new session {log.session_id}")
            continue
        if text.startswith("/"):
            say(f"unknown command {text.split()[0]!r}; commands: {COMMANDS}")
            continue
        try:
            history = _exchange(engine, log, history, text, out)
        except InputError as exc:
            say(f"slowwave: {exc}")
    turns = log.next_turn()  # one past the last turn: a new session starts at turn 0
    say(f"session {log.session_id}: {turns} turn(s) in {log.path}" if log.path.exists()
        else f"session {log.session_id}: nothing logged")
    return 0


def _exchange(engine: Engine, log: SessionLog, history: list[dict], text: str, out: TextIO) -> list[dict]:
    """One turn: log the person's words, stream the reply to `out`, log it; the history with both."""
    chat = history + [{"role": "user", "content": text}]
    job = engine.submit(chat)  # a prompt too long is refused before anything is logged
    turn = log.next_turn()
    log.append(turn, "user", text)
    reply = ""
    try:
        for piece in job:
            reply += piece.text
            out.write(piece.text)
            out.flush()
    finally:  # Ctrl-C in the middle of a reply: what was shown is what the person saw, so it is logged
        job.cancelled.set()
        out.write("\n")
        out.flush()
        log.append(turn, "assistant", reply.strip())
    return chat + [{"role": "assistant", "content": reply.strip()}]
