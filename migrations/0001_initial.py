"""0001: the initial schema: every table of localchat's domain model.

Frozen copies of the models as they were when this migration was written;
never import ``localchat.models`` here. Timestamps are plain ``DateTimeField``
columns (localchat stores naive UTC in them). Defaults live in Python, not in
the DDL, so they are left out.
"""
from peewee import *
import uuid


def up(migrator, db):
    class User(Model):
        uuid = UUIDField(unique=True, default=uuid.uuid4)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        email = CharField(unique=True, null=True)
        username = CharField(unique=True, null=True)
        external_id = CharField(unique=True, null=True)
        name = CharField(null=True)
        full_name = CharField(null=True)
        password_hash = CharField(null=True)
        is_active = BooleanField(default=True)
        class Meta:
            database = db
            table_name = 'user'
    db.create_tables([User])

    class WebSession(Model):
        token_hash = CharField(unique=True, max_length=64)
        user = ForeignKeyField(User, on_delete='CASCADE')
        issued_at = DateTimeField()
        expires_at = DateTimeField(index=True, null=True)
        ip_net = CharField(null=True)
        user_agent = TextField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'web_session'
    db.create_tables([WebSession])

    class Conversation(Model):
        uuid = UUIDField(unique=True, default=uuid.uuid4)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        user = ForeignKeyField(User, null=True, on_delete='CASCADE')
        external_id = CharField(unique=True, null=True)
        title = CharField(null=True, max_length=500)
        status = CharField(max_length=16, default='active')
        default_model = CharField(null=True)
        last_message = TextField(null=True)
        class Meta:
            database = db
            table_name = 'conversation'
            indexes = ((('user', 'status', 'updated_at'), False), (('updated_at',), False))
    db.create_tables([Conversation])

    class Message(Model):
        uuid = UUIDField(unique=True, default=uuid.uuid4)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        conversation = ForeignKeyField(Conversation, on_delete='CASCADE')
        parent = ForeignKeyField('self', null=True, on_delete='SET NULL')
        role = CharField(max_length=16)
        content = TextField()
        model = CharField(null=True)
        metadata = JSONField(null=True)
        class Meta:
            database = db
            table_name = 'message'
            indexes = ((('conversation', 'created_at'), False),)
    db.create_tables([Message])

    class Response(Model):
        message = ForeignKeyField(Message, unique=True, on_delete='CASCADE')
        model_used = CharField()
        tokens_prompt = IntegerField(null=True)
        tokens_completion = IntegerField(null=True)
        tokens_total = IntegerField(null=True)
        completion_time_ms = IntegerField(null=True)
        options = JSONField(null=True)
        usage_details = JSONField(null=True)
        created_at = DateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'response'
    db.create_tables([Response])

    class PromptTemplate(Model):
        uuid = UUIDField(unique=True, default=uuid.uuid4)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        key = CharField(unique=True)
        name = CharField()
        content = JSONField()
        version = IntegerField(default=1)
        class Meta:
            database = db
            table_name = 'prompt_template'
    db.create_tables([PromptTemplate])

    class Document(Model):
        uuid = UUIDField(unique=True, default=uuid.uuid4)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        filename = TextField()
        path = TextField(null=True)
        stored_name = CharField(index=True, null=True)
        sha256 = CharField(index=True, null=True, max_length=64)
        size = BigIntegerField(null=True)
        mime_type = CharField(null=True)
        tags = JSONField(null=True)
        user = ForeignKeyField(User, null=True, on_delete='CASCADE')
        conversation = ForeignKeyField(Conversation, null=True, on_delete='CASCADE')
        message = ForeignKeyField(Message, null=True, on_delete='SET NULL')
        class Meta:
            database = db
            table_name = 'document'
    db.create_tables([Document])

    class LLMService(Model):
        uuid = UUIDField(unique=True, default=uuid.uuid4)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        name = CharField(unique=True)
        provider = CharField()
        base_url = CharField(null=True)
        auth_ref = CharField(null=True)
        class Meta:
            database = db
            table_name = 'llm_service'
    db.create_tables([LLMService])

    class LLMModel(Model):
        uuid = UUIDField(unique=True, default=uuid.uuid4)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        service = ForeignKeyField(LLMService, on_delete='CASCADE')
        name = CharField()
        modality = CharField(default='chat')
        supports_tools = BooleanField(default=False)
        context_window = IntegerField(null=True)
        class Meta:
            database = db
            table_name = 'llm_model'
            indexes = ((('service', 'name'), True),)
    db.create_tables([LLMModel])

    class KnowledgeChunk(Model):
        uuid = UUIDField(unique=True, default=uuid.uuid4)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        source = CharField(index=True)
        external_id = CharField(index=True, null=True)
        title = CharField(null=True, max_length=500)
        content = TextField()
        chunk_metadata = JSONField(null=True)
        content_hash = CharField(index=True, max_length=64)
        class Meta:
            database = db
            table_name = 'knowledge_chunk'
            indexes = ((('source', 'external_id'), True),)
    db.create_tables([KnowledgeChunk])

    class AuditLog(Model):
        uuid = UUIDField(unique=True, default=uuid.uuid4)
        user_id = CharField(index=True)
        document_type = CharField(index=True)
        document_version = CharField(default='1.0')
        input_data = JSONField()
        generated_text = JSONField()
        model_used = CharField(default='gpt-4o')
        tokens_used = IntegerField(null=True)
        generation_time_ms = IntegerField(null=True)
        status = CharField(max_length=16, default='success')
        error_message = TextField(null=True)
        created_at = DateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'audit_log'
            indexes = ((('user_id', 'created_at'), False),)
    db.create_tables([AuditLog])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('audit_log'))
    migrator.migrate(migrator.drop_table('knowledge_chunk'))
    migrator.migrate(migrator.drop_table('llm_model'))
    migrator.migrate(migrator.drop_table('llm_service'))
    migrator.migrate(migrator.drop_table('document'))
    migrator.migrate(migrator.drop_table('prompt_template'))
    migrator.migrate(migrator.drop_table('response'))
    migrator.migrate(migrator.drop_table('message'))
    migrator.migrate(migrator.drop_table('conversation'))
    migrator.migrate(migrator.drop_table('web_session'))
    migrator.migrate(migrator.drop_table('user'))
