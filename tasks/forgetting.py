"""Settings of forgetting on request (`slowwave forget`): what a rebuild must show before it is promoted."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ForgetConfig(BaseModel):
    """How strict the rebuild after a forget request is."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_recall_drop: float = Field(0.05, ge=0, le=1, description="A rebuild is promoted only when the recall of the "
                                   "facts that were kept (asked in a wording never trained) is at most this much "
                                   "below the recall of the version it replaces.")
