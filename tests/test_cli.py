"""The command line as a volunteer uses it: real processes, real files."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

DUTCH_SCRIPT = """\
# join -> approve -> pay -> balance -> history, in Dutch
@2026-12-01 09:00
admin: /start
an: /aanmelden An Peeters
bo: /aanmelden Bo Janssens
admin: /goedkeuren DU-002
admin: /goedkeuren 3

@2026-12-01 10:30
an@group: /betaal DU-003 30 soep
an@group: ja
bo: /saldo
an: /overzicht
"""

DUTCH_EXPECTED = """\
[dm an] Dank je, An Peeters! Je bent nu kandidaat-lid van LETS Durme, met code DU-002. Een coördinator neemt contact met je op voor een onthaalgesprek. Daarna kun je ruilen.
[dm admin] Nieuwe kandidaat: An Peeters (DU-002). Na het onthaalgesprek: /goedkeuren DU-002 of /weigeren DU-002
[dm bo] Dank je, Bo Janssens! Je bent nu kandidaat-lid van LETS Durme, met code DU-003. Een coördinator neemt contact met je op voor een onthaalgesprek. Daarna kun je ruilen.
[dm admin] Nieuwe kandidaat: Bo Janssens (DU-003). Na het onthaalgesprek: /goedkeuren DU-003 of /weigeren DU-003
[dm admin] An Peeters (DU-002) is nu lid. Ik heb een welkomstbericht gestuurd.
[dm an] Welkom bij LETS Durme, An Peeters! Je bent nu lid, met code DU-002. Je saldo: 0 pluimen.
  Zo werkt het:
  /saldo: je saldo
  /betaal DU-001 30 soep: betaal een lid
  /overzicht: je laatste transacties
  /leden: wie is er lid
  /aanbiedingen: wat leden aanbieden
  /activiteiten: markten en repaircafés
  /hulp: meer hulp, met voorbeelden
[dm admin] Bo Janssens (DU-003) is nu lid. Ik heb een welkomstbericht gestuurd.
[dm bo] Welkom bij LETS Durme, Bo Janssens! Je bent nu lid, met code DU-003. Je saldo: 0 pluimen.
  Zo werkt het:
  /saldo: je saldo
  /betaal DU-001 30 soep: betaal een lid
  /overzicht: je laatste transacties
  /leden: wie is er lid
  /aanbiedingen: wat leden aanbieden
  /activiteiten: markten en repaircafés
  /hulp: meer hulp, met voorbeelden
[group] Vraag voor An Peeters (DU-002):
  Betaal 30 pluimen aan Bo Janssens (DU-003) voor: soep?
  (1) Ja  (2) Nee
[group] Geboekt: #1: An Peeters (DU-002) → Bo Janssens (DU-003), 30 pluimen, soep
[dm an] Geboekt: #1: je betaalde 30 pluimen aan Bo Janssens (DU-003) voor soep.
  Je saldo is nu -30 pluimen.
[dm bo] Geboekt: #1: je kreeg 30 pluimen van An Peeters (DU-002) voor soep.
  Je saldo is nu 30 pluimen.
[dm bo] Je saldo: 30 pluimen
  Grenzen: van -1.500 pluimen tot 1.500 pluimen.
  Je kunt nog 1.530 pluimen betalen en 1.470 pluimen ontvangen.
[dm an] Je transacties (pagina 1 van 1, 1 in totaal):
  #1 1 dec 2026 10:30: -30 pluimen aan Bo Janssens (DU-003), soep
"""

ENGLISH_SCRIPT = """\
@2026-12-01 09:00
admin: /lang en
ann: /join Ann Smith
ben: /join Ben Jones
admin: /approve 2
admin: /approve 3
ann: /lang en
ben: /lang en
@2026-12-02 18:00
ann@group: /pay @ben 45 bike repair
ann@group: yes
ben: /balance
ann: /history
"""

ENGLISH_EXPECTED_TAIL = """\
[group] A question for Ann Smith (DU-002):
  Pay 45 pluimen to Ben Jones (DU-003) for: bike repair?
  (1) Yes  (2) No
