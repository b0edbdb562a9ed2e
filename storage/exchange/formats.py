"""Every export of eLAS and eLAND, read as it was written; our own CSV read by its headers.

``read_source`` takes a CSV file, a folder of them or the zip of eLAND's table
export, recognises each file by its headers and hands back one ``Sheet`` per
table with values normalised, so that the importers need not know the source:

- members: ``code`` as written, ``name`` the full name (else the nickname),
  ``status`` and ``role`` raw, ``min``/``max``/``balance`` when the source has them;
- transfers: ``from``/``to`` the cell as written (a table export's user ids become
  codes), ``date`` ISO 8601 (``+00:00`` where the source wrote UTC, as eLAND did
  from August 2016; no offset where it wrote the server's local time), ``amount``
  a plain number with ``.``,
  ``description`` with the HTML entities eLAS added decoded;
- listings: ``owner``, ``kind`` (offer or want), ``text``, ``description``,
  ``category``, ``created``, ``expires``.

Line numbers are the physical lines where rows start, the header being line 1.
docs/import-formats.md describes each format and its quirks.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from storage.exchange.sheet import (
    FULL_NAMES,
    HEADERS,
    Field,
    ImportError_,
    Kind,
    Sheet,
    guess_kind,
    plain_title,
)

# export_transactions.php of eLAS: "ORDER BY transactions.date DESC LIMIT 5000".
ELAS_CAP = 5000

Row = dict[Field, str]


@dataclass(frozen=True)
class Table:
    """A CSV file as read: its header and its records, each with the line it starts on."""

    label: str  # the file (and zip entry) for messages
    header: list[str]
    records: list[tuple[int, list[str]]]
    crlf: bool  # lines end in CR LF (or there is one line), as the PHP and JavaScript wrote
    quoted: bool  # every title of the header in quotes

    def dicts(self) -> list[tuple[int, dict[str, str]]]:
        plain = [title.strip().lower() for title in self.header]
        return [
            (
                line,
                {
                    name: (values[i].strip() if i < len(values) else "")
                    for i, name in enumerate(plain)
                },
            )
            for line, values in self.records
        ]


def read_source(path: Path, mapping: dict[str, Field] | None = None) -> list[Sheet]:
    """Every table in ``path`` (a CSV file, a folder or an eLAND table export .zip)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
        if not files:
            raise ImportError_(f"{path}: no .csv files in this folder")
        return _read_many([(str(p), p.read_bytes()) for p in files], mapping)
    if not path.is_file():
        raise ImportError_(f"{path}: no such file or folder")
    if path.suffix.lower() == ".json":  # our own JSON export
        return [_read_json(path)]
    if path.suffix.lower() in (".xlsx", ".xls", ".ods"):
        raise ImportError_(f"{path}: a spreadsheet; save it as CSV (UTF-8) and import that")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                entries = [
                    (f"{path}:{info.filename}", archive.read(info))
                    for info in archive.infolist()
                    if info.filename.lower().endswith(".csv") and not info.is_dir()
                ]
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as error:
            raise ImportError_(f"{path}: the zip can't be read ({error})") from None
        if not entries:
            raise ImportError_(f"{path}: no .csv files in this zip")
        return _read_many(entries, mapping)
    return _read_many([(str(path), path.read_bytes())], mapping)


def read_files(paths: Sequence[Path], mapping: dict[str, Field] | None = None) -> list[Sheet]:
    """Several CSV files read together, as one folder is: eLAND's tables, each saved
    with its own button, find each other (transactions name users by id)."""
    return _read_many([(str(path), path.read_bytes()) for path in paths], mapping)


# --- files to tables ---------------------------------------------------------------------


