"""The wheel carries the migrations: build it, install it in a fresh venv, run `localchat init`."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("localchat-*.whl")
    return found


def test_wheel_ships_every_migration_and_the_type_marker(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for migration in (ROOT / "migrations").glob("[0-9]*.py"):
        assert f"localchat/migrations/{migration.name}" in names
    assert "localchat/py.typed" in names
    assert not any(n.startswith(("tests/", "migrations/")) for n in names)


def test_installed_wheel_initialises_an_empty_data_dir(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    subprocess.run(
        [str(bindir / "python"), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    data = tmp_path / "empty-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCALCHAT_", "DB_"))}
    env.pop("DATABASE_URL", None)
    env.update(XDG_DATA_HOME=str(data), HOME=str(tmp_path))
    result = subprocess.run(
        [str(bindir / "localchat"), "init"],
        cwd=tmp_path,  # not the source tree: the installed package must stand alone
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    db = data / "localchat" / "localchat.db"
    assert str(db) in result.stdout and "0001_initial" in result.stdout
    conn = sqlite3.connect(db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    assert {"user", "conversation", "message", "document", "audit_log"} <= tables
