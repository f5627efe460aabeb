"""One loader for every stage's config: defaults, then $SLOWWAVE_HOME/config.toml, then SLOWWAVE_<SECTION>__<FIELD>."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from flows.wake.config import WakeConfig
from storage.errors import ConfigError
from storage.home import Home
from tasks.depth import ScheduleConfig, SleepConfig
from tasks.dreams import DreamConfig
from tasks.evaluation import EvalConfig
from tasks.extraction import ExtractionConfig
from tasks.firewall import FirewallConfig
from tasks.forgetting import ForgetConfig
from tasks.gating import GateConfig
from tasks.ingest import IngestConfig
from tasks.mixing import MixingConfig
from tasks.model.config import ModelConfig
from tasks.replay import ReplayConfig
from tasks.scoring import ScoringConfig
from tasks.tenancy import TenantsConfig
from tasks.training import TrainConfig

ENV_PREFIX = "SLOWWAVE_"
DELIMITER = "__"


class Settings(BaseSettings):
    """Every stage's config, one section each; `Settings()` reads the environment and the home's config.toml."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", env_prefix=ENV_PREFIX,
                                      env_nested_delimiter=DELIMITER, env_parse_none_str="null")
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
    wake: WakeConfig = Field(default_factory=WakeConfig)
    forget: ForgetConfig = Field(default_factory=ForgetConfig)
    tenants: TenantsConfig = Field(default_factory=TenantsConfig)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments beat SLOWWAVE_<SECTION>__<FIELD> variables, which beat $SLOWWAVE_HOME/config.toml."""
        return init_settings, SectionEnv(settings_cls, os.environ), TomlFile(settings_cls, Home.resolve().config_file)


class SectionEnv(EnvSettingsSource):
    """SLOWWAVE_<SECTION>__<FIELD> variables of `environ` only: SLOWWAVE_HOME, SLOWWAVE_CACHE… are not sections."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        sections = set(settings_cls.model_fields)
        #: (section, field, …) → the variable's own name, to name it in errors.
        self.names: dict[tuple[str, ...], str] = {}
        #: (variable, value) of SLOWWAVE_X__Y variables whose X is no section.
        self.unknown: list[tuple[str, str]] = []
        self._environ: dict[str, str] = {}
        for key, value in environ.items():
            rest = key[len(ENV_PREFIX):]
            if not key.upper().startswith(ENV_PREFIX) or DELIMITER not in rest:
                continue
            path = tuple(rest.lower().split(DELIMITER))
            if path[0] in sections:
                self.names[path] = key
                self._environ[key] = value
            else:
                self.unknown.append((key, value))
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): (None if v == self.env_parse_none_str else v) for k, v in self._environ.items()}

    def decode_complex_value(self, field_name: str, field: Any, value: Any) -> Any:
        # Not JSON: hand the text on, so validation reports it beside every other bad value.
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            return value

    def variable(self, loc: tuple) -> str | None:
        """The variable that set the value at `loc` (the longest matching section path), if any.

        A variable deeper than the value (SLOWWAVE_TRAIN__RANK__X for train.rank) set it too."""
        path = tuple(str(p).lower() for p in loc)
        for n in range(len(path), 0, -1):
            if path[:n] in self.names:
                return self.names[path[:n]]
        deeper = sorted(name for key, name in self.names.items() if path and key[:len(path)] == path)
        return ", ".join(deeper) or None


class TomlFile(TomlConfigSettingsSource):
    """config.toml, when it exists; any reason it cannot be read is one ConfigError naming the file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None):
        if path is not None and path.exists() and not path.is_file():
            raise ConfigError(f"{path}: is a folder, not a TOML file; remove it or move the settings into a file")
        try:
            super().__init__(settings_cls, toml_file=path)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def load_settings(config_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the file, overridden by the environment; one ConfigError lists every bad value and its source."""
    env = SectionEnv(Settings, os.environ if environ is None else environ)
    toml = TomlFile(Settings, config_file)
    problems: list[tuple[str, str]] = [  # (where, "key: reason (got value)")
        ("environment", f"{key}: no section {key[len(ENV_PREFIX):].split(DELIMITER)[0].lower()!r} "
                        f"(sections: {', '.join(Settings.model_fields)}) (got {_short(value)})")
        for key, value in env.unknown]
    settings = None
    try:
        settings = Settings(_build_sources=((InitSettingsSource(Settings, {}), env, toml), {}))
    except ValidationError as exc:
        for e in exc.errors():
            variable = env.variable(e["loc"])
            key = variable or ".".join(str(p) for p in e["loc"])
            problems.append(("environment" if variable else str(config_file),
                             f"{key}: {e['msg']} (got {_short(e.get('input'))})"))
    if problems:
        places = list(dict.fromkeys(where for where, _ in problems))
        raise ConfigError(f"{' and '.join(places)}: {len(problems)} bad setting(s): "
                          + "; ".join(text for _, text in problems))
    return settings
