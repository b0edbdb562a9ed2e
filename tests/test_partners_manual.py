"""A manual partnership: the partner group runs eLAND, not letsbot. A payment is booked
here, every coordinator is told what to enter in the partner's eLAND, and a
coordinator marks it done or books it back; nothing is ever sent to a url."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from adapters.console import render
from app.cli import main
from letsbot.config import load_settings
from letsbot.partners import PartnerDesk
from letsbot.signing import SigningKey
from storage.check import ledger_problems
from storage.database import make_engine
from storage.exchange import export_rows
from tests.support import Driver

CONFIG = """
[group]
name = "LETS Durme"
code_prefix = "DU"
coordinators = ["console:admin", "console:kim"]
[currency]
name = "pluim"
plural = "pluimen"
units_per_hour = 60
[storage]
url = "{url}"
"""
GENT = ("--name", "LETS Gent", "--units-per-hour", "40", "--unit", "uren", "--cap", "300")
OUTGOING = "SELECT state, reason, transfer_id FROM partner_outgoing ORDER BY id"


@dataclass
class Durme:
    config: Path
    engine: Engine
    driver: Driver

    def cli(self, *words: str) -> int:
        return main(["--config", str(self.config), *words])

    def say(self, name: str, said: str, **kwargs: Any) -> str:
        return self.driver.say(name, said, **kwargs)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        with self.engine.connect() as connection:
            found = [tuple(row) for row in connection.execute(text(query))]
            connection.rollback()
        return found

    def sound(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``letsbot check`` passes, and every ledger sums to zero."""
        capsys.readouterr()
        assert self.cli("check") == 0
        assert capsys.readouterr().out.startswith("OK: ")
        assert self.rows("SELECT sum(balance) FROM members") == [(0,)]
        assert ledger_problems(self.engine, self.driver.settings.group_limits) == []

    def gent_balance(self) -> int:
        [(balance,)] = self.rows(
            "SELECT m.balance FROM members m JOIN partners p ON p.account_id = m.id"
        )
        return int(balance)


@pytest.fixture
def durme(db_url: str, tmp_path: Path) -> Iterator[Durme]:
    """LETS Durme (60 pluimen an hour) with LETS Gent on eLAND (40 uren an hour) as a
    manual partner; jan a member, admin and kim coordinators."""
    config = tmp_path / "bot.toml"
    config.write_text(CONFIG.format(url=db_url), encoding="utf-8")
    engine = make_engine(db_url)
    group = Durme(config, engine, Driver(engine, load_settings(config)))
    assert group.cli("partner", "add", "GE", "--manual", *GENT) == 0
    group.driver.member("jan")
    group.say("kim", "/start")
    yield group
    engine.dispose()


def paid(durme: Durme, who: str = "jan", said: str = "/betaal GE-012 30 soep") -> str:
    asked = durme.say(who, said)
    assert "Bij LETS Gent krijgt die 20 uren." in asked
    return durme.say(who, "ja")


