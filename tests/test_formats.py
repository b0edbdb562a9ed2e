"""Reading eLAS and eLAND exports exactly as each wrote them (fixtures in tests/fixtures/elas)."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from storage.exchange.export import write_rows
from storage.exchange.formats import (
    ELAND_USERS,
    ELAS_USERS,
    code_in_cell,
    eland_time,
    list_date,
    read_source,
    whole,
)
from storage.exchange.sheet import Field, ImportError_, Sheet, parse_amount, read_sheet

FIXTURES = Path(__file__).parent / "fixtures" / "elas"


def sheets_of(path: Path) -> dict[str, Sheet]:
    found = read_source(path)
    assert len({sheet.kind for sheet in found}) == len(found)  # one table of each kind here
    return {str(sheet.kind): sheet for sheet in found}


def expected(folder: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / folder / "expected.json").read_text("utf-8"))
    return data


def by(sheet: Sheet, field: Field, value: str) -> list[tuple[int, dict[Field, str]]]:
    return [(line, row) for line, row in sheet.rows if row.get(field) == value]


def code_of(cell: str) -> str:
    """The code in a transfer's cell: eLAND writes "code name"."""
    return cell.split(" ", 1)[0]


def balances_from(sheet: Sheet) -> Counter[str]:
    totals: Counter[str] = Counter()
    for _, row in sheet.rows:
        totals[code_of(row["from"])] -= int(row["amount"])
        totals[code_of(row["to"])] += int(row["amount"])
    return totals


def test_the_committed_fixtures_are_what_the_generator_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    module.main(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(FIXTURES) for p in FIXTURES.rglob("*") if p.is_file() and p.parent != FIXTURES
    )
    assert written == committed
    for name in written:
        if name.suffix == ".zip":  # compressed bytes may differ between zlib versions
            with zipfile.ZipFile(tmp_path / name) as a, zipfile.ZipFile(FIXTURES / name) as b:
                assert {i: a.read(i) for i in a.namelist()} == {i: b.read(i) for i in b.namelist()}
        else:
            assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), name


# --- eLAS 3.x --------------------------------------------------------------------------------


def test_elas3_is_recognised_file_by_file() -> None:
    sheets = sheets_of(FIXTURES / "elas3")
    assert {
        kind: (sheet.source, len(sheet.rows), sheet.capped) for kind, sheet in sheets.items()
    } == {
        "members": ("eLAS 3.x users (export_users.php)", 40, False),
        "balances": ("eLAS 3.x balances (reports/csv_balance.php)", 33, False),
        "transfers": ("eLAS 3.x transactions (export_transactions.php)", 294, False),
        "listings": ("eLAS 3.x offers and wants (export_messages.php)", 30, False),
    }
    first = (FIXTURES / "elas3" / "users.csv").read_bytes().split(b"\r\n", 1)[0]
    assert tuple(first.decode().strip('"').split('","')) == ELAS_USERS
    first = (FIXTURES / "eland2018" / "users.csv").read_bytes().split(b"\r\n", 1)[0]
    assert tuple(first.decode().strip('"').split('","')) == ELAND_USERS
    # One file alone gives its own table.
    [alone] = read_source(FIXTURES / "elas3" / "transactions.csv")
    assert alone.kind == "transfers" and len(alone.rows) == 294