def decode(raw: bytes, label: str) -> str:
    """UTF-8 (with or without BOM), else Windows-1252; never a C1 control character."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as broken:
        if _UTF8.search(raw):  # some lines UTF-8, others not: no one reading is right
            line = raw[: broken.start].count(b"\n") + 1
            raise ImportError_(
                f"{label}: line {line}: this line is not UTF-8 while others are (a file"
                " pieced together?); save the whole file as UTF-8 and try again"
            ) from None
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            raise ImportError_(
                f"{label}: line {line}: byte 0x{raw[error.start]:02X} is neither UTF-8 nor"
                " Windows-1252 text; save the file as UTF-8 and try again"
            ) from None
    return _C1.sub(lambda found: _repair_c1(found, text, label), text)


_C1 = re.compile("[\x80-\x9f]")
# Two- and three-byte UTF-8 sequences: in Windows-1252 text they read as "Ã©", "â‚¬".
_UTF8 = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}")


def _repair_c1(found: re.Match[str], text: str, label: str) -> str:
    # Windows-1252 text once read as Latin-1 and saved as UTF-8: its curly quotes
    # and euro signs became C1 controls. Give them back; refuse what has no meaning.
    try:
        return bytes([ord(found.group())]).decode("cp1252")
    except UnicodeDecodeError:
        line = text.count("\n", 0, found.start()) + 1
        raise ImportError_(
            f"{label}: line {line}: an invisible control character"
            f" (U+{ord(found.group()):04X}); remove it from the file"
        ) from None


def read_table(label: str, text: str, unescaped: bool | None = None) -> Table:
    """The header and records of a CSV text.

    ``unescaped``: True for a file written by eLAS's PHP (every value in quotes, a
    quote inside a value left as it is), False for proper CSV, None to decide here:
    proper CSV unless the header is all quoted and proper CSV can't make sense of it.
    """
    if not text.strip():
        raise ImportError_(f"{label}: the file is empty")
    first = text.split("\n", 1)[0]
    crlf = first.endswith("\r") or "\n" not in text.rstrip("\r\n")
    first = first.rstrip("\r")
    quoted = _ALL_QUOTED.fullmatch(first) is not None
    if unescaped and quoted:
        return Table(label, *_scan_unescaped(label, text), crlf, quoted)
    try:
        header, records = _read_csv(label, text, first)
    except ImportError_:
        if unescaped is None and quoted:
            return Table(label, *_scan_unescaped(label, text), crlf, quoted)
        raise
    if unescaped is None and quoted and any(len(r) != len(header) for _, r in records):
        try:
            return Table(label, *_scan_unescaped(label, text), crlf, quoted)
        except ImportError_:
            pass  # not eLAS either: proper CSV with uneven rows, as read
    return Table(label, header, records, crlf, quoted)


_ALL_QUOTED = re.compile(r'"[^"]*"(?:,"[^"]*")*')  # as PHP and csv.js wrote it


def _read_csv(label: str, text: str, first: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    records: list[tuple[int, list[str]]] = []
    try:
        header = next(reader)
        start = reader.line_num + 1
        for values in reader:
            # The line a row starts on, as an editor counts: a quoted value may hold line breaks.
            line, start = start, reader.line_num + 1
            if start - line > 1 and len(values) != len(header):
                # A quote opened in a value and closed lines later: the rows between
                # would silently become one value.
                raise ImportError_(
                    f"{label}: line {line}: a quote here is closed only on line"
                    f" {start - 1}, which swallows the rows between; fix the quote"
                )
            if any(v.strip() for v in values):
                records.append((line, values))
    except csv.Error as error:
        why = f"not readable as CSV ({error})"
        if "field limit" in str(error):
            limit = csv.field_size_limit()
            why = f"a field is longer than {limit} characters; is this the right file?"
        elif "new-line character" in str(error):
            why = "a carriage return (U+000D) inside a value; remove it from the file"
        raise ImportError_(f"{label}: line {reader.line_num}: {why}") from None
    return header, records


def _scan_unescaped(label: str, text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Rows as eLAS wrote them: ``"a","he said "hi"","c"`` CR LF, no escaping at all.

    A value ends at the next ``","``; the last one at a quote that ends a line and
    is followed by the next row's opening quote (or the end), so a value may hold
    quotes and line breaks.
    """
    first = text.split("\n", 1)[0].rstrip("\r")
    width = first.count('","') + 1
    size = len(text)
    records: list[tuple[int, list[str]]] = []
    pos, line = 0, 1
    while pos < size:
        if text[pos] in "\r\n":  # a blank line
            line += text[pos] == "\n"
            pos += 1
            continue
        if text[pos] != '"':
            raise ImportError_(
                f"{label}: line {line}: a row should start with a quote, as every row"
                " of this export does; was the file edited?"
            )
        start, cursor = pos, pos + 1
        values = []
        for _ in range(width - 1):
            end = text.find('","', cursor)
            if end < 0:
                raise ImportError_(
                    f"{label}: line {line}: {width} quoted values expected, fewer found"
                )
            values.append(text[cursor:end])
            cursor = end + 3
        search, fallback = cursor, None
        while True:
            end = text.find('"', search)
            if end < 0:
                if fallback is None:
                    raise ImportError_(f"{label}: line {line}: the last value has no closing quote")
                end, following = fallback  # the next line is no row: named below
                break
            after = end + 1
            if after >= size:
                following = size
            elif text.startswith("\r\n", after):
                following = after + 2
            elif text[after] == "\n":
                following = after + 1
            else:
                search = after
                continue
            if following >= size or text[following] in '"\r\n':
                break
            fallback = fallback or (end, following)
            search = after  # a quote before a line break inside the value
        last = text[cursor:end]
        if '","' in last:
            raise ImportError_(
                f'{label}: line {line}: more values than the header has, or a value holding ","'
                " (eLAS did not escape it, so where it ends can't be told); fix that row by hand"
            )
        values.append(last)
        records.append((line, values))
        line += text.count("\n", start, following)
        pos = following
    header, rows = records[0][1], records[1:]
    return header, [(n, v) for n, v in rows if any(x.strip() for x in v)]


