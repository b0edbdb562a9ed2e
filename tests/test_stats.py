"""Reports with pictures: /stats (text for everyone, charts for coordinators) and ``letsbot report``.

Known data is booked through the real bot on a virtual clock, in several
months; the figures in the replies and in the report are then exact.
"""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image as PilImage
from sqlalchemy import Engine

from adapters.console import Console
from letsbot.amounts import Currency
from letsbot.charts import spread_chart, volume_chart
from letsbot.clock import VirtualClock
from letsbot.domain import EventKind
from letsbot.figures import MonthFigures, bins, month_bounds, months_back
from letsbot.i18n import Translator
from letsbot.messages import ChatKind, ToChat, ToPerson
from storage.database import make_engine
from storage.uow import SqlUnitOfWork
from tests.support import Driver, make_settings
from tests.test_cli import CONFIG, letsbot

BRUSSELS = ZoneInfo("Europe/Brussels")
PNG = b"\x89PNG\r\n\x1a\n"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BRUSSELS)  # type: ignore[misc]


def book(driver: Driver, payer: str, line: str) -> None:
    driver.say(payer, line)
    answer = driver.say(payer, "ja")
    assert "Geboekt" in answer or "Booked" in answer, answer


def trade(driver: Driver, year: int = 2026) -> None:
    """Members, transfers in December, January and March, listings, a reversal, a rejection.

    admin DU-001 (coordinator), an DU-002, bo DU-003 (English), cas DU-004 join in
    December of ``year``; dirk DU-005 in February; eva DU-006 is rejected. The
    clock ends on 15 March, 10:00.
    """
    driver.clock.set(local(year, 12, 1, 9, 0))
    driver.member("an")
    driver.member("bo", language="en")
    driver.member("cas")
    book(driver, "an", "/betaal DU-003 30 soep")
    book(driver, "bo", "/pay DU-004 20 bread")
    driver.clock.set(local(year + 1, 1, 10, 10, 0))
    book(driver, "cas", "/betaal DU-002 45 fiets")
    book(driver, "an", "/betaal DU-003 5 vergissing")  # transfer #4, reversed: it no longer counts
    driver.say("admin", "/terugboeken 4 dubbel geboekt")
    driver.say("admin", "ja")
    assert driver.count("transfers") == 5
    driver.say("an", "/aanbod Ik herstel fietsen #fiets")
    driver.say("bo", "/want Someone to walk the dog")
    driver.say("cas", "/aanbod Soep op zondag")
    assert "is ingetrokken" in driver.say("cas", "/intrekken 3")
    driver.clock.set(local(year + 1, 2, 5, 10, 0))
    driver.member("dirk")
    driver.say("eva", "/aanmelden Eva")
    driver.say("admin", "/weigeren DU-006")
    assert "is geweigerd" in driver.say("admin", "ja")
    driver.clock.set(local(year + 1, 3, 3, 10, 0))
    book(driver, "dirk", "/betaal DU-002 100 tuinwerk")
    driver.clock.set(local(year + 1, 3, 15, 10, 0))


@pytest.fixture
def traded(db_url: str) -> Iterator[Driver]:
    engine = make_engine(db_url)
    driver = Driver(engine, make_settings())
    trade(driver)
    yield driver
    engine.dispose()


