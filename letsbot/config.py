"""Configuration: a TOML file, overridden by ``LETSBOT_<SECTION>__<KEY>`` variables."""

from __future__ import annotations

import os
import re
import tomllib
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from letsbot.amounts import Currency
from letsbot.domain import GroupLimits, Identity

_DURATION_PART = re.compile(r"([0-9]+)\s*([dhms])", re.ASCII)
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(value: Any) -> timedelta:
    """``"24h"``, ``"7d"``, ``"1h30m"`` -> timedelta."""
    if isinstance(value, timedelta):
        return value
    text = str(value).strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError("expected a duration such as 30m, 24h or 7d")
    return timedelta(**{_UNITS[u]: int(n) for n, u in parts}) if parts else timedelta()


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GroupSection(Section):
    name: str = "LETS"
    language: Literal["nl", "en"] = "nl"
    timezone: str = "Europe/Brussels"
    coordinators: list[str] = Field(default_factory=list)
    open_bookkeeping: bool = True
    code_prefix: str = Field(default="LETS", pattern=r"^[A-Za-z]{1,8}$")
    confirmation_timeout: Duration = timedelta(hours=24)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected a time zone name such as Europe/Brussels") from None
        return value

    @field_validator("coordinators")
    @classmethod
    def _identities(cls, value: list[str]) -> list[str]:
        for item in value:
            Identity.parse(item)
        return value


class CurrencySection(Section):
    name: str = "pluim"
    plural: str = "pluimen"
    decimals: int = Field(default=0, ge=0, le=4)
    units_per_hour: int = Field(default=60, gt=0)


class LimitsSection(Section):
    """In whole units as members see them, not minor units."""

    min_balance: int = Field(default=-1500, le=0)
    max_balance: int = Field(default=1500, ge=0)
    soft: bool = False
    start_credit: int = Field(default=0, ge=0)
    max_transfer: int = Field(default=100000, gt=0)


class StorageSection(Section):
    url: str = "sqlite:///var/letsbot.db"
    # NORMAL is SQLite's advice for WAL: safe against crashes of the bot; FULL
    # also survives a power cut at the cost of one disk flush per booking.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"


def _secret(value: SecretStr, path: Path | None) -> str:
    """A secret from the config value, else from its ``*_file``; '' when neither is set."""
    if value.get_secret_value():
        return value.get_secret_value().strip()
    if path is not None:
        return path.read_text(encoding="utf-8").strip()
    return ""


class PlatformSection(Section):
    """The section of a chat platform (its adapter declares a ``letsbot.platforms.Platform``).

    Every ``SecretStr`` key is a secret, with a ``<key>_file`` twin it is read from
    when empty: validation, ``letsbot doctor`` and the log redaction find them here,
    without loading the platform's SDK.
    """

    enabled: bool = False

    @classmethod
    def secret_keys(cls) -> tuple[str, ...]:
        return tuple(
            key for key, field in cls.model_fields.items() if field.annotation is SecretStr
        )

    def secret_file(self, key: str) -> Path | None:
        file: Path | None = getattr(self, f"{key}_file")
        return file

    def secret(self, key: str) -> str:
        """The secret ``key`` from the file or the environment, else from its ``*_file``."""
        value: SecretStr = getattr(self, key)
        return _secret(value, self.secret_file(key))

    def beside(self, database: Path | None) -> Self:
        """The section with the defaults that depend on the SQLite file ``database`` (if any)."""
        return self

    def secrets_in_use(self) -> list[str]:
        """The secret keys the bot connects with, when the platform is enabled."""
        return list(self.secret_keys())

    def problem(self) -> str | None:
        """What keeps the enabled platform from starting, as ``section.key: what``."""
        return None


