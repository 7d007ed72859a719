"""Settings: one TOML file plus HOTLINE_* environment variables (environment wins).

The file is ``--config``, else ``$HOTLINE_CONFIG``, else ``./hotline.toml`` when it exists.
Nested keys come from the environment with ``__``: ``HOTLINE_SIP__PORT=5062``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agent_console.settings import HubSettings
from asr.service_settings import SpeechServiceSettings
from asr.settings import AsrSettings
from balancer.settings import BalancerSettings
from court_cases.settings import CaseSettings
from ivr.settings import IvrSettings
from knowledge_base.settings import CourtInfo, MatcherSettings
from sip_config.models import SipSettings
from tts.settings import TtsSettings
from work_orders.settings import WorkOrderSettings


class SettingsError(Exception):
    """A setting is wrong; the message names the file and key."""


class LogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Literal["debug", "info", "warning", "error"] = Field("info", description="log level of every process")
    json_output: bool = Field(False, description="JSON lines instead of console lines")


_toml_data: dict[str, Any] = {}  # the file being loaded; read by Settings' TOML source


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]):
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field, field_name):  # pragma: no cover - unused by __call__
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


class RedisSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, description=(
        "redis://host:port/db shared by several hubs: the live calls, queue, presence and offers (one hub decides, "
        "the others forward), the event log browsers follow (one seq) and the login and form limits; unset: "
        "the hub keeps its state in its own memory (one hub)"))
    prefix: str = Field("hotline:", min_length=1, max_length=64, description="prefix of every key this hotline uses")
    lease_s: float = Field(5.0, ge=1.0, le=60.0, description=(
        "one hub decides the queue and offers for all (a lease in Redis); when it dies another takes over "
        "after this many seconds"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", env_nested_delimiter="__", extra="forbid")

    home: Path = Field(Path("./var"), description="data: database, recordings, prompt cache, logs, models")
    database_url: str | None = Field(None, description="default sqlite:///<home>/hotline.db")
    files_dir: Path | None = Field(None, description=(
        "recordings, recorded messages and work-order attachments (default: home). With several hosts, a "
        "directory every IVR and hub host mounts (e.g. NFS): any hub then serves what any worker recorded"))
    run_as: str | None = Field(None, description=(
        "started as root, `hotline serve` switches to this user after making home theirs (run.sh: hotline)"))
    log: LogSettings = Field(default_factory=LogSettings)
    sip: SipSettings = Field(default_factory=SipSettings)
    ivr: IvrSettings = Field(default_factory=IvrSettings)
    hub: HubSettings = Field(default_factory=HubSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    balancer: BalancerSettings = Field(default_factory=BalancerSettings)
    asr: AsrSettings = Field(default_factory=AsrSettings)
    speech: SpeechServiceSettings = Field(default_factory=SpeechServiceSettings)
    tts: TtsSettings = Field(default_factory=TtsSettings)
    kb: MatcherSettings = Field(default_factory=MatcherSettings)
    court: CourtInfo = Field(default_factory=CourtInfo)
    cases: CaseSettings = Field(default_factory=CaseSettings)
    work_orders: WorkOrderSettings = Field(default_factory=WorkOrderSettings)

    config_file: Path | None = Field(None, exclude=True)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return (init_settings, env_settings, _TomlSource(settings_cls, _toml_data))

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'hotline.db').resolve()}"

    def files(self, *parts: str) -> Path:
        """A directory under ``files_dir`` (default: home), made if missing."""
        p = (self.files_dir or self.home).joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def path(self, *parts: str) -> Path:
        p = self.home.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def secret(self, name: str) -> str:
        """A secret from settings, else one generated once and kept under ``home/secrets``."""
        configured = getattr(self.hub, name, None)
        if configured:
            return configured
        f = self.path("secrets") / name
        if not f.exists() or not f.read_text().strip():  # an emptied file must not become an empty secret
            f.write_text(secrets.token_urlsafe(32))
            f.chmod(0o600)
        return f.read_text().strip()


def find_config(explicit: Path | None = None) -> Path | None:
    if explicit is not None:
        return explicit
    env = os.environ.get("HOTLINE_CONFIG")
    if env:
        return Path(env)
    local = Path("hotline.toml")
    return local if local.exists() else None


def load_settings(config: Path | None = None) -> Settings:
    """Read and validate settings; raise SettingsError naming the file, line or key."""
    path = find_config(config)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"{path}: settings file not found") from None
        except tomllib.TOMLDecodeError as e:
            raise SettingsError(f"{path}: not valid TOML: {e}") from None
    global _toml_data
    _toml_data = data
    try:
        s = Settings()
    except ValidationError as e:
        raise SettingsError(describe_errors(e, path)) from None
    finally:
        _toml_data = {}
    s.config_file = path
    return s


def _line_of(text: str, loc: tuple) -> int | None:
    """The line of ``loc`` (section..., key) in a TOML text: its key under its [section] header."""
    keys = [str(p) for p in loc if not isinstance(p, int)]
    if not keys:
        return None
    section, key = ".".join(keys[:-1]), keys[-1]
    current = ""
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("[") and not line.startswith("[["):
            current = line.strip("[] ")
        elif current == section and line.split("=", 1)[0].strip().strip('"') == key and "=" in line:
            return n
    return None


def describe_errors(e: ValidationError, path: Path | None) -> str:
    text = ""
    if path is not None:
        with contextlib.suppress(OSError):
            text = path.read_text(encoding="utf-8")
    lines = []
    for err in e.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc)
        env = "HOTLINE_" + "__".join(str(p) for p in loc).upper()
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        line = _line_of(text, loc) if text else None
        where = f"{path}:{line}" if line else f"{path or 'settings'}"
        lines.append(f"{where}: key '{key}' (or ${env}): {msg}")
    return "\n".join(lines)
