"""The Matrix encryption store's folder and pickle key (adapters/matrix_store.py), and
where the configuration puts the folder. No homeserver needed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from letsbot.config import ConfigError, MatrixSection, load_settings

pytest.importorskip("nio")

from adapters import matrix_store

BASE = '[matrix]\nenabled = true\nhomeserver = "https://hs.example"\nuser_id = "@bot:hs.example"\npassword = "x"\n'


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_folder_is_made_private_also_when_it_existed(tmp_path: Path) -> None:
    fresh = tmp_path / "a" / "store"
    matrix_store.open_folder(fresh)
    assert mode(fresh) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    (loose / "x.db").write_text("keys")
    (loose / "x.db").chmod(0o644)
    matrix_store.open_folder(loose)
    matrix_store.make_private(loose)
    assert mode(loose) == 0o700 and mode(loose / "x.db") == 0o600


def test_a_generated_pickle_key_is_kept_private_and_reused(tmp_path: Path) -> None:
    section = MatrixSection()
    first = matrix_store.pickle_key(section, tmp_path)
    assert len(first) >= 40
    assert mode(tmp_path / matrix_store.KEY_FILE) == 0o600
    assert matrix_store.pickle_key(section, tmp_path) == first
    configured = MatrixSection(pickle_key="a long phrase")  # type: ignore[arg-type]
    assert matrix_store.pickle_key(configured, tmp_path) == "a long phrase"


def test_the_pickle_key_is_a_secret_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "pickle"
    key.write_text("from a file\n")
    path = tmp_path / "bot.toml"
    path.write_text(BASE + f'pickle_key_file = "{key}"\n')
    settings = load_settings(path)
    assert settings.matrix.secret("pickle_key") == "from a file"
    assert "pickle_key" in settings.matrix.secrets_in_use()
    monkeypatch.setenv("LETSBOT_MATRIX__PICKLE_KEY", "from the environment")
    assert load_settings(path).matrix.secret("pickle_key") == "from the environment"
    path.write_text(BASE + 'pickle_key_file = "/nonexistent/pickle"\n')
    monkeypatch.delenv("LETSBOT_MATRIX__PICKLE_KEY")
    with pytest.raises(ConfigError, match=r"matrix\.pickle_key_file: can't read"):
        load_settings(path)


def test_the_store_lies_beside_the_sqlite_file_unless_configured(tmp_path: Path) -> None:
    path = tmp_path / "bot.toml"
    path.write_text(BASE)
    section = load_settings(path).matrix
    assert section.store_path is None
    assert section.beside(tmp_path / "var" / "letsbot.db").store_path == (
        tmp_path / "var" / "letsbot-matrix"
    )
    path.write_text(BASE + 'store_path = "keys/matrix"\n')  # relative to the config file
    section = load_settings(path).matrix
    assert section.store_path == tmp_path / "keys" / "matrix"
    assert section.beside(tmp_path / "letsbot.db").store_path == tmp_path / "keys" / "matrix"


def test_with_a_database_server_the_store_path_is_required(tmp_path: Path) -> None:
    path = tmp_path / "bot.toml"
    server = '[storage]\nurl = "postgresql+psycopg://bot@db.example/lets"\n'
    path.write_text(server + BASE)
    with pytest.raises(ConfigError, match=r"matrix\.store_path: empty; with a database server"):
        load_settings(path)
    path.write_text(server + BASE + 'store_path = "/var/lib/letsbot/matrix"\n')
    assert load_settings(path).matrix.store_path == Path("/var/lib/letsbot/matrix")
    path.write_text(server + BASE.replace("enabled = true", "enabled = false"))
    assert load_settings(path).matrix.store_path is None  # Matrix off: nothing needed


def test_one_process_holds_the_lease_on_a_database(db_url: str) -> None:
    from letsbot.clock import SystemClock
    from storage.database import make_engine
    from storage.platform import SqlPlatformStore

    engine = make_engine(db_url)
    first = SqlPlatformStore(engine, "matrix", SystemClock())
    second = SqlPlatformStore(make_engine(db_url), "matrix", SystemClock())  # another process
    telegram = SqlPlatformStore(engine, "telegram", SystemClock())
    try:
        assert first.take_lease("device") and first.take_lease("device")
        assert not second.take_lease("device")
        assert telegram.take_lease("device")  # each platform its own
        first.drop_lease("device")
        assert second.take_lease("device")
        assert not first.take_lease("device")
    finally:
        for store in (first, second, telegram):
            store.drop_lease("device")
        second.engine.dispose()
        engine.dispose()
