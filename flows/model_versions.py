"""Stage 7 as a Prefect task: fuse an approved adapter into a new model version and move `current`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyarrow as pa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.checks import check
from flows.retries import retry_transient
from storage import registry
from storage.errors import IntegrityError
from storage.home import Home
from tasks.gating import GateConfig, GateDecision
from tasks.model.config import ModelConfig
from tasks.model.pull import ensure_model


@task(name="load-model", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_transient, cache_policy=NO_CACHE)
def model_task(home: Home, cfg: ModelConfig, run_id: str) -> registry.Version:
    """The current model version (pulled and registered the first time; retried on download and disk errors)."""
    return ensure_model(home, cfg, run_id, say=get_run_logger().info)


def promoted_by(home: Home, parent: str, adapter_id: str) -> registry.Version | None:
    """The version an earlier attempt fused from this parent and adapter, if it got as far as registering it."""
    for v in registry.versions(home):
        if v.manifest.parent == parent and v.manifest.adapter_id == adapter_id:
            return v
    return None


@task(name="fuse", retries=1, retry_delay_seconds=5, retry_condition_fn=retry_transient, cache_policy=NO_CACHE)
def fuse_task(home: Home, cfg: GateConfig, run_id: str, version: registry.Version, adapter_id: str, adapter_dir: Path,
              decision: GateDecision, forget_request: str | None = None) -> registry.Version:
    """Stage 7: fuse the approved adapter into a new immutable version, smoke-test it, then switch `current`
    (a rebuild's version names the forget request it was made for)."""
    from tasks.fusion import fuse_adapter, smoke_test
    from tasks.gating import load_gate_inputs

    log = get_run_logger()
    new = promoted_by(home, version.name, adapter_id)
    if new is not None:  # an earlier attempt of this run fused and registered it, then stopped
        registry.verify_folder(new.path)
        registry.record_version(home, new, run_id)
        log.info(f"{new.name} was fused from {adapter_id} by an earlier attempt: checking and promoting it")
    else:
        # Fused into scratch space beside the versions, then registered (hard links, no copy): a crash
        # leaves only the scratch folder, never a half-written version, and `current` is untouched; its name
        # carries this process's pid, so the next writer removes it once this process is gone.
        with tempfile.TemporaryDirectory(prefix=f".tmp-fuse-{run_id}-{os.getpid()}-", dir=home.models) as scratch:
            info = fuse_adapter(version.path, adapter_dir, Path(scratch) / "model")
            gate = decision.model_dump(include={"benchmark_ratio", "ppl_drift", "recall_post"})
            new = registry.register(home, Path(scratch) / "model", run_id=run_id, parent=version.name,
                                    adapter_id=adapter_id, base=version.manifest.base, link=True,
                                    extra={"gate": gate, "run_id": run_id,
                                           **({"forget_request": forget_request} if forget_request else {}),
                                           "fusion": {k: info[k] for k in ("fused_layers", "quantized", "seconds")}})
    benchmark, _ = load_gate_inputs(cfg)
    smoke = smoke_test(new.path, benchmark[:cfg.smoke_questions])
    try:
        manifest, files_ok = registry.verify_folder(new.path), True
    except IntegrityError:
        manifest, files_ok = new.manifest.model_dump(exclude_unset=True), False
    frame = pa.table({"version": [new.name],
                      "manifest_complete": [all(k in manifest for k in ("version", "parent", "adapter_id", "files", "gate"))],
                      "files_match_manifest": [files_ok], "parent_exists": [(home.models / version.name).is_dir()],
                      "smoke_correct": [smoke["correct"]]})
    check(home, run_id, "model_versions", frame, id_column="version")
    why = f"adapter {adapter_id} approved by the gate"
    registry.set_current(home, new.name, run_id=run_id, action="promote",
                         reason=why + (f"; rebuilt without forget request {forget_request}" if forget_request else ""))
    log.info(f"fused {adapter_id} into {new.name} (smoke test {smoke['correct']}/{smoke['asked']}); "
                          f"current is now {new.name}")
    return new
