"""Tenants: one root of many homes, `--tenant` on every command, `slowwave tenants`, and the nightly fan-out on a
real Prefect server with a process work pool and two real workers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prefect_server import PREFECT, prefect_server, server_env
from small_sleep import small_gate_inputs
from storage.errors import InputError
from storage.home import Home
from storage.runs import latest_runs
from storage.tenants import check_name, list_tenants, tenant_home, tenant_of
from storage.warehouse import read_table

REPO = Path(__file__).resolve().parents[1]
SLOWWAVE = Path(sys.executable).with_name("slowwave")
SAID_BY_BOTH = "My name is Robin Okafor and I live in Tromsø."
# A tenant's night kept as small as a real one can be: few anchors and rehearsal samples, a 6-question gate.
TINY = """\
[train]
light_epochs = 1
[mixing]
paraphrases = 1
anchor_ratio = 0.25
min_anchors = 4
rehearsal_ratio = 0.1
min_rehearsal = 2
[gate]
benchmark = "{benchmark}"
general_text = "{text}"
max_tokens = 16
smoke_questions = 1
"""


def write_tiny_config(config_file: Path, inputs: Path) -> None:
    benchmark, text = small_gate_inputs(inputs)
    benchmark.write_text("".join(benchmark.read_text().splitlines(keepends=True)[:6]))
    text.write_text("".join(text.read_text().splitlines(keepends=True)[:8]))
    config_file.write_text(TINY.format(benchmark=benchmark, text=text))


def _cli(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(SLOWWAVE), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("name", ["alice", "bob-2", "team_7", "a" * 64])
def test_a_valid_tenant_name_is_its_own_folder_under_the_root(name, tmp_path):
    assert check_name(name) == name
    home = tenant_home(name, tmp_path)
    assert home.root == tmp_path.resolve() / "tenants" / name and tenant_of(home) == name


@pytest.mark.parametrize("name, says", [("", "empty"), ("../alice", "without '/'"), ("a/b", "without '/'"),
                                        ("..", "without '/'"), ("Alice", "lower-case"), ("-x", "lower-case"),
                                        ("a" * 65, "at most 64"), ("al ice", "lower-case"), ("al.ice", "lower-case")])
def test_a_bad_tenant_name_is_one_line_naming_it(name, says, tmp_path):
    with pytest.raises(InputError) as err:
        tenant_home(name, tmp_path)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_tenant_on_the_command_line_or_in_the_environment_selects_its_home(tmp_path, fixture_sessions):
    root = tmp_path / "root"
    env = {**os.environ, "SLOWWAVE_ROOT": str(root)}
    env.pop("SLOWWAVE_HOME", None)
    env.pop("SLOWWAVE_TENANT", None)
    files = sorted(fixture_sessions.rglob("*.jsonl"))
    out = _cli("--tenant", "alice", "ingest", str(files[0]), env=env)
    assert out.returncode == 0, out.stderr
    out = _cli("ingest", str(files[1]), env={**env, "SLOWWAVE_TENANT": "bob"})
    assert out.returncode == 0, out.stderr
    assert list_tenants(root) == ["alice", "bob"]
    alice, bob = (read_table(tenant_home(t, root), "ingested_files", columns=["source_file"])["source_file"]
                  .to_pylist() for t in ("alice", "bob"))
    assert [Path(p).name for p in alice] == [files[0].name] and [Path(p).name for p in bob] == [files[1].name]
    # --home still names one home and wins over the environment's tenant; with --tenant it is an error.
    out = _cli("--home", str(tmp_path / "one"), "ingest", str(files[2]), env={**env, "SLOWWAVE_TENANT": "bob"})
    assert out.returncode == 0 and (tmp_path / "one" / "warehouse").is_dir(), out.stderr
    out = _cli("--home", str(tmp_path / "one"), "--tenant", "bob", "models", env=env)
    assert out.returncode == 1 and out.stderr.strip().count("\n") == 0 and "--home and --tenant" in out.stderr
    out = _cli("--tenant", "../bob", "models", env=env)
    assert out.returncode == 1 and "tenant '../bob'" in out.stderr and not (root / "bob").exists()
    out = _cli("tenants", env=env)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == ["alice", "bob"]
    turns = {r.split("│")[1].strip(): r.split("│")[5].strip() for r in rows}
    per_file = {f.name: sum(1 for line in f.read_text().splitlines() if '"role": "user"' in line) for f in files[:2]}
    assert turns == {"alice": f"{per_file[files[0].name]} turn(s), 0 inbox file(s)",
                     "bob": f"{per_file[files[1].name]} turn(s), 0 inbox file(s)"}


# --- the nightly fan-out on a real server, a process work pool and two workers -----------------------------------

def _session(session_id: str, texts: list[str]) -> str:
    lines = []
    for turn, text in enumerate(texts):
        for role, content in (("user", text), ("assistant", "Noted.")):
            lines.append(json.dumps({"timestamp": f"2026-04-01T09:{turn:02d}:0{role == 'assistant':d}+00:00",
                                     "session_id": session_id, "turn": turn, "role": role, "content": content}))
    return "\n".join(lines) + "\n"


def _read(api_url: str, read):
    from prefect.client.orchestration import PrefectClient

    async def go():
        async with PrefectClient(api_url) as client:
            return await read(client)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One real Prefect server (own PREFECT_HOME, scheduler off) for this module's fan-out tests."""
    with prefect_server(tmp_path_factory.mktemp("prefect-server"), timeout=180) as api_url:
        yield api_url


