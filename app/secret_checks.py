"""``letsbot doctor``'s lines on secrets: where each comes from, never its value."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from letsbot.config import Settings
from letsbot.doctor import Check


@dataclass(frozen=True)
class Found:
    """A secret as the configuration holds it (never its value)."""

    name: str  # as doctor names it
    key: str  # section.key in the file
    variable: str  # LETSBOT_<variable>
    in_file: bool
    overridden: bool  # by the environment: the file's copy is ignored


def secret_checks(settings: Settings, path: Path) -> list[Check]:
    """Where each secret comes from; never its value.

    Fails for every secret written in ``path`` (also of a platform that is off, and
    a password inside storage.url) when others may read the file, and for one the
    environment overrides: the file's copy is then ignored, and only a risk.
    """
    written = _written(path)
    checks = []
    for section_name, section in settings.platforms().items():
        used = section.secrets_in_use() if section.enabled else []
        for key in section.secret_keys():
            name = f"{section_name} {key.replace('_', ' ')}"  # e.g. matrix access token
            variable = f"{section_name}__{key}".upper()
            value = written.get(section_name, {}).get(key)
            in_file = isinstance(value, str) and bool(value.strip())
            effective = getattr(section, key).get_secret_value()
            overridden = in_file and (effective != value or _in_environment(variable))
            if in_file or key in used:
                found = Found(name, f"{section_name}.{key}", variable, in_file, overridden)
                elsewhere = f"LETSBOT_{variable} or {section_name}.{key}_file"
                secret_file = str(section.secret_file(key))
                checks.append(_secret_check(found, path, elsewhere, secret_file))
    checks.extend(_database_password_check(settings, path, written))
    return checks


def _secret_check(found: Found, path: Path, elsewhere: str, secret_file: str) -> Check:
    """``elsewhere``: where the secret belongs; ``secret_file``: the *_file it may come from."""
    name = found.name
    if found.overridden:
        return Check.failed(
            name,
            f"LETSBOT_{found.variable} overrides {found.key}, so the copy in {path} is ignored",
            f"remove {found.key} from {path}",
        )
    if found.in_file and (readers := _readers(path)):
        return Check.failed(
            name,
            f"written in {path}, which {readers} may read",
            f"move it to {elsewhere}, or 'chmod go-r {path}' if the bot runs as its owner",
        )
    if found.in_file:
        return Check.passed(name, f"set, in {path}")
    if _in_environment(found.variable):
        return Check.passed(name, f"set, from LETSBOT_{found.variable}")
    return Check.passed(name, f"set, from {secret_file}")


def _database_password_check(
    settings: Settings, path: Path, written: dict[str, Any]
) -> list[Check]:
    url = written.get("storage", {}).get("url")
    in_file = isinstance(url, str) and bool(_password(url))
    if not in_file and not _password(settings.storage.url):
        return []  # no password at all (SQLite, or a server that trusts the bot's user)
    overridden = in_file and settings.storage.url != url
    found = Found("database password", "storage.url", "STORAGE__URL", in_file, overridden)
    return [_secret_check(found, path, "LETSBOT_STORAGE__URL (the whole URL)", "")]


def _written(path: Path) -> dict[str, Any]:
    """The config file as written, before the environment overrides anything."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, ValueError):
        return {}


def _password(url: str) -> str | None:
    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        return None


def _in_environment(variable: str) -> bool:
    wanted = f"LETSBOT_{variable}".lower()  # pydantic-settings reads names in any case
    return any(key.lower() == wanted and value for key, value in os.environ.items())


def _readers(path: Path) -> str:
    """Who besides the file's owner may read ``path``: '' when nobody."""
    mode = path.stat().st_mode
    if mode & 0o004:
        return "everyone on this server"
    if mode & 0o040:
        return "its group"
    return ""
