"""What the composition root needs of a chat platform, declared by its adapter.

Each adapter module (``adapters/telegram.py``, ``adapters/matrix.py``) ends with
one ``Platform``; the composition root lists them in one table. The secrets live
on the config section (``letsbot.config.PlatformSection``), so validation,
``letsbot doctor`` and the log redaction know them without loading an SDK.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from letsbot.config import PlatformSection, Settings
from letsbot.doctor import Check
from letsbot.hub import PlatformStore, Transport
from letsbot.i18n import Translator

SectionT = TypeVar("SectionT", bound=PlatformSection)
SectionT_contra = TypeVar("SectionT_contra", bound=PlatformSection, contravariant=True)


class BuildTransport(Protocol[SectionT_contra]):
    """A transport, not started yet, for the platform's section of the settings."""

    def __call__(
        self,
        section: SectionT_contra,
        store: PlatformStore,
        translators: Mapping[str, Translator],
        *,
        language: str,
        group_name: str,
        tuning: Any = None,  # the adapter's own limits and patience; tests shrink them
    ) -> Transport: ...


@dataclass(frozen=True)
class Platform(Generic[SectionT]):
    name: str  # its section in bot.toml, and the platform of its identities and chats
    section: type[SectionT]
    build: BuildTransport[SectionT]
    diagnose: Callable[[SectionT], Awaitable[list[Check]]]  # letsbot doctor's probes

    def configured(self, settings: Settings) -> SectionT:
        section = settings.platforms()[self.name]
        if not isinstance(section, self.section):
            raise TypeError(f"settings.{self.name} is no {self.section.__name__}")
        return section
