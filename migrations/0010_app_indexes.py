"""0010: two indexes the chat app's start-up and sidebar need on a big store.

``message_streaming``: the replies still ``streaming`` only (a partial index,
``WHERE status = 'streaming'``, normally empty). ``mark_interrupted_replies``
runs at every start-up; without it, it read every message of the store
(139 ms on 1,000,000 messages with the file cached, the whole table from disk
when not).

``conversation_user_id_pinned_updated_at``: a user's conversations, pinned
ones first, newest first (the sidebar's ``pinned_first=True``) come straight
from it, LIMIT rows at a time; without it every one of the user's
conversations was read and sorted (19 ms for 10,000).

Both are plain ``CREATE INDEX`` (SQLite and PostgreSQL): no table is rebuilt,
so triggers and ``AUTOINCREMENT`` high-water marks are untouched. ``down``
drops them.

Frozen: this file never imports localchat and is never edited.
"""

INDEXES = (
    (
        "message_streaming",
        'CREATE INDEX "message_streaming" ON "message" ("status") '
        "WHERE (\"status\" = 'streaming')",
    ),
    (
        "conversation_user_id_pinned_updated_at",
        'CREATE INDEX "conversation_user_id_pinned_updated_at" '
        'ON "conversation" ("user_id", "pinned", "updated_at")',
    ),
)


def up(migrator, db):
    for _, sql in INDEXES:
        db.execute_sql(sql)


def down(migrator, db):
    for name, _ in reversed(INDEXES):
        db.execute_sql('DROP INDEX IF EXISTS "%s"' % name)
