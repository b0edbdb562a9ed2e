"""``letsbot init``: write bot.toml from the example and create the database."""

from __future__ import annotations

import argparse
import shutil
from importlib import resources

from sqlalchemy.exc import SQLAlchemyError

from app.compose import CliError, config_path, engine_for, safe_url
from letsbot.config import load_settings
from storage.database import error_reason, upgrade


def cmd_init(args: argparse.Namespace) -> int:
    path = config_path(args)
    if path.exists() and not args.force:
        raise CliError(f"{path} exists already (use --force to overwrite it)")
    example = resources.files("letsbot") / "bot.toml.example"
    with example.open("rb") as source, path.open("wb") as target:
        shutil.copyfileobj(source, target)
    settings = load_settings(path)
    engine = engine_for(settings, path.parent)
    try:
        upgrade(engine)
    except SQLAlchemyError as error:
        raise CliError(
            f"wrote {path}, but can't create the database {safe_url(str(engine.url))}:"
            f" {error_reason(error, engine.url)}"
        ) from None
    print(f"wrote {path} and created the database {safe_url(str(engine.url))}")
    print(f"next: edit {path} (group name, coordinators), then 'letsbot console' or 'letsbot run'")
    return 0
