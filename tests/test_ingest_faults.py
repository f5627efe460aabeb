"""Stage 0 under hostile input, unreadable files, crashes and re-delivery: never a traceback, nothing twice.

Real files, the real Arrow/DuckDB/Parquet warehouse, the real exchanges suite, the real CLI in a subprocess;
the crash is a real SIGKILL of a real ingest process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from flows.ingest import ingest_paths
from storage.catalog import connect
from storage.warehouse import read_table
from tasks.ingest import IngestConfig, pair_exchanges, parse_session_file

CFG = IngestConfig()
REPO = Path(__file__).resolve().parents[1]
TS = "2026-11-20T10:00:00+00:00"


def _obj(turn, role: str, content, session="s1", timestamp=TS, **extra) -> dict:
    return {"timestamp": timestamp, "session_id": session, "turn": turn, "role": role, "content": content, **extra}


def _line(turn, role: str, content, session="s1", **extra) -> bytes:
    return json.dumps(_obj(turn, role, content, session, **extra)).encode()


def _pair(turn: int, user: str, assistant: str, session="s1") -> list[bytes]:
    return [_line(turn, "user", user, session), _line(turn, "assistant", assistant, session)]


def _deep(depth: int, closed: bool = True) -> bytes:
    return b"[" * depth + (b"]" * depth if closed else b"")


# One hostile line each, with the reason it must be quarantined under. JSON escapes are written by hand
# where json.dumps would refuse or normalise them.
HOSTILE = {
    "turn-2^70": (b'{"timestamp": "%s", "session_id": "s1", "turn": %d, "role": "user", "content": "hi"}'
                  % (TS.encode(), 2**70), "out-of-range"),
    "turn-2^63": (b'{"timestamp": "%s", "session_id": "s1", "turn": %d, "role": "user", "content": "hi"}'
                  % (TS.encode(), 2**63), "out-of-range"),
    "turn--2^70": (b'{"timestamp": "%s", "session_id": "s1", "turn": %d, "role": "user", "content": "hi"}'
                   % (TS.encode(), -(2**70)), "wrong-type"),
    "array-60000-deep-unclosed": (_deep(60_000, closed=False), "too-deep"),
    "object-60000-deep-unclosed": (b'{"a":' * 10_000, "too-deep"),
    "content-deep": (b'{"timestamp": "%s", "session_id": "s1", "turn": 5, "role": "user", "content": %s}'
                     % (TS.encode(), _deep(20_000)), "too-deep"),
    "lone-surrogate-content": (b'{"timestamp": "%s", "session_id": "s1", "turn": 6, "role": "user", '
                               b'"content": "\\ud800"}' % TS.encode(), "invalid-unicode"),
    "lone-low-surrogate-session": (b'{"timestamp": "%s", "session_id": "a\\udfffb", "turn": 7, "role": "user", '
                                   b'"content": "hi"}' % TS.encode(), "invalid-unicode"),
    "reversed-surrogates-content": (b'{"timestamp": "%s", "session_id": "s1", "turn": 8, "role": "user", '
                                    b'"content": "x\\udc00\\ud800y"}' % TS.encode(), "invalid-unicode"),
    "surrogate-role": (b'{"timestamp": "%s", "session_id": "s1", "turn": 9, "role": "\\ud800", "content": "hi"}'
                       % TS.encode(), "invalid-unicode"),
    "surrogate-timestamp": (b'{"timestamp": "2026-11-20\\ud800", "session_id": "s1", "turn": 10, "role": "user", '
                            b'"content": "hi"}', "invalid-unicode"),
    "timestamp-past-year-9999": (_line(11, "user", "hi", timestamp="9999-12-31T23:59:59-05:00"), "bad-timestamp"),
    "timestamp-before-year-1": (_line(12, "user", "hi", timestamp="0001-01-01T00:00:00+01:00"), "bad-timestamp"),
    "nan-turn": (b'{"timestamp": "%s", "session_id": "s1", "turn": NaN, "role": "user", "content": "hi"}'
                 % TS.encode(), "wrong-type"),
    "huge-float-turn": (b'{"timestamp": "%s", "session_id": "s1", "turn": 1e400, "role": "user", "content": "hi"}'
                        % TS.encode(), "wrong-type"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_line_is_quarantined_with_its_reason_and_the_good_lines_kept(name):
    line, reason = HOSTILE[name]
    data = b"\n".join([*_pair(0, "My name is Ana.", "Hi Ana."), line, *_pair(1, "I live in Porto.", "Nice.")]) + b"\n"
    parsed = parse_session_file(data, "hostile.jsonl", "0" * 64, CFG)
    q = parsed.quarantine.to_pylist()
    assert [(r["line_no"], r["reason"]) for r in q] == [(3, reason)]
    assert q[0]["raw"] == line  # kept byte for byte
    assert q[0]["detail"] and len(q[0]["detail"]) < 300
    exchanges, unpaired = pair_exchanges(parsed.messages)
    assert exchanges["user_text"].to_pylist() == ["My name is Ana.", "I live in Porto."]
    assert unpaired.num_rows == 0


def test_a_valid_surrogate_pair_and_a_deep_extra_field_are_kept_on_both_parse_paths():
    emoji = b'{"timestamp": "%s", "session_id": "s1", "turn": 0, "role": "user", "content": "dog \\ud83d\\udc36"}' % TS.encode()
    deep_extra = (b'{"timestamp": "%s", "session_id": "s1", "turn": 0, "role": "assistant", "content": "ok", '
                  b'"meta": %s}' % (TS.encode(), _deep(20_000)))
    clean = emoji + b"\n" + deep_extra + b"\n"
    fast = parse_session_file(clean, "f.jsonl", "0" * 64, CFG)
    careful = parse_session_file(clean + b"{oops\n", "f.jsonl", "0" * 64, CFG)  # a bad line forces the careful path
    for parsed in (fast, careful):
        assert parsed.messages["content"].to_pylist() == ["dog \U0001f436", "ok"]
    assert fast.quarantine.num_rows == 0
    assert careful.quarantine.select(["line_no", "reason"]).to_pylist() == [{"line_no": 3, "reason": "invalid-json"}]
    assert fast.messages.equals(careful.messages)


def test_a_timestamp_beyond_year_9999_is_quarantined_on_the_fast_path_too():
    data = b"\n".join([*_pair(0, "hi", "hello"), _line(1, "user", "late", timestamp="9999-12-31T23:59:59-05:00"),
                       _line(1, "assistant", "ok")]) + b"\n"
    parsed = parse_session_file(data, "f.jsonl", "0" * 64, CFG)
    assert parsed.quarantine.select(["line_no", "reason"]).to_pylist() == [{"line_no": 3, "reason": "bad-timestamp"}]
    assert parsed.messages.num_rows == 3


def test_a_60000_deep_array_under_a_raised_limit_is_quarantined_as_too_deep():
    cfg = IngestConfig(max_message_bytes=200_000)
    data = b"\n".join([*_pair(0, "hi", "hello"), _deep(60_000)]) + b"\n"
    parsed = parse_session_file(data, "f.jsonl", "0" * 64, cfg)
    assert parsed.quarantine.select(["line_no", "reason"]).to_pylist() == [{"line_no": 3, "reason": "too-deep"}]
    # under the default limit the same line is simply too large
    default = parse_session_file(data, "f.jsonl", "0" * 64, CFG)
    assert default.quarantine["reason"].to_pylist() == ["too-large"]


def _cli(*args: str, home: Path, prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*(prefix or []), sys.executable, "-m", "flows.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def _hostile_file(path: Path) -> int:
    """Every hostile line between good turns; returns the number of good exchanges."""
    lines = [*_pair(100, "My name is Ana.", "Hi Ana.")]
    for i, name in enumerate(sorted(HOSTILE)):
        lines.append(HOSTILE[name][0])
        lines.extend(_pair(200 + i, f"I have {i} cats.", "Nice."))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return 1 + len(HOSTILE)


def test_cli_ingest_of_every_hostile_line_at_once_exits_0_with_one_line_per_bad_line(tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    good = _hostile_file(inbox / "hostile.jsonl")
    run = _cli("ingest", str(inbox), home=tmp_path / "h")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert f"{good} exchange(s) added" in run.stdout
    assert f"{len(HOSTILE)} quarantined" in run.stdout
    # One line per quarantined line, naming file, line and reason.
    expected = {f"{inbox / 'hostile.jsonl'}:{2 + 3 * i + 1}: {HOSTILE[n][1]}" for i, n in enumerate(sorted(HOSTILE))}
    named = {ln.split(" — ")[0].removeprefix("slowwave: quarantined ") for ln in run.stderr.splitlines()
             if ln.startswith("slowwave: quarantined ")}
    assert named == expected
    from storage.home import Home

    q = read_table(Home(tmp_path / "h"), "quarantine")
    assert sorted(q["line_no"].to_pylist()) == sorted(2 + 3 * i + 1 for i in range(len(HOSTILE)))


def _unreadable_prefix() -> list[str] | None:
    """How to run a process that really gets 'permission denied' on a mode-000 file (root ignores modes)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]