def test_added_and_listed_as_manual_without_url_or_key(
    durme: Durme, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert durme.cli("partner", "list") == 0
    listed = capsys.readouterr().out
    assert "GE  LETS Gent  manual (eLAND)  40 uren/hour  cap 300 pluimen" in listed
    assert durme.rows("SELECT url, public_key, decimals FROM partners") == [("", "", 0)]
    key = SigningKey.generate().public
    for words, said in (
        (["--manual", "--url", "https://gent.example.org"], "has no --url or --key"),
        (["--manual", "--key", key], "has no --url or --key"),
        (["--manual", "--decimals", "2"], "eLAND books whole numbers"),
        ([], "--url and --key: expected both"),
        (["--url", "https://gent.example.org"], "--url and --key: expected both"),
    ):
        assert durme.cli("partner", "add", "AA", *GENT, *words) == 2
        assert said in capsys.readouterr().err
    assert durme.rows("SELECT prefix FROM partners") == [("GE",)]


def test_a_payment_is_booked_and_every_coordinator_told_what_to_enter_in_eland(
    durme: Durme, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = durme.say("jan", "/betaal GE-012 30 soep")
    assert "Betaal 30 pluimen aan GE-012 bij LETS Gent voor: soep?" in asked
    assert "Bij LETS Gent krijgt die 20 uren." in asked
    assert "LETS Gent werkt nog met eLAND: daar boekt iemand de betaling met de hand." in asked
    said = durme.say("jan", "ja")
    jan = durme.driver.number("jan")
    assert (
        "[dm jan] Geboekt: #1: je betaalde 30 pluimen aan GE-012 bij LETS Gent."
        " Je saldo is nu -30 pluimen." in said
    )
    assert "Je krijgt een bericht als dat gebeurd is." in said
    for coordinator in ("admin", "kim"):
        told = said.split(f"[dm {coordinator}] ")[1].split("\n[dm ")[0]
        assert told.splitlines()[0] == "Met de hand te boeken bij LETS Gent (eLAND): betaling #1."
        assert f"Jan (DU-{jan:03d}) betaalde 30 pluimen aan GE-012 bij LETS Gent." in told
        assert "In eLAND: Transacties → Transactie toevoegen, en vul in:" in told
        for line in (
            "Van Account Code: de interSysteem-rekening van LETS Durme",
            f"Van Gebruiker/Code in Bovenstaand Remote Systeem: DU-{jan:03d} Jan",
            "Aan Account Code: GE-012",
            "Aantal: 20 (uren)",
            "Omschrijving: soep",
            "  Is het geboekt? Stuur dan /extern 1 klaar",
        ):
            assert f"\n  {line.strip()}" in told, line
    assert durme.driver.balance("jan") == -30 and durme.gent_balance() == 30
    assert durme.rows(OUTGOING) == [("waiting", None, 1)]
    assert durme.rows("SELECT amount, their_amount, receiver_code FROM partner_outgoing") == [
        (30, 20, "GE-012")
    ]
    durme.sound(capsys)
    [row] = export_rows(durme.engine, "partner-payments", "DU", 0)
    assert (row["state"], row["amount"], row["their_amount"]) == ("waiting", "30", 20)


def test_done_gives_the_payer_a_receipt_once(
    durme: Durme, capsys: pytest.CaptureFixture[str]
) -> None:
    paid(durme)
    listed = durme.say("admin", "/extern")
    assert "Betalingen die nog met de hand geboekt moeten worden in eLAND (1):" in listed
    assert "#1 (1 dec 2026 09:00): Jan (DU-" in listed
    assert "betaalde 30 pluimen aan GE-012 bij LETS Gent (20 uren) voor: soep" in listed
    again = durme.say("kim", "/extern 1")  # what to enter, once more
    assert "Aantal: 20 (uren)" in again and "Omschrijving: soep" in again

    said = durme.say("admin", "/extern 1 klaar")
    assert "[dm admin] In orde: #1 staat nu als geboekt. Jan (DU-" in said
    assert (
        "[dm jan] Aangekomen: je betaling van 30 pluimen (#1) is bij LETS Gent geboekt."
        " GE-012 kreeg 20 uren." in said
    )
    assert "[dm kim] admin (DU-" in said and "zegt dat betaling #1 geboekt is bij LETS Gent" in said
    assert durme.rows(OUTGOING) == [("booked", None, 1)]
    assert durme.driver.balance("jan") == -30 and durme.gent_balance() == 30
    durme.sound(capsys)
    [row] = export_rows(durme.engine, "partner-payments", "DU", 0)
    assert (row["direction"], row["partner"], row["state"], row["transfer"]) == (
        "out",
        "GE",
        "booked",
        1,
    )

    before = durme.driver.snapshot()
    for tapped in ("/extern 1 klaar", "/extern 1 terug toch niet"):
        said = durme.say("kim", tapped)
        assert said == (
            "[dm kim] #1 is al afgehandeld: die betaling staat als geboekt bij LETS Gent."
            " Er is niets veranderd."
        )
    assert durme.driver.snapshot() == before
    assert durme.rows(OUTGOING) == [("booked", None, 1)]
    assert durme.say("admin", "/extern") == (
        "[dm admin] Er wachten geen betalingen op een groep met eLAND."
    )


def test_reversed_books_back_through_the_posting_path_with_the_reason(
    durme: Durme, capsys: pytest.CaptureFixture[str]
) -> None:
    paid(durme)
    said = durme.say("kim", "/extern 1 terug GE-012 is geen lid bij hen", group=True)
    assert "[group]" not in said  # a coordinator's business: answered privately
    assert "[dm kim] Teruggeboekt: #2 draait #1 terug. Jan (DU-" in said
    assert (
        "[dm jan] Niet gelukt: je betaling van 30 pluimen aan GE-012 bij LETS Gent kon daar niet"
        " geboekt worden: GE-012 is geen lid bij hen. Ze is teruggeboekt (#2).\n"
        "  Je saldo is nu 0 pluimen." in said
    )
    assert "[dm admin] kim (DU-" in said and "(reden: GE-012 is geen lid bij hen)" in said
    assert durme.driver.balance("jan") == 0 and durme.gent_balance() == 0
    assert durme.rows(OUTGOING) == [("reversed", "coordinator", 1)]
    reversal = "SELECT kind, reverses_id, description, booked_by_id FROM transfers WHERE id = 2"
    [(kind, reverses, description, booked_by)] = durme.rows(reversal)
    assert (kind, reverses) == ("reversal", 1)
    assert description == "Terugboeking van #1: GE-012 is geen lid bij hen"
    assert durme.rows(f"SELECT name FROM members WHERE id = {booked_by}") == [("kim",)]
    durme.sound(capsys)
    [row] = export_rows(durme.engine, "partner-payments", "DU", 0)
    assert (row["state"], row["reason"]) == ("reversed", "coordinator")

    before = durme.driver.snapshot()
    for tapped in ("/extern 1 terug nog eens", "/extern 1 klaar"):
        assert durme.say("admin", tapped) == (
            "[dm admin] #1 is al afgehandeld: die betaling is teruggeboekt. Er is niets veranderd."
        )
    assert durme.driver.snapshot() == before


@pytest.mark.parametrize(
    ("who", "said", "answer"),
    [
        ("jan", "/extern", "coördinator"),
        ("jan", "/extern 1 klaar", "coördinator"),
        ("admin", "/extern 99 klaar", "#99 is geen betaling aan een groep met eLAND."),
        ("admin", "/extern 2 klaar", "#2 is geen betaling aan een groep met eLAND."),
        ("admin", "/extern een klaar", "Zo gebruik je het: /extern 1 klaar als"),
        ("admin", "/extern 1 misschien", "Zo gebruik je het: /extern 1 klaar als"),
        ("admin", "/extern 1 klaar nu", "Zo gebruik je het: /extern"),
        ("admin", "/extern 1 terug", "Schrijf er de reden bij, bijvoorbeeld: /extern 1 terug"),
        ("admin", "/extern 1 terug \u202egeen lid", "teken"),
        ("admin", "/extern 1 klaar\x00", "teken"),
        ("admin", "/extern 1 terug " + "x" * 201, "hoogstens 200"),
    ],
)
def test_bad_input_gets_a_clear_reply_and_changes_nothing(
    durme: Durme, who: str, said: str, answer: str
) -> None:
    paid(durme)
    durme.say("jan", "/betaal admin 5 brood")  # #2: a payment at home
    durme.say("jan", "ja")
    before = durme.driver.snapshot()
    reply = durme.say(who, said)
    assert answer in reply
    assert "Traceback" not in reply and "[dm jan] Aangekomen" not in reply
    assert durme.driver.snapshot() == before
    assert durme.rows(OUTGOING) == [("waiting", None, 1)]


def test_a_description_eland_cannot_take_is_refused_before_anything_is_asked(
    durme: Durme,
) -> None:
    long = "soep " * 13  # 65 characters: eLAND takes at most 60
    said = durme.say("jan", f"/betaal GE-012 30 {long}")
    assert "daar mag de omschrijving hoogstens 60 tekens hebben. De jouwe heeft er 64." in said
    assert durme.driver.count("pending") == 0
    assert "Bij LETS Gent krijgt die" in durme.say("jan", "/betaal GE-012 30 " + "x" * 60)


def test_the_partner_desk_never_sends_it_and_it_never_expires(
    durme: Durme, capsys: pytest.CaptureFixture[str]
) -> None:
    paid(durme)
    bot, key = durme.driver.bot, SigningKey.generate()
    desk = PartnerDesk(bot.settings, bot.uow, bot.clock, bot.translators, bot.outbox, key)
    sent: list[str] = []

    def send(url: str, body: bytes) -> tuple[int, bytes]:
        sent.append(url)
        return 500, b""

    assert desk.send_due(send) == []
    # Long past partners.give_up (2 days): a coordinator decides, not the clock.
    durme.driver.clock.set(durme.driver.clock.now() + timedelta(days=30))
    assert desk.due() == [] and desk.send_due(send) == []
    assert sent == []
    assert durme.rows(OUTGOING) == [("waiting", None, 1)]
    assert durme.driver.balance("jan") == -30
    assert "Aangekomen" in durme.say("admin", "/extern 1 klaar")
    durme.sound(capsys)


def test_in_english_too(durme: Durme) -> None:
    durme.say("jan", "/lang en")
    durme.say("kim", "/lang en")
    asked = durme.say("jan", "/pay GE-012 31 soup")
    assert "Pay 31 pluimen to GE-012 at LETS Gent for: soup?" in asked
    assert "At LETS Gent they get 20 uren." in asked and "Rounded down" in asked
    assert "LETS Gent still works with eLAND: someone there books the payment by hand." in asked
    said = durme.say("jan", "yes")
    assert "You will get a message once that is done." in said
    told = said.split("[dm kim] ")[1].split("\n[dm ")[0]
    assert told.startswith("To book by hand at LETS Gent (eLAND): payment #1.")
    assert "Van Account Code: the interSysteem account of LETS Durme" in told
    assert "Aantal: 20 (uren)" in told and "Booked? Then send /external 1 done" in told
    assert "Met de hand te boeken bij LETS Gent" in said.split("[dm admin] ")[1]
    assert "No payments" not in durme.say("kim", "/external")
    said = durme.say("kim", "/external 1 reverse wrong member")
    assert "[dm kim] Reversed: #2 undoes #1." in said
    assert "couldn't be booked there: wrong member. It was booked back (#2)." in said
    assert "It was booked back (#2).\n  Your balance is now 0 pluimen." in said
    assert durme.say("kim", "/external") == (
        "[dm kim] No payments to a group on eLAND are waiting."
    )


def test_a_coordinator_who_pays_is_told_what_to_enter_too(durme: Durme) -> None:
    said = paid(durme, "admin")
    assert "[dm admin] Geboekt: #1: je betaalde 30 pluimen aan GE-012" in said
    assert "[dm admin] Met de hand te boeken bij LETS Gent (eLAND): betaling #1." in said
    assert "[dm kim] Met de hand te boeken" in said


def test_from_the_group_chat_the_payer_is_told_privately(durme: Durme) -> None:
    durme.say("jan", "/betaal GE-012 30 soep", group=True)
    said = durme.say("jan", "ja", group=True)
    assert "[group]" not in said and "[dm jan] Geboekt: #1:" in said


def test_two_coordinators_at_the_same_moment_settle_it_once(durme: Durme) -> None:
    paid(durme)
    bot = durme.driver.bot
    barrier = threading.Barrier(2)
    replies: dict[str, str] = {}

    def settle(name: str, said: str) -> None:
        incoming = durme.driver.incoming(name, said)
        barrier.wait(timeout=30)
        result = bot.handle(incoming)
        replies[name] = "\n".join(render(o) for o in result.replies)

    threads = [
        threading.Thread(target=settle, args=("admin", "/extern 1 klaar")),
        threading.Thread(target=settle, args=("kim", "/extern 1 terug niet gelukt")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    both = "\n".join(replies.values())
    assert both.count("is al afgehandeld") == 1
    [(state, _, _)] = durme.rows(OUTGOING)
    if state == "booked":
        assert "Aangekomen" in replies["admin"] and durme.driver.balance("jan") == -30
    else:
        assert "teruggeboekt (#2)" in replies["kim"] and durme.driver.balance("jan") == 0
    assert durme.rows("SELECT sum(balance) FROM members") == [(0,)]
    assert durme.driver.count("transfers") == (1 if state == "booked" else 2)


def test_reversing_by_hand_is_for_extern_not_for_terugboeken(
    durme: Durme, capsys: pytest.CaptureFixture[str]
) -> None:
    """The partner's account can't trade: /terugboeken refuses; /extern terug books back."""
    paid(durme)
    durme.say("admin", "/terugboeken 1 fout")
    assert "LETS Gent (DU-001) kan nu niet ruilen" in durme.say("admin", "ja")
    assert durme.driver.balance("jan") == -30
    assert "Teruggeboekt: #2 draait #1 terug." in durme.say("admin", "/extern 1 terug fout")
    assert durme.driver.balance("jan") == 0
    assert durme.rows(OUTGOING) == [("reversed", "coordinator", 1)]
    durme.sound(capsys)


def test_the_partnership_ends_only_when_nothing_waits(
    durme: Durme, capsys: pytest.CaptureFixture[str]
) -> None:
    paid(durme)
    capsys.readouterr()
    assert durme.cli("partner", "remove", "GE") == 2
    assert "payments wait for a coordinator" in capsys.readouterr().err
    durme.say("admin", "/extern 1 terug niet gelukt")
    assert durme.cli("partner", "remove", "GE") == 0


def test_a_bot_partner_becomes_manual_only_when_nothing_is_on_its_way(
    durme: Durme, capsys: pytest.CaptureFixture[str]
) -> None:
    key = SigningKey.generate().public
    bot_terms = ("--url", "http://127.0.0.1:9", "--key", key)
    assert durme.cli("partner", "add", "GE", *GENT, *bot_terms) == 0
    paid(durme)  # sent to a bot: on its way
    assert durme.rows(OUTGOING) == [("sending", None, 1)]
    capsys.readouterr()
    assert durme.cli("partner", "add", "GE", "--manual", *GENT) == 2
    assert "payments are still on their way" in capsys.readouterr().err
    assert durme.rows("SELECT url FROM partners") == [("http://127.0.0.1:9",)]
    assert durme.say("admin", "/extern 1 klaar") == (
        "[dm admin] #1 is geen betaling aan een groep met eLAND. Stuur /extern om te zien"
        " welke betalingen wachten."
    )


def test_doctor_warns_about_payments_waiting_for_more_than_a_week(
    durme: Durme, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)  # the doctor reads the system clock
    durme.driver.clock.set(now - timedelta(days=8))
    paid(durme)
    durme.driver.clock.set(now)
    paid(durme, said="/betaal GE-013 30 brood")
    capsys.readouterr()
    main(["--config", str(durme.config), "doctor"])
    lines = capsys.readouterr().out.splitlines()
    [line] = [line for line in lines if "partner GE" in line]
    assert line.startswith(
        "WARN  partner GE: 1 payment(s) to LETS Gent wait for a coordinator for more than 7 days"
        " (the oldest: #1, since "
    )
    assert "fix: have it booked in their eLAND, then '/extern 1 klaar'" in line
    assert not any(line.startswith(("OK    partner key", "FAIL  partner key")) for line in lines)
    assert not any("trade with GE" in line for line in lines)  # no bot to compare books with
    durme.say("admin", "/extern 1 klaar")
    main(["--config", str(durme.config), "doctor"])
    lines = capsys.readouterr().out.splitlines()
    assert (
        "OK    partner GE: LETS Gent (manual, active), 1 payment(s) waiting for a coordinator"
        in lines
    )