[group] Booked: #1: Ann Smith (DU-002) → Ben Jones (DU-003), 45 pluimen, bike repair
[dm ann] Booked: #1: you paid 45 pluimen to Ben Jones (DU-003) for bike repair.
  Your balance is now -45 pluimen.
[dm ben] Booked: #1: you got 45 pluimen from Ann Smith (DU-002) for bike repair.
  Your balance is now 45 pluimen.
[dm ben] Your balance: 45 pluimen
  Limits: from -1,500 pluimen to 1,500 pluimen.
  You can still pay 1,545 pluimen and receive 1,455 pluimen.
[dm ann] Your transactions (page 1 of 1, 1 in all):
  #1 2 Dec 2026 18:00: -45 pluimen to Ben Jones (DU-003), bike repair
"""

CONFIG = """\
[group]
name = "LETS Durme"
coordinators = ["console:admin"]
code_prefix = "DU"

[storage]
url = "sqlite:///var/letsbot.db"
"""


def letsbot(
    *args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LETSBOT_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("letsbot")
    return lines[0]


def test_help_for_every_command(tmp_path: Path) -> None:
    result = letsbot("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("init", "db", "console", "run", "check"):
        assert command in result.stdout
        assert letsbot(command, "--help", cwd=tmp_path).returncode == 0
    assert "upgrade" in letsbot("db", "--help", cwd=tmp_path).stdout


def test_init_writes_the_example_and_creates_the_database(tmp_path: Path) -> None:
    result = letsbot("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "bot.toml").read_text(encoding="utf-8") == (
        Path(__file__).resolve().parent.parent / "bot.toml.example"
    ).read_text(encoding="utf-8")
    assert (tmp_path / "var" / "letsbot.db").exists()
    assert "exists already" in one_clear_line(letsbot("init", cwd=tmp_path))
    check = letsbot("check", cwd=tmp_path)
    assert check.returncode == 0 and check.stdout.startswith("OK: 0 members, 0 transfers")


def test_dutch_script(ready: Path) -> None:
    (ready / "scenario.txt").write_text(DUTCH_SCRIPT, encoding="utf-8")
    result = letsbot("console", "--script", "scenario.txt", cwd=ready)
    assert result.returncode == 0, result.stderr
    welcome, rest = result.stdout.split("\n[dm an] Dank je", 1)
    assert welcome.startswith("[dm admin] Dag admin! Welkom bij LETS Durme.\n  Zo werkt het:")
    assert "[dm an] Dank je" + rest == DUTCH_EXPECTED
    assert letsbot("check", cwd=ready).stdout.startswith("OK: 3 members, 1 transfers")


def test_english_script_from_stdin(ready: Path) -> None:
    result = letsbot("console", "--script", "-", cwd=ready, stdin=ENGLISH_SCRIPT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[dm admin] I will speak English with you from now on.")
    assert result.stdout.endswith(ENGLISH_EXPECTED_TAIL)


def test_script_output_is_deterministic(
    ready: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = tmp_path_factory.mktemp("again")
    (other / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert letsbot("db", "upgrade", cwd=other).returncode == 0
    first = letsbot("console", "--script", "-", cwd=ready, stdin=DUTCH_SCRIPT)
    second = letsbot("console", "--script", "-", cwd=other, stdin=DUTCH_SCRIPT)
    assert first.stdout == second.stdout


@pytest.mark.parametrize(
    ("script", "complaint"),
    [
        ("an: /saldo\nthis is not a line\n", "-: line 3: expected 'name: text'"),
        ("@2026-13-01 09:00\n", "-: line 2: no such date or time"),
        ("@tomorrow\n", "-: line 2: expected '@YYYY-MM-DD HH:MM'"),
        ("@2026-12-02 09:00\n@2026-12-01 09:00\n", "-: line 3: the clock can't go back"),
    ],
)
def test_malformed_script_names_the_line_and_runs_nothing(
    ready: Path, script: str, complaint: str
) -> None:
    result = letsbot("console", "--script", "-", cwd=ready, stdin="an: /aanmelden An\n" + script)
    assert complaint in one_clear_line(result)
    assert result.stdout == ""  # the line before the bad one did not run either


def test_missing_script_file(ready: Path) -> None:
    assert "nope.txt" in one_clear_line(letsbot("console", "--script", "nope.txt", cwd=ready))


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ('[group]\nnmae = "x"\n', "bot.toml: group.nmae: unknown key"),
        ("[limits]\nmin_balance = 'veel'\n", "bot.toml: limits.min_balance:"),
        ("[limits]\nmin_balance = 100\n", "bot.toml: limits.min_balance:"),
        ('[group]\ntimezone = "Mars/Olympus"\n', "expected a time zone name"),
        ('[group]\ncode_prefix = "D-U"\n', "bot.toml: group.code_prefix:"),
        ('[group]\ncoordinators = ["admin"]\n', "expected platform:id"),
        ('[group]\nconfirmation_timeout = "soon"\n', "expected a duration"),
        ("[grop]\n", "bot.toml: unknown section [grop]"),
        ("[group\n", "bot.toml: not valid TOML"),
    ],
)
def test_config_errors_are_one_clear_line(tmp_path: Path, config: str, complaint: str) -> None:
    (tmp_path / "bot.toml").write_text(config, encoding="utf-8")
    assert complaint in one_clear_line(letsbot("check", cwd=tmp_path))


def test_missing_config_file(tmp_path: Path) -> None:
    assert "letsbot init" in one_clear_line(letsbot("check", cwd=tmp_path))
    line = one_clear_line(letsbot("--config", "elders.toml", "check", cwd=tmp_path))
    assert "elders.toml: file not found" in line


def test_environment_overrides_the_file(ready: Path) -> None:
    env = {"LETSBOT_GROUP__NAME": "LETS Lokeren"}
    result = letsbot("console", "--script", "-", cwd=ready, stdin="zoe: /start\n", env=env)
    assert "Welkom bij LETS Lokeren!" in result.stdout
    bad = letsbot("check", cwd=ready, env={"LETSBOT_LIMITS__SOFT": "misschien"})
    assert "limits.soft" in one_clear_line(bad)


def test_config_path_from_the_environment(ready: Path) -> None:
    (ready / "bot.toml").rename(ready / "durme.toml")
    result = letsbot("check", cwd=ready, env={"LETSBOT_CONFIG": "durme.toml"})
    assert result.returncode == 0, result.stderr


def test_out_of_date_database_is_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "var").mkdir()
    sqlite3.connect(tmp_path / "var" / "letsbot.db").close()
    for command in (["check"], ["console", "--script", "-"], ["run"]):
        line = one_clear_line(letsbot(*command, cwd=tmp_path, stdin=""))
        assert "has no letsbot tables" in line and "run 'letsbot db upgrade'" in line


def test_check_finds_a_broken_ledger(ready: Path) -> None:
    letsbot("console", "--script", "-", cwd=ready, stdin=DUTCH_SCRIPT)
    with sqlite3.connect(ready / "var" / "letsbot.db") as db:
        db.execute("UPDATE members SET balance = balance + 5 WHERE number = 2")
    result = letsbot("check", cwd=ready)
    assert result.returncode == 1
    assert result.stdout.startswith("FAILED: 2 problem(s)")
    assert "balances sum to 5, not 0" in result.stdout
    assert "member #2: cached balance -25, but its transfers sum to -30" in result.stdout


def test_database_password_never_shown(tmp_path: Path) -> None:
    config = CONFIG.replace(
        "sqlite:///var/letsbot.db", "postgresql+psycopg://bot:geheim123@127.0.0.1:1/letsbot"
    )
    (tmp_path / "bot.toml").write_text(config, encoding="utf-8")
    result = letsbot("check", cwd=tmp_path)
    line = one_clear_line(result)
    assert "geheim123" not in result.stderr + result.stdout
    assert "can't open the database postgresql+psycopg://bot:***@127.0.0.1:1/letsbot" in line


def test_run_without_platforms_says_what_to_do(ready: Path) -> None:
    assert "no chat platform is enabled" in one_clear_line(letsbot("run", cwd=ready))


def test_interactive_console(ready: Path) -> None:
    typed = "an\n:bla\n/aanmelden An\n:as admin\n:group\n/goedkeuren 1\n:quit\n"
    result = letsbot("console", cwd=ready, stdin=typed)
    assert result.returncode == 0, result.stderr
    assert "Wie ben je?" in result.stdout
    assert ":as naam (letters, cijfers, _ . -)" in result.stdout  # the hint after ':bla'
    assert "[dm an] Dank je, An!" in result.stdout
    assert "admin@group> [group] An (DU-001) is nu lid." in result.stdout


def test_console_ends_quietly_when_input_ends_before_a_name(ready: Path) -> None:
    result = letsbot("console", cwd=ready, stdin="")
    assert result.returncode == 0 and result.stderr == ""
    assert "Wie ben je?" in result.stdout


def test_export_into_a_closed_pipe_stops_without_a_traceback(ready: Path) -> None:
    """``letsbot export transfers | head -1``: the reader goes away mid-output."""
    reader, writer = os.pipe()
    os.close(reader)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LETSBOT_")}
    with os.fdopen(writer, "w") as closed:
        result = subprocess.run(
            [sys.executable, "-m", "app", "export", "members"],
            cwd=ready,
            stdout=closed,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
            timeout=120,
        )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1


def test_demo_needs_no_config_and_makes_you_coordinator(tmp_path: Path) -> None:
    result = letsbot("console", "--demo", cwd=tmp_path, stdin="lien\n/leden\n")
    assert result.returncode == 0, result.stderr
    assert "lien (DEMO-001) (coördinator): 0 pluimen" in result.stdout
    assert (tmp_path / "var" / "demo.db").exists()


def test_demo_ends_quietly_when_input_ends_before_a_name(tmp_path: Path) -> None:
    result = letsbot("console", "--demo", cwd=tmp_path, stdin="/saldo\nan de bakker\n")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.count("Wie ben je?") == 3  # asked again after each bad name
    assert not (tmp_path / "var" / "demo.db").exists()


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["fly"], "letsbot: argument COMMAND: invalid choice: 'fly'"),
        ([], "the following arguments are required: COMMAND"),
        (["db"], "letsbot db: the following arguments are required: DB_COMMAND"),
        (["console", "--scrip", "x"], "unrecognized arguments"),
    ],
)
def test_command_line_mistakes_are_one_line(
    tmp_path: Path, args: list[str], complaint: str
) -> None:
    line = one_clear_line(letsbot(*args, cwd=tmp_path))
    assert complaint in line and "--help" in line


def test_import_export_and_backup_from_the_command_line(ready: Path) -> None:
    members = ready / "leden.csv"
    members.write_bytes(
        "letscode;name;fullname;status;minlimit;maxlimit\n"
        "DU-002;an;An Peeters;1;-1000;1000\n"
        "DU-003;bo;Bö Janssens;1;;\n"
        "DU-004;x;Broken;9;;\n".encode("latin-1")
    )
    dry = letsbot("import", "members", "leden.csv", "--dry-run", cwd=ready)
    assert dry.returncode == 1
    assert "leden.csv: line 4: DU-004: status '9' unknown" in dry.stdout
    assert "would add 2 members; 0 already there" in dry.stdout
    real = letsbot("import", "members", "leden.csv", cwd=ready)
    assert real.returncode == 1 and "nothing imported" in real.stdout
    members.write_bytes(members.read_bytes().rsplit(b"\n", 2)[0] + b"\n")
    assert "added 2 members" in letsbot("import", "members", "leden.csv", cwd=ready).stdout
    assert (
        "added 0 members; 2 already there"
        in letsbot("import", "members", "leden.csv", cwd=ready).stdout
    )
    (ready / "t.csv").write_text("wanneer,van,naar,bedrag,wat\n2026-01-05,DU-002,DU-003,60,soep\n")
    mapped = letsbot(
        "import",
        "transfers",
        "t.csv",
        "--map",
        "wanneer=date",
        "--map",
        "wat=description",
        cwd=ready,
    )
    assert "added 1 transfers" in mapped.stdout, mapped.stdout + mapped.stderr
    exported = letsbot("export", "transfers", "--format", "json", cwd=ready)
    assert '"from": "DU-002"' in exported.stdout and '"description": "soep"' in exported.stdout
    assert letsbot("export", "members", "--output", "out.csv", cwd=ready).returncode == 0
    assert "Bö Janssens" in (ready / "out.csv").read_text(encoding="utf-8")
    assert letsbot("backup", "copy.db", cwd=ready).returncode == 0
    assert "exists already" in one_clear_line(letsbot("backup", "copy.db", cwd=ready))
    (ready / "bot.toml").write_text(CONFIG.replace("var/letsbot.db", "copy.db"), encoding="utf-8")
    assert letsbot("check", cwd=ready).stdout.startswith("OK: 2 members, 1 transfers")


def test_json_log_lines() -> None:
    import json
    import logging

    from app.logs import JsonFormatter

    try:
        raise ValueError("kapot")
    except ValueError:
        record = logging.LogRecord(
            "letsbot", logging.ERROR, __file__, 1, "event=%s failed", ("x:1",), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["message"] == "event=x:1 failed"
    assert "ValueError: kapot" in entry["traceback"]
    assert "\n" not in line


@pytest.mark.parametrize(
    ("platform", "section", "loaded"),
    [
        ("telegram", {"enabled": True, "token": "1:abc"}, "['telegram']"),
        (
            "matrix",
            {"enabled": True, "homeserver": "http://127.0.0.1:9", "password": "x"},
            "['nio']",
        ),
    ],
)
def test_a_one_platform_run_loads_only_that_platforms_sdk(
    tmp_path: Path, platform: str, section: dict[str, object], loaded: str
) -> None:
    # Start-up time and memory (bench/startup.py): the other platform's SDK stays unloaded.
    code = (
        "import sys\n"
        "from app.run import build_hub\n"
        "from letsbot.clock import SystemClock\n"
        "from storage.database import make_engine\n"
        "from tests.support import make_settings\n"
        f"settings = make_settings({platform}={section!r})\n"
        f"engine = make_engine('sqlite:///{tmp_path / 'letsbot.db'}')\n"
        "hub = build_hub(settings, engine, SystemClock())\n"
        "assert list(hub.transports) == [" + repr(platform) + "]\n"
        "print(sorted(m for m in ('nio', 'telegram') if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == loaded


# A database URL or a file that can't be used: one line, exit 2, never a traceback


def main_in(
    folder: Path, capsys: pytest.CaptureFixture[str], *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    """``letsbot ARGS`` in this process, from ``folder``: exit status, stdout, stderr."""
    from app.cli import main

    cwd = Path.cwd()
    saved = sys.stdin
    os.chdir(folder)
    sys.stdin = io.StringIO(stdin)
    try:
        status = main(list(args))
    finally:
        os.chdir(cwd)
        sys.stdin = saved
    out, err = capsys.readouterr()
    return status, out, err


def one_line_in(status: int, err: str) -> str:
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("letsbot: "), err
    return lines[0]


USING_THE_DATABASE = [
    ["check"],
    ["db", "upgrade"],
    ["db", "copy", "--to", "sqlite:///copy.db"],
    ["console", "--script", "-"],
    ["run"],
    ["export", "members"],
    ["import", "members", "leden.csv"],
    ["import", "balances", "saldo.csv"],
    ["claim-code", "--all"],
    ["report", "--output", "r.html"],
    ["backup", "b.db"],
    ["doctor"],
    ["--config", "new.toml", "init"],
]


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        (
            "postgresql+psycopg://bot:geheim@127.0.0.1:99999/letsbot",
            "storage.url postgresql+psycopg://bot:***@127.0.0.1:99999/letsbot:"
            " port 99999 is not a port number (1 to 65535)",
        ),
        (
            "postgresql+psycopg://bot:geheim@127.0.0.1:5432x/letsbot",
            "storage.url (unreadable URL): not a database URL (e.g. sqlite:///var/letsbot.db or",
        ),
        ("sqlite://localhost/letsbot.db", "Invalid SQLite URL: sqlite://localhost/letsbot.db"),
        ("sqlite:////proc/letsbot/letsbot.db", "can't create the folder /proc/letsbot:"),
        ("sqlite:///notes.txt", "notes.txt: DatabaseError: file is not a database"),
    ],
)
def test_a_database_url_that_cant_be_used_is_one_line_for_every_command(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    complaint: str,
) -> None:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("boodschappen\n" * 200, encoding="utf-8")
    (tmp_path / "leden.csv").write_text("code,name\nDU-002,An\n", encoding="utf-8")
    (tmp_path / "saldo.csv").write_text("code,balance\nDU-002,0\n", encoding="utf-8")
    monkeypatch.setenv("LETSBOT_STORAGE__URL", url)
    for args in USING_THE_DATABASE:
        status, out, err = main_in(tmp_path, capsys, *args)
        if args == ["doctor"]:
            failed = [line for line in out.splitlines() if line.startswith("FAIL  database:")]
            assert status == 1 and "Traceback" not in err and len(failed) == 1, out + err
            assert complaint in failed[0] or "(DatabaseError)" in failed[0], failed
        else:
            assert complaint in one_line_in(status, err), args
        assert "geheim" not in out + err
    # The same URL as the target of a copy, from a good database.
    monkeypatch.delenv("LETSBOT_STORAGE__URL")
    assert main_in(tmp_path, capsys, "db", "upgrade")[0] == 0
    status, out, err = main_in(tmp_path, capsys, "db", "copy", "--to", url)
    line = one_line_in(status, err)
    assert complaint.split(": ")[-1] in line and "geheim" not in line


def test_a_csv_field_over_the_limit_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert main_in(tmp_path, capsys, "db", "upgrade")[0] == 0
    huge = "x" * (csv.field_size_limit() + 1)
    header = "date,from,to,amount,code,name,balance"
    for number, text in ((1, f"{header},{huge}\n"), (2, f"{header}\n2026-01-05,DU-002,{huge}\n")):
        (tmp_path / "groot.csv").write_text(text, encoding="utf-8")
        for what in ("members", "transfers", "balances"):
            status, _, err = main_in(tmp_path, capsys, "import", what, "groot.csv", "--dry-run")
            assert one_line_in(status, err) == (
                f"letsbot: groot.csv: line {number}: a field is longer than 131072 characters;"
                " is this the right file?"
            )


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        (None, "letsbot: cfg: can't read it: Is a directory"),
        (b"\xff\xfe[group]\n", "letsbot: cfg: not UTF-8 text (TOML files are)"),
    ],
)
def test_a_config_file_that_cant_be_read_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: bytes | None, complaint: str
) -> None:
    if config is None:
        (tmp_path / "cfg").mkdir()
    else:
        (tmp_path / "cfg").write_bytes(config)
    assert one_line_in(*main_in(tmp_path, capsys, "--config", "cfg", "check")[::2]) == complaint


def test_a_backup_that_cant_be_written_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert main_in(tmp_path, capsys, "db", "upgrade")[0] == 0
    status, _, err = main_in(tmp_path, capsys, "backup", "/proc/letsbot.db")
    assert one_line_in(status, err).startswith("letsbot: /proc/letsbot.db: can't write the copy")
    assert not Path("/proc/letsbot.db").exists()