# --- recognising a table -----------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    source: str
    kind: Kind
    unescaped: bool  # written by PHP without escaping quotes
    read: Callable[[Table], list[tuple[int, Row]]]
    capped_at: int | None = None


def _plain(header: Sequence[str]) -> tuple[str, ...]:
    return tuple(title.strip().lower() for title in header)


ELAS_USERS = (
    "letscode", "cdate", "comments", "hobbies", "name", "postcode", "login", "mailinglist",
    "password", "accountrole", "status", "lastlogin", "minlimit", "fullname", "admincomment",
    "activeringsdatum",
)  # fmt: skip
ELAND_USERS = (*ELAS_USERS[:13], "maxlimit", *ELAS_USERS[13:])
_USER_COLUMNS = {"letscode", "name", "fullname", "accountrole", "status", "minlimit"}
ELAS_TRANSACTIONS = ("datum", "van", "aan", "bedrag", "dienst")
ELAS_TRANSACTIONS_LIST = (
    "id", "creatiedatum", "transactiedatum", "van", "aan", "bedrag", "dienst", "ingebracht door",
)  # fmt: skip
ELAS_MESSAGES = ("letscode", "cdate", "validity", "id_category", "content", "msg_type")
ELAND_MESSAGES = ("letscode", "username", "cdate", "validity", "content", "msg_type")
ELAS_MESSAGES_LIST = (
    "id", "v/a", "wat", "wie", "letscode", "categorie", "gecreeerd op", "aangepast op",
    "geldig tot",
)  # fmt: skip
ELAS_BALANCES = ("letscode", "naam", "saldo")
ELAS_MEMBERLIST = (
    "status", "letscode", "naam", "tel", "gsm", "postcode", "adres", "mail", "stand",
    "fullname", "lijn1", "lijn2", "va",
)  # fmt: skip


