"""When and how deeply to sleep: the nightly schedule, light after enough new turns, deep on every Nth sleep."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEPTHS = ("light", "deep", "auto")


class SleepConfig(BaseModel):
    """When `auto` sleeps, and how deeply."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    min_new_turns: int = Field(5, ge=1, description="Auto runs a light sleep once at least this many new turns arrived.")
    deep_every: int = Field(5, ge=1, description="Auto makes every Nth sleep since the last deep one a deep sleep.")
    max_attempts: int = Field(3, ge=1, description="A sleep run that failed this many times is abandoned, not resumed "
                              "again; its exchanges go to a fresh run.")


class ScheduleConfig(BaseModel):
    """When the nightly sleep runs (served by `slowwave schedule` or deployments/prefect.yaml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    cron: str = Field("0 3 * * *", description="Cron expression for the nightly sleep (default 03:00).")
    timezone: str | None = Field(None, description="IANA time zone of the cron; None = this machine's local zone.")
    depth: str = Field("auto", description="Sleep depth of scheduled runs: light, deep or auto.")


def decide_depth(requested: str, new_turns: int, past_depths: list[str], cfg: SleepConfig) -> tuple[str | None, str]:
    """(depth or None for nothing to do, a one-line reason); `past_depths` are completed sleeps, oldest first."""
    if requested not in DEPTHS:
        raise ValueError(f"depth {requested!r} is not one of {', '.join(DEPTHS)}")
    lights_since_deep = 0
    for d in reversed(past_depths):
        if d == "deep":
            break
        lights_since_deep += d == "light"
    if requested == "light":
        return ("light", f"{new_turns} new turn(s)") if new_turns else (None, "nothing new since the last sleep")
    if requested == "deep":
        return "deep", f"deep sleep requested ({new_turns} new turn(s))"
    if new_turns == 0:
        return None, "nothing new since the last sleep"
    if new_turns < cfg.min_new_turns:
        return None, f"only {new_turns} new turn(s); auto sleeps after {cfg.min_new_turns} (sleep.min_new_turns)"
    if lights_since_deep + 1 >= cfg.deep_every:
        return "deep", f"{new_turns} new turn(s); sleep {lights_since_deep + 1} since the last deep one"
    return "light", f"{new_turns} new turn(s); {lights_since_deep} light sleep(s) since the last deep one"
