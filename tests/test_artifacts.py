"""A sleep run's Prefect artifacts, published from real flows and tasks and read back through the Prefect API."""

from __future__ import annotations

import asyncio
import base64
import json

import pyarrow as pa
import pytest
from prefect import flow, task

from flows import artifacts
from flows.report import SleepSummary, summary_lines

pytestmark = pytest.mark.prefect

SUMMARY = SleepSummary.model_validate({
    "run_id": "r20261120-abc", "requested": "auto", "depth": "light", "status": "completed",
    "reason": "6 new turns >= 5", "model_before": "v0000", "model_after": "v0000",
    "stages": {
        "ingest": {"files": 2, "exchanges_added": 6},
        "score": {"exchanges": 6, "retained": 4},
        "extract": {"candidates": 5, "template": 5},
        "firewall": {"accepted": 2, "rejected": 3, "rejected:ungrounded": 2, "rejected:secret": 1},
        "mix": {"new": 2, "anchor": 2, "total": 4, "buffer_active": 2},
        "train": {"adapter": "ad_1234", "steps": 4, "loss": "2.310 -> 0.870", "tokens/s": 88.5},
        "gate": {"decision": "rejected", "benchmark_ratio": 0.412, "ppl_drift": "+61.0%", "recall": "0.0 -> 1.0",
                 "reasons": "benchmark ratio 0.41 < 0.5; perplexity drift +61.0% > +50%"},
    },
})
EXCHANGES = pa.table({"exchange_id": ["ex_a", "ex_b"], "session_id": ["20261120_100000", "20261121_090000"],
                      "turn": [3, 0], "user_text": ["...", "..."]})
PAIRS = pa.table({"pair_id": ["pr_1", "pr_2"], "exchange_id": ["ex_a", "ex_b"],
                  "question": ["Where do I live?", "What is my dog called?"],
                  "answer": ["You live in Bergen.", "Your dog is called Pixel | a beagle."],
                  "grounding": [1.0, 0.66666], "method": ["template", "template"]})
SECRET = "sk-live-4f9Qz7LmN2xR8tV1bK6wP3yH"
REJECTIONS = pa.table({
    "reason": ["secret", "ungrounded"],
    "detail": [f"looks like a credential: {SECRET}", "grounding 0.10 < 0.30"],
    "question": ["What is my API key?", "Tell me " + "about my trip " * 30],
    "answer": [f"Your API key is {SECRET}.", "You went to Mars."],
    "pair_id": ["pr_3", "pr_4"],
})


