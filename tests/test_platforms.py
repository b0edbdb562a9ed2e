"""The table of chat platforms agrees with the adapters and with the configuration."""

from __future__ import annotations

from app.platforms import PLATFORMS, load
from letsbot.config import PLATFORM_SECTIONS


def test_each_listed_platform_has_its_descriptor_and_its_config_section() -> None:
    assert [listed.name for listed in PLATFORMS] == list(PLATFORM_SECTIONS)
    for listed in PLATFORMS:
        platform = load(listed)
        assert platform.section is PLATFORM_SECTIONS[listed.name]
        assert (
            platform.build(  # the transport serves the identities of its own platform
                platform.section(), _NoStore(), {}, language="nl", group_name="LETS"
            ).platform
            == listed.name
        )


class _NoStore:
    """Building a transport touches no store; starting it would."""