def test_elas3_members_are_read_raw_from_windows_1252_with_unescaped_quotes() -> None:
    members = sheets_of(FIXTURES / "elas3")["members"]
    rows = dict(members.rows)
    assert rows[4] == {
        "code": "003",
        "name": "ilse3",
        "status": "1",
        "role": "user",
        "min": "-1500",
    }
    assert rows[5]["name"] == 'Jef "de smid" Wouters'  # its comment holds "hallo", "dag" too
    assert rows[6]["name"] == "Céline “Lien” Maes"  # Windows-1252 curly quotes and é
    assert 8 not in rows and rows[9]["code"] == "007"  # 006's comment spans lines 7 and 8
    assert by(members, "code", "ILGENT") == [
        (
            42,
            {
                "code": "ILGENT",
                "name": "Interlets Gent",
                "status": "7",
                "role": "interlets",
                "min": "",
            },
        )
    ]
    assert by(members, "code", "G01")[0][1]["role"] == "guest"
    assert "max" not in rows[2]  # eLAS kept no upper limit in this export
    want = {m["code"]: m for m in expected("elas3")["members"]}
    for _, row in members.rows:
        assert (row["name"], row["status"], row["role"], row["min"]) == tuple(
            want[row["code"]][k] for k in ("name", "status", "role", "min")
        )


def test_elas3_transfers_decode_entities_keep_local_time_and_file_order() -> None:
    transfers = sheets_of(FIXTURES / "elas3")["transfers"]
    assert transfers.rows[0] == (
        2,
        {
            "date": "2018-11-04T17:00:00",
            "from": "099",
            "to": "036",
            "amount": "1500",
            "description": "startpakket",
        },
    )
    assert by(transfers, "description", "Tom & Jerry \"show\" 'n' <b>bal</b>") == [
        (
            16,
            {
                "date": "2015-02-10T16:36:00",
                "from": "001",
                "to": "002",
                "amount": "1000",
                "description": "Tom & Jerry \"show\" 'n' <b>bal</b>",
            },
        )
    ]
    assert by(transfers, "description", 'zei "hallo" tegen iedereen')[0][0] == 15
    # A description over two lines: the row starts on line 13, the next on line 15.
    assert by(transfers, "description", "verhuis\nmet de camion")[0][0] == 13
    # Brussels local time, as MySQL had it: 01:15 UTC on the night summer time began.
    assert by(transfers, "description", "na de klokken")[0][1]["date"] == "2018-03-25T03:15:00"
    # Two hours apart in UTC, the same local time when the clocks went back.
    assert [r["date"] for _, r in transfers.rows[3:5]] == ["2018-10-28T02:30:00"] * 2
    soup = [
        line
        for line, r in by(transfers, "description", "soep")
        if r["date"].startswith("2015-02-13")
    ]
    assert soup == [11, 12]  # two alike rows, both kept
    dates = [r["date"] for _, r in transfers.rows]
    assert dates == sorted(dates, reverse=True)  # newest first, as written
    want = expected("elas3")
    assert len(transfers.rows) == want["transfer_count"]
    assert balances_from(transfers) == Counter(
        {m["code"]: int(m["balance"]) for m in want["members"]}
    )


def test_elas3_listings_and_balances() -> None:
    sheets = sheets_of(FIXTURES / "elas3")
    listings = dict(sheets["listings"].rows)
    assert listings[5] == {
        "owner": "008",
        "kind": "want",
        "text": 'Fiets "als nieuw" te koop',
        "created": "2018-09-13T14:00:00",
        "expires": "2019-09-13T14:00:00",
        "category": "2",
    }
    assert listings[6]["text"] == "Twee regels:\nhier de tweede" and listings[6]["kind"] == "offer"
    assert listings[8]["text"] == "Gereedschap & meer"  # no entities in this export
    balances = sheets["balances"]
    want = {m["code"]: m for m in expected("elas3")["members"]}
    assert dict(balances.rows)[5] == {
        "code": "004",
        "name": 'Jef "de smid" Wouters',
        "balance": "-1225",
    }
    for _, row in balances.rows:
        assert row["balance"] == want[row["code"]]["balance"]


def test_an_elas_transactions_file_of_exactly_5000_rows_may_be_cut_off(tmp_path: Path) -> None:
    for count, capped in ((5000, True), (4999, False)):
        path = tmp_path / f"t{count}.csv"
        lines = ['"Datum","Van","Aan","Bedrag","Dienst"']
        lines += [f'"2014-01-01 10:00:00","001","002","{n}","x"' for n in range(count)]
        path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
        [sheet] = read_source(path)
        assert (len(sheet.rows), sheet.capped) == (count, capped)