def read_artifacts(flow_run_id) -> dict:
    """Every artifact of a flow run, by key (or by type for unkeyed ones), read through the Prefect client."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read():
        async with get_client() as client:
            flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
            return await client.read_artifacts(artifact_filter=flt)

    return {a.key or a.type: a for a in asyncio.run(read())}


def table_data(artifact) -> list[dict]:
    return json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data


@task
def pairs_and_rejections_task():
    return artifacts.publish_pairs(PAIRS, EXCHANGES), artifacts.publish_rejections(REJECTIONS)


@flow
def publishing_flow(run_dir: str, steps: int):
    ids = {"summary": artifacts.publish_summary(SUMMARY), "tables": pairs_and_rejections_task(),
           "images": artifacts.publish_images(run_dir)}
    progress = artifacts.progress_artifact(steps)
    ids["published_updates"] = sum(progress.update(step) for step in range(1, steps + 1))
    ids["progress"] = progress.artifact_id
    return ids


@pytest.fixture(scope="module")
def published(prefect_harness, tmp_path_factory):
    """One real flow run publishing every artifact, and the artifacts read back by key."""
    from storage.charts import plot_loss

    run_dir = tmp_path_factory.mktemp("runs") / "r20261120-abc"
    steps = pa.table({"step": list(range(1, 21)), "epoch": [1] * 10 + [2] * 10,
                      "loss": [2.5 - 0.1 * i for i in range(20)]})
    plot_loss(steps, run_dir / "loss.png")
    state = publishing_flow(str(run_dir), steps=50, return_state=True)
    return state.result(), read_artifacts(state.state_details.flow_run_id), run_dir


def test_summary_markdown_holds_stage_numbers_gate_and_versions(published):
    ids, found, _ = published
    md = found[artifacts.SUMMARY_KEY].data
    assert found[artifacts.SUMMARY_KEY].id == ids["summary"]
    assert md.startswith("# sleep light run r20261120-abc: completed (6 new turns >= 5)\n")
    assert "| ingest | files 2, exchanges_added 6 |" in md
    assert "| firewall | accepted 2, rejected 3, rejected:ungrounded 2, rejected:secret 1 |" in md
    assert "| mix | new 2, anchor 2, total 4, buffer_active 2 |" in md
    assert "## Rejected by reason\n\n| reason | pairs |\n|---|---|\n| ungrounded | 2 |\n| secret | 1 |" in md
    assert "| loss (first epoch -> final) | 2.310 -> 0.870 |" in md and "| steps | 4 |" in md
    assert "## Gate: rejected" in md
    assert "| benchmark ratio (after / before) | 0.412 |" in md
    assert "| perplexity drift on general text | +61.0% |" in md
    assert "| new-fact recall (before -> after) | 0.0 -> 1.0 |" in md
    assert "**Reasons:** benchmark ratio 0.41 < 0.5; perplexity drift +61.0% > +50%" in md
    assert md.rstrip().endswith("## Model\n\n`v0000 -> v0000`")
    # The terminal report and the artifact share the same wording.
    assert summary_lines(SUMMARY)[0] == md.splitlines()[0].removeprefix("# ")


def test_pairs_table_rows_are_the_accepted_pairs_with_their_source_turn(published):
    _, found, _ = published
    assert table_data(found[artifacts.PAIRS_KEY]) == [
        {"question": "Where do I live?", "answer": "You live in Bergen.", "grounding": 1.0,
         "source": "20261120_100000:3", "pair_id": "pr_1"},
        {"question": "What is my dog called?", "answer": "Your dog is called Pixel | a beagle.", "grounding": 0.667,
         "source": "20261121_090000:0", "pair_id": "pr_2"},
    ]
    assert found[artifacts.PAIRS_KEY].description == "accepted pairs: 2"
    assert found[artifacts.PAIRS_KEY].task_run_id is not None  # published from a task: it belongs to the task run


def test_rejections_table_masks_secrets_again_and_cuts_long_text(published):
    _, found, _ = published
    rows = table_data(found[artifacts.REJECTIONS_KEY])
    assert [r["reason"] for r in rows] == ["secret", "ungrounded"]
    assert SECRET not in json.dumps(rows)
    assert rows[0]["answer"] == "Your API key is sk-l…[masked]."
    assert rows[0]["detail"] == "looks like a credential: sk-l…[masked]"
    assert rows[1]["question"] == ("Tell me " + "about my trip " * 30)[:artifacts.EXCERPT_CHARS - 1] + "…"
    assert rows[1]["answer"] == "You went to Mars."


def test_progress_ends_at_100_with_few_updates(published):
    ids, found, _ = published
    progress = found[artifacts.PROGRESS_KEY]
    assert progress.type == "progress"
    assert progress.id == ids["progress"] and float(progress.data) == 100.0
    assert ids["published_updates"] == 20  # every 5 points of 50 steps, not once per step


def test_charts_embed_the_loss_png_and_link_its_file(published):
    ids, found, run_dir = published
    md = found[artifacts.CHARTS_KEY].data
    png = (run_dir / "loss.png").read_bytes()
    assert f"![Training loss](data:image/png;base64,{base64.b64encode(png).decode()})" in md
    assert f"[`{run_dir / 'loss.png'}`]({(run_dir / 'loss.png').as_uri()})" in md
    assert "Evaluation" not in md  # no eval.png in this run


def test_a_chart_over_the_embed_limit_is_only_linked(tmp_path, monkeypatch):
    (tmp_path / "eval.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(2000))
    monkeypatch.setattr(artifacts, "MAX_EMBED_BYTES", 1000)
    md = artifacts.charts_markdown(tmp_path)
    assert "data:image" not in md and "Too large to show inline (2,008 bytes > 1,000)" in md
    assert artifacts.charts_markdown(tmp_path / "missing") is None


def test_outside_a_run_nothing_is_published(tmp_path):
    assert artifacts.publish_summary(SUMMARY) is None
    assert artifacts.publish_pairs(PAIRS, EXCHANGES) is None
    assert artifacts.publish_rejections(REJECTIONS) is None
    assert artifacts.publish_images(tmp_path) is None
    progress = artifacts.progress_artifact(10)
    assert progress.artifact_id is None and progress.update(10) is False and progress.progress == 100.0


def test_zero_steps_progress_is_complete():
    progress = artifacts.progress_artifact(0)
    assert progress.progress == 100.0 and progress.update(0) is False
