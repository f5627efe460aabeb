"""The night over many tenants: one `sleep-cycle` flow run per tenant with something to learn, each a run of
the tenants' deployment, so it goes to the work pool's queue and any worker on any machine runs it.

    nightly(root_dir)  ->  run_deployment("sleep-cycle/tenant", tenant A)  ... one per tenant
                           (the sleeps hold a slot of the global concurrency limit for train, gate, fuse)
                       ->  wait for every run; a table artifact of every tenant's outcome

One tenant's failure never stops the others: each run is its own flow run, and the fan-out only reads their
states. The fan-out ends Failed when a tenant's run did not complete, after all of them have ended.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import get_current_settings
from prefect.states import Completed, Failed

from flows.config import load_settings
from flows.tenancy import something_to_learn
from tasks.tenancy import TenantsConfig
from storage.home import Home
from storage.runs import latest_runs
from storage.tenants import list_tenants, tenant_home
from storage.tenants import root_dir as tenants_root

FLOW_NAME = "nightly"
DEPLOYMENT_NAME = "all-tenants"


def ensure_limit(name: str, slots: int) -> int:
    """The global concurrency limit `name`'s slots, after creating it with `slots` when it does not exist."""
    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(name).limit
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots))
            return slots


def _ui_link(flow_run_id) -> str:
    ui = get_current_settings().ui_url
    return f"{ui}/runs/flow-run/{flow_run_id}" if ui else str(flow_run_id)


def _outcome(home: Home, flow_run) -> dict:
    """What the tenant's night did, from its own home (the run the flow run recorded) and the flow run's state."""
    mine = [r for r in latest_runs(home, kind="sleep") if r.get("flow_run_id") == str(flow_run.id)]
    summary = json.loads(mine[0]["summary_json"] or "{}") if mine else {}
    stages = summary.get("stages") or {}
    gate = stages.get("gate") or {}
    minutes = None
    if flow_run.start_time and flow_run.end_time:
        minutes = round((flow_run.end_time - flow_run.start_time).total_seconds() / 60, 2)
    return {
        "state": flow_run.state.name if flow_run.state else "unknown",
        "sleep": mine[0]["status"] if mine else "-",
        "learned": (stages.get("mix") or {}).get("new", 0),
        "gate": gate.get("decision", "-"),
        "version": summary.get("model_after") or "-",
        "minutes": minutes,
    }


def _row(tenant: str, state: str, why: str, **outcome) -> dict:
    """One tenant's row of the fan-out's table, before its run's outcome is known (or without one)."""
    return {"tenant": tenant, "state": state, "sleep": "-", "learned": 0, "gate": "-", "version": "-",
            "minutes": None, "why": why, "run": "-", **outcome}


def _due(tenants: list[str], root) -> tuple[dict[str, str], dict[str, dict]]:
    """(tenant -> why it needs a night, tenant -> row of those that do not or cannot be read)."""
    due, rows = {}, {}
    for t in tenants:
        try:
            why = something_to_learn(tenant_home(t, root))
        except Exception as exc:  # one tenant's unreadable home or config is that tenant's failure only
            rows[t] = _row(t, "not started", f"{type(exc).__name__}: {exc}"[:200])
            continue
        if why:
            due[t] = why
        else:
            rows[t] = _row(t, "skipped", "nothing new")
    return due, rows


@flow(name=FLOW_NAME, flow_run_name=lambda: f"nightly-{datetime.now():%Y-%m-%d}")
def nightly(root_dir: str | None = None, deployment: str | None = None, depth: str | None = None):
    """Start one sleep per tenant with something to learn, wait for them all, report each tenant's outcome."""
    log = get_run_logger()
    root = tenants_root(root_dir)
    cfg: TenantsConfig = load_settings(Home(root).config_file).tenants
    deployment, depth = deployment or cfg.deployment, depth or cfg.depth
    tenants = list_tenants(root)
    due, rows = _due(tenants, root)
    log.info(f"{len(tenants)} tenant(s) under {root}; {len(due)} with something to learn: "
             + (", ".join(f"{t} ({why})" for t, why in due.items()) or "none"))
    slots = ensure_limit(cfg.concurrency_limit, cfg.slots) if due else cfg.slots
    log.info(f"concurrency limit {cfg.concurrency_limit!r}: {slots} slot(s) for training, gate and fusion")
    started = {}
    for tenant, why in due.items():
        home = tenant_home(tenant, root)
        try:
            started[tenant] = run_deployment(
                deployment, timeout=0, tags=["slowwave", f"tenant:{tenant}"],
                flow_run_name=f"sleep-{tenant}-{datetime.now():%Y-%m-%d}",
                parameters={"home_dir": str(home.root), "depth": depth, "heavy_limit": cfg.concurrency_limit})
            rows[tenant] = _row(tenant, "Scheduled", why, run=_ui_link(started[tenant].id))
        except Exception as exc:  # a deployment that cannot be run fails this tenant only; reported below
            rows[tenant] = _row(tenant, "not started", f"{type(exc).__name__}: {exc}"[:200])
            log.error(f"tenant {tenant}: could not start a run of {deployment}: {exc}")
    pending = dict(started)
    with get_client(sync_client=True) as client:
        while pending:
            for tenant, fr in list(pending.items()):
                now = client.read_flow_run(fr.id)
                if now.state is not None and now.state.is_final():
                    del pending[tenant]
                    rows[tenant].update(_outcome(tenant_home(tenant, root), now))
                    log.info(f"tenant {tenant}: {now.state.name} ({rows[tenant]['sleep']}; "
                             f"{len(started) - len(pending)}/{len(started)} done)")
            if pending:
                time.sleep(cfg.poll_seconds)
    table = [rows[t] for t in sorted(rows)]
    create_table_artifact(key="nightly-tenants", table=table,
                          description=f"Tonight's sleeps under {root}: one row per tenant")
    failed = [r["tenant"] for r in table if r["state"] not in ("Completed", "skipped")]
    if failed:
        return Failed(message=f"{len(failed)} of {len(table)} tenant(s) did not complete: {', '.join(failed)}",
                      data=table)
    return Completed(message=f"{len(started)} tenant(s) slept, {len(table) - len(started)} skipped", data=table)