def recognise(table: Table) -> Format | None:
    """The export a table comes from, by its header, or None (then it is read by HEADERS)."""
    header = _plain(table.header)
    # Columns are read by name: a later version adding one is read all the same.
    if header[:1] == ("letscode",) and set(header) >= _USER_COLUMNS:
        if "maxlimit" in header:
            return Format(
                "eLAND users, 'Csv export zoals eLAS' (export.php)", "members", True, _elas_users
            )
        return Format("eLAS 3.x users (export_users.php)", "members", True, _elas_users)
    if header == ELAS_TRANSACTIONS:
        return Format(
            "eLAS 3.x transactions (export_transactions.php)",
            "transfers",
            True,
            _elas_transactions,
            capped_at=ELAS_CAP,
        )
    if header == ELAS_TRANSACTIONS_LIST:
        return Format(
            "eLAS 3.x transaction list (export_transactions.php in the main folder)",
            "transfers",
            True,
            _elas_transaction_list,
        )
    if (
        len(header) == 8
        and header[:2] == ("datum", "van")
        and header[2] == header[4]
        and header[2] in ("interlets", "intersysteem")
        and header[3] == "aan"
        and header[5:] == ("bedrag", "dienst", "transactie id")
    ):
        return Format(
            "eLAND transactions, 'Csv export zoals eLAS' (export.php)",
            "transfers",
            True,
            _eland_transactions,
        )
    if header == ELAS_MESSAGES:
        return Format(
            "eLAS 3.x offers and wants (export_messages.php)", "listings", True, _messages(False)
        )
    if header == ELAND_MESSAGES:
        return Format(
            "eLAND offers and wants, 'Csv export zoals eLAS' (export.php)",
            "listings",
            True,
            _messages(True),
        )
    if header == ELAS_MESSAGES_LIST:
        return Format(
            "eLAS 3.x offer and want list (export_messages.php in the main folder)",
            "listings",
            True,
            _elas_message_list,
        )
    if header == ELAS_BALANCES:
        return Format(
            "eLAS 3.x balances (reports/csv_balance.php)", "balances", True, _elas_balances
        )
    if header == ELAS_MEMBERLIST:
        return Format(
            "eLAS 3.x member list (export_memberlist.php)", "members", True, _elas_memberlist
        )
    if header[:4] == ("code", "naam", "postcode", "saldo") and not table.crlf:
        return Format(
            "eLAS 3.x contact list (csv_memberlist.php)", "members", False, _elas_contactlist
        )
    if header and header[0] == "omschrijving" and header[2:] == ("tijdstip", "tegenpartij"):
        raise ImportError_(
            "this is the transactions list of one member (its 'Tegenpartij' column hides who"
            " paid whom); export the list of all transactions instead"
        )
    if (
        len(header) == 5
        and header[0] == "omschrijving"
        and header[2:] == ("tijdstip", "van", "aan")
    ):
        return Format(
            "eLAND transactions list (CSV button)", "transfers", False, _eland_transaction_list
        )
    if (
        table.quoted
        and table.crlf
        and {"code", "naam"} <= set(header)
        and set(header) & {"volledige naam", "saldo", "min", "max", "rol"}
    ):
        return Format("eLAND users list (CSV button)", "members", False, _eland_user_list)
    return None


# The column titles of eLAND's users list (UsersListController.php) that we read.
_LIST_USER_COLUMNS: dict[str, Field] = {
    "code": "code",
    "rol": "role",
    "saldo": "balance",
    "min": "min",
    "max": "max",
}


# --- values ------------------------------------------------------------------------------


def whole(text: str) -> str:
    """An amount eLAS/eLAND wrote (always whole units) as a plain number: ``1.000`` is 1000."""
    cleaned = text.strip().replace(" ", "")
    if re.fullmatch(r"[-+]?[0-9]+", cleaned, re.ASCII):
        return str(int(cleaned))
    grouped = re.fullmatch(r"(-?)([0-9]{1,3}(?:([.,])[0-9]{3})(?:\3[0-9]{3})*)", cleaned, re.ASCII)
    if grouped is not None:  # a spreadsheet's thousands separators
        return str(int(grouped[1] + re.sub(r"[.,]", "", grouped[2])))
    zeros = re.fullmatch(r"(-?[0-9]+)[.,]0+", cleaned, re.ASCII)
    if zeros is not None:
        return str(int(zeros[1]))
    return text.strip()


# eLAND wrote a transaction's time in UTC from 9 August 2016 ("transactions cdate gmt");
# before, as eLAS, in the server's local time, and those rows were never converted.
ELAND_UTC_SINCE = datetime(2016, 8, 10)
# Where eLAND's servers kept their clock (public/.user.ini, the TIMEZONE default).
ELAND_ZONE = ZoneInfo("Europe/Brussels")


def eland_time(text: str) -> str:
    """A transaction time of eLAND's database: UTC since August 2016, local time before."""
    cleaned = text.strip()
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        return cleaned
    return iso(cleaned, utc=moment.tzinfo is not None or moment >= ELAND_UTC_SINCE)


