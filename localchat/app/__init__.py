"""``localchat chat``: a terminal chat client on the store (the ``app`` extra).

    pip install 'localchat[app]'
    localchat chat                      # the per-user store
    localchat chat --db ./chat.db       # any store

Also the reference for embedding localchat in a chat client: see
``docs/chat-app.md``. :mod:`localchat.app.data` is every read and write the
app makes (no Textual); only :mod:`localchat.app.ui` and
:mod:`localchat.app.screens` import Textual; the model clients in
:mod:`localchat.app.llm` need nothing beyond the standard library.
"""
