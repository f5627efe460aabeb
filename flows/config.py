"""One loader for every stage's config: $SLOWWAVE_HOME/config.toml, then SLOWWAVE_<SECTION>__<FIELD> env vars."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deployments.schedule import ScheduleConfig
from storage.errors import ConfigError
from tasks.depth import SleepConfig
from tasks.dreams import DreamConfig
from tasks.evaluation import EvalConfig
from tasks.extraction import ExtractionConfig
from tasks.firewall import FirewallConfig
from tasks.gating import GateConfig
from tasks.ingest import IngestConfig
from tasks.mixing import MixingConfig
from tasks.model.config import ModelConfig
from tasks.replay import ReplayConfig
from tasks.scoring import ScoringConfig
from tasks.training import TrainConfig


class Settings(BaseModel):
    """Every stage's config, one section each."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    sleep: SleepConfig = Field(default_factory=SleepConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    extraction: ExtractionConfig = Field(default_factory=ExtractionConfig)
    firewall: FirewallConfig = Field(default_factory=FirewallConfig)
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    mixing: MixingConfig = Field(default_factory=MixingConfig)
    dreams: DreamConfig = Field(default_factory=DreamConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)


ENV_PREFIX = "SLOWWAVE_"


def _env_overrides(environ: dict[str, str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        section, _, name = key[len(ENV_PREFIX):].lower().partition("__")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw  # plain strings need no quotes
        out.setdefault(section, {})[name] = value
    return out


def load_settings(config_file: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Build Settings from the file and environment; raise one ConfigError listing every bad value."""
    data: dict[str, dict] = {}
    if config_file is not None and config_file.exists():
        try:
            data = tomllib.loads(config_file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_file}: not valid TOML ({exc})") from None
    for section, values in _env_overrides(dict(os.environ if environ is None else environ)).items():
        data.setdefault(section, {}).update(values)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        where = str(config_file) if config_file else "environment"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()
        )
        raise ConfigError(f"{where}: {exc.error_count()} bad setting(s): {problems}") from None