DUTCH = "\n".join(
    [
        "[dm an] Statistiek van LETS Durme, april 2026 tot en met maart 2027",
        "  Ruil per maand:",
        "    april 2026: geen ruil",
        "    mei 2026: geen ruil",
        "    juni 2026: geen ruil",
        "    juli 2026: geen ruil",
        "    augustus 2026: geen ruil",
        "    september 2026: geen ruil",
        "    oktober 2026: geen ruil",
        "    november 2026: geen ruil",
        "    december 2026: 50 pluimen in 2 transacties",
        "    januari 2027: 45 pluimen in 1 transactie",
        "    februari 2027: geen ruil",
        "    maart 2027: 100 pluimen in 1 transactie",
        "  Samen: 195 pluimen; aantal transacties: 4.",
        "  Leden die ruilden: 4 van de 5.",
        "  Nieuwe leden: 5.",
        "  Nu online: aanbod 1, vraag 1.",
        "  Saldo's: 2 onder nul, 1 op nul, 2 boven nul.",
    ]
)
ENGLISH = "\n".join(
    [
        "[dm bo] Figures of LETS Durme, April 2026 to March 2027",
        "  Trade per month:",
        "    April 2026: no trade",
        "    May 2026: no trade",
        "    June 2026: no trade",
        "    July 2026: no trade",
        "    August 2026: no trade",
        "    September 2026: no trade",
        "    October 2026: no trade",
        "    November 2026: no trade",
        "    December 2026: 50 pluimen in 2 transfers",
        "    January 2027: 45 pluimen in 1 transfer",
        "    February 2027: no trade",
        "    March 2027: 100 pluimen in 1 transfer",
        "  Together: 195 pluimen; number of transfers: 4.",
        "  Members who traded: 4 of 5.",
        "  New members: 5.",
        "  Online now: offers 1, wants 1.",
        "  Balances: 2 below zero, 1 at zero, 2 above zero.",
    ]
)


def test_stats_text_has_the_exact_figures_in_dutch_and_english(traded: Driver) -> None:
    # an: -30 +45 -5 +5 +100 = 115; bo: +30 -20 +5 -5 = 10; cas: +20 -45 = -25; dirk: -100
    assert [traded.balance(n) for n in ("an", "bo", "cas", "dirk", "admin")] == [
        115,
        10,
        -25,
        -100,
        0,
    ]
    assert traded.say("an", "/statistiek") == DUTCH
    assert traded.say("bo", "/stats") == ENGLISH
    assert traded.last is not None and traded.last.outcome == "applied"


def test_a_member_gets_the_text_in_their_direct_chat_only(traded: Driver) -> None:
    for group in (True, False):
        result = traded.send(traded.incoming("an", "/statistiek", group=group))
        assert [o.image for o in result.replies] == [None]  # text only, no picture
        (reply,) = result.replies
        if group:  # the group stays quiet: the answer goes to an's direct chat
            assert isinstance(reply.target, ToPerson) and reply.target.identity.user_id == "an"
        else:
            assert isinstance(reply.target, ToChat) and reply.target.chat.chat_id == "an"
        assert "Leden die ruilden: 4 van de 5." in reply.text


@pytest.mark.parametrize("group", [True, False])
def test_a_coordinator_gets_text_and_both_charts_where_they_asked(
    traded: Driver, group: bool
) -> None:
    result = traded.send(traded.incoming("admin", "/statistiek", group=group))
    summary, volume, spread = result.replies
    for reply in result.replies:
        assert isinstance(reply.target, ToChat)
        assert reply.target.chat.kind is (ChatKind.GROUP if group else ChatKind.DIRECT)
    assert summary.image is None and "Samen: 195 pluimen; aantal transacties: 4." in summary.text
    assert volume.image is not None and spread.image is not None
    assert volume.text == "**Ruil per maand**"
    assert volume.image.alt == (
        "Staafdiagram van de ruil per maand, april 2026 tot en met maart 2027:"
        " samen 195 pluimen; het meest in maart 2027, 100 pluimen."
    )
    assert spread.text == "**Hoe ver staan de leden van nul?**"
    assert spread.image.alt == (
        "Staafdiagram van de saldo's: 2 onder nul, 1 op nul, 2 boven nul;"
        " het laagste saldo is -100 pluimen, het hoogste 115 pluimen."
    )
    for image in (volume.image, spread.image):
        assert_png(image.data, image.width, image.height)
    where = "group" if group else "dm admin"
    lines = traded.say("admin", "/statistiek", group=group).splitlines()
    assert lines[-2] == f"[{where}] Ruil per maand (picture volume.png): {volume.image.alt}"
    assert lines[-1] == (
        f"[{where}] Hoe ver staan de leden van nul? (picture balances.png): {spread.image.alt}"
    )