class TelegramSection(PlatformSection):
    # Secrets: prefer LETSBOT_TELEGRAM__TOKEN or token_file over the file itself.
    token: SecretStr = SecretStr("")
    token_file: Path | None = None
    base_url: str = "https://api.telegram.org/bot"
    group_chat_ids: list[int] = Field(default_factory=list)

    def bot_token(self) -> str:
        """The token from ``token``, else from ``token_file``; '' when neither is set."""
        return self.secret("token")

    def problem(self) -> str | None:
        if not self.bot_token():
            return "telegram.token: empty; set LETSBOT_TELEGRAM__TOKEN or telegram.token_file"
        return None


class MatrixSection(PlatformSection):
    homeserver: str = ""  # e.g. https://matrix.example.org
    user_id: str = ""  # the bot's account, e.g. @letsbot:example.org
    # Secrets: prefer LETSBOT_MATRIX__PASSWORD / __ACCESS_TOKEN or the *_file keys.
    password: SecretStr = SecretStr("")
    password_file: Path | None = None
    access_token: SecretStr = SecretStr("")
    access_token_file: Path | None = None
    device_name: str = "letsbot"
    group_rooms: list[str] = Field(default_factory=list)  # room ids or aliases
    # The private folder of the encryption keys; empty: beside the SQLite database file.
    store_path: Path | None = None
    # Encrypts the keys in that folder; empty: a key generated in the folder itself.
    pickle_key: SecretStr = SecretStr("")
    pickle_key_file: Path | None = None
    # Opens the account's secret storage, to restore cross-signing keys the account
    # already has (a lost store); empty: the bot makes one and keeps it in the store folder.
    recovery_key: SecretStr = SecretStr("")
    recovery_key_file: Path | None = None

    @field_validator("user_id")
    @classmethod
    def _mxid(cls, value: str) -> str:
        if value and not re.fullmatch(r"@[^:\s]+:\S+", value):
            raise ValueError("expected a Matrix user id such as @letsbot:example.org")
        return value

    @field_validator("group_rooms")
    @classmethod
    def _rooms(cls, value: list[str]) -> list[str]:
        for room in value:
            # Room version 12 ids have no server part: "!abc" as well as "!abc:example.org".
            if not re.fullmatch(r"![^\s:]+(:\S+)?|#[^\s:]+:\S+", room):
                raise ValueError(
                    "expected room ids (!abc:example.org) or aliases (#name:example.org)"
                )
        return value

    def login_password(self) -> str:
        return self.secret("password")

    def token(self) -> str:
        return self.secret("access_token")

    def secrets_in_use(self) -> list[str]:
        # An access token, when there is one, is used instead of logging in.
        used = ["access_token"] if self.token() else ["password"]
        optional = [key for key in ("pickle_key", "recovery_key") if self.secret(key)]
        return [*used, *optional]

    def beside(self, database: Path | None) -> Self:
        """With ``store_path`` beside the SQLite file ``database`` when none is configured."""
        if self.store_path is not None or database is None:
            return self
        return self.model_copy(update={"store_path": database.parent / f"{database.stem}-matrix"})

    def problem(self) -> str | None:
        if not self.homeserver.startswith(("http://", "https://")):
            return "matrix.homeserver: expected a URL such as https://matrix.example.org"
        if not self.user_id:
            return "matrix.user_id: empty; e.g. @letsbot:example.org"
        if not self.login_password() and not self.token():
            return (
                "matrix.password: empty, and so is matrix.access_token; set"
                " LETSBOT_MATRIX__PASSWORD (or password_file) or LETSBOT_MATRIX__ACCESS_TOKEN"
            )
        return None


class RemindersSection(Section):
    offsets: list[Duration] = Field(
        default_factory=lambda: [timedelta(days=7), timedelta(days=1), timedelta(hours=2)]
    )
    grace: Duration = timedelta(hours=6)
    digest_weekday: Literal[
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ] = "monday"
    digest_time: str = "09:00"  # local time of the weekly digest

    @field_validator("digest_time")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value, re.ASCII):
            raise ValueError("expected a time of day such as 09:00")
        return value

    @property
    def digest_clock(self) -> time:
        hour, minute = self.digest_time.split(":")
        return time(int(hour), int(minute))


