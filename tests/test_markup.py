"""Catalog texts may be bold; what members typed shows exactly as typed, on every platform."""

from __future__ import annotations

import html
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from adapters.console import render
from adapters.matrix import MatrixTransport
from adapters.telegram import _keyboard, split_markup
from letsbot.config import MatrixSection
from letsbot.markup import escape, to_html, to_plain
from letsbot.messages import Outgoing, ToAllGroups
from storage.platform import SqlPlatformStore
from tests.support import START, Driver, make_settings


def test_bold_renders() -> None:
    assert to_plain("**Ja** of nee") == "Ja of nee"
    assert to_html("**Ja** of <nee>") == "<b>Ja</b> of &lt;nee&gt;"


def test_unclosed_bold_is_closed_in_html() -> None:
    assert to_html("**open") == "<b>open</b>"


@given(st.text())
def test_escaped_text_comes_back_unchanged(text: str) -> None:
    assert to_plain(escape(text)) == text
    assert to_html(escape(text)) == html.escape(text, quote=False)
    # inside catalog bold too: a value can't close or open it
    assert to_html(f"**{escape(text)}** x") == f"<b>{html.escape(text, quote=False)}</b> x"


def test_what_members_type_is_shown_literally() -> None:
    for typed, shown in (
        ("**x", "**x"),
        ("a\\b", "a\\b"),
        ("\\", "\\"),
        ("\\**", "\\**"),
        ("<b>bold</b>", "&lt;b&gt;bold&lt;/b&gt;"),
        ("R&D_x_", "R&amp;D_x_"),
    ):
        assert to_plain(escape(typed)) == typed
        assert to_html(escape(typed)) == shown
        assert to_html("Keuze: " + escape(typed)) == "Keuze: " + shown


# End to end: a member's markup-like text, from a command to what each platform sends.

MARKS = "**x \\ <b>&_"


def platforms(driver: Driver, engine: Engine) -> MatrixTransport:
    return MatrixTransport(
        MatrixSection(),
        SqlPlatformStore(engine, "matrix", driver.clock),
        driver.bot.translators,
        language="nl",
        group_name="LETS Durme",
    )


def shown(matrix: MatrixTransport, outgoing: Outgoing) -> tuple[str, str, str, str]:
    """What the console prints, Matrix's body and formatted_body, Telegram's HTML."""
    content = matrix._content(outgoing, None)
    telegram = "\n".join(to_html(chunk) for chunk in split_markup(outgoing.text))
    return render(outgoing), content["body"], content["formatted_body"], telegram


def test_a_proposal_with_markup_in_its_title_and_options_shows_it_literally(
    engine: Engine,
) -> None:
    driver = Driver(engine, make_settings())
    driver.member("an")
    matrix = platforms(driver, engine)
    result = driver.send(
        driver.incoming("an", "/voorstel Titel **x \\ <b> | **x | a\\b | <b>&_", group=True)
    )
    announce = next(o for o in result.replies if isinstance(o.target, ToAllGroups))
    console, body, formatted, telegram = shown(matrix, announce)
    assert "  Titel **x \\ <b>" in console
    assert "Keuzes: 1 **x, 2 a\\b, 3 <b>&_" in console
    assert "\nTitel **x \\ <b>\nKeuzes: 1 **x, 2 a\\b, 3 <b>&_\n" in body
    assert "\n1\ufe0f\u20e3 **x\n2\ufe0f\u20e3 a\\b\n3\ufe0f\u20e3 <b>&_\n" in body
    literal = "<br>Titel **x \\ &lt;b&gt;<br>Keuzes: 1 **x, 2 a\\b, 3 &lt;b&gt;&amp;_<br>"
    assert literal in formatted
    assert (
        "<br>1\ufe0f\u20e3 **x<br>2\ufe0f\u20e3 a\\b<br>3\ufe0f\u20e3 &lt;b&gt;&amp;_<br>"
        in formatted
    )
    assert formatted.count("<b>") == formatted.count("</b>") == 1  # the catalog's own bold
    assert "\nTitel **x \\ &lt;b&gt;\nKeuzes: 1 **x, 2 a\\b, 3 &lt;b&gt;&amp;_\n" in telegram
    keyboard = _keyboard(announce)
    assert keyboard is not None
    assert [b.text for row in keyboard.inline_keyboard for b in row] == ["**x", "a\\b", "<b>&_"]
    # Details with the vote choices offered to the member, their vote, and the result.
    details = driver.send(driver.incoming("an", "/stemming 1")).replies[0]
    console, body, formatted, telegram = shown(matrix, details)
    assert "\n1\ufe0f\u20e3 **x\n2\ufe0f\u20e3 a\\b\n3\ufe0f\u20e3 <b>&_\n" in body
    assert (
        "<br>1\ufe0f\u20e3 **x<br>2\ufe0f\u20e3 a\\b<br>3\ufe0f\u20e3 &lt;b&gt;&amp;_<br>"
        in formatted
    )
    vote = driver.say("an", "/stem 1 1")
    assert "Je stem op voorstel #1: **x." in vote
    closed = driver.send(driver.incoming("admin", "/stem 1 3")).replies  # all voted: closed
    result_post = next(o for o in closed if "Uitslag" in o.text)
    console, body, formatted, telegram = shown(matrix, result_post)
    assert "Uitslag voorstel #1: Titel **x \\ <b>" in console
    assert "**x: 1, a\\b: 0, <b>&_: 1" in body
    assert "**x: 1, a\\b: 0, &lt;b&gt;&amp;_: 1" in formatted
    assert "**x: 1, a\\b: 0, &lt;b&gt;&amp;_: 1" in telegram


