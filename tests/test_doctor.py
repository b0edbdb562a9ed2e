"""``letsbot doctor``: the real CLI, a real database, the fake Bot API, a real Synapse."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adapters.telegram import diagnose as telegram_diagnose
from app.cli import main
from letsbot.config import MatrixSection, TelegramSection
from tests.telegram_api import TOKEN, FakeTelegram
from tests.test_cli import CONFIG, letsbot
from tests.test_storage import HEAD

GOOD = [
    "OK    configuration: bot.toml loads; chat platforms: none (console only)",
    "OK    database: sqlite:///{folder}/var/letsbot.db answers",
    "OK    database schema: at the newest revision ({head})",
    "OK    ledger: 0 members, 0 transfers; balances sum to zero and match",
    "all 4 checks passed",
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def test_a_good_sqlite_config_without_platforms_passes(folder: Path) -> None:
    assert letsbot("db", "upgrade", cwd=folder).returncode == 0
    result = letsbot("doctor", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [line.format(folder=folder, head=HEAD) for line in GOOD]


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ('[group]\nnmae = "x"\n', "bot.toml: group.nmae: unknown key"),
        ("[telegram]\nenabled = true\n", "bot.toml: telegram.token: empty; set"),
        ("[group\n", "bot.toml: not valid TOML"),
    ],
)
def test_a_broken_config_is_named(tmp_path: Path, config: str, complaint: str) -> None:
    (tmp_path / "bot.toml").write_text(config, encoding="utf-8")
    result = letsbot("doctor", cwd=tmp_path)
    assert result.returncode == 1
    first, summary = result.stdout.splitlines()
    assert first.startswith("FAIL  configuration: ") and complaint in first
    assert first.endswith("; fix: correct it (bot.toml.example shows every key)")
    assert summary == "1 of 1 checks failed"


def test_database_problems_are_named_with_the_fix(folder: Path) -> None:
    result = letsbot("doctor", cwd=folder)
    assert result.returncode == 1
    assert "FAIL  database schema: has no letsbot tables; fix: run 'letsbot db upgrade'" in (
        result.stdout
    )
    assert letsbot("db", "upgrade", cwd=folder).returncode == 0
    with sqlite3.connect(folder / "var" / "letsbot.db") as db:
        db.execute("UPDATE members SET balance = 5 WHERE number = 0")
    broken = letsbot("doctor", cwd=folder)
    assert broken.returncode == 1
    assert (
        "FAIL  ledger: 2 problem(s), the first: balances sum to 5, not 0; fix: run"
        " 'letsbot check' for the list; correct bookings with /reverse or /book"
    ) in broken.stdout
    (folder / "bot.toml").write_text(
        CONFIG.replace("sqlite:///var/letsbot.db", "postgresql+psycopg://bot:geheim@127.0.0.1:1/x"),
        encoding="utf-8",
    )
    unreachable = letsbot("doctor", cwd=folder)
    assert (
        "FAIL  database: can't open postgresql+psycopg://bot:***@127.0.0.1:1/x (OperationalError);"
        " fix: check that the database server runs and that storage.url (host, database, user,"
        " password) is right"
    ) in unreachable.stdout
    assert "geheim" not in unreachable.stdout + unreachable.stderr


# Telegram, against the Bot API of tests/telegram_api.py ------------------------------


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.close()


def telegram(server: FakeTelegram, *groups: int, token: str = TOKEN) -> TelegramSection:
    return TelegramSection(
        enabled=True, token=token, base_url=server.base_url, group_chat_ids=list(groups)
    )  # type: ignore[arg-type]


async def test_telegram_token_groups_and_rights(bot_api: FakeTelegram) -> None:
    bot_api.group(-100, "LETS Durme", "supergroup")
    bot_api.group(-200, "Zwijgende groep")
    bot_api.bot_in(-200, "restricted")
    bot_api.group(-300, "Oude groep")
    bot_api.migrate(-300, -1003, announce=False)
    bot_api.group(-400, "Weg")
    bot_api.bot_in(-400, "kicked")
    bot_api.group(-500, "Verlaten")
    bot_api.bot_in(-500, "left")
    bot_api.group(-700, "Aankondigingen")
    bot_api.chats[-700]["permissions"] = {"can_send_messages": False}  # only admins write
    checks = await telegram_diagnose(telegram(bot_api, -100, -200, -300, -400, -500, -600, -700))
    assert [c.line() for c in checks] == [
        "OK    telegram bot: the bot is @letsbot_test_bot (privacy mode: in groups it sees"
        " commands and replies to it)",
        "OK    telegram group -100: 'LETS Durme' (supergroup) is reachable",
        "OK    telegram rights in -100: the bot is member and may send messages (no admin rights"
        " needed)",
        "OK    telegram group -200: 'Zwijgende groep' (group) is reachable",
        "FAIL  telegram rights in -200: the bot may not send messages in 'Zwijgende groep'; fix:"
        " in the group's settings (Permissions), let the bot send messages, or make it an"
        " administrator",
        "FAIL  telegram group -300: the group became a supergroup with the id -1003; fix: replace"
        " -300 by -1003 in telegram.group_chat_ids",
        "FAIL  telegram group -400: the bot is not in this group (removed, or never added); fix:"
        " add the bot to the group again",
        "OK    telegram group -500: 'Verlaten' (group) is reachable",
        "FAIL  telegram rights in -500: the bot is not a member of 'Verlaten' (left); fix: add"
        " the bot to the group (if it was banned, remove the ban first)",
        "FAIL  telegram group -600: Telegram answers: Chat not found; fix: add the bot to the"
        " group, and check the id in telegram.group_chat_ids (README, Telegram step 4)",
        "OK    telegram group -700: 'Aankondigingen' (group) is reachable",
        "FAIL  telegram rights in -700: the bot may not send messages in 'Aankondigingen'; fix:"
        " in the group's settings (Permissions), let the bot send messages, or make it an"
        " administrator",
    ]
    called = {method for method, _ in bot_api.calls}
    assert {"getMe", "getChat", "getChatMember"} <= called
    assert not called & {"sendMessage", "getUpdates", "setMyCommands"}  # it only looks


async def test_a_bad_telegram_token_gets_401_and_is_never_shown(
    bot_api: FakeTelegram, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = "4242:AAH-a-wrong-token-nobody-may-see"
    checks = await telegram_diagnose(telegram(bot_api, -100, token=wrong))
    assert [c.line() for c in checks] == [
        "FAIL  telegram bot: Telegram refused the token (Unauthorized); fix: copy the bot's token"
        " from @BotFather (/mybots, API Token) into LETSBOT_TELEGRAM__TOKEN or"
        " telegram.token_file"
    ]
    assert bot_api.calls == []  # refused before any method ran: 401
    # The whole doctor, as the volunteer runs it, with the token in the environment.
    bot_api.group(-100, "LETS Durme")
    assert letsbot("db", "upgrade", cwd=folder).returncode == 0
    (folder / "bot.toml").write_text(
        CONFIG + f'\n[telegram]\nenabled = true\nbase_url = "{bot_api.base_url}"\n'
        "group_chat_ids = [-100]\n",
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LETSBOT_TELEGRAM__TOKEN", TOKEN)
        status = await asyncio.to_thread(main, ["--config", str(folder / "bot.toml"), "doctor"])
    out = capsys.readouterr()
    assert status == 0, out.out
    assert "OK    telegram token: set, from LETSBOT_TELEGRAM__TOKEN" in out.out
    assert "OK    telegram rights in -100: the bot is member" in out.out
    assert out.out.endswith("all 8 checks passed\n")
    assert TOKEN not in out.out + out.err


def test_a_secret_in_a_readable_config_file_fails(folder: Path) -> None:
    config = folder / "bot.toml"
    config.write_text(
        CONFIG
        + '\n[telegram]\nenabled = true\ntoken = "1:x"\nbase_url = "http://127.0.0.1:9/bot"\n',
        encoding="utf-8",
    )
    config.chmod(0o644)
    result = letsbot("doctor", cwd=folder)
    assert result.returncode == 1
    assert (
        "FAIL  telegram token: written in bot.toml, which everyone on this server may read;"
        " fix: move it to LETSBOT_TELEGRAM__TOKEN or telegram.token_file, or"
        " 'chmod go-r bot.toml' if the bot runs as its owner"
    ) in result.stdout
    assert "FAIL  telegram bot: can't reach the Bot API: " in result.stdout
    assert "1:x" not in result.stdout + result.stderr
    config.chmod(0o600)
    assert "OK    telegram token: set, in bot.toml" in letsbot("doctor", cwd=folder).stdout


SECRETS = ("tg-geheim-123", "mx-geheim-456", "db-geheim-789")
WRITTEN = (
    CONFIG.replace(
        "sqlite:///var/letsbot.db", f"postgresql+psycopg://bot:{SECRETS[2]}@127.0.0.1:1/letsbot"
    )
    + f'\n[telegram]\ntoken = "{SECRETS[0]}"\n'  # the platforms are off: still secrets
    + f'\n[matrix]\npassword = "{SECRETS[1]}"\n'
)


def doctor_in(
    folder: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> tuple[int, list[str]]:
    status = main(["--config", str(folder / "bot.toml"), "doctor"])
    out, err = capsys.readouterr()
    for secret in SECRETS:
        assert secret not in out + err + caplog.text
    return status, out.splitlines()


def test_every_secret_in_a_file_others_may_read_fails(
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("LETSBOT_")]:
        monkeypatch.delenv(name)
    config = folder / "bot.toml"
    config.write_text(WRITTEN, encoding="utf-8")
    config.chmod(0o640)  # group-readable
    status, lines = doctor_in(folder, capsys, caplog)
    assert status == 1
    expected = [
        "FAIL  telegram token: written in {0}, which its group may read; fix: move it to"
        " LETSBOT_TELEGRAM__TOKEN or telegram.token_file, or 'chmod go-r {0}' if the bot runs"
        " as its owner",
        "FAIL  matrix password: written in {0}, which its group may read; fix: move it to"
        " LETSBOT_MATRIX__PASSWORD or matrix.password_file, or 'chmod go-r {0}' if the bot runs"
        " as its owner",
        "FAIL  database password: written in {0}, which its group may read; fix: move it to"
        " LETSBOT_STORAGE__URL (the whole URL), or 'chmod go-r {0}' if the bot runs as its owner",
    ]
    assert [line for line in lines if " token: " in line or " password: " in line] == [
        line.format(config) for line in expected
    ]
    config.chmod(0o600)
    status, lines = doctor_in(folder, capsys, caplog)
    assert f"OK    telegram token: set, in {config}" in lines
    assert f"OK    database password: set, in {config}" in lines


def test_a_secret_the_environment_overrides_should_leave_the_file(
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("LETSBOT_")]:
        monkeypatch.delenv(name)
    config = folder / "bot.toml"
    config.write_text(WRITTEN, encoding="utf-8")
    config.chmod(0o600)
    monkeypatch.setenv("LETSBOT_TELEGRAM__TOKEN", "tg-geheim-123")  # even the same value
    monkeypatch.setenv("LETSBOT_STORAGE__URL", "sqlite:///var/letsbot.db")
    status, lines = doctor_in(folder, capsys, caplog)
    assert status == 1
    assert (
        f"FAIL  telegram token: LETSBOT_TELEGRAM__TOKEN overrides telegram.token, so the copy in"
        f" {config} is ignored; fix: remove telegram.token from {config}"
    ) in lines
    assert (
        f"FAIL  database password: LETSBOT_STORAGE__URL overrides storage.url, so the copy in"
        f" {config} is ignored; fix: remove storage.url from {config}"
    ) in lines
    assert f"OK    matrix password: set, in {config}" in lines


# Matrix, against a real Synapse (tests/synapse.py) -------------------------------------

try:
    from nio import AsyncClient, LoginResponse, RoomCreateResponse, RoomPreset

    from adapters.matrix import diagnose as matrix_diagnose
    from tests.synapse import Synapse
except ImportError:  # pragma: no cover - the test extra installs them
    Synapse = None  # type: ignore[assignment,misc]

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    if Synapse is None or importlib.util.find_spec("synapse") is None:
        pytest.skip("matrix-synapse is not installed (pip install -e '.[test]')")
    server = Synapse(tmp_path_factory.mktemp("synapse"))
    server.configure()
    server.start()
    server.register("letsbot", PASSWORD)
    yield server
    server.stop()


async def client_of(server: Synapse, user: str) -> AsyncClient:
    client = AsyncClient(server.url, f"@{user}:localhost")
    assert isinstance(await client.login(PASSWORD), LoginResponse)
    return client


def matrix(server: Synapse, rooms: list[str], **secrets: str) -> MatrixSection:
    return MatrixSection(
        enabled=True,
        homeserver=server.url,
        user_id="@letsbot:localhost",
        group_rooms=rooms,
        store_path=server.folder / "doctor-store",  # not made: the bot never ran here
        **secrets,  # type: ignore[arg-type]
    )


async def test_matrix_login_rooms_and_power_levels(synapse: Synapse) -> None:
    synapse.register("coordinator", PASSWORD)
    an = await client_of(synapse, "coordinator")
    bot = await client_of(synapse, "letsbot")
    bot_id = "@letsbot:localhost"
    rooms = {}
    for name, extra in (
        ("good", {"alias": "lets-durme"}),
        ("quiet", {"power_level_override": {"events": {"m.room.message": 50}}}),
        (
            "secret",
            {
                "initial_state": [
                    {
                        "type": "m.room.encryption",
                        "state_key": "",
                        "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                    }
                ]
            },
        ),
        ("elsewhere", {}),
    ):
        created = await an.room_create(preset=RoomPreset.private_chat, invite=[bot_id], **extra)  # type: ignore[arg-type]
        assert isinstance(created, RoomCreateResponse), created
        rooms[name] = created.room_id
        if name != "elsewhere":
            await bot.join(created.room_id)
    configured = ["#lets-durme:localhost", rooms["quiet"], rooms["secret"], rooms["elsewhere"]]
    configured.append("#nergens:localhost")
    checks = await matrix_diagnose(matrix(synapse, configured, password=PASSWORD))
    plain = "the room is not encrypted; the bot reads it as it is"
    assert [c.line() for c in checks] == [
        "OK    matrix login: @letsbot:localhost logs in with its password",
        "OK    matrix room #lets-durme:localhost: the bot is in the room",
        "OK    matrix rights in #lets-durme:localhost: the bot may send messages (power level 0)",
        f"OK    matrix encryption in #lets-durme:localhost: {plain}",
        f"OK    matrix room {rooms['quiet']}: the bot is in the room",
        f"FAIL  matrix rights in {rooms['quiet']}: the bot's power level 0 is below the 50 needed"
        " to send messages; fix: let the bot send messages (Element: Room settings, Roles &"
        " Permissions)",
        f"OK    matrix encryption in {rooms['quiet']}: {plain}",
        f"OK    matrix room {rooms['secret']}: the bot is in the room",
        f"OK    matrix rights in {rooms['secret']}: the bot may send messages (power level 0)",
        f"OK    matrix encryption in {rooms['secret']}: the room is encrypted; the bot reads it"
        " with the keys 'letsbot run' makes",
        f"FAIL  matrix room {rooms['elsewhere']}: the bot is not in this room; fix: invite"
        " @letsbot:localhost to the room; 'letsbot run' then joins it",
        "FAIL  matrix room #nergens:localhost: the homeserver knows no room with this alias; fix:"
        " check the alias in matrix.group_rooms, or use the room id (Element: Room settings,"
        " Advanced)",
        f"OK    matrix encryption store: {synapse.folder / 'doctor-store'} is made at the first"
        " 'letsbot run'; the pickle key kept in the folder (set matrix.pickle_key to keep it"
        " apart)",
        "OK    matrix cross-signing: the keys are made at the first 'letsbot run'",
    ]
    devices = await bot.devices()
    assert [d.display_name for d in devices.devices if "doctor" in (d.display_name or "")] == []
    wrong = await matrix_diagnose(matrix(synapse, [], password="not the password"))
    assert [c.line() for c in wrong] == [
        "FAIL  matrix login: the homeserver refused the login of @letsbot:localhost (M_FORBIDDEN);"
        " fix: check matrix.user_id and the password (LETSBOT_MATRIX__PASSWORD or password_file)"
    ]
    token = await matrix_diagnose(matrix(synapse, [], access_token=bot.access_token))
    assert [c.line() for c in token] == [
        "OK    matrix login: the access token of @letsbot:localhost is valid",
        "FAIL  matrix rooms: matrix.group_rooms is empty: the bot serves no group room; fix: put"
        " the group room's id or alias in matrix.group_rooms",
        f"OK    matrix encryption store: {synapse.folder / 'doctor-store'} is made at the first"
        " 'letsbot run'; the pickle key kept in the folder (set matrix.pickle_key to keep it"
        " apart)",
        "OK    matrix cross-signing: the keys are made at the first 'letsbot run'",
    ]
    stale = await matrix_diagnose(matrix(synapse, [], access_token="syt_not_a_token"))
    assert (
        stale[0]
        .line()
        .startswith(
            "FAIL  matrix login: the homeserver refused matrix.access_token (M_UNKNOWN_TOKEN)"
        )
    )
    await an.close()
    await bot.close()


def test_help_names_the_new_commands(tmp_path: Path) -> None:
    overview = letsbot("--help", cwd=tmp_path).stdout
    assert "doctor" in overview and "check the configuration, the database" in overview
    assert (
        "copy every table to another, empty database"
        in letsbot("db", "--help", cwd=tmp_path).stdout
    )
    copy = letsbot("db", "copy", "--help", cwd=tmp_path)
    assert copy.returncode == 0 and "--to URL" in copy.stdout
    imports = letsbot("import", "--help", cwd=tmp_path).stdout
    assert "[members|transfers|balances|listings] PATH..." in imports
    assert "--via-group-account" in imports
    exports = letsbot("export", "--help", cwd=tmp_path).stdout
    assert "{members,transfers,listings,events,partner-payments}" in exports


async def test_an_unreachable_homeserver_is_one_clear_failure() -> None:
    from adapters.matrix import diagnose
    from tests.synapse import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    section = MatrixSection(
        enabled=True, homeserver=url, user_id="@letsbot:localhost", group_rooms=["!a:localhost"]
    )
    checks = await diagnose(section)
    assert [c.line() for c in checks] == [
        f"FAIL  matrix homeserver: can't reach {url} (ClientConnectorError); fix: check"
        " matrix.homeserver and the server's internet connection"
    ]