# --- eLAND 2016-2019: Csv export zoals eLAS ------------------------------------------------------


def test_eland_2018_users_and_transactions() -> None:
    sheets = sheets_of(FIXTURES / "eland2018")
    assert sheets["members"].source == "eLAND users, 'Csv export zoals eLAS' (export.php)"
    assert sheets["transfers"].source == "eLAND transactions, 'Csv export zoals eLAS' (export.php)"
    members = dict(sheets["members"].rows)
    assert members[2] == {
        "code": "001",
        "name": "Hans Peeters",
        "status": "1",
        "role": "admin",
        "min": "-1500",
        "max": "1000",
    }
    assert members[6]["name"] == "Céline “Lien” Maes"  # UTF-8 this time
    transfers = sheets["transfers"]
    assert dict(transfers.rows)[4] == {
        "date": "2018-11-02T14:00:00+00:00",
        "from": "ILGENT letsgent",
        "to": "013 dirk13",
        "amount": "50",
        "description": "les",
        "id": "cf19bbc26c99_1@letsdurme",
    }
    # No htmlspecialchars here: the quotes are raw, so the row is split on "," alone.
    assert by(transfers, "description", 'zei "hallo" tegen iedereen')[0][0] == 15
    assert by(transfers, "description", "Tom & Jerry \"show\" 'n' <b>bal</b>")[0][0] == 16
    assert by(transfers, "description", "verhuis\nmet de camion")[0][0] == 13
    assert [r["date"] for _, r in transfers.rows[3:5]] == [
        "2018-10-28T00:30:00+00:00",
        "2018-10-28T01:30:00+00:00",
    ][::-1]
    assert by(transfers, "description", "nachtwerk")[0][1]["date"] == "2018-03-24T23:30:00+00:00"
    # Until August 2016 eLAND, like eLAS, wrote the local time, and never converted it.
    assert (
        by(transfers, "description", 'zei "hallo" tegen iedereen')[0][1]["date"]
        == "2015-02-11T16:36:00"
    )
    want = expected("eland2018")
    assert balances_from(transfers) == Counter(
        {m["code"]: int(m["balance"]) for m in want["members"]}
    )
    for _, row in sheets["members"].rows:
        [member] = [m for m in want["members"] if m["code"] == row["code"]]
        assert (row["min"], row["max"]) == (member["min"], member["max"])


def test_the_older_interlets_header_of_eland_is_the_same_format(tmp_path: Path) -> None:
    path = tmp_path / "elas-transactions-2017-05-01.csv"
    path.write_bytes(
        b'"Datum","Van","interlets","Aan","interlets","Bedrag","Dienst","transactie id"\r\n'
        b'"2017-04-30 22:15:00","001 an","","002 bo","","12","a "b" c","x1@durme"\r\n'
    )
    [sheet] = read_source(path)
    assert sheet.kind == "transfers" and sheet.rows == [
        (
            2,
            {
                "date": "2017-04-30T22:15:00+00:00",
                "from": "001 an",
                "to": "002 bo",
                "amount": "12",
                "description": 'a "b" c',
                "id": "x1@durme",
            },
        )
    ]


# --- eLAND since November 2019: the tables ----------------------------------------------------


