"""The recipe's own parts on literal rows: the one resume helper, the retry policy, and the flow helpers."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from flows.config import Settings
from flows.resume import SleepRun, start_or_resume
from storage.errors import ExpectationFailed, InputError, IntegrityError, ModelError
from storage.runs import latest_runs, record_run, utcnow

EXCHANGES = pa.table({"exchange_id": ["ex_1", "ex_2"]})


def _planned(home, run_id: str = "r1") -> SleepRun:
    run = SleepRun(home, run_id)
    run.plan("light", "5 new turns", EXCHANGES, Settings())
    return run


def test_a_finished_stage_is_read_back_not_run_again_and_the_summary_says_so(home):
    calls: list[str] = []

    def make(name: str):
        def run():
            calls.append(name)
            return f"{name}-output"
        return run

    first = _planned(home)
    assert first.stage("score", make("score"), restore=lambda _: "from-warehouse",
                       numbers=lambda out: {"rows": len(out)}) == "score-output"
    assert first.stage("model", make("model"), restore=lambda m: f"version {m['version']}",
                       keep=lambda _: {"version": "v0007"}) == "model-output"
    assert first.stage("ingest", make("ingest"), numbers=lambda _: {"files": 1}) == "ingest-output"
    assert calls == ["score", "model", "ingest"]
    # The process dies here. The next sleep finds the plan and continues the same run.
    said: list[str] = []
    again = start_or_resume(home, Settings(), "r2", "auto", said.append)
    assert (again.run_id, again.resumed, again.depth, again.attempts) == ("r1", True, "light", 2)
    assert said == ["resuming run r1 (attempt 2; finished before: model, score)"]
    assert again.stage("score", make("score"), restore=lambda _: "from-warehouse",
                       numbers=lambda out: {"rows": len(out)}) == "from-warehouse"
    assert again.stage("model", make("model"), restore=lambda m: f"version {m['version']}") == "version v0007"
    assert again.stage("ingest", make("ingest")) == "ingest-output"  # no restore: it always runs (idempotent)
    assert calls == ["score", "model", "ingest", "ingest"]
    summary = again.summary()
    assert summary.resumed == ["model", "score"] and summary.stages == {"score": {"rows": 14}}
    assert again.planned_exchanges().num_rows == 0  # the plan's ids, looked up in an empty warehouse
    with pytest.raises(Exception):
        summary.status = "completed"  # frozen: the summary is a record, not a scratch pad


def test_a_run_whose_settings_changed_or_that_failed_too_often_is_abandoned(home):
    _planned(home, "r1")
    changed = Settings.model_validate({"train": {"rank": 4}})
    said: list[str] = []
    fresh = start_or_resume(home, changed, "r2", "auto", said.append)
    assert (fresh.run_id, fresh.resumed) == ("r2", False)
    assert "abandoning unfinished run r1: the settings changed since it started" in said[0]
    assert latest_runs(home, kind="sleep")[0]["status"] == "abandoned"

    _planned(home, "r3")
    limit = Settings().sleep.max_attempts
    for _ in range(limit):
        record_run(home, "r3", "sleep", utcnow(), "failed", depth="light")
    said.clear()
    fresh = start_or_resume(home, Settings(), "r4", "auto", said.append)
    assert fresh.run_id == "r4" and said == [f"abandoning unfinished run r3: it failed {limit} times; "
                                             "its exchanges go to a fresh run"]


def test_killed_attempts_count_toward_the_limit_and_cancelled_ones_do_not(home):
    from storage.runs import failed_attempts

    _planned(home, "r1")
    limit = Settings().sleep.max_attempts
    for _ in range(limit - 1):  # attempts a signal cancelled: each started, each asked to stop
        record_run(home, "r1", "sleep", utcnow(), "running", depth="light")
        record_run(home, "r1", "sleep", utcnow(), "cancelled", depth="light")
    assert failed_attempts(home) == {}
    said: list[str] = []
    run = start_or_resume(home, Settings(), "r2", "auto", said.append)
    assert (run.run_id, run.attempts) == ("r1", 2) and said[0].startswith("resuming run r1")
    for _ in range(limit):  # attempts SIGKILLed mid-run: a `running` row and nothing after it
        record_run(home, "r1", "sleep", utcnow(), "running", depth="light")
    assert failed_attempts(home) == {"r1": limit}
    said.clear()
    fresh = start_or_resume(home, Settings(), "r3", "auto", said.append)
    assert fresh.run_id == "r3" and said == [f"abandoning unfinished run r1: it failed {limit} times; "
                                             "its exchanges go to a fresh run"]


@pytest.mark.parametrize("exc, retried", [
    (ExpectationFailed("exchanges", []), False), (InputError("x.jsonl:3: bad"), False),
    (IntegrityError("sha256 mismatch"), False), (ModelError("not a model folder"), False),
    (ValueError("a bug"), False), (OSError(28, "No space left on device"), True),
    (TimeoutError("slow disk"), True),
])
def test_only_errors_that_come_and_go_are_retried(exc, retried):
    from flows.retries import is_transient
    from storage.errors import DownloadError

    assert is_transient(exc) is retried
    assert is_transient(DownloadError("pip could not download")) is True


@pytest.mark.prefect
def test_a_failed_suite_in_ingest_is_not_retried_and_records_one_validation(prefect_harness, home):
    """A message longer than the exchanges suite allows fails it; retrying cannot help, so it runs once."""
    from prefect import flow

    from flows.ingest import ingest_task
    from flows.model_versions import fuse_task, model_task
    from flows.retries import retry_transient
    from storage.warehouse import read_table
    from tasks.ingest import IngestConfig

    assert all(t.retry_condition_fn is retry_transient for t in (ingest_task, model_task, fuse_task))
    (home.root / "inbox").mkdir()
    lines = [{"timestamp": "2026-11-20T10:00:00+00:00", "session_id": "s1", "turn": 0, "role": role,
              "content": text} for role, text in (("user", "I live in Oslo. " * 4500), ("assistant", "Nice."))]
    (home.root / "inbox" / "long.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    cfg = IngestConfig(max_message_bytes=200_000)

    @flow
    def ingest_once():
        return ingest_task(home, cfg, "run-1")

    with pytest.raises(ExpectationFailed, match="user_chars"):
        ingest_once()
    validations = read_table(home, "validations").to_pylist()
    assert [(v["suite"], v["success"]) for v in validations] == [("exchanges", False)]
    assert read_table(home, "exchanges").num_rows == 0  # nothing landed


def _dream(pid: str, answer: str, grounding: float) -> dict:
    return {"pair_id": pid, "exchange_id": "ex_1", "source_exchange_ids": ["ex_1", "ex_2"], "method": "dream",
            "methods": ["dream"], "fact_type": "dream", "subject": "user", "value": answer,
            "question": "Where do my son and I live?", "answer": answer, "span_start": None, "span_end": None,
            "fact_key": f"dream:{pid}", "superseded_by": None, "grounding": grounding, "evidence": [], "score": 0.5}


def test_dreams_and_their_rejections_are_validated_with_the_firewalls_own_thresholds(home):
    from flows.pairs import check_pairs
    from storage.schemas import without_run_id
    from storage.warehouse import read_table
    from tasks.firewall import FirewallConfig, mask_secrets

    exchanges = pa.table({"exchange_id": ["ex_1", "ex_2"]})
    rejection = {"pair_id": "pr_r", "exchange_id": "ex_1", "method": "dream", "fact_type": "dream",
                 "question": "What is my password?", "answer": mask_secrets("Your password is hunter2."),
                 "reason": "secret", "detail": "password", "grounding": None}
    rejected = pa.Table.from_pylist([rejection], schema=without_run_id("rejections"))
    good = pa.Table.from_pylist([_dream("pr_1", "You and Emil live in Tromsø.", 0.9)], schema=without_run_id("pairs"))
    check_pairs(home, FirewallConfig(), "r1", good, rejected, exchanges)  # a masked secret is no secret any more

    weak = pa.Table.from_pylist([_dream("pr_2", "You and Emil live in Tromsø.", 0.2)], schema=without_run_id("pairs"))
    with pytest.raises(ExpectationFailed, match="grounding"):
        check_pairs(home, FirewallConfig(), "r1", weak, rejected, exchanges)
    leaky = pa.Table.from_pylist([{**rejection, "answer": "Your password is hunter2."}],
                                 schema=without_run_id("rejections"))
    with pytest.raises(ExpectationFailed, match="has_secret"):
        check_pairs(home, FirewallConfig(), "r1", good, leaky, exchanges)
    # The entropy threshold is the firewall's setting: a stricter firewall and its suite agree.
    token = "k3Jd9QmZx7LpW2vRt8Ys"
    noisy = pa.Table.from_pylist([_dream("pr_3", f"You said {token}.", 0.9)], schema=without_run_id("pairs"))
    check_pairs(home, FirewallConfig(entropy_bits=5.0), "r1", noisy, rejected.slice(0, 0), exchanges)
    with pytest.raises(ExpectationFailed, match="has_secret"):
        check_pairs(home, FirewallConfig(entropy_bits=3.0), "r1", noisy, rejected.slice(0, 0), exchanges)
    suites = [(v["suite"], v["success"]) for v in read_table(home, "validations").to_pylist()]
    assert ("rejections", False) in suites and ("pairs", False) in suites
    assert read_table(home, "pairs").num_rows == 0  # validating writes nothing but the validations


def test_the_replay_target_is_the_shares_count_capped_by_what_can_be_replayed():
    from flows.training_examples import _replay_target

    new = pa.table({"fact_key": ["name:user", "pet_name:dog"]})
    buffer = pa.table({"status": ["active", "active", "retired", "active", "active"],
                       "fact_key": ["name:user", "job:user", "home:user", "car:user", "trip:user"]})
    # 20% replay of 8 new examples is 2; 60% is 12 but only 3 active facts not re-taught tonight can be replayed.
    assert _replay_target(new, buffer, n_new=8, share=0.2) == 2
    assert _replay_target(new, buffer, n_new=8, share=0.6) == 3
    assert _replay_target(new, buffer.slice(0, 0), n_new=8, share=0.6) == 0


def test_the_summary_names_only_the_stages_read_back_not_those_finished_after(home):
    _planned(home).stage("score", lambda: "x", restore=lambda _: "x")
    again = start_or_resume(home, Settings(), "r2", "auto", lambda _: None)
    again.stage("gate", lambda: "decision", restore=lambda _: "decision")
    assert again.summary().resumed == ["score"] and sorted(again.marks) == ["gate", "score"]