def test_under_closed_bookkeeping_the_spread_of_balances_never_reaches_the_group(
    traded: Driver,
) -> None:
    closed = Driver(traded.engine, make_settings(group={"open_bookkeeping": False}))
    result = closed.send(closed.incoming("admin", "/statistiek", group=True, event_id="closed"))
    summary, volume, spread = result.replies
    assert isinstance(volume.target, ToChat) and volume.target.chat.kind is ChatKind.GROUP
    assert isinstance(spread.target, ToPerson) and spread.target.identity.user_id == "admin"
    assert "laagste saldo" not in summary.text


def assert_png(data: bytes, width: int = 1000, height: int = 560) -> None:
    assert data.startswith(PNG)
    with PilImage.open(io.BytesIO(data)) as picture:
        picture.load()  # decodes every pixel: a truncated file fails here
        assert picture.format == "PNG"
        assert picture.size == (width, height) == (1000, 560)
        colours = picture.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is not None and len(colours) > 10  # not a blank canvas
    assert 5_000 < len(data) < 200_000


def test_stats_on_an_empty_group(driver: Driver) -> None:
    driver.say("admin", "/lang en")
    out = driver.say("admin", "/stats").splitlines()
    assert out[0] == "[dm admin] Figures of LETS Durme, January 2026 to December 2026"
    assert out[-7:] == [
        "  Together: 0 pluimen; number of transfers: 0.",
        "  Members who traded: 0 of 1.",
        "  New members: 1.",
        "  Online now: offers 0, wants 0.",
        "  Balances: 0 below zero, 1 at zero, 0 above zero.",
        "[dm admin] Trade per month (picture volume.png): Bar chart of the trade per month,"
        " January 2026 to December 2026: nothing was traded yet.",
        "[dm admin] How far are members from zero? (picture balances.png): Bar chart of the"
        " balances: 0 below zero, 1 at zero, 0 above zero; the lowest balance is 0 pluimen,"
        " the highest 0 pluimen.",
    ]


def test_stats_needs_membership(driver: Driver) -> None:
    driver.say("zoe", "/aanmelden Zoe")
    assert driver.say("zoe", "/statistiek") == (
        "[dm zoe] Je aanvraag is nog niet goedgekeurd. Een coördinator neemt contact met je op."
    )
    assert driver.last is not None and driver.last.outcome == "refused"