@pytest.mark.parametrize("where", ["eland_tables", "eland_tables/eland_tables.zip"])
def test_eland_tables_from_the_folder_or_the_zip(where: str) -> None:
    sheets = sheets_of(FIXTURES / where)
    assert sorted(sheets) == ["listings", "members", "transfers"]  # categories, contact passed over
    assert sheets["members"].source == "eLAND table export, users (Export: CSV per table or zip)"
    members = dict(sheets["members"].rows)
    assert members[2] == {
        "id": "101",
        "code": "001",
        "name": "Hans Peeters",
        "status": "1",
        "role": "admin",
        "min": "-1500",
        "max": "1000",
        "balance": "1135",
    }
    assert members[4]["name"] == "ilse3"  # full_name NULL: the nickname
    assert (members[3]["min"], members[3]["max"]) == ("-500", "")  # 002: limits set, then removed
    assert members[5]["name"] == 'Jef "de smid" Wouters'
    want = {m["code"]: m for m in expected("eland_tables")["members"]}
    for _, row in sheets["members"].rows:
        member = want[row["code"]]
        assert (row["status"], row["role"], row["min"], row["max"], row["balance"]) == (
            member["status"],
            member["role"],
            member["min"],
            member["max"],
            member["balance"],
        )
    transfers = sheets["transfers"]
    assert len(transfers.rows) == expected("eland_tables")["transfer_count"]
    assert dict(transfers.rows)[284] == {
        "id": "283",
        "date": "2015-02-12T16:36:00",  # eLAND kept local time until August 2016
        "from": "004",
        "to": "001",
        "amount": "2500",
        "description": "verhuis\nmet de camion",
    }
    assert dict(transfers.rows)[286]["id"] == "284"  # the line after the two-line description
    assert balances_from(transfers) == Counter({c: int(m["balance"]) for c, m in want.items()})
    listings = dict(sheets["listings"].rows)
    assert listings[5]["text"] == 'Fiets "als nieuw" te koop' and listings[5]["kind"] == "want"
    assert listings[6]["kind"] == "offer" and listings[6]["created"] == "2018-09-16T13:00:00+00:00"
    assert listings[9]["id"] == "6"


def test_a_transactions_table_alone_cannot_name_its_members(tmp_path: Path) -> None:
    alone = tmp_path / "letsdurme-transactions-2021-06-01-12-00-00-ab12.csv"
    alone.write_bytes((FIXTURES / "eland_tables" / "transactions.csv").read_bytes())
    with pytest.raises(
        ImportError_, match=r"transactions-2021.*\.csv: eLAND's users table is missing"
    ):
        read_source(alone)


# --- eLAND's CSV button on the lists ----------------------------------------------------------


def test_eland_lists() -> None:
    sheets = sheets_of(FIXTURES / "eland_lists")
    assert sheets["members"].source == "eLAND users list (CSV button)"
    members = dict(sheets["members"].rows)
    assert members[2] == {
        "name": "Hans Peeters",
        "code": "001",
        "balance": "1135",
        "min": "-1500",
        "max": "1000",
    }
    assert members[5]["name"] == 'Jef "de smid" Wouters'  # "" undone
    assert members[4]["name"] == "ilse3"
    want = {m["code"]: m for m in expected("eland_lists")["members"]}
    for _, row in sheets["members"].rows:
        assert (row["name"], row["balance"]) == (
            want[row["code"]]["name"],
            want[row["code"]]["balance"],
        )
        assert "status" not in row
    transfers = sheets["transfers"]
    assert transfers.source == "eLAND transactions list (CSV button)"
    rows = dict(transfers.rows)
    assert rows[4] == {
        "description": "les",
        "amount": "50",
        "date": "2018-11-02T15:00:00",
        "from": "GENT-012 Piet",  # the remote member, not the interlets account
        "to": "013 dirk13",
    }
    assert rows[5]["date"] == rows[6]["date"] == "2018-10-28T02:30:00"
    assert rows[13]["description"] == "verhuis\nmet de camion" and rows[15]["amount"] == "1250"
    # The list shows 17:36 for a local time of 16:36 before August 2016 (eLAND took it for UTC).
    assert rows[16]["date"] == "2015-02-10T16:36:00"
    assert len(transfers.rows) == expected("eland_lists")["transfer_count"]
    last = max(transfers.rows)
    assert last == (
        296,
        {
            "description": "eieren",
            "amount": "10",
            "date": "2013-01-06T15:39:00",
            "from": "011 dirk11",
            "to": "099 kas",
        },
    )


