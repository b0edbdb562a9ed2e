"""A group's real export, unedited, moves in with nothing lost.

The fixtures in tests/fixtures/elas are written exactly as eLAS 3.x and eLAND
write their exports (tests/fixtures/elas/make_fixtures.py; docs/import-formats.md).
For each: the dry run changes nothing, the import is recognised and booked,
`letsbot check` passes, every balance is the source's, and importing again
adds nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from storage.database import make_engine
from tests.test_cli import CONFIG, letsbot

FIXTURES = Path(__file__).parent / "fixtures" / "elas"

# What a coordinator hands the command for each export, and what they see it found.
SOURCES = {
    "elas3": (["users.csv", "transactions.csv", "balances.csv", "messages.csv"], "eLAS 3.x"),
    "eland2018": (["users.csv", "transactions.csv"], "eLAND"),
    "eland_tables": (["eland_tables.zip"], "eLAND"),
}


def expected(folder: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / folder / "expected.json").read_text())
    return loaded


def ready(tmp_path: Path, folder: str) -> Path:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert letsbot("db", "upgrade", cwd=tmp_path).returncode == 0
    for name in SOURCES[folder][0]:
        shutil.copy(FIXTURES / folder / name, tmp_path / name)
    return tmp_path


def stored(tmp_path: Path) -> dict[str, tuple[int, str, str]]:
    """The source's code of each member: (balance, name, status) as stored here."""
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'letsbot.db'}")
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT number, old_code, balance, name, status FROM members")
        ).all()
    engine.dispose()
    return {
        (old or f"{number:03d}"): (balance, name, status)
        for number, old, balance, name, status in rows
    }


def counted(tmp_path: Path, table: str) -> int:
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'letsbot.db'}")
    with engine.connect() as connection:
        count = int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    engine.dispose()
    return count


