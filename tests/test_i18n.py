"""Every user-visible text lives in both catalogs, with the same placeholders."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from letsbot.amounts import Currency
from letsbot.domain import EventKind
from letsbot.i18n import LANGUAGES, Raw, Translator, catalog, placeholders
from letsbot.partner_requests import OWN_REASONS as REQUEST_REASONS
from letsbot.partners import REASONS as PARTNER_REASONS
from letsbot.registry import REGISTRY
from letsbot.when import REASONS

SOURCES = Path(__file__).resolve().parent.parent

# Keys the code builds from parts (f"amount.{reason}") are listed by their parts here.
DYNAMIC = {
    "amount": ["format", "decimals", "whole", "zero", "too_large"],
    "when": list(REASONS),
    "event.kind": [kind.value for kind in EventKind],
    "limit": [
        f"{whose}{kind}"
        for whose in ("", "own_")
        for kind in ("payer_min", "receiver_max", "payer_leaving", "receiver_leaving")
    ]
    + [
        f"room_{side}{none}"
        for side in ("pay", "paid", "receive", "received")
        for none in ("", "_none")
    ],
    "soft": ["payer_min", "receiver_max"],
    "bulk": [
        *(f"{key}_one" for key in ("done", "group", "many", "preview_ask", "preview_count")),
        *(f"{key}_one" for key in ("preview_more", "preview_soft", "preview_zero")),
        *("told_one_paid_one", "told_one_received_one", "soft_notify", "soft_notify_one"),
    ]
    + [
        f"refused_{kind}"
        for kind in ("payer_min", "receiver_max", "payer_leaving", "receiver_leaving")
    ]
    + [f"set_{many}" for many in ("everyone", "leaving", "coordinators")],
    "status": ["active", "candidate", "leaving", "inactive"],
    "partner_request.reason": list(REQUEST_REASONS),
    "confirm": ["was_accepted", "was_declined", "was_superseded"],
    "event": [
        *("line_untitled", "line_unsaved_untitled", "going_count_none", "going_count_one"),
        *("going_done_named", "not_going_done_named"),
    ],
    "events": ["line_none", "line_one"],
    "contribution": ["done_one", "skipped_one", "nobody_skipped_one", "soft_notify"]
    + ["soft_notify_one"]
    + [f"status_{status}" for status in ("active", "paused", "ended", "proposed", "rejected")],
    "partner.reason": list(PARTNER_REASONS),
    "partner.advice": ["unknown", "not_active"],
    "partner_request.here": list(PARTNER_REASONS),
    "cmd": ["propose_contribution.example"],  # a proposal that carries a contribution
}


def keys_used_in_code() -> set[str]:
    found: set[str] = set()
    literal = re.compile(r"""["']([a-z_]{2,}\.[a-z_.]{2,})["']""")
    for folder in ("app", "letsbot", "adapters"):
        for path in (SOURCES / folder).rglob("*.py"):
            for key in literal.findall(path.read_text(encoding="utf-8")):
                if key.split(".")[0] in {"bot", "storage"}:  # file names, not messages
                    continue
                found.add(key)
    for prefix, parts in DYNAMIC.items():
        found.update(f"{prefix}.{part}" for part in parts)
    for command in REGISTRY.commands:
        found.update(f"cmd.{command.name}.{part}" for part in ("usage", "help", "example"))
    return found


def test_both_languages_have_the_same_keys() -> None:
    nl, en = catalog("nl"), catalog("en")
    assert sorted(set(nl) - set(en)) == []
    assert sorted(set(en) - set(nl)) == []


@pytest.mark.parametrize("key", sorted(catalog("nl")))
def test_placeholders_match(key: str) -> None:
    assert placeholders(catalog("nl")[key]) == placeholders(catalog("en")[key])


def test_every_key_the_code_uses_is_in_the_catalogs() -> None:
    used = keys_used_in_code()
    for language in LANGUAGES:
        missing = sorted(used - set(catalog(language)))
        assert missing == [], f"{language}.po lacks {missing}"


def test_no_unused_keys() -> None:
    unused = sorted(set(catalog("nl")) - keys_used_in_code())
    assert unused == []


def test_examples_use_the_command_word_of_their_language() -> None:
    for command in REGISTRY.commands:
        for language in LANGUAGES:
            example = catalog(language)[f"cmd.{command.name}.example"]
            usage = catalog(language)[f"cmd.{command.name}.usage"]
            word = "/" + command.name_in(language)
            assert example.split()[0] == word, (language, example)
            assert usage.split()[0] == word, (language, usage)


def translator(language: str, decimals: int = 0) -> Translator:
    return Translator(language, Currency("pluim", "pluimen", decimals), ZoneInfo("Europe/Brussels"))


def test_amounts_follow_the_locale() -> None:
    assert translator("nl").amount(-1500) == "-1.500 pluimen"
    assert translator("en").amount(-1500) == "-1,500 pluimen"
    assert translator("nl").amount(1) == "1 pluim"
    assert translator("nl", decimals=2).amount(150) == "1,50 pluimen"
    assert translator("en", decimals=2).amount(100) == "1.00 pluim"


def test_dates_follow_the_locale_and_timezone() -> None:
    moment = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # 09:00 in Brussels
    assert translator("nl").moment(moment) == "1 dec 2026 09:00"
    assert translator("en").moment(moment) == "1 Dec 2026 09:00"


def test_values_are_escaped_but_nested_texts_are_not() -> None:
    t = translator("en")
    assert t("pay.self") == "You can't pay yourself."
    text = t("pay.ask", amount=t.amount(30), who="**Bob**", description="a*b")
    assert "\\*\\*Bob\\*\\*" in text and "a\\*b" in text
    assert t("help.example", example=Raw("**x**")) == "For example: **x**"


def test_missing_key_is_an_error() -> None:
    with pytest.raises(KeyError):
        translator("nl")("no.such.key")


def test_a_text_with_placeholders_is_never_asked_for_without_them() -> None:
    """``t("confirm.declined")`` would show "{question}" to a member."""
    bare = re.compile(r"""\bt\(\s*["']([a-z_]{2,}\.[a-z_.]{2,})["']\s*\)""")
    wrong = []
    for folder in ("app", "letsbot", "adapters"):
        for path in (SOURCES / folder).rglob("*.py"):
            for key in bare.findall(path.read_text(encoding="utf-8")):
                for language in LANGUAGES:
                    if placeholders(catalog(language).get(key, "")):
                        wrong.append(f"{path.name}: {key} ({language})")
    assert wrong == []