def test_an_unreadable_file_is_reported_in_one_line_and_the_others_are_ingested(tmp_path, fixture_sessions):
    prefix = _unreadable_prefix()
    if prefix is None:
        pytest.skip("running as root without setpriv: cannot make a file unreadable")
    inbox = tmp_path / "in"
    shutil.copytree(fixture_sessions, inbox)
    for f in inbox.rglob("*.jsonl"):
        f.chmod(0o644)
    locked = sorted(inbox.rglob("*.jsonl"))[3]
    locked.chmod(0)
    from storage.home import Home

    home = Home(tmp_path / "h")
    try:
        run = _cli("ingest", str(inbox), home=home.root, prefix=prefix)
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr + run.stdout
        warnings = [ln for ln in run.stderr.splitlines() if str(locked) in ln]
        assert warnings == [f"slowwave: quarantined {locked}:0: unreadable — cannot read (Permission denied); "
                            "it is read again by the next ingest"]
        assert "12 file(s)" in run.stdout and "(unreadable 1); 1 file(s) unreadable" in run.stdout
        con = connect(home)
        exchanges = con.execute("select count(*) from exchanges").fetchone()[0]
        files = con.execute("select count(*) from ingested_files").fetchone()[0]
        assert (files, 0 < exchanges < 40) == (11, True)
        assert con.execute("select source_file, line_no, reason, detail from quarantine").fetchall() == [
            (str(locked.resolve()), 0, "unreadable", "cannot read (Permission denied)")]
        # Only the unreadable file, still unreadable: nothing could be read, exit 1, and no second quarantine row.
        alone = _cli("ingest", str(locked), home=home.root, prefix=prefix)
        assert alone.returncode == 1 and "Traceback" not in alone.stderr
        assert f"slowwave: quarantined {locked}:0: unreadable — cannot read (Permission denied)" in alone.stderr
        assert "nothing could be read" in alone.stderr
        assert connect(home).execute("select count(*) from quarantine").fetchone()[0] == 1
    finally:
        locked.chmod(0o644)
    # Readable again: the next ingest reads it and the home holds what one clean ingest gives.
    fixed = ingest_paths(home, [inbox], CFG)
    assert (fixed.files_skipped, fixed.exchanges_added) == (11, 40 - exchanges)
    con = connect(home)
    assert con.execute("select count(*), count(distinct exchange_id) from exchanges").fetchone() == (40, 40)
    assert con.execute("select count(*) from ingested_files").fetchone()[0] == 12


