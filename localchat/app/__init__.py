"""``localchat chat``: a terminal chat client on the store (the ``app`` extra).

    pip install 'localchat[app]'
    localchat chat                      # the per-user store
    localchat chat --db ./chat.db       # any store

Also the reference for embedding localchat in a chat client: see
``docs/chat-app.md``. Only :mod:`localchat.app.ui` imports Textual; the model
clients in :mod:`localchat.app.llm` need nothing beyond the standard library.
"""