def test_one_members_transaction_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        b'"Omschrijving","Pluimen","Tijdstip","Tegenpartij"\r\n"soep","-5","x","002 bo"'
    )
    with pytest.raises(ImportError_, match="transactions list of one member"):
        read_source(path)


@pytest.mark.parametrize(
    ("shown", "iso"),
    [
        ("2019-03-05 14:03", "2019-03-05T14:03:00"),
        ("05-03-2019 14:03", "2019-03-05T14:03:00"),
        (" 5 mrt 2019, 14:03", "2019-03-05T14:03:00"),
        ("di  5 mrt 2019, 14:03", "2019-03-05T14:03:00"),
        ("5 maart 2019, 14:03", "2019-03-05T14:03:00"),
        ("31 mei 2019, 23:59", "2019-05-31T23:59:00"),
        ("31 februari 2019, 10:00", "31 februari 2019, 10:00"),  # no such day: left as written
        # Before August 2016 the list shows local times as if they were UTC: shifted back.
        ("10 feb 2015, 17:36", "2015-02-10T16:36:00"),
        ("1 jul 2015, 12:00", "2015-07-01T10:00:00"),
        ("morgen", "morgen"),
    ],
)
def test_list_dates_in_every_date_format_of_eland(shown: str, iso: str) -> None:
    assert list_date(shown) == iso


@pytest.mark.parametrize(
    ("stored", "iso"),
    [
        ("2016-08-09 23:00:00", "2016-08-09T23:00:00"),
        ("2016-08-10 00:00:00", "2016-08-10T00:00:00+00:00"),
        ("2021-03-05 14:03:22.12", "2021-03-05T14:03:22.120000+00:00"),
        ("2013-01-01", "2013-01-01T00:00:00"),
        ("0000-00-00 00:00:00", "0000-00-00 00:00:00"),  # unreadable: the importer says so
    ],
)
def test_eland_times_are_utc_from_august_2016(stored: str, iso: str) -> None:
    assert eland_time(stored) == iso


# --- reading and refusing ----------------------------------------------------------------