def _bad_lines(tag: str, n: int) -> list[bytes]:
    """n lines of assorted bad input, distinct by `tag`."""
    kinds = [lambda i: b'{"broken ' + f"{tag}{i}".encode(),
             lambda i: _line(900 + i, "system", f"{tag} {i}"),
             lambda i: json.dumps({"timestamp": TS, "session_id": tag, "turn": i, "role": "user"}).encode(),
             lambda i: _line(800 + i, "user", f"{tag} {i} unanswered", session=tag)]
    return [kinds[i % len(kinds)](i) for i in range(n)]


def test_re_ingesting_a_grown_file_does_not_quarantine_its_old_bad_lines_again(home, tmp_path):
    log = tmp_path / "in" / "today.jsonl"
    log.parent.mkdir()
    first = [*_pair(0, "I live in Porto.", "Nice."), *_bad_lines("a", 16), *_pair(1, "My dog is Rex.", "Hi Rex.")]
    log.write_bytes(b"\n".join(first) + b"\n")
    r1 = ingest_paths(home, [log.parent], CFG)
    assert (r1.exchanges_added, sum(r1.quarantined.values())) == (2, 16)
    assert read_table(home, "quarantine").num_rows == 16
    with open(log, "ab") as fh:  # the day goes on: more turns, more bad lines
        fh.write(b"\n".join([*_pair(2, "I work as a nurse.", "Great."), *_bad_lines("b", 5)]) + b"\n")
    r2 = ingest_paths(home, [log.parent], CFG)
    assert (r2.exchanges_added, r2.exchanges_skipped, sum(r2.quarantined.values())) == (1, 2, 5)
    q = read_table(home, "quarantine")
    assert q.num_rows == 21
    con = connect(home)
    assert con.execute("select count(*) from (select distinct source_file, line_no, sha256(raw) from quarantine)"
                   ).fetchone()[0] == 21
    assert con.execute("select count(*) from exchanges").fetchone()[0] == 3


