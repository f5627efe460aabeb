"""The `[tenants]` settings: how the nightly fan-out over a root's tenants runs (flows/fanout.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TenantsConfig(BaseModel):
    """`[tenants]` in the root's config.toml ($SLOWWAVE_ROOT/config.toml): how the nightly fan-out runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    deployment: str = Field("sleep-cycle/tenant", description="The deployment (flow/deployment) each tenant's "
                            "sleep runs as; the fan-out starts one run of it per tenant with something to learn.")
    concurrency_limit: str = Field("slowwave-heavy", description="The Prefect global concurrency limit whose slot "
                                   "a tenant's training, gate and fusion hold (created when missing).")
    slots: int = Field(1, ge=1, description="The limit's slots when the fan-out creates it: one per worker "
                       "machine (each sleep's heavy stages already use every core of its machine).")
    depth: str = Field("auto", description="The depth each tenant's sleep is started with.")
    poll_seconds: float = Field(5.0, gt=0, description="How often the fan-out reads its tenants' runs' states.")