def iso(text: str, *, utc: bool) -> str:
    """A date as ISO 8601, with +00:00 when the source wrote UTC; unreadable text as it is."""
    cleaned = text.strip()
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        return cleaned
    if utc and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "januari", "january"),
            ("feb", "februari", "february"),
            ("mrt", "maart", "mar", "march"),
            ("apr", "april"),
            ("mei", "may"),
            ("jun", "juni", "june"),
            ("jul", "juli", "july"),
            ("aug", "augustus", "august"),
            ("sep", "sept", "september"),
            ("okt", "oktober", "oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_NUMERIC = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2})(?::(\d{2}))?")
_DAY_FIRST = re.compile(r"(\d{2})-(\d{2})-(\d{4}) (\d{2}):(\d{2})(?::(\d{2}))?")
_WORDS = re.compile(
    r"(?:[^\W\d]+\.? +)?(\d{1,2}) +([^\W\d]+)\.? +(\d{4}),? +(\d{2}):(\d{2})(?::(\d{2}))?"
)


def list_date(text: str) -> str:
    """A time as eLAND's lists show it, in the group's date format and local time: naive ISO."""
    cleaned = " ".join(text.split())
    parts: tuple[int, ...] | None = None
    if (found := _NUMERIC.fullmatch(cleaned)) is not None:
        parts = tuple(int(x or 0) for x in found.groups())
    elif (found := _DAY_FIRST.fullmatch(cleaned)) is not None:
        day, month, year, *rest = (int(x or 0) for x in found.groups())
        parts = (year, month, day, *rest)
    elif (found := _WORDS.fullmatch(cleaned)) is not None and found[2].lower() in _MONTHS:
        parts = (int(found[3]), _MONTHS[found[2].lower()], int(found[1]))
        parts += tuple(int(x or 0) for x in found.groups()[3:])
    if parts is None:
        return cleaned
    try:
        year, month, day, hour, minute, second = parts
        shown = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return cleaned
    if shown < ELAND_UTC_SINCE:
        # eLAND took every stored time for UTC when showing it: the local times of
        # before August 2016 appear an hour or two late. Take that shift off again.
        shown = shown.replace(tzinfo=ELAND_ZONE).astimezone(UTC).replace(tzinfo=None)
    return shown.isoformat()


def code_in_cell(cell: str, codes: Iterable[str]) -> str | None:
    """The member code a transfer's cell names, among the ``codes`` of the members file.

    eLAND writes ``code nickname`` and a code may itself hold spaces (``DU - 0007``),
    so the longest code that the cell is, or starts with before a space, wins.
    """
    text = " ".join(cell.split())
    found = [c for c in codes if text == c or text.startswith(c + " ")]
    return max(found, key=len) if found else None


def _name(full: str, nickname: str) -> str:
    return full.strip() or nickname.strip()


# --- the formats -------------------------------------------------------------------------


def _elas_users(table: Table) -> list[tuple[int, Row]]:
    rows = []
    for line, v in table.dicts():
        row: Row = {
            "code": v["letscode"],
            "name": _name(v["fullname"], v["name"]),
            "status": v["status"],
            "role": v["accountrole"],
            "min": whole(v["minlimit"]),
        }
        if "maxlimit" in v:
            row["max"] = whole(v["maxlimit"])
        rows.append((line, row))
    return rows


def _elas_transactions(table: Table) -> list[tuple[int, Row]]:
    # htmlspecialchars(ENT_QUOTES) was applied to the codes and the description;
    # the date is the server's local time (MySQL datetime).
    return [
        (
            line,
            {
                "date": iso(v["datum"], utc=False),
                "from": html.unescape(v["van"]),
                "to": html.unescape(v["aan"]),
                "amount": whole(v["bedrag"]),
                "description": html.unescape(v["dienst"]).strip(),
            },
        )
        for line, v in table.dicts()
    ]


def _elas_transaction_list(table: Table) -> list[tuple[int, Row]]:
    return [
        (
            line,
            {
                "id": v["id"],
                "date": iso(v["transactiedatum"], utc=False),
                "from": v["van"],
                "to": v["aan"],
                "amount": whole(v["bedrag"]),
                "description": v["dienst"],
            },
        )
        for line, v in table.dicts()
    ]