def test_the_elas_reader_splits_on_quote_comma_quote_only(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(
        b'"letscode","cdate","validity","id_category","content","msg_type"\r\n'
        b'"1","","","","he said "hi"","0"\r\n'
        b'"2","","","",""quoted" first","1"\r\n'
        b'"3","","","","ends in a quote "\r\nand goes on"","1"\r\n'
        b'"4","","","","last","0"\r\n'
    )
    [sheet] = read_source(path)
    assert [(line, row["owner"], row["text"]) for line, row in sheet.rows] == [
        (2, "1", 'he said "hi"'),
        (3, "2", '"quoted" first'),
        (4, "3", 'ends in a quote "\nand goes on"'),
        (6, "4", "last"),
    ]


def test_a_broken_elas_file_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "transactions.csv"
    path.write_bytes(
        b'"Datum","Van","Aan","Bedrag","Dienst"\r\n"2014-01-01","001","002","5","a"\r\n'
        b"2014-01-02,001,002,5,b\r\n"
    )
    with pytest.raises(
        ImportError_, match=r"transactions.csv: line 3: a row should start with a quote"
    ):
        read_source(path)
    path.write_bytes(b'"Datum","Van","Aan","Bedrag","Dienst"\r\n"2014-01-01","001","002"\r\n')
    with pytest.raises(ImportError_, match="line 2: 5 quoted values expected"):
        read_source(path)
    path.write_bytes(b'"Datum","Van","Aan","Bedrag","Dienst"\r\n"1","2","3","4","5","6"\r\n')
    with pytest.raises(ImportError_, match="line 2: more values than the header has"):
        read_source(path)
    path.write_bytes(b"")
    with pytest.raises(ImportError_, match="the file is empty"):
        read_source(path)


def test_encodings(tmp_path: Path) -> None:
    path = tmp_path / "leden.csv"
    path.write_bytes("\ufeffcode;naam;saldo\nDU-001;“An” – 5 €;12\n".encode())
    [sheet] = read_source(path)
    assert sheet.rows == [(2, {"code": "DU-001", "name": "“An” – 5 €", "balance": "12"})]
    assert (sheet.kind, sheet.source) == ("balances", "")
    path.write_bytes("code;naam;saldo\nDU-001;“An” – 5 €;12\n".encode("cp1252"))
    assert read_source(path)[0].rows == sheet.rows
    # Windows-1252 once read as Latin-1 and saved as UTF-8: the C1 controls are mended.
    path.write_bytes("code;naam;saldo\nDU-001;\x93An\x94 \x96 5 \x80;12\n".encode())
    assert read_source(path)[0].rows == sheet.rows
    path.write_bytes("code;naam;saldo\nDU-001;A\x81n;12\n".encode())
    with pytest.raises(ImportError_, match=r"line 2: an invisible control character \(U\+0081\)"):
        read_source(path)
    path.write_bytes(b"code;naam;saldo\nDU-001;\xe9\x81;12\n")
    with pytest.raises(ImportError_, match="line 2: byte 0x81 is neither UTF-8 nor Windows-1252"):
        read_source(path)


def test_our_own_export_and_unknown_headers(tmp_path: Path) -> None:
    out = io.StringIO()
    write_rows(
        [
            {
                "id": 7,
                "date": "2026-01-05T09:00:00+00:00",
                "from": "DU-001",
                "to": "DU-002",
                "amount": "12.50",
                "description": "soep",
                "kind": "transfer",
                "reverses": None,
            },
            {
                "id": 8,
                "date": "2026-01-06T09:00:00+00:00",
                "from": "DU-002",
                "to": "DU-001",
                "amount": "12.50",
                "description": "terug",
                "kind": "reversal",
                "reverses": 7,
            },
        ],
        out,
        "csv",
    )
    path = tmp_path / "transfers.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    [sheet] = read_source(path)
    assert (sheet.kind, sheet.source, sheet.capped) == ("transfers", "", False)
    assert sheet.rows[1] == (
        3,
        {
            "id": "8",
            "date": "2026-01-06T09:00:00+00:00",
            "from": "DU-002",
            "to": "DU-001",
            "amount": "12.50",  # left for parse_amount, which knows the decimals
            "description": "terug",
            "kind": "reversal",
            "reverses": "7",
        },
    )
    odd = tmp_path / "odd.csv"
    odd.write_text("nummer,wie\nDU-001,An\n", encoding="utf-8")
    with pytest.raises(ImportError_, match=r"not an export we know.*--map COLUMN=FIELD"):
        read_source(odd)
    [mapped] = read_source(odd, {"nummer": "code", "wie": "name"})
    assert (mapped.kind, mapped.rows) == ("members", [(2, {"code": "DU-001", "name": "An"})])
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "odd.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ImportError_, match=r"odd\.csv: not an export we know"):
        read_source(folder)


def test_the_sheet_of_read_sheet_says_what_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "saldi.csv"
    path.write_text("code;saldo\nDU-001;10\n", encoding="utf-8")
    sheet = read_sheet(path, ("code", "balance"))
    assert (sheet.rows, sheet.kind, sheet.source, sheet.capped) == (
        [(2, {"code": "DU-001", "balance": "10"})],
        "balances",
        "",
        False,
    )


@pytest.mark.parametrize(
    ("text", "decimals", "minor"),
    [
        ("1.000", 0, 1000),
        ("1,000", 0, 1000),
        ("-2.500", 0, -2500),
        ("1.5", 0, None),
        ("1,50", 0, None),
        ("1.000", 2, None),  # one thousand or one? refused, not guessed
        ("1,000", 1, None),
        ("1.000", 3, 1000),
        ("1.234,50", 2, 123450),
        ("12,50", 2, 1250),
        ("12.5", 2, 1250),
        ("120,0", 0, 120),
        ("1000", 0, 1000),
        ("1.000.000", 0, None),
    ],
)
def test_parse_amount_reads_a_thousands_group_only_where_it_is_one(
    text: str, decimals: int, minor: int | None
) -> None:
    assert parse_amount(text, decimals) == minor


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("1.000", "1000"),
        ("1,000", "1000"),
        ("-1.000.000", "-1000000"),
        ("12,00", "12"),
        ("+5", "5"),
        ("-0", "0"),
        ("0030", "30"),
        ("12.5", "12.5"),  # not a whole number: left for the importer to refuse
        ("", ""),
    ],
)
def test_whole_amounts_of_elas_and_eland(text: str, plain: str) -> None:
    assert whole(text) == plain