def _runs_of(api: str, prefix: str, root: Path) -> list:
    async def runs(client):
        return await client.read_flow_runs()

    return [fr for fr in _read(api, runs) if fr.name.startswith(prefix) and str(root) in json.dumps(fr.parameters)]


@pytest.mark.prefect
def test_schedule_all_tenants_serves_the_fan_out_and_the_tenants_sleep_from_one_process(server, tmp_path):
    root = tmp_path / "root"
    dora = tenant_home("dora", root).ensure()
    (dora.root / "inbox").mkdir()
    (dora.root / "inbox" / "session_bad.jsonl").write_text("not json\n")  # her sleep runs, finds nothing to learn
    tenant_home("emil", root).ensure()  # nothing at all: skipped
    fay = tenant_home("fay", root).ensure()  # a config that cannot be read: her night fails, no one else's
    fay.config_file.write_text("[train]\nlight_epochs = \"many\"\n")
    env = {**server_env(tmp_path / "client-prefect", server), "PREFECT_CLI_PROMPT": "false",
           "SLOWWAVE_ROOT": str(root)}
    env.pop("SLOWWAVE_HOME", None)
    env.pop("SLOWWAVE_TENANT", None)
    log = tmp_path / "schedule.txt"
    proc = subprocess.Popen([str(SLOWWAVE), "schedule", "--all-tenants"], env=env, cwd=REPO, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        async def deployments(client):
            return {f"{(await client.read_flow(d.flow_id)).name}/{d.name}" for d in await client.read_deployments()}

        deadline = time.monotonic() + 240
        while not {"nightly/all-tenants", "sleep-cycle/tenant"} <= _read(server, deployments):
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
        out = subprocess.run([str(PREFECT), "deployment", "run", "nightly/all-tenants", "--param",
                              f"root_dir={root}"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        while not ((parent := _runs_of(server, "nightly-", root)) and parent[0].state.is_final()):
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "serving the nightly fan-out over 3 tenant(s)" in log.read_text()
    assert parent[0].state.is_failed() and parent[0].state.message.endswith("did not complete: fay"), parent[0].state
    (sleep,) = _runs_of(server, "sleep-", root)
    assert sleep.parameters["home_dir"] == str(dora.root) and sleep.state.is_completed()
    assert latest_runs(dora, kind="sleep")[0]["status"] == "nothing-to-do"
    assert latest_runs(tenant_home("emil", root), kind="sleep") == []

    async def table(client):
        return [a for a in await client.read_artifacts() if a.flow_run_id == parent[0].id]

    (artifact,) = _read(server, table)
    rows = {r["tenant"]: r for r in json.loads(artifact.data)}
    assert (rows["dora"]["state"], rows["dora"]["sleep"]) == ("Completed", "nothing-to-do")
    assert rows["emil"]["state"] == "skipped" and rows["fay"]["state"] == "not started"
    assert "ConfigError" in rows["fay"]["why"] and "light_epochs" in rows["fay"]["why"]


@pytest.mark.prefect
@pytest.mark.model
def test_the_nightly_fan_out_sleeps_every_tenant_on_two_workers_one_heavy_stage_at_a_time(
        server, tmp_path, fixture_sessions, converted_model_dir):
    root = tmp_path / "root"
    files = sorted(fixture_sessions.rglob("*.jsonl"))
    homes = {t: tenant_home(t, root).ensure() for t in ("alice", "bob", "carol")}
    for t, mine in (("alice", files[:2]), ("bob", files[2:4])):
        inbox = homes[t].root / "inbox"
        inbox.mkdir()
        for f in mine:
            shutil.copy(f, inbox / f.name)
        (inbox / "session_shared.jsonl").write_text(_session("20260401_090000", [SAID_BY_BOTH]))
        write_tiny_config(homes[t].config_file, tmp_path / "inputs")
    (homes["carol"].root / "inbox").mkdir()
    (homes["carol"].root / "inbox" / "session_bad.jsonl").write_text("not json\n{\"role\": \"user\"}\n[1, 2]\n")
    (root / "config.toml").write_text("[tenants]\npoll_seconds = 1\ndepth = \"light\"\n")

    api = server
    env = {**server_env(tmp_path / "client-prefect", api), "PREFECT_CLI_PROMPT": "false",
           "SLOWWAVE_ROOT": str(root)}

    def prefect(*args: str) -> str:
        out = subprocess.run([str(PREFECT), *args], env=env, cwd=REPO, capture_output=True, text=True,
                             timeout=180)
        assert out.returncode == 0, f"prefect {' '.join(args)}:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
        return out.stdout

    prefect("work-pool", "create", "slowwave", "--type", "process")
    prefect("deploy", "--prefect-file", "deployments/prefect.yaml", "--all")
    logs = [tmp_path / f"worker-{i}.txt" for i in (1, 2)]
    workers = [subprocess.Popen([str(PREFECT), "worker", "start", "--pool", "slowwave", "--name", f"w{i}"],
                                env=env, cwd=REPO, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                start_new_session=True) for i, log in zip((1, 2), logs)]
    try:
        prefect("deployment", "run", "nightly/all-tenants", "--param", f"root_dir={root}")
        deadline = time.monotonic() + 900
        while True:
            parent = _runs_of(api, "nightly-", root)
            if parent and parent[0].state.is_final():
                break
            assert time.monotonic() < deadline and all(w.poll() is None for w in workers), \
                "\n".join(log.read_text()[-2000:] for log in logs)
            time.sleep(2)
    finally:
        for w in workers:
            os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
                w.wait()

    async def read_all(client):
        flow_runs = await client.read_flow_runs()
        task_runs = await client.read_task_runs()
        artifacts = await client.read_artifacts()
        limit = await client.read_global_concurrency_limit_by_name("slowwave-heavy")
        return flow_runs, task_runs, artifacts, limit

    flow_runs, task_runs, artifacts, limit = _read(api, read_all)
    worker_text = "\n".join(log.read_text() for log in logs)
    (parent,) = [fr for fr in flow_runs if fr.name.startswith("nightly-") and fr.parameters["root_dir"] == str(root)]
    sleeps = {fr.parameters["home_dir"]: fr for fr in flow_runs
              if fr.name.startswith("sleep-") and fr.parameters["home_dir"].startswith(str(root))}
    by_tenant = {Path(h).name: fr for h, fr in sleeps.items()}
    # Every tenant with something in its inbox got its own run, each tagged with its tenant.
    assert sorted(by_tenant) == ["alice", "bob", "carol"], sorted(by_tenant)
    assert all(f"tenant:{t}" in fr.tags for t, fr in by_tenant.items())
    # Both learning tenants slept to the end; carol's inbox held only bad lines: quarantined, nothing to learn,
    # and the others were not affected.
    for t in ("alice", "bob"):
        run = latest_runs(homes[t], kind="sleep")[0]
        assert by_tenant[t].state.is_completed(), (t, by_tenant[t].state, worker_text[-3000:])
        assert run["status"] == "completed" and run["flow_run_id"] == str(by_tenant[t].id), run
    carol = latest_runs(homes["carol"], kind="sleep")[0]
    assert carol["status"] in ("nothing-to-do", "failed"), carol
    assert read_table(homes["carol"], "quarantine").num_rows == 3
    assert parent.state.is_completed(), (parent.state, worker_text[-3000:])
    # The concurrency slot: the flow runs' own task runs show train -> gate -> fuse of one tenant never
    # overlapping another's (limit 1), while their cheap stages may.
    assert limit.limit == 1
    windows = []
    for t, fr in by_tenant.items():
        heavy = [tr for tr in task_runs if tr.flow_run_id == fr.id and tr.name.split("-")[0] in ("train", "gate", "fuse")]
        if heavy:
            windows.append((min(tr.start_time for tr in heavy), max(tr.end_time for tr in heavy), t))
    assert len(windows) == 2, windows
    windows.sort()
    assert windows[0][1] <= windows[1][0], windows
    # Both workers were there; the runs went through the pool's queue to them.
    assert "w1" in worker_text and "w2" in worker_text
    submitted = sum(worker_text.count(str(fr.id)) > 0 for fr in [parent, *by_tenant.values()])
    assert submitted == 4, worker_text[-3000:]
    # The fan-out's table names every tenant's outcome.
    (table,) = [a for a in artifacts if a.key == "nightly-tenants" and a.flow_run_id == parent.id]
    rows = {r["tenant"]: r for r in json.loads(table.data)}
    assert sorted(rows) == ["alice", "bob", "carol"]
    assert rows["alice"]["state"] == rows["bob"]["state"] == "Completed" and rows["alice"]["learned"] > 0
    # Isolation: each home holds only what its own person said; the sentence both said is a pair in each home.
    said = {t: set(read_table(homes[t], "exchanges", columns=["user_text"])["user_text"].to_pylist())
            for t in ("alice", "bob")}
    only = {t: {json.loads(line)["content"] for f in mine for line in f.read_text().splitlines()
                if json.loads(line)["role"] == "user"} for t, mine in (("alice", files[:2]), ("bob", files[2:4]))}
    assert not (only["alice"] - only["bob"]) & said["bob"] and not (only["bob"] - only["alice"]) & said["alice"]
    pairs = {t: read_table(homes[t], "pairs").to_pylist() for t in ("alice", "bob")}
    for t, other in (("alice", "bob"), ("bob", "alice")):
        mine_ex = set(read_table(homes[t], "exchanges", columns=["exchange_id"])["exchange_id"].to_pylist())
        assert {p["exchange_id"] for p in pairs[t]} <= mine_ex
        assert any(p["value"] == "Robin Okafor" for p in pairs[t])
        adapters = {p.name for p in homes[t].adapters.iterdir()}
        assert adapters and not adapters & {p.name for p in homes[other].adapters.iterdir()}
        trained = set(read_table(homes[t], "training_examples", columns=["pair_id"])["pair_id"].drop_null()
                      .to_pylist())
        assert trained and trained <= {p["pair_id"] for p in pairs[t]}
    # The base model is shared, not copied: each tenant's v0000 weights are hard links of one file.
    weights = [next((homes[t].models / "v0000").glob("*.safetensors")) for t in ("alice", "bob")]
    assert weights[0].stat().st_ino == weights[1].stat().st_ino
