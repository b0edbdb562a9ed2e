"""``letsbot doctor``: the configuration, its secrets, the database, each enabled platform."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Sequence
from pathlib import Path

from app.compose import CliError, config_path, engine_for, safe_url, sqlite_file
from app.logs import redacted
from app.partners import partner_checks
from app.platforms import enabled, load, secret_values
from app.secret_checks import secret_checks
from letsbot.config import ConfigError, Settings, load_settings
from letsbot.doctor import Check
from storage.doctor import database_checks

log = logging.getLogger("letsbot")


def cmd_doctor(args: argparse.Namespace) -> int:
    path = config_path(args)
    checks: list[Check] = []
    try:
        settings = load_settings(path)
    except ConfigError as error:
        checks.append(
            Check.failed(
                "configuration", str(error), "correct it (bot.toml.example shows every key)"
            )
        )
        return report_checks(checks)
    names = [listed.name for listed in enabled(settings)]
    checks.append(
        Check.passed(
            "configuration",
            f"{path} loads; chat platforms: {', '.join(names) or 'none (console only)'}",
        )
    )
    checks.extend(secret_checks(settings, path))
    database = None
    try:
        engine = engine_for(settings, path.parent)
    except CliError as error:
        checks.append(Check.failed("database", str(error), "correct storage.url"))
    else:
        checks.extend(database_checks(engine, settings.group_limits, safe_url(str(engine.url))))
        database = sqlite_file(engine)
        checks.extend(partner_checks(settings, path, engine))
    with redacted(secret_values(settings)):
        checks.extend(asyncio.run(platform_checks(settings, database)))
    return report_checks(checks)


async def platform_checks(settings: Settings, database: Path | None = None) -> list[Check]:
    """Each enabled chat platform asked by its own adapter (the SDKs load only now).

    ``database``: the SQLite file, beside which a platform may keep its own files.
    """
    checks: list[Check] = []
    for listed in enabled(settings):
        platform = load(listed)
        probe = platform.diagnose(platform.configured(settings).beside(database))
        checks.extend(await unexpected(platform.name, probe))
    return checks


async def unexpected(platform: str, probe: Awaitable[list[Check]]) -> list[Check]:
    """A probe that breaks in a way nobody foresaw is a failed check, not a traceback."""
    try:
        return await probe
    except Exception as error:
        log.exception("doctor: the %s check broke", platform)
        return [
            Check.failed(
                platform,
                f"the check itself broke ({type(error).__name__})",
                "read the log lines above, and the README section of this platform",
            )
        ]


def report_checks(checks: Sequence[Check]) -> int:
    for check in checks:
        print(check.line())
    failed = sum(1 for check in checks if not check.ok)
    if failed:
        print(f"{failed} of {len(checks)} checks failed")
        return 1
    print(f"all {len(checks)} checks passed")
    return 0
