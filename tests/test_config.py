"""Where the store lives: argument > LOCALCHAT_* > seed variables > platform data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from localchat.config import resolve
from localchat.errors import ConfigError


def test_platform_location_follows_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    cfg = resolve()
    assert cfg.path == tmp_path / "xdg" / "localchat" / "localchat.db"
    assert cfg.source == "platform"
    assert cfg.files_dir == tmp_path / "xdg" / "localchat" / "localchat.db-files"
    assert cfg.legacy_files_dir == tmp_path / "xdg" / "localchat" / "files"


def test_platform_location_under_home_without_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve().path == tmp_path / "home" / ".local" / "share" / "localchat" / "localchat.db"


def test_app_name_gives_each_app_its_own_store(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert resolve(app_name="notes-app").path == tmp_path / "notes-app" / "localchat.db"
    assert resolve(app_name="notes-app").path != resolve().path


@pytest.mark.parametrize("bad", ["", "..", "a/b", "a\\b", "x\0y"])
def test_app_name_that_is_not_a_folder_name_is_refused(bad):
    with pytest.raises(ConfigError, match="app_name"):
        resolve(app_name=bad)


# Each row: the variables set, and the path (or URL) that must win.
PRECEDENCE = [
    ({"DB_PATH": "/tmp/d.db"}, "/tmp/d.db"),
    ({"DATABASE_URL": "sqlite:////tmp/u.db", "DB_PATH": "/tmp/d.db"}, "/tmp/u.db"),
    ({"LOCALCHAT_DB_PATH": "/tmp/l.db", "DATABASE_URL": "sqlite:////tmp/u.db"}, "/tmp/l.db"),
    (
        {"LOCALCHAT_DATABASE_URL": "sqlite:////tmp/lu.db", "LOCALCHAT_DB_PATH": "/tmp/l.db"},
        "/tmp/lu.db",
    ),
    ({"DB_PATH": "/tmp/d.db", "DB_HOST": "db.example"}, "/tmp/d.db"),
]


@pytest.mark.parametrize(("env", "expected"), PRECEDENCE)
def test_environment_precedence(monkeypatch, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cfg = resolve()
    assert cfg.path == Path(expected)
    assert cfg.source in env


def test_explicit_argument_beats_every_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("LOCALCHAT_DATABASE_URL", "sqlite:////tmp/lu.db")
    monkeypatch.setenv("LOCALCHAT_DB_PATH", "/tmp/l.db")
    cfg = resolve(tmp_path / "mine.db")
    assert (cfg.path, cfg.source) == (tmp_path / "mine.db", "argument")


def test_db_host_builds_a_postgresql_url(monkeypatch):
    monkeypatch.setenv("DB_HOST", "db.example")
    monkeypatch.setenv("DB_PORT", "6543")
    monkeypatch.setenv("DB_NAME", "chats")
    monkeypatch.setenv("DB_USER", "app")
    monkeypatch.setenv("DB_PASSWORD", "p@ss:word")
    cfg = resolve()
    assert cfg.path is None and not cfg.is_sqlite
    assert cfg.url == "postgresql://app:p%40ss%3Aword@db.example:6543/chats"
    assert "p%40ss" not in cfg.describe() and "***" in cfg.describe()


def test_relative_db_path_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DB_PATH", "data/app.db")
    assert resolve().path == tmp_path / "data" / "app.db"


def test_sqlite_url_with_three_slashes_is_relative(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert resolve(url="sqlite:///rel/app.db").path == tmp_path / "rel" / "app.db"


def test_sqlite_url_path_is_percent_decoded():
    assert resolve(url="sqlite:////tmp/Application%20Support/a.db").path == Path(
        "/tmp/Application Support/a.db"
    )


@pytest.mark.parametrize(
    "url",
    ["sqlite://relative.db", "sqlite:///:memory:", "sqlite://", "mysql://u@h/db", "not a url"],
)
def test_url_that_would_lose_data_or_is_unsupported_is_refused(url):
    with pytest.raises(ConfigError):
        resolve(url=url)


def test_memory_path_is_refused_with_a_pointer_to_local_session():
    with pytest.raises(ConfigError, match="local_session"):
        resolve(":memory:")


def test_directory_given_as_database_path_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        resolve(tmp_path)


@pytest.mark.parametrize("name", ["LOCALCHAT_DB_ECHO", "DB_ECHO"])
def test_echo_variables_turn_on_sql_logging(monkeypatch, name):
    assert resolve().echo is False
    monkeypatch.setenv(name, "true")
    assert resolve().echo is True


def test_resolving_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    resolve()
    assert not (tmp_path / "xdg").exists()
