"""Stage 0 on real session logs and on crafted bad files: good lines kept, bad ones quarantined."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flows.ingest import ingest_paths
from storage.catalog import connect
from storage.errors import InputError
from storage.warehouse import read_table
from tasks.ingest import IngestConfig, pair_exchanges, parse_session_file

CFG = IngestConfig()


def _line(turn: int, role: str, content: str, session: str = "s1", **extra) -> bytes:
    obj = {"timestamp": f"2026-11-20T10:00:{turn:02d}+00:00", "session_id": session, "turn": turn,
           "role": role, "content": content, **extra}
    return json.dumps(obj).encode()


def _bad_file() -> tuple[bytes, dict[int, str]]:
    """Good turns 0, 1 and 7 mixed with one line of every kind of bad input; returns (bytes, line -> reason)."""
    big = "x" * (CFG.max_message_bytes + 10)
    lines = [
        _line(0, "user", "My name is Ana."), _line(0, "assistant", "Nice to meet you, Ana."),  # 1, 2
        b'{"timestamp": "2026-11-20T10:00:00+00:00", "session_id": "s1", "turn": 2,',  # 3 invalid json
        json.dumps({"timestamp": "2026-11-20T10:00:00Z", "session_id": "s1", "turn": 3, "role": "user"}).encode(),  # 4 missing content
        json.dumps({"timestamp": "2026-11-20T10:00:00Z", "session_id": "s1", "turn": "3", "role": "user", "content": "hi"}).encode(),  # 5 wrong type
        _line(4, "system", "you are helpful"),  # 6 unknown role
        b'{"timestamp": "2026-11-20T10:00:00Z", "session_id": "s1", "turn": 5, "role": "user", "content": "caf\xe9"}',  # 7 invalid utf-8
        _line(6, "user", big),  # 8 too large
        _line(1, "user", "I live in Porto."), _line(1, "assistant", "Porto is lovely."),  # 9, 10
        _line(8, "user", "Anyone there?"),  # 11 no answer
        _line(9, "user", "hi", timestamp="yesterday"),  # 12 bad timestamp
        b"[1, 2, 3]",  # 13 not an object
        _line(7, "user", "I have a dog named Rex."), _line(7, "assistant", "Rex is a great name."),  # 14, 15
    ]
    reasons = {3: "invalid-json", 4: "missing-field", 5: "wrong-type", 6: "unknown-role", 7: "invalid-utf8",
               8: "too-large", 11: "no-answer", 12: "bad-timestamp", 13: "not-an-object"}
    return b"\n".join(lines) + b"\n", reasons


def test_parse_and_pair_quarantine_every_bad_line_with_its_reason():
    data, reasons = _bad_file()
    parsed = parse_session_file(data, "bad.jsonl", "f" * 64, CFG)
    exchanges, unpaired = pair_exchanges(parsed.messages)
    assert sorted(exchanges["user_text"].to_pylist()) == ["I have a dog named Rex.", "I live in Porto.", "My name is Ana."]
    q = parsed.quarantine.to_pydict()
    u = unpaired.to_pydict()
    got = dict(zip(q["line_no"] + u["line_no"], q["reason"] + u["reason"]))
    assert got == reasons
    raw = dict(zip(q["line_no"], q["raw"]))
    assert raw[7].endswith(b'"caf\xe9"}')  # the raw bytes are kept as they were
    ex = exchanges.to_pylist()
    ana = next(e for e in ex if e["user_text"] == "My name is Ana.")
    assert (ana["user_line"], ana["assistant_line"], ana["turn"]) == (1, 2, 0)


def test_message_size_limit_is_configurable():
    parsed = parse_session_file(_line(0, "user", "y" * 300) + b"\n", "f.jsonl", "0" * 64,
                                IngestConfig(max_message_bytes=200))
    assert parsed.quarantine["reason"].to_pylist() == ["too-large"]
    assert "limit 200" in parsed.quarantine["detail"][0].as_py()


def test_clean_file_takes_the_fast_path_and_matches_the_careful_one():
    from tasks.ingest import _parse_careful, _parse_fast

    data = b"".join(_line(t, r, f"message {t} {r} \u00e9") + b"\n" for t in range(5) for r in ("user", "assistant"))
    fast = _parse_fast(data, "f.jsonl", "0" * 64, CFG)
    careful = _parse_careful(data, "f.jsonl", "0" * 64, CFG)
    assert fast is not None and fast.messages.num_rows == 10
    assert fast.messages.equals(careful.messages)
    # Any bad line sends the whole file down the careful path.
    assert _parse_fast(data + b"{oops\n", "f.jsonl", "0" * 64, CFG) is None


def test_duplicate_message_for_a_turn_is_quarantined():
    data = b"\n".join([_line(0, "user", "a"), _line(0, "assistant", "b"), _line(0, "assistant", "c")]) + b"\n"
    parsed = parse_session_file(data, "d.jsonl", "0" * 64, CFG)
    exchanges, unpaired = pair_exchanges(parsed.messages)
    assert exchanges["assistant_text"].to_pylist() == ["b"]
    assert unpaired.select(["line_no", "reason"]).to_pylist() == [{"line_no": 3, "reason": "duplicate-turn"}]


def test_real_fixture_sessions_give_40_exchanges_and_are_idempotent(home, fixture_sessions):
    first = ingest_paths(home, [fixture_sessions], CFG)
    assert (first.files, first.lines, first.exchanges_added, sum(first.quarantined.values())) == (12, 80, 40, 0)
    second = ingest_paths(home, [fixture_sessions], CFG)
    assert (second.exchanges_added, second.files_skipped) == (0, 12)
    assert "nothing new" in second.line()
    con = connect(home)
    assert con.sql("select count(*), count(distinct exchange_id) from exchanges").fetchall() == [(40, 40)]
    assert con.sql("select count(*) from messages").fetchall() == [(80,)]
    # Lineage: every exchange points at two messages on real lines of a real file with its sha256.
    rows = con.sql("""
        select e.source_file, e.user_line, m.line_no, m.file_sha256 = e.file_sha256
        from exchanges e join messages m on m.message_id = e.user_message_id""").fetchall()
    assert len(rows) == 40 and all(r[1] == r[2] and r[3] for r in rows)
    assert con.sql("select bool_and(success), count(*) from validations where suite='exchanges'").fetchall() == [(True, 2)]


def test_growing_log_file_adds_only_the_new_turns(home, tmp_path):
    log = tmp_path / "inbox" / "today.jsonl"
    log.parent.mkdir()
    log.write_bytes(_line(0, "user", "I live in Porto.") + b"\n" + _line(0, "assistant", "Nice.") + b"\n"
                    + _line(1, "user", "My dog is Rex.") + b"\n")
    r1 = ingest_paths(home, [log.parent], CFG)
    assert (r1.exchanges_added, dict(r1.quarantined)) == (1, {"no-answer": 1})
    with open(log, "ab") as fh:  # the assistant answers later and the file grows
        fh.write(_line(1, "assistant", "Hello Rex!") + b"\n")
    r2 = ingest_paths(home, [log.parent], CFG)
    assert (r2.exchanges_added, r2.exchanges_skipped) == (1, 1)
    assert read_table(home, "messages").num_rows == 4
    assert read_table(home, "exchanges").num_rows == 2


def test_mixed_bad_file_keeps_good_lines_in_the_warehouse(home, tmp_path):
    data, reasons = _bad_file()
    (tmp_path / "bad.jsonl").write_bytes(data)
    (tmp_path / "empty.jsonl").write_bytes(b"")
    report = ingest_paths(home, [tmp_path], CFG)
    assert report.exchanges_added == 3
    q = read_table(home, "quarantine").to_pylist()
    by_file = {(Path(r["source_file"]).name, r["line_no"]): r["reason"] for r in q}
    assert by_file == {("empty.jsonl", 0): "empty-file", **{("bad.jsonl", n): r for n, r in reasons.items()}}


def test_missing_path_is_a_clear_error(home, tmp_path):
    with pytest.raises(InputError, match="nope.jsonl: no such file or folder"):
        ingest_paths(home, [tmp_path / "nope.jsonl"], CFG)


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_summary_exit_codes_and_no_tracebacks(tmp_path, fixture_sessions):
    h = tmp_path / "h"
    ok = _cli("ingest", str(fixture_sessions), home=h)
    assert ok.returncode == 0, ok.stderr
    assert "12 file(s), 80 line(s), 40 exchange(s) added, 0 duplicate(s)" in ok.stdout
    again = _cli("ingest", str(fixture_sessions), home=h)
    assert again.returncode == 0 and "0 exchange(s) added, 12 duplicate(s) skipped" in again.stdout
    data, _ = _bad_file()
    (tmp_path / "bad.jsonl").write_bytes(data)
    mixed = _cli("ingest", str(tmp_path / "bad.jsonl"), home=h)
    assert mixed.returncode == 0 and "3 exchange(s) added" in mixed.stdout
    assert "invalid-json 1" in mixed.stdout and "Traceback" not in mixed.stderr
    (tmp_path / "junk.jsonl").write_bytes(b"not json\n\xff\xfe\n")
    junk = _cli("ingest", str(tmp_path / "junk.jsonl"), home=h)
    assert junk.returncode == 1 and "Traceback" not in junk.stderr
    assert "nothing could be read" in junk.stderr
    missing = _cli("ingest", str(tmp_path / "missing"), home=h)
    assert missing.returncode == 1 and missing.stderr.strip().endswith("missing: no such file or folder")
    assert "Traceback" not in missing.stderr


def test_a_failed_suite_writes_nothing_but_its_validation_record(home, tmp_path, fixture_sessions):
    from storage.errors import ExpectationFailed

    ingest_paths(home, [fixture_sessions], CFG)  # earlier outputs that must survive
    huge = "y" * 70_000  # passes a raised size limit, but the exchanges suite caps text at 65,536 chars
    (tmp_path / "big.jsonl").write_bytes(_line(0, "user", huge) + b"\n" + _line(0, "assistant", "ok") + b"\n")
    with pytest.raises(ExpectationFailed) as exc:
        ingest_paths(home, [tmp_path / "big.jsonl"], IngestConfig(max_message_bytes=200_000))
    assert "expect_column_values_to_be_between user_chars: 1 bad row(s), sample [70000]" in str(exc.value)
    assert read_table(home, "exchanges").num_rows == 40 and read_table(home, "messages").num_rows == 80
    assert read_table(home, "ingested_files").num_rows == 12  # the failed file can be ingested again later
    con = connect(home)
    assert con.sql("select success, failed from validations order by validated_at").fetchall()[-1] == (False, 1)
