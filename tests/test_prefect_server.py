"""slowwave against a real `prefect server start` in a subprocess: a sleep run reported to it (flow run, task
runs, logs, artifacts), and deployments/prefect.yaml deployed to a process work pool and run by a worker."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from storage.home import Home
from storage.runs import latest_runs
from prefect_server import PREFECT, prefect_server, server_env
from small_sleep import write_small_config

REPO = Path(__file__).resolve().parents[1]
SLOWWAVE = Path(sys.executable).with_name("slowwave")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One real Prefect server (own PREFECT_HOME, scheduler off) for this module; stopped at the end."""
    with prefect_server(tmp_path_factory.mktemp("prefect-server"), timeout=180) as api_url:
        yield api_url


def run_cli(args: list[str], env: dict, timeout: float, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run a command in its own process group; on timeout kill the group (its flow-run children too) and fail."""
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(args)} ran over {timeout} s; stderr ends:\n{err[-3000:]}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def read_back(api_url: str, read):
    """Call `read(client)` with a Prefect client on this server (not the test harness's, if one is running)."""
    from prefect.client.orchestration import PrefectClient

    async def go():
        async with PrefectClient(api_url) as client:
            return await read(client)

    return asyncio.run(go())


def run_name(depth: str, started: datetime) -> set[str]:
    """The flow run's expected name (either date, should the run straddle midnight)."""
    return {f"sleep-{depth}-{d:%Y-%m-%d}" for d in (started, datetime.now())}


@pytest.mark.prefect
@pytest.mark.model
def test_sleep_reports_its_run_tasks_logs_and_artifacts_to_a_real_server(server, tmp_path, fixture_sessions,
                                                                         converted_model_dir):
    from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, FlowFilter, FlowFilterName,
                                                FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId)

    from flows import artifacts
    from flows.report import stage_text
    from storage.warehouse import read_table

    home = Home(tmp_path / "home").ensure()
    shutil.copytree(fixture_sessions, home.root / "inbox" / "logs")
    write_small_config(home.config_file, tmp_path)
    started = datetime.now()
    out = run_cli([str(SLOWWAVE), "--home", str(home.root), "sleep", "--depth", "light"],
                  env=server_env(tmp_path / "client-prefect", server), timeout=420)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"View at {server.removesuffix('/api')}/runs/flow-run/" in out.stderr  # it reported to our server
    run = latest_runs(home, kind="sleep")[0]
    summary = json.loads(run["summary_json"])
    assert (run["status"], summary["depth"]) == ("completed", "light")
    assert out.stdout.splitlines()[0].startswith(f"sleep light run {run['run_id']}: completed")

    async def read(client):
        flow_runs = await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["sleep-cycle"])))
        ids = [fr.id for fr in flow_runs]
        tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
        logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)))
        arts = await client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
        return flow_runs, tasks, logs, arts

    flow_runs, task_runs, logs, found = read_back(server, read)
    assert len(flow_runs) == 1
    flow_run = flow_runs[0]
    assert str(flow_run.id) == run["flow_run_id"]  # the warehouse's run row points at the server's flow run
    assert flow_run.name in run_name("light", started) and flow_run.state.is_completed()
    assert flow_run.parameters == {"home_dir": str(home.root), "depth": "light", "dry_run": False,
                                   "heavy_limit": None}
    names = {t.name.rsplit("-", 1)[0] for t in task_runs}
    stages = summary["stages"]
    expected = {"ingest", "load-model", "score", "extract", "firewall", "mix", "train", "gate"}
    expected |= {"fuse"} if stages["gate"]["decision"] == "approved" else set()
    assert expected <= names and all(t.state.is_completed() for t in task_runs)
    messages = [log.message for log in logs]
    assert "depth: light (40 new turn(s))" in messages
    assert any(m.startswith(f"adapter {stages['train']['adapter']}: {stages['train']['steps']} steps") for m in messages)

    # The artifacts a person reads in the UI the next morning. These need flows/artifacts.py wired into
    # flows/sleep.py and flows/adapters.py, flows/gate_results.py, flows/model_versions.py (publish_summary, publish_pairs, publish_rejections, publish_images,
    # progress_artifact in train_task); until then the first assertion below names the missing keys.
    by_key = {a.key: a for a in found if a.key}
    wanted = {artifacts.SUMMARY_KEY, artifacts.PAIRS_KEY, artifacts.REJECTIONS_KEY, artifacts.CHARTS_KEY,
              artifacts.PROGRESS_KEY}
    assert wanted <= set(by_key), f"artifacts missing on the flow run: {sorted(wanted - set(by_key))}"
    md = by_key[artifacts.SUMMARY_KEY].data
    assert md.startswith(f"# sleep light run {run['run_id']}: completed")
    for stage in ("ingest", "score", "extract", "firewall", "mix", "train", "gate"):
        assert f"| {stage} | {stage_text(stages[stage])} |" in md.replace("\\|", "|")
    assert f"## Gate: {stages['gate']['decision']}" in md and f"`{summary['model_before']} -> " in md
    pairs = read_table(home, "pairs", run_ids=[run["run_id"]])
    rows = json.loads(by_key[artifacts.PAIRS_KEY].data)
    assert sorted(r["pair_id"] for r in rows) == sorted(pairs["pair_id"].to_pylist())
    assert all(r["source"].split(":")[0] in {p.stem.removeprefix("session_") for p in fixture_sessions.glob("*.jsonl")}
               for r in rows)
    rejected = read_table(home, "rejections", run_ids=[run["run_id"]])
    assert len(json.loads(by_key[artifacts.REJECTIONS_KEY].data)) == rejected.num_rows == stages["firewall"]["rejected"]
    charts = by_key[artifacts.CHARTS_KEY].data
    assert "data:image/png;base64," in charts and str(home.runs / run["run_id"] / "loss.png") in charts
    progress = by_key[artifacts.PROGRESS_KEY]
    assert progress.type == "progress" and float(progress.data) == 100.0


