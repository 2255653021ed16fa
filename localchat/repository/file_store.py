"""The file store check, under its first import path.

    from localchat import local_session
    from localchat.repository.file_store import verify_file_store

    with local_session() as s:
        assert verify_file_store(s).ok

The code lives in :mod:`localchat.files.store`.
"""

from ..files.store import *  # noqa: F403
from ..files.store import __all__ as __all__
