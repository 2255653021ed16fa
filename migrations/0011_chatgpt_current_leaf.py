"""0011: conversations imported from ChatGPT open on ChatGPT's current branch.

Imports made before this release left an imported conversation's
``current_leaf_id`` NULL (it opened on its newest message) and marked the
message of ChatGPT's ``current_node`` with ``metadata["current"] = true``
(beside ``"source": "chatgpt"``). ``up`` makes that message the current leaf
of every such conversation whose leaf nobody has moved yet (NULL), as the
importer now does; a conversation without the mark keeps NULL.

``down`` changes nothing: the leaf it set is one the user could have chosen,
and the schema is the same either way.

Frozen: this file never imports localchat and is never edited.
"""

from peewee import SqliteDatabase

_MARKED = {
    "sqlite": (
        """CASE WHEN json_valid(m."metadata") THEN json_extract(m."metadata", '$.current') = 1 """
        """AND json_extract(m."metadata", '$.source') = 'chatgpt' END"""
    ),
    "postgresql": (
        """(m."metadata" ->> 'current') = 'true' AND (m."metadata" ->> 'source') = 'chatgpt'"""
    ),
}

_UP = (
    'UPDATE "conversation" SET "current_leaf_id" = ('
    'SELECT m."id" FROM "message" m WHERE m."conversation_id" = "conversation"."id" AND {marked} '
    'ORDER BY m."id" DESC LIMIT 1) '
    'WHERE "current_leaf_id" IS NULL AND "external_id" IS NOT NULL'
)


def up(migrator, db):
    marked = _MARKED["sqlite" if isinstance(db, SqliteDatabase) else "postgresql"]
    db.execute_sql(_UP.format(marked=marked))


def down(migrator, db):
    pass