@pytest.mark.prefect
def test_prefect_yaml_deploys_to_a_process_pool_and_a_worker_runs_it(server, tmp_path):
    env = {**server_env(tmp_path / "client-prefect", server), "PREFECT_CLI_PROMPT": "false"}
    home = Home(tmp_path / "home")  # empty: the run has nothing to learn and finishes without loading a model

    def prefect(*args: str, timeout: float = 120) -> str:
        out = run_cli([str(PREFECT), *args], env=env, timeout=timeout)
        assert out.returncode == 0, f"prefect {' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
        return out.stdout + out.stderr

    prefect("work-pool", "create", "slowwave", "--type", "process")
    assert "Deployment 'sleep-cycle/nightly' successfully created" in " ".join(
        prefect("deploy", "--prefect-file", "deployments/prefect.yaml", "--all").split())
    started = datetime.now()
    prefect("deployment", "run", "sleep-cycle/nightly", "--param", f"home_dir={home.root}")
    prefect("worker", "start", "--pool", "slowwave", "--run-once", timeout=240)

    async def read(client):
        deployment = await client.read_deployment_by_name("sleep-cycle/nightly")
        runs = await client.read_flow_runs()
        return deployment, runs

    deployment, flow_runs = read_back(server, read)
    assert deployment.work_pool_name == "slowwave" and deployment.entrypoint == "flows/sleep.py:sleep_cycle"
    assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [("0 3 * * *", "UTC")]
    # The pull step starts the worker's run in the repository `prefect deploy` ran in, with no env var needed.
    directory = deployment.pull_steps[0]["prefect.deployments.steps.set_working_directory"]["directory"]
    assert Path(directory).resolve() == REPO.resolve()
    flow_runs = [fr for fr in flow_runs if fr.deployment_id == deployment.id]  # the server is shared in this module
    assert len(flow_runs) == 1
    flow_run = flow_runs[0]
    assert flow_run.state.is_completed(), flow_run.state
    assert flow_run.name in run_name("auto", started)
    assert flow_run.parameters == {"home_dir": str(home.root), "depth": "auto"}
    run = latest_runs(home, kind="sleep")[0]
    assert (run["status"], run["flow_run_id"]) == ("nothing-to-do", str(flow_run.id))


# --- flows/prefect_env.py: an explicitly chosen API is never replaced by a temporary server ----------------------

