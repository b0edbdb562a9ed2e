"""The chat platforms ``letsbot run`` serves and ``letsbot doctor`` checks: one line each.

A platform named ``x`` is the adapter module ``adapters/x.py``, which ends
with ``DESCRIPTOR``, a ``letsbot.platforms.Platform``; the section ``[x]`` of
bot.toml, a ``PlatformSection`` field of ``letsbot.config.Settings``; and its
line below. The adapter module, and with it its SDK, is imported only when its
platform is enabled: a one-platform run, the console and the other
subcommands start faster and stay smaller.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from letsbot.config import Settings
from letsbot.platforms import Platform


@dataclass(frozen=True)
class Listed:
    name: str  # of its adapter module and its section in bot.toml
    title: str  # as people write it


PLATFORMS = (
    Listed("telegram", "Telegram"),
    Listed("matrix", "Matrix"),
)


def enabled(settings: Settings) -> list[Listed]:
    sections = settings.platforms()
    return [listed for listed in PLATFORMS if sections[listed.name].enabled]


def load(listed: Listed) -> Platform[Any]:
    """The platform's descriptor; this imports its adapter and SDK."""
    module = f"adapters.{listed.name}"
    descriptor = importlib.import_module(module).DESCRIPTOR
    if not isinstance(descriptor, Platform) or descriptor.name != listed.name:
        raise TypeError(f"{module}.DESCRIPTOR is no Platform named {listed.name!r}")
    return descriptor


def secret_values(settings: Settings) -> list[str]:
    """The values of every enabled platform's secrets (and the partner key), to redact
    them from the log."""
    found = [
        section.secret(key)
        for section in settings.platforms().values()
        if section.enabled
        for key in section.secret_keys()
    ]
    partner_key = settings.partners.private_key()  # the partner signing key, when given so
    return [*found, partner_key] if partner_key else found
