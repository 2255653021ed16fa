"""0003: index conversation (user_id, updated_at) for a user's recent conversations.

``list_conversations_for_user(s, user)`` without a status filter asks for a
user's conversations newest first. The (user_id, status, updated_at) index of
0001 cannot give that order without a status, so SQLite sorted all of the
user's conversations on every call: the time grew with the user's history.
With this index the 20 newest are read straight off it (the row id is the
tie-breaker the query orders by second, and every index ends with it).

Frozen: this file never imports localchat and is never edited.
"""


def up(migrator, db):
    migrator.migrate(migrator.add_index("conversation", ("user_id", "updated_at"), False))


def down(migrator, db):
    migrator.migrate(migrator.drop_index("conversation", "conversation_user_id_updated_at"))