def test_the_console_writes_each_picture_to_a_file(traded: Driver, tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(traded.bot, out, traded.clock, tmp_path / "pictures")
    console.say("admin", "/statistiek", in_group=False)
    lines = out.getvalue().splitlines()
    files = sorted((tmp_path / "pictures").iterdir())
    assert [f.name.split("-", 1)[1] for f in files] == ["1-volume.png", "2-balances.png"]
    volume = next(f for f in files if f.name.endswith("volume.png"))
    assert lines[-2].startswith(f"[dm admin] Ruil per maand (picture {volume}): Staafdiagram")
    assert_png(volume.read_bytes())


# storage: aggregated by the database, on SQLite and PostgreSQL


def test_figures_per_month_from_the_store(traded: Driver) -> None:
    tz = BRUSSELS
    bounds = month_bounds(date(2026, 11, 1), date(2027, 3, 1), tz)
    with SqlUnitOfWork(traded.engine).transaction() as store:
        figures = store.figures.month_figures(bounds)
        december = store.figures.month_figures(bounds[1:3])
        offers_wants = store.figures.open_listings(local(2027, 3, 15, 10, 0))
        in_december = store.figures.open_listings(local(2026, 12, 20, 0, 0))
        now = store.figures.balances()
        end_of_december = store.figures.balances(local(2027, 1, 1, 0, 0))
    months = figures.months
    assert [(m.start, m.transfers, m.volume, m.traders) for m in months] == [
        (local(2026, 11, 1, 0, 0), 0, 0, 0),
        (local(2026, 12, 1, 0, 0), 2, 50, 3),
        (local(2027, 1, 1, 0, 0), 1, 45, 2),
        (local(2027, 2, 1, 0, 0), 0, 0, 0),
        (local(2027, 3, 1, 0, 0), 1, 100, 2),
    ]
    assert [m.new_members for m in months] == [0, 4, 0, 1, 0]  # eva, rejected, is not counted
    assert [m.new_listings for m in months] == [0, 0, 3, 0, 0]
    assert (figures.traders, december.traders) == (4, 3)  # an, bo, cas, dirk; in December 3
    assert offers_wants == (1, 1) and in_december == (0, 0)
    assert now == [-100, -25, 0, 10, 115]
    assert end_of_december == [-30, 0, 10, 20]  # admin, an, bo, cas: dirk was no member yet


def test_months_are_cut_at_local_midnight(db_url: str) -> None:
    """23:30 on 31 January in Brussels is January; 00:30 on 1 February is February (UTC: both 31 Jan)."""
    engine = make_engine(db_url)
    driver = Driver(engine, make_settings())
    driver.member("an")
    driver.member("bo")
    driver.clock.set(local(2027, 1, 31, 23, 30))
    book(driver, "an", "/betaal DU-003 7 laat")
    driver.clock.set(local(2027, 2, 1, 0, 30))
    book(driver, "an", "/betaal DU-003 11 vroeg")
    bounds = month_bounds(date(2027, 1, 1), date(2027, 2, 1), BRUSSELS)
    with SqlUnitOfWork(engine).transaction() as store:
        months = store.figures.month_figures(bounds).months
    engine.dispose()
    assert [(m.transfers, m.volume) for m in months] == [(1, 7), (1, 11)]


# The rest of a closing account, given to the group account, is not trade


def give_rests(driver: Driver) -> None:
    """an pays bo 30 and cas 20 (trade); bo gives his rest with /forget_me, cas hers on leaving."""
    driver.member("an")
    driver.member("bo", language="en")
    driver.member("cas")
    book(driver, "an", "/betaal DU-003 30 soep")
    book(driver, "an", "/betaal DU-004 20 brood")
    driver.say("bo", "/forget_me")
    assert "To the group account: 30 pluimen" in driver.say("bo", "yes")
    driver.say("cas", "/uitstappen")
    driver.say("cas", "ja")
    book(driver, "cas", "/betaal DU-000 20 wat over is")


def test_a_rest_given_to_the_group_account_is_not_trade(db_url: str, tmp_path: Path) -> None:
    from letsbot.report import build_report
    from storage.exchange import export_rows

    engine = make_engine(db_url)
    driver = Driver(engine, make_settings())
    give_rests(driver)
    bounds = month_bounds(date(2026, 12, 1), date(2026, 12, 1), BRUSSELS)
    with SqlUnitOfWork(engine).transaction() as store:
        december = store.figures.month_figures(bounds).months[0]
    assert (december.transfers, december.volume, december.traders) == (2, 50, 3)
    assert "december 2026: 50 pluimen in 2 transacties" in driver.say("an", "/statistiek")
    settings = make_settings()
    page = build_report(
        SqlUnitOfWork(engine),
        settings,
        driver.bot.translators["nl"],
        date(2026, 12, 1),
        date(2026, 12, 31),
        driver.clock.now(),
    )
    assert '<tr><td>december 2026</td><td class="n">2</td>' in page
    kinds = [
        (row["from"], row["to"], row["kind"]) for row in export_rows(engine, "transfers", "DU", 0)
    ]
    assert kinds == [
        ("DU-002", "DU-003", "payment"),
        ("DU-002", "DU-004", "payment"),
        ("DU-003", "DU-000", "rest"),
        ("DU-004", "DU-000", "rest"),
    ]
    engine.dispose()


def test_migration_0010_marks_the_rests_of_forgotten_members(db_url: str) -> None:
    from alembic import command
    from sqlalchemy import text

    from storage.database import _alembic_config, upgrade

    engine = make_engine(db_url)
    driver = Driver(engine, make_settings())
    give_rests(driver)
    book(driver, "an", "/betaal DU-000 5 lidgeld")  # an ordinary payment to the group account
    command.downgrade(_alembic_config(engine), "0009")
    select = "SELECT id, kind FROM transfers ORDER BY id"
    with engine.connect() as connection:
        assert [kind for _, kind in connection.execute(text(select))] == ["payment"] * 5
        connection.rollback()
    upgrade(engine)
    with engine.connect() as connection:
        kinds = [kind for _, kind in connection.execute(text(select))]
        connection.rollback()
    # bo's rest is known again; cas's, given with /betaal while leaving, can't be told apart
    assert kinds == ["payment", "payment", "rest", "payment", "payment"]
    engine.dispose()


# pure parts


def test_month_bounds_and_months_back() -> None:
    assert months_back(date(2027, 3, 15), 12) == date(2026, 4, 1)
    assert months_back(date(2027, 1, 1), 1) == date(2027, 1, 1)
    bounds = month_bounds(date(2026, 11, 30), date(2027, 1, 2), BRUSSELS)
    assert bounds == [
        local(2026, 11, 1, 0, 0),
        local(2026, 12, 1, 0, 0),
        local(2027, 1, 1, 0, 0),
        local(2027, 2, 1, 0, 0),
    ]


def test_balance_bins_count_every_member_once() -> None:
    found = bins([-1200, -600, -25, 0, 0, 10, 115, 1500], 1)
    assert [(b.low, b.high, b.count) for b in found] == [
        (-1500, -1001, 1),
        (-1000, -501, 1),
        (-500, -1, 1),
        (0, 0, 2),
        (1, 500, 2),
        (501, 1000, 0),
        (1001, 1500, 1),
    ]
    assert sum(b.count for b in bins([-3, 4, 4, 0], 100)) == 4
    assert [(b.low, b.high) for b in bins([-150, 250], 100)] == [
        (-200, -101),
        (-100, -1),
        (0, 0),
        (1, 100),
        (101, 200),
        (201, 300),
    ]


def translator(language: str) -> Translator:
    return Translator(language, Currency("pluim", "pluimen", 0), BRUSSELS)


def year_of_months() -> list[MonthFigures]:
    bounds = month_bounds(date(2026, 4, 1), date(2027, 3, 1), BRUSSELS)
    volumes = [0, 0, 0, 0, 0, 0, 0, 0, 50, 45, 0, 100]
    return [
        MonthFigures(b, 1 if v else 0, v, 2, 0, 0) for b, v in zip(bounds, volumes, strict=False)
    ]


def test_charts_are_valid_deterministic_pngs() -> None:
    for language in ("nl", "en"):
        t = translator(language)
        volume = volume_chart(t, year_of_months())
        assert_png(volume.data)
        assert volume_chart(t, year_of_months()).data == volume.data  # no time stamp inside
        spread = spread_chart(t, [-100, -25, 0, 10, 115])
        assert_png(spread.data)
        assert spread_chart(t, [-100, -25, 0, 10, 115]).data == spread.data
        assert b"tIME" not in volume.data and b"matplotlib" not in volume.data
    # the language shows: different month names give different pictures
    assert volume_chart(translator("nl"), year_of_months()).data != volume.data
    assert_png(spread_chart(translator("nl"), []).data)  # no members yet still draws


def test_other_commands_never_load_matplotlib(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from storage.database import make_engine, upgrade\n"
        "from tests.support import Driver, make_settings\n"
        f"engine = make_engine('sqlite:///{tmp_path}/x.db'); upgrade(engine)\n"
        "driver = Driver(engine, make_settings())\n"
        "driver.member('an')\n"
        "driver.say('an', '/saldo'); driver.say('an', '/statistiek')\n"
        "print('matplotlib' in sys.modules)\n"
        "driver.say('admin', '/statistiek')\n"
        "print('matplotlib' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.split() == ["False", "True"], result.stderr


# letsbot report


def add_event(engine: Engine, title: str, starts: datetime, *, cancelled: bool = False) -> int:
    with SqlUnitOfWork(engine).transaction() as store:
        event = store.events.add_event(
            series_id=None,
            kind=EventKind.MARKET,
            title=title,
            place="Parochiezaal <b>",
            starts_at=starts,
            ends_at=None,
            created_by_id=store.members.group_account().id,
            at=starts,
        )
        if cancelled:
            store.events.update_event(event.id, cancelled=True)
        return event.id


def test_report_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert letsbot("db", "upgrade", cwd=tmp_path).returncode == 0
    engine = make_engine(f"sqlite:///{tmp_path}/var/letsbot.db")
    # In the past: the command line reads the real clock, and only events held count.
    driver = Driver(engine, make_settings(), VirtualClock(local(2024, 12, 1, 9, 0)))
    trade(driver, 2024)
    held = add_event(engine, "<script>alert('x')</script> Ruilmarkt", local(2025, 1, 18, 10, 0))
    add_event(engine, "Afgelast", local(2025, 1, 23, 10, 0), cancelled=True)
    add_event(engine, "Buiten de periode", local(2024, 11, 7, 10, 0))
    with SqlUnitOfWork(engine).transaction() as store:
        store.events.set_rsvp(held, 2, True, local(2025, 1, 10, 12, 0))
    engine.dispose()

    result = letsbot(
        *("report", "--from", "2024-12-01", "--to", "2025-03-31"),
        *("--output", "ledenvergadering.html"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "wrote ledenvergadering.html: 2024-12-01 to 2025-03-31\n"
    page = (tmp_path / "ledenvergadering.html").read_text(encoding="utf-8")

    assert page.startswith('<!DOCTYPE html>\n<html lang="nl">')
    assert "<h1>Jaaroverzicht van LETS Durme</h1>" in page
    assert "Van 1 december 2024 tot en met 31 maart 2025" in page
    # per month: transfers, volume, traders, new members, new listings
    cells = "".join(['<td class="n">{}</td>'] * 5)
    row = "<tr><td>{}</td>" + cells + "</tr>"
    assert row.format("december 2024", 2, 50, 3, 4, 0) in page
    assert row.format("januari 2025", 1, 45, 2, 0, 3) in page
    assert row.format("februari 2025", 0, 0, 0, 1, 0) in page
    assert row.format("maart 2025", 1, 100, 2, 0, 0) in page
    total = "<tr><th>Samen</th>" + cells.replace("td", "th") + "</tr>"
    assert total.format(4, 195, 4, 5, 3) in page  # 4 members traded in all, not 2+3+2
    summary = {
        "Transacties": "4",
        "Ruil in pluimen": "195",
        "Leden die ruilden": "4",
        "Nieuwe leden": "5",
        "Nieuw aanbod en nieuwe vragen": "3",
        "Online op 31 mrt 2025": "aanbod 1, vraag 1",
        "Leden op 31 mrt 2025": "5: 2 onder nul, 1 op nul, 2 boven nul",
    }
    for label, value in summary.items():
        assert f"<tr><th>{label}</th><td>{value}</td></tr>" in page
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"', page)
    assert [alt.split(",")[0] for _, alt in images] == [
        "Staafdiagram van de ruil per maand",
        "Staafdiagram van de saldo&#x27;s: 2 onder nul",
    ]
    for data, _ in images:
        assert_png(base64.b64decode(data))
    # the events held in the period, escaped; not the cancelled one, not the one before
    assert (
        "<tr><td>za 18 jan 2025 10:00</td><td>Markt</td>"
        "<td>&lt;script&gt;alert('x')&lt;/script&gt; Ruilmarkt</td>"
        '<td>Parochiezaal &lt;b&gt;</td><td class="n">1</td></tr>'
    ) in page
    assert "<script" not in page and "<b>" not in page
    assert "Afgelast" not in page and "Buiten de periode" not in page
    # self-contained: nothing is fetched from elsewhere
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "@import" not in page and "url(" not in page


def test_report_refuses_a_period_that_ends_before_it_starts(tmp_path: Path) -> None:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert letsbot("db", "upgrade", cwd=tmp_path).returncode == 0
    result = letsbot(
        "report", "--from", "2027-03-01", "--to", "2027-01-01", "--output", "r.html", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr == "letsbot: --from 2027-03-01 is after --to 2027-01-01\n"
    bad = letsbot("report", "--from", "1 maart", "--output", "r.html", cwd=tmp_path)
    assert bad.returncode == 2 and "expected a date such as 2026-01-31" in bad.stderr
    assert not (tmp_path / "r.html").exists()
    listed = " ".join(letsbot("--help", cwd=tmp_path).stdout.split())
    assert "report write one HTML page with the figures, charts and events of a period" in listed
    usage = " ".join(letsbot("report", "--help", cwd=tmp_path).stdout.split())
    assert "usage: letsbot report [-h] [--from DATE] [--to DATE] --output FILE" in usage


def test_report_in_english_over_the_store(traded: Driver) -> None:
    from letsbot.report import build_report

    settings = make_settings(group={"language": "en"})
    page = build_report(
        SqlUnitOfWork(traded.engine),
        settings,
        traded.bot.translators["en"],
        date(2026, 12, 15),
        date(2027, 3, 14),
        traded.clock.now(),
    )
    assert '<html lang="en">' in page and "Annual report of LETS Durme" in page
    assert "From 15 December 2026 to 14 March 2027" in page
    # December is counted from the 15th: the two payments of the 1st fall outside
    assert '<tr><td>December 2026</td><td class="n">0</td>' in page
    assert (
        "<tr><th>Members on 14 Mar 2027</th><td>5: 2 below zero, 1 at zero, 2 above zero</td></tr>"
        in page
    )
    assert "There were no events in this period." in page


# the chat platforms: Telegram's sendPhoto (Matrix's m.image: tests/test_matrix.py)


async def test_telegram_sends_the_charts_as_photos(engine: Engine) -> None:
    from tests.telegram_api import FakeTelegram
    from tests.test_telegram import ANN, BOB, GROUP, Harness, settings_for

    server = FakeTelegram()
    await server.start()
    server.group(GROUP)
    tg = Harness(server, engine, settings_for(server))
    try:
        await tg.group_with_bob()
        # Bob, a member, asks in the group: the text comes to his direct chat, no photo
        server.say(BOB, GROUP, "/statistiek")
        text = await server.reply_containing(BOB.id, "Statistiek van LETS Durme")
        assert "Leden die ruilden: 0 van de 2." in text.text
        # Ann, a coordinator, asks in the group: the text and both charts, there
        server.say(ANN, GROUP, "/statistiek")
        text = await server.reply_containing(GROUP, "Statistiek van LETS Durme")
        volume, spread = await server.wait_for(
            lambda: server.photos_to(GROUP) if len(server.photos_to(GROUP)) == 2 else None
        )
        assert text.at <= volume.at <= spread.at  # the text first, for those who see no image
        assert (volume.filename, spread.filename) == ("volume.png", "balances.png")
        assert volume.caption.startswith("Ruil per maand\nStaafdiagram van de ruil per maand, ")
        assert volume.caption.endswith(": er werd nog niets geruild.")
        assert volume.message["caption_entities"] == [{"type": "bold", "offset": 0, "length": 14}]
        assert spread.caption == (
            "Hoe ver staan de leden van nul?\nStaafdiagram van de saldo's: 0 onder nul,"
            " 2 op nul, 0 boven nul; het laagste saldo is 0 pluimen, het hoogste 0 pluimen."
        )
        for photo in (volume, spread):
            assert_png(photo.data)
            assert photo.message["photo"][0]["width"] == 1000
        # and in her direct chat, the same
        server.say(ANN, None, "/stats")
        await server.wait_for(lambda: len(server.photos_to(ANN.id)) == 2)
        assert server.photos_to(BOB.id) == [] and len(server.photos_to(GROUP)) == 2
    finally:
        if tg.task is not None and not tg.task.done():
            await tg.stop()
        await server.close()