def test_the_same_turn_in_a_later_file_is_a_duplicate_turn_not_a_second_exchange(home, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mon.jsonl").write_bytes(b"\n".join(_pair(0, "My name is Ana.", "Hi Ana.")) + b"\n")
    ingest_paths(home, [tmp_path / "b"], CFG)
    # A later file (sorting before the first one) replays turn 0 of the same session with other words.
    (tmp_path / "a").mkdir()
    later = tmp_path / "a" / "again.jsonl"
    later.write_bytes(b"\n".join([*_pair(0, "My name is Bea.", "Hi Bea."), *_pair(1, "I live in Oslo.", "Cold!")]) + b"\n")
    r = ingest_paths(home, [tmp_path / "a"], CFG)
    assert (r.exchanges_added, dict(r.quarantined)) == (1, {"duplicate-turn": 2})
    con = connect(home)
    assert con.execute("select turn, user_text from exchanges order by turn").fetchall() == [
        (0, "My name is Ana."), (1, "I live in Oslo.")]
    assert con.execute("select line_no, reason from quarantine order by line_no").fetchall() == [
        (1, "duplicate-turn"), (2, "duplicate-turn")]
    # The later file grows and is read again: still no second exchange for turn 0, no new quarantine rows.
    with open(later, "ab") as fh:
        fh.write(b"\n".join(_pair(2, "I am 40.", "Ok.")) + b"\n")
    r2 = ingest_paths(home, [tmp_path / "a", tmp_path / "b"], CFG)
    assert (r2.exchanges_added, sum(r2.quarantined.values())) == (1, 0)
    con = connect(home)
    assert con.execute("select turn, user_text from exchanges order by turn").fetchall() == [
        (0, "My name is Ana."), (1, "I live in Oslo."), (2, "I am 40.")]
    assert con.execute("select count(*) from quarantine").fetchone()[0] == 2


def test_identical_messages_in_another_file_add_nothing_and_quarantine_nothing(home, tmp_path):
    lines = [*_pair(0, "My name is Ana.", "Hi Ana."), *_pair(1, "I live in Porto.", "Nice.")]
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "log.jsonl").write_bytes(b"\n".join(lines[:3]) + b"\n")
    ingest_paths(home, [tmp_path / "one"], CFG)
    # a copy of the log with one more line (other bytes, so not skipped by its sha256), in one batch with a third copy
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "log.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "two" / "log-copy.jsonl").write_bytes(b"\n".join(lines) + b"\n\n")
    r = ingest_paths(home, [tmp_path / "two"], CFG)
    assert (r.exchanges_added, r.exchanges_skipped, sum(r.quarantined.values())) == (1, 1, 0)
    con = connect(home)
    assert con.execute("select count(*), count(distinct message_id) from messages").fetchone() == (4, 4)
    assert con.execute("select count(*) from exchanges").fetchone()[0] == 2
    # the no-answer row of turn 1 from the first ingest stays as history; nothing else
    assert con.execute("select reason from quarantine").fetchall() == [("no-answer",)]