def test_the_first_table_export_of_eland_still_had_elas_columns(tmp_path: Path) -> None:
    # November 2019 to spring 2020: users held letscode, fullname, saldo and the limits.
    (tmp_path / "users.csv").write_text(
        "id,cdate,name,letscode,accountrole,status,saldo,minlimit,maxlimit,fullname\n"
        "5,2015-01-01 10:00:00,an,DU-001,admin,1,-40,-500,,An Peeters\n"
        '6,2015-01-01 10:00:00,"bo, de bakker",DU-002,user,2,40,,1000,""\n',
        encoding="utf-8",
    )
    (tmp_path / "transactions.csv").write_text(
        "id,amount,description,id_from,id_to,real_from,real_to,transid,creator,cdate\n"
        "1,40,brood,5,6,,,abc@durme,5,2019-12-31 23:30:00\n",
        encoding="utf-8",
    )
    (tmp_path / "contact.csv").write_text("id,value\n1,x\n", encoding="utf-8")
    sheets = sheets_of(tmp_path)
    assert sheets["members"].rows == [
        (
            2,
            {
                "id": "5",
                "code": "DU-001",
                "name": "An Peeters",
                "status": "1",
                "role": "admin",
                "min": "-500",
                "max": "",
                "balance": "-40",
            },
        ),
        (
            3,
            {
                "id": "6",
                "code": "DU-002",
                "name": "bo, de bakker",
                "status": "2",
                "role": "user",
                "min": "",
                "max": "1000",
                "balance": "40",
            },
        ),
    ]
    assert sheets["transfers"].rows == [
        (
            2,
            {
                "id": "1",
                "date": "2019-12-31T23:30:00+00:00",
                "from": "DU-001",
                "to": "DU-002",
                "amount": "40",
                "description": "brood",
            },
        )
    ]


