"""The sleep-cycle flow under Prefect's real test harness (temporary local API + database)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from storage.catalog import connect
from storage.home import Home
from storage.runs import latest_runs

pytestmark = [pytest.mark.prefect, pytest.mark.model]
CASE = Path(__file__).resolve().parents[1] / "tasks" / "data" / "eval_case"


def test_a_light_sleep_on_the_labelled_case_learns_its_facts_and_records_everything(prefect_harness, tmp_path,
                                                                                   converted_model_dir):
    """The labelled case through the whole flow on the default model: an approved adapter, a new version that
    recalls the case's facts (asked in a wording never trained) better than its parent, the benchmark kept.
    One question wording per fact keeps it inside CI's time; `make test-slow` runs the shipped defaults."""
    from prefect.client.orchestration import get_client

    from flows.progress import listening
    from flows.sleep import sleep_cycle

    home = Home(tmp_path / "h").ensure()
    shutil.copytree(CASE / "sessions", home.root / "inbox" / "case")
    home.config_file.write_text("[mixing]\nparaphrases = 1\n")
    events = []
    with listening(events.append):
        result = sleep_cycle(home_dir=str(home.root), depth="auto")
    assert (result.status, result.depth) == ("completed", "light")
    # The live view's feed: every stage runs then finishes, in pipeline order, and training counts its steps.
    finished = [(e.stage, e.state) for e in events if e.state not in ("running", "step")]
    assert [s for s, _ in finished] == ["ingest", "model", "score", "extract", "firewall", "mix", "train", "gate",
                                        "fuse", "eval"]
    assert all(state == "done" for _, state in finished[:8]) and finished[-1] == ("eval", "skipped")
    assert {e.stage for e in events if e.state == "running"} >= {"ingest", "score", "extract", "train", "gate"}
    steps = [e for e in events if e.state == "step"]
    assert [e.done for e in steps] == list(range(1, result.stages["train"]["steps"] + 1))
    assert {e.total for e in steps} == {result.stages["train"]["steps"]} and steps[-1].text.startswith("loss ")
    score_done = next(e for e in events if (e.stage, e.state) == ("score", "done"))
    assert score_done.text == f"exchanges 46, retained {result.stages['score']['retained']}"
    stages = result.stages
    assert stages["ingest"]["exchanges_added"] == 46
    assert stages["score"]["exchanges"] == 46 and 0 < stages["score"]["retained"] < 46
    assert stages["firewall"]["accepted"] >= 40
    con = connect(home)
    # Every new training example traces back to a pair, an exchange and a line in a real file.
    lineage = con.sql("""
        select t.source, count(*) filter (where m.line_no is not null) as traced, count(*) as n
        from training_examples t left join pairs p using (pair_id)
        left join exchanges e on e.exchange_id = p.exchange_id
        left join messages m on m.message_id = e.user_message_id
        group by 1 order by 1""").fetchall()
    by_source = {s: (traced, n) for s, traced, n in lineage}
    assert by_source["new"][0] == by_source["new"][1] > 0
    assert by_source["anchor"][1] > 0 and by_source["anchor"][0] == 0
    assert stages["mix"]["new"] == by_source["new"][1]
    suites = dict(con.sql("select suite, bool_and(success) from validations group by 1").fetchall())
    expected_suites = {"exchanges", "scored_exchanges", "candidate_pairs", "pairs", "rejections", "training_examples",
                       "replay_buffer", "adapters", "gate_results"}
    gate = con.sql("select approved, reasons, benchmark_ratio, ppl_drift, recall_pre, recall_post "
                   "from gate_results").fetchall()
    assert len(gate) == 1
    approved, reasons, ratio, drift, recall_pre, recall_post = gate[0]
    # The night's facts, asked in a wording never trained, are recalled; general answers are kept: the gate
    # approved, so at most a fifth of the 214 benchmark answers the parent got right broke (measured here: 33,
    # ratio 0.883; with the previous replay material 52 broke, ratio 0.780: docs/RESULTS.md).
    assert approved and not reasons and ratio >= 0.85
    assert recall_post >= recall_pre + 0.15  # measured here: 0.08 -> 0.35 of 49 facts (with 3 wordings: 0.04 -> 0.69)
    assert stages["train"]["steps"] == con.sql("select count(*) from train_steps").fetchall()[0][0] > 0
    assert (home.runs / result.run_id / "loss.png").stat().st_size > 1000
    assert (home.runs / result.run_id / "gate.png").stat().st_size > 1000
    from storage import registry

    assert suites == dict.fromkeys(expected_suites | {"model_versions"}, True)
    assert registry.current_name(home) == result.model_after == "v0001"
    assert registry.get(home, "v0001").manifest.parent == "v0000"
    run = latest_runs(home, kind="sleep")[0]
    assert (run["run_id"], run["status"], run["depth"]) == (result.run_id, "completed", "light")

    async def read_back():
        async with get_client() as client:
            fr = await client.read_flow_run(run["flow_run_id"])
            from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

            tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[fr.id])))
            return fr, tasks

    flow_run, task_runs = asyncio.run(read_back())
    # named by the day it started (a run across midnight keeps the first day's name)
    assert flow_run.name == f"sleep-auto-{flow_run.start_time.astimezone():%Y-%m-%d}"
    assert flow_run.state.is_completed()
    names = {t.name.rsplit("-", 1)[0] for t in task_runs}
    assert {"ingest", "load-model", "score", "extract", "firewall", "mix", "train", "gate"} <= names
    assert all(t.state.is_completed() for t in task_runs)

    from flows.pressure import sleep_pressure

    pressure = sleep_pressure(home)
    assert (pressure["new_turns"], pressure["sleeps"]) == (0, 1)
    assert pressure["last_ppl_drift"] == pytest.approx(drift) and pressure["hours_since_sleep"] < 1
    again = sleep_cycle(home_dir=str(home.root), depth="auto")
    assert again.status == "nothing-to-do" and again.stages["ingest"]["files_skipped"] == 5
    assert "nothing new" in again.reason


