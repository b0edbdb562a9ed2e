from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from storage.database import make_engine, upgrade
from tests.support import POSTGRES_ENV, Driver, make_settings, postgres_url, reset_postgres


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating takes longer than a test)."""
    path = tmp_path_factory.mktemp("template") / "letsbot.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection folds the WAL into the file
    return path


@pytest.fixture
def sqlite_url(template_db: Path, tmp_path: Path) -> str:
    path = tmp_path / "letsbot.db"
    shutil.copy(template_db, path)
    return f"sqlite:///{path}"


@pytest.fixture
def pg_url() -> str:
    url = postgres_url()
    if url is None:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL server to test against")
    reset_postgres(url).dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def driver(engine: Engine) -> Driver:
    return Driver(engine, make_settings())


@pytest.fixture
def ready(tmp_path: Path) -> Path:
    """A folder with bot.toml and a migrated database, as ``letsbot init`` leaves it."""
    from tests.test_cli import CONFIG, letsbot  # the CLI tests' config and runner

    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    result = letsbot("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path