def test_the_other_elas_lists(tmp_path: Path) -> None:
    old = tmp_path / "elas-transactions2014-01-01.csv"
    old.write_bytes(
        b'"id","Creatiedatum","Transactiedatum","Van","Aan","Bedrag","Dienst","Ingebracht door"\r\n'
        b'"9","2014-01-02 10:00:00","2014-01-01 00:00:00","001 (an)","002 (bo)","20","a "b"","001"\r\n'
    )
    [sheet] = read_source(old)
    assert (sheet.kind, sheet.rows) == (
        "transfers",
        [
            (
                2,
                {
                    "id": "9",
                    "date": "2014-01-01T00:00:00",
                    "from": "001 (an)",
                    "to": "002 (bo)",
                    "amount": "20",
                    "description": 'a "b"',
                },
            )
        ],
    )
    members = tmp_path / "marva-memberlist2014-01-01.csv"
    members.write_bytes(
        b'"Status","Letscode","Naam","Tel","gsm","Postcode","Adres","Mail","Stand","fullname","lijn1","lijn2","VA"\r\n'
        b'"2","001","an","","","9160","","","-1.250","An Peeters","","","3"\r\n'
    )
    [sheet] = read_source(members)
    assert (sheet.kind, sheet.source, sheet.rows) == (
        "members",
        "eLAS 3.x member list (export_memberlist.php)",
        [(2, {"code": "001", "name": "An Peeters", "status": "2", "balance": "-1250"})],
    )
    contacts = tmp_path / "marva-contact-2014-01-01.csv"
    contacts.write_bytes(
        b'"Code","Naam","Postcode","Saldo","Telefoon","E-mail"\n"001","An Peeters","9160",-40,"","an@x"\n'
    )
    [sheet] = read_source(contacts)
    assert (sheet.kind, sheet.source, sheet.rows) == (
        "members",
        "eLAS 3.x contact list (csv_memberlist.php)",
        [(2, {"code": "001", "name": "An Peeters", "balance": "-40"})],
    )
    messages = tmp_path / "elas-messages2014.csv"
    messages.write_bytes(
        b'"id","V/A","Wat","Wie","Letscode","Categorie","Gecreeerd op","Aangepast op","Geldig tot"\r\n'
        b'"3","A","Soep","an","001","Eten","2014-01-01 10:00:00","","2015-01-01 10:00:00"\r\n'
    )
    [sheet] = read_source(messages)
    assert sheet.rows == [
        (
            2,
            {
                "id": "3",
                "owner": "001",
                "kind": "offer",
                "text": "Soep",
                "category": "Eten",
                "created": "2014-01-01T10:00:00",
                "expires": "2015-01-01T10:00:00",
            },
        )
    ]


def test_spreadsheets_and_zips_of_our_own_files(tmp_path: Path) -> None:
    sheet = tmp_path / "leden.xlsx"
    sheet.write_bytes(b"PK")
    with pytest.raises(ImportError_, match="a spreadsheet; save it as CSV"):
        read_source(sheet)
    ours = tmp_path / "ours.zip"
    with zipfile.ZipFile(ours, "w") as archive:
        archive.writestr("members.csv", "code,name,status\nDU-001,An,active\n")
        archive.writestr("notes.txt", "not read")
    [members] = read_source(ours)
    assert (members.kind, members.rows) == (
        "members",
        [(2, {"code": "DU-001", "name": "An", "status": "active"})],
    )
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("notes.txt", "not read")
    with pytest.raises(ImportError_, match=r"no \.csv files in this zip"):
        read_source(empty)
    with pytest.raises(ImportError_, match="no such file or folder"):
        read_source(tmp_path / "missing.csv")


def test_the_code_in_a_transfer_cell() -> None:
    codes = ["001", "DU - 0007", "DU", "ILGENT"]
    assert code_in_cell("001", codes) == "001"
    assert code_in_cell("001 hans1", codes) == "001"
    assert code_in_cell("DU - 0007 an de bakker", codes) == "DU - 0007"  # not "DU"
    assert code_in_cell("ILGENT  letsgent", codes) == "ILGENT"
    assert code_in_cell("0011 x", codes) is None
    assert code_in_cell("GENT-012 Piet", codes) is None
    members = sheets_of(FIXTURES / "eland2018")
    known = [row["code"] for _, row in members["members"].rows]
    assert all(
        code_in_cell(row[side], known)
        for _, row in members["transfers"].rows
        for side in ("from", "to")
    )


def test_a_stray_quote_that_would_swallow_rows_is_named_by_line(tmp_path: Path) -> None:
    """A quote opened in one value and closed lines later would make thirty members
    one value: refused, never imported as ten."""
    lines = (FIXTURES / "eland_tables" / "users.csv").read_text(encoding="utf-8").split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("110,"))
    lines[at] = lines[at].replace(",user,", ',"user,', 1)
    (tmp_path / "users.csv").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ImportError_, match=rf"line {at + 1}: a quote here is closed only on"):
        read_source(tmp_path / "users.csv")