def _eland_transactions(table: Table) -> list[tuple[int, Row]]:
    # Van and Aan are "code name"; Datum is transactions.cdate, kept in UTC by eLAND.
    rows: list[tuple[int, Row]] = []
    for line, values in table.records:
        v = [value.strip() for value in values] + [""] * (8 - len(values))
        rows.append(
            (
                line,
                {
                    "date": eland_time(v[0]),
                    "from": v[1],
                    "to": v[3],
                    "amount": whole(v[5]),
                    "description": v[6],
                    "id": v[7],
                },
            )
        )
    return rows


def _messages(utc: bool) -> Callable[[Table], list[tuple[int, Row]]]:
    def read(table: Table) -> list[tuple[int, Row]]:
        rows = []
        for line, v in table.dicts():
            row: Row = {
                "owner": v["letscode"],
                "kind": _offer_want(v["msg_type"]),
                "text": v["content"],
                "created": iso(v["cdate"], utc=utc),
                "expires": iso(v["validity"], utc=utc),
            }
            if "id_category" in v:
                row["category"] = v["id_category"]
            rows.append((line, row))
        return rows

    return read


def _offer_want(msg_type: str) -> str:
    # msg_type 0 is a want (vraag), 1 an offer (aanbod); anything else stays as written.
    return {"0": "want", "1": "offer"}.get(msg_type.strip(), msg_type.strip())


def _elas_message_list(table: Table) -> list[tuple[int, Row]]:
    kinds = {"V": "want", "A": "offer"}
    return [
        (
            line,
            {
                "id": v["id"],
                "owner": v["letscode"],
                "kind": kinds.get(v["v/a"], v["v/a"]),
                "text": v["wat"],
                "category": v["categorie"],
                "created": iso(v["gecreeerd op"], utc=False),
                "expires": iso(v["geldig tot"], utc=False),
            },
        )
        for line, v in table.dicts()
    ]


def _elas_balances(table: Table) -> list[tuple[int, Row]]:
    return [
        (line, {"code": v["letscode"], "name": v["naam"], "balance": whole(v["saldo"])})
        for line, v in table.dicts()
    ]


def _elas_memberlist(table: Table) -> list[tuple[int, Row]]:
    return [
        (
            line,
            {
                "code": v["letscode"],
                "name": _name(v["fullname"], v["naam"]),
                "status": v["status"],
                "balance": whole(v["stand"]),
            },
        )
        for line, v in table.dicts()
    ]


def _elas_contactlist(table: Table) -> list[tuple[int, Row]]:
    return [
        (line, {"code": v["code"], "name": v["naam"], "balance": whole(v["saldo"])})
        for line, v in table.dicts()
    ]


def _eland_user_list(table: Table) -> list[tuple[int, Row]]:
    rows = []
    for line, v in table.dicts():
        row: Row = {"name": _name(v.get("volledige naam", ""), v.get("naam", ""))}
        for title, name in _LIST_USER_COLUMNS.items():
            if title in v:
                row[name] = whole(v[title]) if name in ("balance", "min", "max") else v[title]
        rows.append((line, row))
    return rows


def _eland_transaction_list(table: Table) -> list[tuple[int, Row]]:
    # The second column is titled with the currency's name; the time is local, to the minute.
    rows: list[tuple[int, Row]] = []
    for line, values in table.records:
        v = [value.strip() for value in values] + [""] * (5 - len(values))
        rows.append(
            (
                line,
                {
                    "description": v[0],
                    "amount": whole(v[1]),
                    "date": list_date(v[2]),
                    "from": v[3],
                    "to": v[4],
                },
            )
        )
    return rows


# --- eLAND's table export (psql \copy ... csv header, one file per table) ---------------------

_TABLE_SOURCE = "eLAND table export, {} (Export: CSV per table or zip)"


