"""The pytest plugin: installing localchat is enough to test an app offline.

Registered through the ``pytest11`` entry point, so pytest loads it by itself::

    def test_first_message(localchat_session, make_conversation):
        from localchat.repository import add_message
        conv = make_conversation(title="Hello")
        add_message(localchat_session, conv.id, "user", "hi")

The fixtures live in :mod:`localchat.fixtures`; this module only wires the
plugin up. For the whole run it

* points the platform data directory (``XDG_DATA_HOME``, and Windows'
  ``WIN_PD_OVERRIDE_LOCAL_APPDATA`` / ``WIN_PD_OVERRIDE_APPDATA``) at a
  temporary folder, before conftest files are imported; subprocesses inherit it;
* removes the variables localchat's configuration reads (``LOCALCHAT_DB_PATH``,
  ``DATABASE_URL``, ``DB_PATH``...; keep some with the ``localchat_keep_env`` ini
  option), so a developer's shell never leaks into the tests;
* fails any test that opens a store inside the real user data directory, with
  a message naming the fixtures to use instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import pytest

from .config import ENV_VARS, StoreConfig
from .database import Store

__all__ = [
    "PLATFORM_DIR_VARS",
    "pytest_addoption",
    "pytest_load_initial_conftests",
    "pytest_configure",
    "pytest_report_header",
    "pytest_runtest_makereport",
    "node_failed",
]

#: The variables that move ``platformdirs.user_data_dir`` on Linux and macOS
#: (``XDG_DATA_HOME``) and on Windows (the ``WIN_PD_OVERRIDE_*`` pair).
PLATFORM_DIR_VARS = ("XDG_DATA_HOME", "WIN_PD_OVERRIDE_LOCAL_APPDATA", "WIN_PD_OVERRIDE_APPDATA")

#: The fixtures, defined in their own module (see :mod:`localchat.fixtures`).
pytest_plugins = ["localchat.fixtures"]


@dataclass(frozen=True)
class _RunIsolation:
    data_dir: Path  # the run's platform data directory
    real_roots: tuple[Path, ...]  # the user's real data directories, refused


_ISOLATION = pytest.StashKey[_RunIsolation]()
_FAILED = pytest.StashKey[bool]()
_REAL_DIRS_VAR = "_LOCALCHAT_PYTEST_REAL_DATA_DIRS"  # for nested runs and workers


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "localchat_keep_env",
        type="linelist",
        default=[],
        help="localchat: configuration variables (e.g. DATABASE_URL) that the plugin "
        "must not remove from the environment during the run.",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Isolate before any conftest is imported (conftests may resolve paths at import)."""
    _isolate_run(early_config)


def pytest_configure(config: pytest.Config) -> None:
    """Isolate here if the plugin was loaded too late for the hook above."""
    _isolate_run(config)


def pytest_report_header(config: pytest.Config) -> str | None:
    isolation = config.stash.get(_ISOLATION, None)
    if isolation is None:
        return None
    return f"localchat: platform data directory for this run: {isolation.data_dir}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    """Remember whether a test failed, for fixtures that keep a failed test's files."""
    outcome: Any = yield
    if outcome.get_result().failed:
        item.stash[_FAILED] = True


def node_failed(node: pytest.Item) -> bool:
    """Whether setup or the call of ``node`` failed (known at teardown)."""
    return node.stash.get(_FAILED, False)


def _isolate_run(config: pytest.Config) -> None:
    if _ISOLATION in config.stash:
        return
    real_roots = _real_data_roots()
    root = Path(tempfile.mkdtemp(prefix="localchat-pytest-"))
    data_dir = root / "data"
    data_dir.mkdir(mode=0o700)
    keep = set(config.getini("localchat_keep_env"))
    mp = pytest.MonkeyPatch()
    for name in ENV_VARS:
        if name not in keep:
            mp.delenv(name, raising=False)
    for name in PLATFORM_DIR_VARS:
        mp.setenv(name, str(data_dir))
    mp.setenv(_REAL_DIRS_VAR, os.pathsep.join(map(str, real_roots)))
    mp.setattr(Store, "__init__", _guarded_init(Store.__init__, real_roots))
    config.stash[_ISOLATION] = _RunIsolation(data_dir, real_roots)

    def undo() -> None:
        mp.undo()
        shutil.rmtree(root, ignore_errors=True)

    config.add_cleanup(undo)


def _real_data_roots() -> tuple[Path, ...]:
    """The user's data directories: as the environment says, and the platform default.

    A nested run (an xdist worker, a ``pytester`` run) inherits the outer run's list.
    """
    inherited = os.environ.get(_REAL_DIRS_VAR, "").split(os.pathsep)
    roots = {_real(p) for p in inherited if p} | {_real(platformdirs.user_data_dir())}
    with pytest.MonkeyPatch.context() as mp:
        for name in PLATFORM_DIR_VARS:
            mp.delenv(name, raising=False)
        roots.add(_real(platformdirs.user_data_dir()))
    temp = _real(tempfile.gettempdir())
    # A data dir that holds the temporary folder (XDG_DATA_HOME=/tmp) cannot be refused.
    return tuple(sorted(r for r in roots if not temp.is_relative_to(r)))


def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(os.path.expanduser(path)))


def _guarded_init(init: Any, real_roots: tuple[Path, ...]) -> Any:
    def __init__(self: Store, config: StoreConfig, *args: Any, **kwargs: Any) -> None:
        __tracebackhide__ = True
        if config.path is not None:
            path = _real(config.path)
            for root in real_roots:
                if path.is_relative_to(root):
                    pytest.fail(
                        f"localchat: this test opened a store in the real user data directory "
                        f"({config.path}, via {config.source}). Tests must not touch real data: "
                        "use the localchat_session, localchat_store, localchat_db_path or "
                        "localchat_default_store fixture, or give open_store() / "
                        "local_session() a file under tmp_path.",
                        pytrace=False,
                    )
        init(self, config, *args, **kwargs)

    __init__.__wrapped__ = init  # type: ignore[attr-defined]
    return __init__