class MarketSection(Section):
    listing_days: int = Field(default=90, ge=1, le=3650)  # how long a listing stays online
    max_days: int = Field(default=365, ge=1, le=3650)  # the latest "tot <date>" allowed
    announce: bool = True  # a new listing is posted in the group channels
    max_active: int = Field(default=50, ge=1)  # listings online per member
    msgs_per_hour: int = Field(default=20, ge=1)  # /msg, /contact and /request per sender
    expiry_notice: Duration = timedelta(days=7)  # the owner is told this long before; 0d: never


class GovernanceSection(Section):
    default_duration: Duration = timedelta(days=7)  # a proposal's deadline unless 'until'
    rule: Literal["majority", "supermajority", "consent"] = "majority"
    quorum: float = Field(default=0.25, ge=0, le=1)  # share of eligible members that votes
    supermajority: float = Field(default=0.667, gt=0.5, le=1)
    ballot: Literal["open", "secret"] = "open"
    early_close: bool = True  # close as soon as the outcome can no longer change


class ContributionsSection(Section):
    announce_days: int = Field(default=7, ge=0, le=60)  # told in the group this long before; 0: not
    new_member_days: int = Field(default=30, ge=0, le=3660)  # members this new don't pay yet
    run_time: str = "09:00"  # local time of day the contributions are booked

    @field_validator("run_time")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        return RemindersSection._time_of_day(value)

    @property
    def clock(self) -> time:
        hour, minute = self.run_time.split(":")
        return time(int(hour), int(minute))


class PartnersSection(Section):
    """Trade between groups: the address other groups' bots reach this one on, and
    this group's signing key. The partnerships themselves are in the database
    (``letsbot partner add``)."""

    listen: str = ""  # host:port of the partner endpoint inside 'letsbot run'; "": off
    # The private signing key (base64 seed): better LETSBOT_PARTNERS__KEY or key_file.
    key: SecretStr = SecretStr("")
    # Where the key is kept; empty: beside the SQLite file (var/letsbot-partner.key),
    # made on first use. Required with PostgreSQL unless the key itself is set.
    key_file: Path | None = None
    give_up: Duration = timedelta(days=2)  # a payment unanswered this long is booked back
    window: Duration = timedelta(minutes=5)  # a signed message older or newer is refused

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        if value and not re.fullmatch(r"[^\s:]+:[0-9]{1,5}", value):
            raise ValueError("expected host:port such as 127.0.0.1:8470")
        return value

    def private_key(self) -> str:
        """The key from ``key`` (the environment); '' when not set (then the file)."""
        return self.key.get_secret_value().strip()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LETSBOT_", env_nested_delimiter="__", extra="ignore"
    )

    group: GroupSection = Field(default_factory=GroupSection)
    currency: CurrencySection = Field(default_factory=CurrencySection)
    limits: LimitsSection = Field(default_factory=LimitsSection)
    storage: StorageSection = Field(default_factory=StorageSection)
    telegram: TelegramSection = Field(default_factory=TelegramSection)
    matrix: MatrixSection = Field(default_factory=MatrixSection)
    reminders: RemindersSection = Field(default_factory=RemindersSection)
    market: MarketSection = Field(default_factory=MarketSection)
    governance: GovernanceSection = Field(default_factory=GovernanceSection)
    contributions: ContributionsSection = Field(default_factory=ContributionsSection)
    partners: PartnersSection = Field(default_factory=PartnersSection)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init arguments; the environment wins over them.
        return env_settings, init_settings

    def platforms(self) -> dict[str, PlatformSection]:
        """Each chat platform's section, by the name of its section in the file."""
        return {name: getattr(self, name) for name in PLATFORM_SECTIONS}

    # Derived views the core works with.
    @property
    def currency_spec(self) -> Currency:
        return Currency(self.currency.name, self.currency.plural, self.currency.decimals)

    def minor(self, units: int) -> int:
        return units * int(10**self.currency.decimals)

    @property
    def group_limits(self) -> GroupLimits:
        return GroupLimits(
            self.minor(self.limits.min_balance),
            self.minor(self.limits.max_balance),
            self.limits.soft,
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.group.timezone)

    @property
    def coordinator_identities(self) -> frozenset[Identity]:
        return frozenset(Identity.parse(i) for i in self.group.coordinators)