def _table_name(table: Table) -> str | None:
    """Which eLAND table a \\copy file is, by its columns."""
    names = set(_plain(table.header))
    if {"id", "name", "status"} <= names and names & {"code", "letscode"}:
        return "users"
    if {"id", "amount", "id_from", "id_to"} <= names:
        return "transactions"
    if {"account_id", "balance"} <= names:
        return "balance"
    if {"account_id", "min_limit"} <= names:
        return "min_limit"
    if {"account_id", "max_limit"} <= names:
        return "max_limit"
    if {"id", "content"} <= names and names & {"user_id", "id_user"}:
        return "messages"
    if {"id", "name"} <= names and names & {"parent_id", "id_parent"}:
        return "categories"
    return None


def _latest(table: Table | None, column: str) -> dict[str, str] | None:
    """The newest value per account of a balance/min_limit/max_limit log (highest id wins)."""
    if table is None:
        return None
    newest: dict[str, tuple[int, str]] = {}
    for line, v in table.dicts():
        try:
            order = int(v.get("id", "") or line)
        except ValueError:
            order = line
        account = v.get("account_id", "")
        if account not in newest or order > newest[account][0]:
            newest[account] = (order, v.get(column, ""))
    return {account: value for account, (_, value) in newest.items()}


def _eland_tables(tables: dict[str, Table]) -> list[Sheet]:
    users = tables.get("users")
    if users is None:
        held = ", ".join(table.label for table in tables.values())
        raise ImportError_(
            f"{held}: eLAND's users table is missing; without it user ids can't be turned"
            " into codes: export the zip of all tables"
        )
    codes: dict[str, str] = {}
    members: list[tuple[int, Row]] = []
    balances = _latest(tables.get("balance"), "balance")
    lows = _latest(tables.get("min_limit"), "min_limit")
    highs = _latest(tables.get("max_limit"), "max_limit")
    for line, v in users.dicts():
        code = v.get("code", v.get("letscode", ""))
        codes[v["id"]] = code
        row: Row = {
            "id": v["id"],
            "code": code,
            "name": _name(v.get("full_name", v.get("fullname", "")), v["name"]),
            "status": v["status"],
            "role": v.get("role", v.get("accountrole", "")),
        }
        # Until mid-2020 the users table held saldo/minlimit/maxlimit itself.
        low = lows.get(v["id"], "") if lows is not None else v.get("minlimit")
        high = highs.get(v["id"], "") if highs is not None else v.get("maxlimit")
        balance = balances.get(v["id"], "0") if balances is not None else v.get("saldo")
        limits: tuple[tuple[Field, str | None], ...] = (
            ("min", low),
            ("max", high),
            ("balance", balance),
        )
        for name, value in limits:
            if value is not None:
                row[name] = whole(value)
        members.append((line, row))
    sheets = [Sheet(members, "members", _TABLE_SOURCE.format("users"), label=users.label)]
    if (transactions := tables.get("transactions")) is not None:
        rows: list[tuple[int, Row]] = []
        for line, v in transactions.dicts():
            rows.append(
                (
                    line,
                    {
                        "id": v["id"],
                        "date": eland_time(v.get("created_at") or v.get("cdate", "")),
                        "from": codes.get(v["id_from"], f"#{v['id_from']}"),
                        "to": codes.get(v["id_to"], f"#{v['id_to']}"),
                        "amount": whole(v["amount"]),
                        "description": v.get("description", ""),
                    },
                )
            )
        source = _TABLE_SOURCE.format("transactions")
        sheets.append(Sheet(rows, "transfers", source, label=transactions.label))
    if (messages := tables.get("messages")) is not None:
        # A message names its category by id: the categories table has the name.
        categories = {
            v["id"]: v["name"]
            for _, v in (tables["categories"].dicts() if "categories" in tables else [])
        }
        listings: list[tuple[int, Row]] = []
        for line, v in messages.dicts():
            owner = v.get("user_id", v.get("id_user", ""))
            if "offer_want" in v:
                kind = v["offer_want"]
            elif "is_offer" in v:
                kind = {"t": "offer", "f": "want"}.get(v["is_offer"], v["is_offer"])
            else:
                kind = _offer_want(v.get("msg_type", ""))
            listing: Row = {
                "id": v["id"],
                "owner": codes.get(owner, f"#{owner}"),
                "kind": kind,
                "text": v.get("subject") or v["content"],
                "category": categories.get(
                    category := v.get("category_id", v.get("id_category", "")), category
                ),
                "created": iso(v.get("created_at") or v.get("cdate", ""), utc=True),
                "expires": iso(v.get("expires_at") or v.get("validity", ""), utc=True),
            }
            if v.get("subject"):
                listing["description"] = v["content"]
            listings.append((line, listing))
        source = _TABLE_SOURCE.format("messages")
        sheets.append(Sheet(listings, "listings", source, label=messages.label))
    return sheets


