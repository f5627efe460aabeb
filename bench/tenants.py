"""The night for N tenants on a real Prefect server, a process work pool and W workers on this machine.

    python bench/tenants.py [--tenants 1,2,4,8] [--workers 1,2] [--files 2]

For each worker count: a fresh `prefect server start`, the `slowwave` process pool, deployments/prefect.yaml
deployed, W `prefect worker start` processes. For each N: a fresh root of N tenants, each given the same --files
fixture sessions in its inbox (so N nights are N equal nights) and the small sleep configuration of the tests (one epoch, a
12-question gate, depth light), then one run of `nightly/all-tenants`, waited for. Prints, per (W, N): the night's
wall time (the fan-out's own flow run, start to end), the mean tenant sleep, N x the one-tenant night of the same
W, the efficiency (N x one-tenant night / wall: above 1 means overlapping the tenants' cheap stages bought time;
the global concurrency limit keeps their training, gate and fusion one at a time), and how many tenants' sleeps
completed with something learned.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from prefect_server import PREFECT, prefect_server, server_env  # noqa: E402
from small_sleep import write_small_config  # noqa: E402
from storage.home import Home  # noqa: E402
from storage.runs import latest_runs  # noqa: E402
from storage.tenants import tenant_home  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"


def _read(api: str, read):
    from prefect.client.orchestration import PrefectClient

    async def go():
        async with PrefectClient(api) as client:
            return await read(client)

    return asyncio.run(go())


def make_root(folder: Path, n: int, files_each: int) -> Path:
    files = sorted(FIXTURES.rglob("*.jsonl"))
    for i in range(n):
        home = tenant_home(f"t{i:02d}", folder).ensure()
        inbox = home.root / "inbox"
        inbox.mkdir()
        for f in files[:files_each]:  # the same sessions each: N tenants' nights are N equal nights
            shutil.copy(f, inbox / f.name)
        write_small_config(home.config_file, folder / "inputs")
    # Light: with a couple of sessions each, `auto` could decide a tenant has too little to sleep on.
    (folder / "config.toml").write_text("[tenants]\npoll_seconds = 1\ndepth = \"light\"\n")
    return folder


def night(api: str, env: dict, root: Path, timeout: float) -> dict:
    """One fan-out run over root's tenants: its wall seconds and each tenant sleep's seconds and state."""
    subprocess.run([str(PREFECT), "deployment", "run", "nightly/all-tenants", "--param", f"root_dir={root}"],
                   env=env, cwd=ROOT, check=True, capture_output=True, timeout=120)

    async def runs(client):
        return await client.read_flow_runs()

    deadline = time.monotonic() + timeout
    while True:
        flow_runs = _read(api, runs)
        parent = [fr for fr in flow_runs if fr.name.startswith("nightly-") and fr.parameters.get("root_dir") == str(root)]
        if parent and parent[0].state.is_final():
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the night over {root} did not end within {timeout:.0f} s")
        time.sleep(2)
    p = parent[0]
    sleeps = [fr for fr in flow_runs if fr.name.startswith("sleep-") and str(root) in fr.parameters.get("home_dir", "")]
    learned = sum(1 for fr in sleeps for r in latest_runs(Home(Path(fr.parameters["home_dir"])), kind="sleep")
                  if r["flow_run_id"] == str(fr.id) and r["status"] == "completed")
    return {"wall": (p.end_time - p.start_time).total_seconds(), "state": p.state.name,
            "sleeps": [(fr.end_time - fr.start_time).total_seconds() for fr in sleeps if fr.end_time],
            "completed": learned}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tenants", default="1,2,4,8", help="tenant counts, comma-separated (default 1,2,4,8)")
    ap.add_argument("--workers", default="1,2", help="worker counts, comma-separated (default 1,2)")
    ap.add_argument("--files", type=int, default=2, help="fixture session files per tenant (default 2)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds one night may take (default 1800)")
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.tenants.split(",")]
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} cores")
    print(f"{'workers':>7} {'tenants':>7} {'night s':>8} {'mean sleep s':>12} {'N x one s':>9} {'efficiency':>10} "
          f"{'slept':>9}")
    for w in [int(x) for x in args.workers.split(",")]:
        with tempfile.TemporaryDirectory(prefix="slowwave-bench-tenants-") as tmp:
            tmp = Path(tmp)
            with prefect_server(tmp / "prefect-server", timeout=180) as api:
                env = {**server_env(tmp / "client-prefect", api), "PREFECT_CLI_PROMPT": "false"}
                for cmd in (("work-pool", "create", "slowwave", "--type", "process"),
                            ("deploy", "--prefect-file", "deployments/prefect.yaml", "--all")):
                    subprocess.run([str(PREFECT), *cmd], env=env, cwd=ROOT, check=True, capture_output=True,
                                   timeout=180)
                workers = [subprocess.Popen([str(PREFECT), "worker", "start", "--pool", "slowwave", "--name",
                                             f"bench-w{i}"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, start_new_session=True) for i in range(w)]
                try:
                    # Unreported: the first night of a fresh machine fills the shared caches (the small gate's
                    # parent measurement, anchor answers, rehearsal and teacher targets) that every later
                    # tenant reads, so it would make the one-tenant baseline look slower than any other.
                    warm = night(api, env, make_root(tmp / "root-warm-up", 1, args.files), args.timeout)
                    print(f"{w:>7} {'warm-up':>7} {warm['wall']:>8.1f} (fills the shared caches; not counted)",
                          flush=True)
                    one = None
                    for n in counts:
                        r = night(api, env, make_root(tmp / f"root-{n}", n, args.files), args.timeout)
                        one = r["wall"] if n == 1 else one
                        ideal = n * one if one else float("nan")
                        mean = sum(r["sleeps"]) / max(1, len(r["sleeps"]))
                        print(f"{w:>7} {n:>7} {r['wall']:>8.1f} {mean:>12.1f} {ideal:>9.1f} "
                              f"{ideal / r['wall']:>9.2f}x {r['completed']:>5}/{n}", flush=True)
                finally:
                    for p in workers:
                        os.killpg(p.pid, signal.SIGTERM)
                    for p in workers:
                        p.wait(60)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