# The chat platforms' sections, found by their type: a new one needs no other line here.
PLATFORM_SECTIONS: dict[str, type[PlatformSection]] = {
    name: field.annotation
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, PlatformSection)
}
# never echoed in an error
SECRET_KEYS = {key for section in PLATFORM_SECTIONS.values() for key in section.secret_keys()} | {
    "key"
}


class ConfigError(Exception):
    """One line for the person running the bot: which file, which key, what is expected."""


def default_config_path() -> Path:
    return Path(os.environ.get("LETSBOT_CONFIG") or "bot.toml")


def load_settings(path: Path | None, *, required: bool = True) -> Settings:
    """Settings from ``path`` (TOML) and the environment; ``ConfigError`` names any problem."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            if required:
                raise ConfigError(
                    f"{path}: file not found (create one with 'letsbot init')"
                ) from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text (TOML files are)") from None
        except OSError as error:  # a folder, or a file the bot's user may not read
            raise ConfigError(f"{path}: can't read it: {error.strerror}") from None
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"{path}: unknown section [{unknown[0]}]")
    try:
        settings = Settings(**data)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        what = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        secret = bool(SECRET_KEYS & {str(part) for part in first["loc"]})
        quiet = secret or first["type"] == "extra_forbidden"
        got = "" if quiet else f" (got {first['input']!r})"
        raise ConfigError(f"{path or 'environment'}: {key}: {what}{got}") from None
    if settings.market.listing_days > settings.market.max_days:
        raise ConfigError(f"{path}: market.listing_days: must not exceed market.max_days")
    if settings.limits.start_credit > settings.limits.max_balance:
        raise ConfigError(f"{path}: limits.start_credit: must not exceed limits.max_balance")
    for name, section in settings.platforms().items():
        _check_platform(name, section, path)
    _place_matrix_store(settings, path)
    return settings


def _place_matrix_store(settings: Settings, path: Path | None) -> None:
    """A relative ``matrix.store_path`` is relative to the config file's folder; with a
    database server (no SQLite file to put it beside) it must be set."""
    matrix = settings.matrix
    if matrix.store_path is not None and not matrix.store_path.is_absolute() and path:
        matrix.store_path = (path.parent / matrix.store_path).resolve()
    if (
        matrix.enabled
        and matrix.store_path is None
        and not settings.storage.url.startswith("sqlite:")
    ):
        raise ConfigError(
            f"{path or 'environment'}: matrix.store_path: empty; with a database server it must"
            " name a private folder for the bot's encryption keys, e.g. /var/lib/letsbot/matrix"
        )


def _check_platform(name: str, section: PlatformSection, path: Path | None) -> None:
    for key in section.secret_keys():
        try:
            section.secret(key)  # an unreadable *_file is a mistake even while it is off
        except OSError as error:
            file = section.secret_file(key)
            raise ConfigError(
                f"{path}: {name}.{key}_file: can't read {file}: {error.strerror}"
            ) from None
    if section.enabled and (problem := section.problem()) is not None:
        raise ConfigError(f"{path}: {problem}")


def resolve_sqlite_path(url: str, base: Path) -> str:
    """A relative SQLite file in the config is relative to the config file's folder."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix + ":memory:":
        return url
    path = Path(url[len(prefix) :])
    if path.is_absolute():
        return url
    return prefix + str((base / path).resolve())
