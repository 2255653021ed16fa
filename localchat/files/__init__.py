"""The document file store: the bytes of uploaded documents, beside the database.

    import pathlib, tempfile
    from localchat.files import store_local_file
    src = pathlib.Path(tempfile.mkdtemp()) / "Report.PDF"
    src.write_bytes(b"%PDF-1.7 ...")
    name, path = store_local_file(src, src.parent / "docs")    # a copy: src stays
    assert name.endswith(".pdf") and len(name) == 36          # uuid4 hex + ".pdf"

Documents are normally stored through :mod:`localchat.repository`
(``create_document_with_file``), which ties each file to its transaction. The
package: :mod:`~localchat.files.disk` (names, writes, ownership markers,
deletion: what those functions share) and :mod:`~localchat.files.store` (the
store's identity and folders; ``verify_file_store`` / ``repair_file_store``
compare rows and disk). See ``docs/files.md``.
"""

from .disk import *  # noqa: F403
from .disk import __all__ as __all__