def test_a_turn_split_across_batches_pairs_like_one_batch(home, tmp_path):
    (tmp_path / "u.jsonl").write_bytes(_line(0, "user", "My name is Ana.") + b"\n")
    (tmp_path / "a.jsonl").write_bytes(_line(0, "assistant", "Hi Ana.") + b"\n")
    ingest_paths(home, [tmp_path / "u.jsonl"], CFG)
    r = ingest_paths(home, [tmp_path / "a.jsonl"], CFG)
    assert r.exchanges_added == 1 and dict(r.quarantined) == {}
    ex = read_table(home, "exchanges").to_pylist()
    assert [(e["user_text"], e["assistant_text"], Path(e["source_file"]).name) for e in ex] == [
        ("My name is Ana.", "Hi Ana.", "u.jsonl")]


# A real ingest process, SIGKILLed by the kernel at the first write after the given table landed.
_KILL_AFTER = """
import os, signal, sys
from pathlib import Path
marker = f"{os.sep}warehouse{os.sep}{sys.argv[3]}{os.sep}run_id="

def hook(event, args):
    if event in ("open", "os.mkdir") and args and marker in str(args[0]):
        os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(hook)
from flows.ingest import ingest_paths
from storage.home import Home
from tasks.ingest import IngestConfig
ingest_paths(Home(Path(sys.argv[1])), [Path(sys.argv[2])], IngestConfig())
print("not killed")
"""


@pytest.mark.parametrize("next_table", ["exchanges", "ingested_files"])
def test_a_kill_9_mid_ingest_then_a_rerun_gives_the_rows_of_one_clean_ingest(home, tmp_path, next_table):
    inbox = tmp_path / "in"
    inbox.mkdir()
    lines = [*_pair(0, "I live in Porto.", "Nice."), *_bad_lines("k", 20), *_pair(1, "My dog is Rex.", "Hi Rex.")]
    (inbox / "day.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    killed = subprocess.run([sys.executable, "-c", _KILL_AFTER, str(home.root), str(inbox), next_table],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert not list(home.warehouse.rglob("*.tmp"))
    landed = {t: read_table(home, t).num_rows for t in ("messages", "exchanges", "quarantine", "ingested_files")}
    assert landed["ingested_files"] == 0
    rerun = ingest_paths(home, [inbox], CFG)
    assert rerun.files_skipped == 0
    clean = type(home)(tmp_path / "clean").ensure()
    ingest_paths(clean, [inbox], CFG)
    for table, key in (("messages", "message_id"), ("exchanges", "exchange_id"), ("ingested_files", "file_sha256")):
        got, want = read_table(home, table)[key].to_pylist(), read_table(clean, table)[key].to_pylist()
        assert sorted(got) == sorted(want), table
    cols = ["source_file", "line_no", "reason", "raw"]
    got = sorted(tuple(r.values()) for r in read_table(home, "quarantine", columns=cols).to_pylist())
    want = sorted(tuple(r.values()) for r in read_table(clean, "quarantine", columns=cols).to_pylist())
    assert len(want) == 20 and got == want  # each of the 20 bad lines once


def test_a_file_name_that_is_not_utf8_is_ingested_under_a_printable_name(home, tmp_path):
    odd = tmp_path / os.fsdecode(b"caf\xe9.jsonl")
    odd.write_bytes(b"\n".join([*_pair(0, "hi", "hello"), b"{oops"]) + b"\n")
    r = ingest_paths(home, [tmp_path], CFG)
    assert (r.exchanges_added, dict(r.quarantined)) == (1, {"invalid-json": 1})
    want = str(tmp_path.resolve() / "caf\\xe9.jsonl")
    assert read_table(home, "exchanges")["source_file"].to_pylist() == [want]
    assert read_table(home, "quarantine")["source_file"].to_pylist() == [want]
    assert read_table(home, "runs")["input_files"].to_pylist() == [[want]]