def test_chit_chat_only_sleeps_without_training(prefect_harness, tmp_path, converted_model_dir):
    from flows.sleep import sleep_cycle

    home = Home(tmp_path / "h").ensure()
    lines = []
    for turn, (u, a) in enumerate([("hey", "Hello!"), ("thanks", "You're welcome."), ("ok", "Great."),
                                   ("lol", "Glad you liked it."), ("bye", "Goodbye!")]):
        for role, text in (("user", u), ("assistant", a)):
            lines.append(json.dumps({"timestamp": f"2026-11-20T10:00:0{turn}+00:00", "session_id": "c1",
                                     "turn": turn, "role": role, "content": text}))
    (home.root / "inbox").mkdir()
    (home.root / "inbox" / "chat.jsonl").write_text("\n".join(lines) + "\n")
    result = sleep_cycle(home_dir=str(home.root), depth="auto")
    assert result.status == "completed" and "no new facts to learn" in result.reason
    assert result.stages["score"] == {"exchanges": 5, "retained": 0}
    assert "train" not in result.stages and result.model_after == "v0000"
    assert connect(home).sql("select count(*) from train_steps").fetchall() == [(0,)]


def test_a_bad_probe_file_stops_the_sleep_before_it_learns_anything(prefect_harness, tmp_path, fixture_sessions):
    from flows.sleep import sleep_cycle
    from storage.errors import InputError

    home = Home(tmp_path / "h").ensure()
    shutil.copytree(fixture_sessions, home.root / "inbox" / "logs")
    (home.root / "probes.jsonl").write_text('{"id": "r1", "kind": "recall", "question": "Name?", '
                                            '"expected": ["Mira"], "forbidden": []}\n{"id": "r2", "kind": "recal\n')
    home.config_file.write_text('[eval]\nprobes = "probes.jsonl"\n')
    with pytest.raises(InputError, match=r"probes\.jsonl:2: not valid JSON"):
        sleep_cycle(home_dir=str(home.root), depth="light")
    con = connect(home)
    assert con.sql("select count(*) from exchanges").fetchall() == [(0,)]  # not even ingested
    assert [r["status"] for r in latest_runs(home, kind="sleep")] == ["failed"]