@pytest.mark.slow
@pytest.mark.parametrize("folder", sorted(SOURCES))
def test_a_real_export_moves_in_exactly(tmp_path: Path, folder: str) -> None:
    files, maker = SOURCES[folder]
    source = expected(folder)
    ready(tmp_path, folder)

    dry = letsbot("import", *files, "--dry-run", cwd=tmp_path)
    assert dry.returncode in (0, 1), dry.stderr
    for name in files:
        assert f"{name}" in dry.stdout and "recognised as " + maker in dry.stdout, dry.stdout
    assert counted(tmp_path, "transfers") == 0 and counted(tmp_path, "members") == 1
    if dry.returncode == 1:  # the group's limits are narrower than some old balances
        assert "--widen-limits" in dry.stdout, dry.stdout

    done = letsbot("import", *files, "--widen-limits", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"added {source['transfer_count']} transfers" in done.stdout, done.stdout
    check = letsbot("check", cwd=tmp_path)
    assert check.returncode == 0 and check.stdout.startswith("OK"), check.stdout

    members = stored(tmp_path)
    for member in source["members"]:
        balance, name, status = members[member["code"]]
        assert balance == int(member["balance"]), member
        assert name == member["name"], member
        if member["status"] == "7" or member["role"] in ("guest", "interlets"):
            assert status == "external", member
    assert counted(tmp_path, "transfers") == source["transfer_count"]

    again = letsbot("import", *files, "--widen-limits", cwd=tmp_path)
    assert again.returncode == 0, again.stdout
    assert "added 0 transfers" in again.stdout, again.stdout
    assert counted(tmp_path, "transfers") == source["transfer_count"]


@pytest.mark.slow
def test_the_list_buttons_export_names_other_groups_members_and_is_refused_by_line(
    tmp_path: Path,
) -> None:
    """eLAND's list CSV names the other group's member of an interSystem transfer
    (``GENT-012 Piet``), not the account that stands for that group here: those
    lines are named, and nothing is imported, rather than booked on a guess."""
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert letsbot("db", "upgrade", cwd=tmp_path).returncode == 0
    for name in ("users.csv", "transactions.csv"):
        shutil.copy(FIXTURES / "eland_lists" / name, tmp_path / name)
    out = letsbot("import", "users.csv", "transactions.csv", "--widen-limits", cwd=tmp_path)
    assert out.returncode == 1
    assert "is unknown" in out.stdout and "GENT-012" in out.stdout, out.stdout
    assert counted(tmp_path, "transfers") == 0 and counted(tmp_path, "members") == 1


@pytest.mark.slow
def test_a_truncated_elas_history_is_refused_with_the_difference_per_member(
    tmp_path: Path,
) -> None:
    ready(tmp_path, "elas3")
    lines = (tmp_path / "transactions.csv").read_bytes().split(b"\r\n")
    # eLAS writes the newest first: the oldest ten transfers fall off the end.
    (tmp_path / "transactions.csv").write_bytes(b"\r\n".join([*lines[:-11], b""]))
    out = letsbot(
        "import", "users.csv", "transactions.csv", "balances.csv", "--widen-limits", cwd=tmp_path
    )
    assert out.returncode == 1, out.stdout
    assert "balances to check the transfers against" in out.stdout
    assert "the transfers give a balance of" in out.stdout and "the source shows" in out.stdout
    assert "nothing imported" in out.stdout
    assert counted(tmp_path, "transfers") == 0


@pytest.mark.slow
def test_the_old_systems_group_account_is_ours(tmp_path: Path) -> None:
    """eLAND's "Groepsrekening" (099) is the group's own account, not a member who
    could claim it and coordinate: named so, its history books on DU-000."""
    ready(tmp_path, "eland_tables")
    dry = letsbot("import", "eland_tables.zip", "--dry-run", cwd=tmp_path)
    assert "099 Groepsrekening looks like the group's own account" in dry.stdout
    assert "--group-account 099" in dry.stdout
    done = letsbot(
        "import", "eland_tables.zip", "--widen-limits", "--group-account", "099", cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert letsbot("check", cwd=tmp_path).returncode == 0
    shown = next(m for m in expected("eland_tables")["members"] if m["code"] == "099")
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'letsbot.db'}")
    with engine.connect() as connection:
        group = connection.execute(
            text("SELECT number, balance FROM members WHERE old_code = '099'")
        ).one()
        claimable = connection.execute(
            text("SELECT count(*) FROM members WHERE name = 'Groepsrekening'")
        ).scalar_one()
    engine.dispose()
    assert tuple(group) == (0, int(shown["balance"])) and claimable == 0
    again = letsbot("import", "eland_tables.zip", "--group-account", "099", cwd=tmp_path)
    assert again.returncode == 0 and "added 0 transfers" in again.stdout, again.stdout


@pytest.mark.slow
def test_old_codes_name_members_in_the_chat_and_for_claim_codes(tmp_path: Path) -> None:
    ready(tmp_path, "eland_tables")
    letsbot("import", "eland_tables.zip", "--widen-limits", "--group-account", "099", cwd=tmp_path)
    codes = letsbot("claim-code", "ILGENT", cwd=tmp_path)  # another group's account
    assert codes.returncode != 0 and "no member with that code" not in codes.stdout + codes.stderr
    script = tmp_path / "s.txt"
    script.write_text("admin: /saldo ilgent\nadmin: /saldo Ilgent\n", encoding="utf-8")
    out = letsbot("console", "--script", "s.txt", cwd=tmp_path).stdout
    assert out.count("Saldo van Interlets Gent (DU-037)") == 2, out


@pytest.mark.slow
def test_the_coordinator_takes_their_own_imported_account(tmp_path: Path) -> None:
    """The coordinator named in bot.toml whose first words claim their own imported
    account coordinates from it, without a new, empty account beside it."""
    ready(tmp_path, "eland_tables")
    letsbot("import", "eland_tables.zip", "--widen-limits", "--group-account", "099", cwd=tmp_path)
    printed = letsbot("claim-code", "001", cwd=tmp_path).stdout
    code = printed.split(": ", 1)[1].split(" (")[0]
    (tmp_path / "claim.txt").write_text(
        f"admin: /activeer {code}\nadmin: /saldo\nadmin: /kandidaten\n", encoding="utf-8"
    )
    out = letsbot("console", "--script", "claim.txt", cwd=tmp_path).stdout
    assert "Welkom, Hans Peeters! Deze chat is nu gekoppeld aan je rekening DU-001" in out, out
    assert "Je saldo: 1.135 pluimen" in out
    assert "Kandidaten die wachten" in out  # a coordinator's command: Hans coordinates
    assert letsbot("check", cwd=tmp_path).stdout.startswith("OK: 39 members"), out  # none made