def test_typed_text_is_shown_literally_in_every_reply_on_every_platform(engine: Engine) -> None:
    """Each reply that shows a member's text shows it whole: never bold, never lost, never doubled."""
    driver = Driver(engine, make_settings())
    matrix = platforms(driver, engine)
    seen: list[str] = []

    def check(outgoing: list[Outgoing], typed: str) -> None:
        for reply in outgoing:
            console, body, formatted, telegram = shown(matrix, reply)
            for where, text, literal in (
                ("console", console, MARKS),
                ("matrix body", body, MARKS),
                ("matrix html", formatted.replace("<br>", "\n"), html.escape(MARKS, quote=False)),
                ("telegram", telegram, html.escape(MARKS, quote=False)),
            ):
                assert text.count("x \\") == text.count(literal), (typed, where, text)
            seen.append(console)

    def say(who: str, typed: str, **kwargs: bool) -> None:
        check(driver.send(driver.incoming(who, typed, **kwargs)).replies, typed)

    driver.member("an", f"An {MARKS}")
    driver.member("bo", f"Bo {MARKS}")
    for who, typed in (
        ("an", f"/betaal DU-003 5 soep {MARKS}"),
        ("an", "ja"),
        ("bo", f"/vraagbetaling DU-002 5 tuin {MARKS}"),
        ("an", "ja"),
        ("admin", f"/boeken DU-002 DU-003 4 fiets {MARKS}"),
        ("admin", "ja"),
        ("admin", f"/terugboeken 1 vergissing {MARKS}"),
        ("admin", "ja"),
        ("an", "/overzicht"),
        ("admin", "/leden"),
        ("an", f"/aanbod Fiets {MARKS} #fiets"),
        ("bo", f"/vraag Haag {MARKS}"),
        ("an", "/aanbiedingen"),
        ("an", "/vragen"),
        ("an", "/mijn"),
        ("bo", f"/reageer 1 hallo {MARKS}"),
        ("bo", f"/bericht DU-002 hoi {MARKS}"),
        ("admin", f"/voorstel Consent {MARKS} regel:consent"),
        ("bo", f"/stem 1 tegen omdat {MARKS}"),
        ("an", "/stemming 1"),
        ("an", "/voorstellen"),
        ("admin", f"/voorstel_intrekken 1 reden {MARKS}"),
        ("admin", f"/activiteit nieuw markt 12/12 10:00 Markt {MARKS} @ Zaal {MARKS}"),
        ("admin", "ja"),
        ("bo", "/ikkom 1"),
        ("admin", "/activiteit 1"),
        ("an", "/activiteiten"),
        ("cy", f"/aanmelden Cy {MARKS}"),
        ("admin", f"/weigeren DU-004 reden {MARKS}"),
        ("admin", "ja"),
        ("an", "/privacy"),
    ):
        say(who, typed)
    check(driver.bot.catch_up(START + timedelta(days=30), driver.clock.set), "scheduled")
    everything = "\n".join(seen)
    for what in ("Terugboeking van #1: vergissing", "Wie komt: Bo", "Zaal", "hoi", "omdat"):
        assert f"{what} {MARKS}" in everything or f"{what}: {MARKS}" in everything, what