# --- putting it together -----------------------------------------------------------------

_ORDER: dict[Kind | None, int] = {"members": 0, "balances": 1, "transfers": 2, "listings": 3}


def _read_many(files: list[tuple[str, bytes]], mapping: dict[str, Field] | None) -> list[Sheet]:
    sheets: list[Sheet] = []
    tables: dict[str, Table] = {}
    unknown: list[Table] = []
    for label, raw in files:
        text = decode(raw, label)
        table = read_table(label, text, unescaped=None)
        try:
            found = recognise(table)
        except ImportError_ as error:
            raise ImportError_(f"{label}: {error}") from None
        if found is not None:
            if found.unescaped:  # read again as the PHP wrote it
                table = read_table(label, text, unescaped=True)
            rows = found.read(table)
            capped = found.capped_at is not None and len(rows) == found.capped_at
            sheets.append(Sheet(rows, found.kind, found.source, capped, table.label))
            continue
        which = _table_name(table)
        if which is None:
            unknown.append(table)
        elif which in tables:
            raise ImportError_(f"{label}: a second {which} table; give one export at a time")
        else:
            tables[which] = table
    if tables:
        # The rest of eLAND's tables (contacts, categories, news, ...) are not moved.
        sheets.extend(_eland_tables(tables))
    else:
        sheets.extend(_by_headers(table, mapping) for table in unknown)
    return sorted((_one_newline(sheet) for sheet in sheets), key=lambda s: _ORDER.get(s.kind, 4))


def _one_newline(sheet: Sheet) -> Sheet:
    # A line break inside a value is CR LF from PHP on Windows and LF from psql: one kind.
    for _, values in sheet.rows:
        for name, value in values.items():
            if "\r\n" in value:
                values[name] = value.replace("\r\n", "\n")
    return sheet


def _by_headers(table: Table, mapping: dict[str, Field] | None) -> Sheet:
    """Our own CSV, or one with unknown headers: columns found by HEADERS and --map."""
    names = {**HEADERS, **{k.lower(): v for k, v in (mapping or {}).items()}}
    columns: dict[int, Field] = {}
    for index, title in enumerate(table.header):
        plain = plain_title(title)
        found = names.get(plain)
        if found is None:
            continue
        taken = [i for i, f in columns.items() if f == found]
        if not taken:
            columns[index] = found
        elif plain in FULL_NAMES:  # a nickname column came first; the full name wins
            del columns[taken[0]]
            columns[index] = found
    kind = guess_kind(set(columns.values()))
    if kind is None:
        shown = ", ".join(title[:40] for title in table.header[:30])
        raise ImportError_(
            f"{table.label}: not an export we know, and its headers ({shown}) name no members,"
            " transfers, balances or listings; name the columns with --map COLUMN=FIELD"
        )
    rows = [
        (line, {f: values[i].strip() for i, f in columns.items() if i < len(values)})
        for line, values in table.records
    ]
    return Sheet(rows, kind, label=table.label)


def _read_json(path: Path) -> Sheet:
    """``letsbot export --format json``: a list of objects, our own column names."""
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ImportError_(f"{path}: not readable as JSON ({error})") from None
    if not isinstance(listed, list) or not all(isinstance(row, dict) for row in listed):
        raise ImportError_(f"{path}: expected a JSON list of objects")
    rows: list[tuple[int, dict[Field, str]]] = []
    for number, row in enumerate(listed, start=1):
        values: dict[Field, str] = {}
        for key, value in row.items():
            field = HEADERS.get(str(key).strip().lower())
            if field is None or value is None:
                continue
            values[field] = " ".join(map(str, value)) if isinstance(value, list) else str(value)
        rows.append((number, values))
    found = {name for _, values in rows for name in values}
    return Sheet(rows, kind=guess_kind(found), source="letsbot export (JSON)")
