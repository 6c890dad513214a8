"""Server settings: a TOML file, overridden by ``MAX_<SECTION>__<KEY>`` environment variables.

The file comes from ``--config PATH`` or ``MAX_CONFIG``. Other ``MAX_*`` variables (``MAX_URL``,
``MAX_TOKEN``, ``MAX_CONFIG``, ``MAX_TEST_*``) belong to clients and tests; they have no ``__``
and are never read as settings. ``config.example.toml`` documents every key.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from max_server.domain.durations import parse_duration

APP_NAME = "max"
INSECURE_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105  (refused in production)

Duration = Annotated[int, BeforeValidator(parse_duration), Field(ge=0)]


class ConfigError(Exception):
    """A configuration problem, described in one line that names the setting."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    environment: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_url: str = ""
    secret_key: str = INSECURE_SECRET_KEY
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    max_body_bytes: int = Field(3 * 1024 * 1024, ge=1024)
    metrics_token: str = ""

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class DatabaseSettings(_Section):
    url: str = ""
    auto_migrate: bool | None = None
    pool_size: int = Field(10, ge=1, le=200)
    echo: bool = False


class StorageSettings(_Section):
    backend: Literal["local", "s3"] = "local"
    path: str = ""
    bucket: str = ""
    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""


class MediaSettings(_Section):
    retention_days: int = Field(7, ge=1)
    link_ttl: Duration = 3600


class WhatsAppSettings(_Section):
    app_secret: str = ""
    verify_token: str = ""
    access_token: str = ""
    phone_number_id: str = ""
    waba_id: str = ""
    display_phone_number: str = ""
    graph_url: str = "https://graph.facebook.com/v23.0"
    timeout: Duration = 20


class ChatAppSettings(_Section):
    secret: str = ""
    callback_url: str = ""


class RateLimitSettings(_Section):
    messages_per_minute: int = Field(20, ge=1)
    conversations_per_hour: int = Field(5, ge=1)
    block_minutes: int = Field(10, ge=0)


class RoutingSettings(_Section):
    reopen_window: Duration = 24 * 3600
    presence_timeout: Duration = 90
    requeue_after: Duration = 300
    skills_relax_after: Duration = 120


class WebhookSettings(_Section):
    allow_private_networks: bool = False
    timeout: Duration = 15
    max_attempts: int = Field(8, ge=1, le=20)
    disable_after: Duration = 5 * 86400


class EventSettings(_Section):
    retention_days: int = Field(30, ge=1)


class JobSettings(_Section):
    enabled: bool = True
    concurrency: int = Field(4, ge=1, le=64)
    claim_batch: int = Field(8, ge=1, le=100)
    lease: Duration = 60
    poll_interval: float = Field(2.0, gt=0)
    retention_days: int = Field(7, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MAX_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    media: MediaSettings = MediaSettings()
    whatsapp: WhatsAppSettings = WhatsAppSettings()
    chat_app: ChatAppSettings = ChatAppSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    routing: RoutingSettings = RoutingSettings()
    webhooks: WebhookSettings = WebhookSettings()
    events: EventSettings = EventSettings()
    jobs: JobSettings = JobSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file, which arrives as init keyword arguments.
        return (env_settings, init_settings)

    # Derived values -------------------------------------------------------------------
    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{data_dir() / 'max.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def auto_migrate(self) -> bool:
        if self.database.auto_migrate is not None:
            return self.database.auto_migrate
        return self.is_sqlite

    @property
    def storage_path(self) -> Path:
        return Path(self.storage.path) if self.storage.path else data_dir() / "media"


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def config_path_from_env(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    value = explicit or os.environ.get("MAX_CONFIG")
    return Path(value) if value else None


def load_settings(config: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Reads the file (``config`` or ``MAX_CONFIG``), applies the environment, validates.

    Raises :class:`ConfigError` with one line naming the problem.
    """
    path = config_path_from_env(config)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    check_consistency(settings)
    check_production(settings)
    return settings


def check_consistency(settings: Settings) -> None:
    """Settings that are each valid but make no sense together."""
    if settings.storage.backend == "s3" and not settings.storage.bucket:
        raise ConfigError('storage.bucket (MAX_STORAGE__BUCKET) is required when storage.backend is "s3"')


def _describe(exc: ValidationError, path: Path | None) -> str:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    env = "MAX_" + "__".join(str(part) for part in first["loc"]).upper()
    where = f"{path} or {env}" if path else env
    if first["type"] == "extra_forbidden":
        problem = "unknown setting"
    else:
        problem = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"invalid setting {key} ({where}): {problem}{more}"


def check_production(settings: Settings) -> None:
    """Production refuses missing or default secrets, naming the setting to fix."""
    if settings.server.environment != "production":
        return
    if settings.server.secret_key in ("", INSECURE_SECRET_KEY) or len(settings.server.secret_key) < 16:
        raise ConfigError(
            "server.secret_key (MAX_SERVER__SECRET_KEY) must be set to a random value of at "
            "least 16 characters in production"
        )
    if settings.whatsapp.phone_number_id:
        for key in ("app_secret", "verify_token", "access_token"):
            if not getattr(settings.whatsapp, key):
                raise ConfigError(
                    f"whatsapp.{key} (MAX_WHATSAPP__{key.upper()}) is required in production "
                    "when whatsapp.phone_number_id is set"
                )
    if settings.chat_app.callback_url and not settings.chat_app.secret:
        raise ConfigError(
            "chat_app.secret (MAX_CHAT_APP__SECRET) is required in production when "
            "chat_app.callback_url is set"
        )
    scheme = urlsplit(settings.database_url).scheme
    if not scheme:
        raise ConfigError("database.url (MAX_DATABASE__URL) is not a database URL")