def _api_seen_by_prefect(tmp_path: Path, env: dict) -> str:
    """The API URL Prefect itself resolves after slowwave's configure(), in a fresh interpreter."""
    code = ("from flows.prefect_env import configure; from storage.home import Home; import sys;"
            "said = configure(Home.resolve(sys.argv[1]));"
            "from prefect.settings import get_current_settings; print(said); print(get_current_settings().api.url)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "home")], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.splitlines()


def _clean_env(tmp_path: Path) -> dict:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}, "HOME": str(tmp_path)}


def test_an_explicit_api_url_in_the_environment_is_kept(tmp_path):
    env = {**_clean_env(tmp_path), "PREFECT_API_URL": "http://127.0.0.1:4321/api"}
    assert _api_seen_by_prefect(tmp_path, env) == ["http://127.0.0.1:4321/api"] * 2


def test_an_api_url_set_in_the_users_prefect_profile_is_kept(tmp_path):
    (tmp_path / ".prefect").mkdir()
    (tmp_path / ".prefect" / "profiles.toml").write_text(
        'active = "mine"\n[profiles.mine]\nPREFECT_API_URL = "http://127.0.0.1:4322/api"\n')
    assert _api_seen_by_prefect(tmp_path, _clean_env(tmp_path)) == ["http://127.0.0.1:4322/api"] * 2


def test_without_a_chosen_api_a_home_gets_its_own_temporary_server(tmp_path):
    said, url = _api_seen_by_prefect(tmp_path, _clean_env(tmp_path))
    assert said == f"temporary local server (PREFECT_HOME={tmp_path / 'home' / 'prefect'})" and url == "None"


@pytest.mark.prefect
@pytest.mark.model
def test_cancelling_a_flow_run_from_the_api_stops_the_sleep_like_a_sigterm(server, tmp_path, fixture_sessions,
                                                                           converted_model_dir):
    """Cancel in the UI/API -> the worker sends the run's process SIGTERM -> Cancelled, recorded, nothing kept."""
    import time

    from prefect.states import Cancelling

    env = {**server_env(tmp_path / "client-prefect", server), "PREFECT_CLI_PROMPT": "false"}
    home = Home(tmp_path / "home").ensure()
    shutil.copytree(fixture_sessions, home.root / "inbox" / "logs")
    home.config_file.write_text("[train]\nlight_epochs = 1\n")
    for args in (("work-pool", "create", "slowwave", "--type", "process", "--overwrite"),
                 ("deploy", "--prefect-file", "deployments/prefect.yaml", "--all")):
        out = run_cli([str(PREFECT), *args], env=env, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
    out = run_cli([str(PREFECT), "deployment", "run", "sleep-cycle/nightly", "--param", f"home_dir={home.root}"],
                  env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    log = tmp_path / "worker.txt"
    worker = subprocess.Popen([str(PREFECT), "worker", "start", "--pool", "slowwave"], env=env, cwd=REPO,
                              stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)

    async def ours(client):
        deployment = await client.read_deployment_by_name("sleep-cycle/nightly")
        runs = [fr for fr in await client.read_flow_runs() if fr.deployment_id == deployment.id
                and fr.parameters.get("home_dir") == str(home.root)]
        return runs

    try:
        deadline = time.monotonic() + 600
        while not list(home.runs.glob("*/stages/mix.done")):  # mixed: the run is about to train
            assert time.monotonic() < deadline and worker.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        (flow_run,) = read_back(server, ours)

        async def cancel(client):
            await client.set_flow_run_state(flow_run.id, Cancelling(), force=True)

        read_back(server, cancel)
        asked = time.monotonic()
        while True:
            (flow_run,) = read_back(server, ours)
            if flow_run.state.is_final():
                break
            assert time.monotonic() - asked < 60, (flow_run.state, log.read_text()[-3000:])
            time.sleep(0.5)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert flow_run.state.is_cancelled(), (flow_run.state, log.read_text()[-3000:])
    run = latest_runs(home, kind="sleep")[0]
    assert (run["status"], run["flow_run_id"]) == ("cancelled", str(flow_run.id))
    assert [p.name for p in home.adapters.iterdir()] == []
    assert [str(p) for p in home.root.rglob("*.tmp*")] == []
