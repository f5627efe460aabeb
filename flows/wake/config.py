"""Settings of the wake side (`[wake]` in config.toml): where the server listens, how it answers, when it sleeps."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WakeConfig(BaseModel):
    """How `slowwave chat` and `slowwave serve` answer, and when the server starts a light sleep by itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    host: str = Field("127.0.0.1", description="Address `slowwave serve` listens on (keep it local: the API has "
                      "no authentication).")
    port: int = Field(8742, ge=1, le=65535, description="Port `slowwave serve` listens on.")
    pressure_threshold: int | None = Field(40, ge=1, description="The server starts `slowwave sleep --depth light` "
                                           "once this many new turns await a sleep (ingested and not slept, plus "
                                           "those it logged since); None never starts one.")
    max_tokens: int = Field(512, ge=1, le=8192, description="Longest reply in tokens when a request does not say "
                            "(a request's max_tokens may be up to 8192).")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature when a request gives none "
                               "(0 = greedy).")
    context_tokens: int = Field(2048, ge=64, description="Longest prompt in tokens: the oldest messages after the "
                                "system message are left out until the conversation fits.")
    system_prompt: str | None = Field(None, description="System message put before a conversation that has none; "
                                      "None uses the model's own default from its chat template.")
    swap_poll_seconds: float = Field(1.0, gt=0, le=60, description="How often the server checks whether `current` "
                                     "moved (a sleep or a rollback) and loads the new version.")
