"""The sleep-cycle flow under Prefect's real test harness (temporary local API + database)."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime

import pytest

from storage.home import Home
from storage.runs import latest_runs

pytestmark = pytest.mark.prefect


def test_sleep_flow_ingests_the_inbox_and_records_the_run(prefect_harness, tmp_path, fixture_sessions):
    from prefect.client.orchestration import get_client

    from flows.sleep import sleep_cycle

    home = Home(tmp_path / "h").ensure()
    shutil.copytree(fixture_sessions, home.root / "inbox" / "logs")
    result = sleep_cycle(home_dir=str(home.root), depth="light")
    assert result["status"] == "completed"
    assert result["stages"]["ingest"]["exchanges_added"] == 40
    run = latest_runs(home, kind="sleep")[0]
    assert (run["run_id"], run["status"], run["depth"]) == (result["run_id"], "completed", "light")

    async def read_back():
        async with get_client() as client:
            return await client.read_flow_run(run["flow_run_id"])

    flow_run = asyncio.run(read_back())
    assert flow_run.name == f"sleep-light-{datetime.now():%Y-%m-%d}"
    assert flow_run.state.is_completed()
    again = sleep_cycle(home_dir=str(home.root), depth="light")
    assert again["stages"]["ingest"]["exchanges_added"] == 0
    assert again["stages"]["ingest"]["files_skipped"] == 12
