"""Offline pytest fixtures for apps that embed localchat (registered via ``pytest11``).

    def test_first_message(localchat_session):
        from localchat.repository import add_message, create_conversation
        conv = create_conversation(localchat_session, title="t")
        add_message(localchat_session, conv.id, "user", "hi")

Every test gets its own migrated store; the real user data directory is
never touched (the whole run's platform data directory is a temporary one).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .config import ENV_VARS, resolve
from .database import Session, Store

__all__ = [
    "localchat_db_path",
    "localchat_store",
    "localchat_session",
]


@pytest.fixture(scope="session", autouse=True)
def _localchat_isolated_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point the platform data directory at a temporary folder for the whole run."""
    root = tmp_path_factory.mktemp("localchat-home")
    mp = pytest.MonkeyPatch()
    for name in ENV_VARS:
        mp.delenv(name, raising=False)
    mp.setenv("XDG_DATA_HOME", str(root / "data"))
    mp.setenv("LOCALAPPDATA", str(root / "data"))
    mp.setenv("APPDATA", str(root / "data"))
    try:
        yield root
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def _localchat_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store migrated once per run; tests get copies of it."""
    path = tmp_path_factory.mktemp("localchat-template") / "localchat.db"
    store = Store(resolve(path))
    store.upgrade()
    store.db.close()
    return path


@pytest.fixture
def localchat_db_path(tmp_path: Path, _localchat_template: Path) -> Path:
    """A migrated, empty database file on disk that the test can open itself."""
    path = tmp_path / "localchat.db"
    shutil.copyfile(_localchat_template, path)
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def localchat_store(localchat_db_path: Path) -> Iterator[Store]:
    """A fresh migrated :class:`~localchat.Store` with its own ``files/`` folder."""
    store = Store(resolve(localchat_db_path))
    store._migrated = True  # copied from the migrated template
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def localchat_session(localchat_store: Store) -> Iterator[Session]:
    """A session on a fresh migrated store, discarded after the test."""
    with localchat_store.session() as s:
        yield s
