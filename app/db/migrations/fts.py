"""The SQLite full-text index of client names (FTS5, trigram tokenizer).

`clients_fts` indexes clients.search_text (the NFKD, accent-free, case-folded name and legal
name) as external content keyed by clients.id; triggers keep it in step with every insert,
update and delete, whoever writes the row.
"""

from __future__ import annotations

from alembic import op

STATEMENTS = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS clients_fts USING fts5("
    "search_text, content='clients', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS clients_fts_ai AFTER INSERT ON clients BEGIN "
    "INSERT INTO clients_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS clients_fts_ad AFTER DELETE ON clients BEGIN "
    "INSERT INTO clients_fts(clients_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS clients_fts_au AFTER UPDATE OF search_text ON clients BEGIN "
    "INSERT INTO clients_fts(clients_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO clients_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    # Index whatever rows exist already.
    "INSERT INTO clients_fts(clients_fts) VALUES ('rebuild')",
)
TRIGGERS = ("clients_fts_ai", "clients_fts_ad", "clients_fts_au")


def create_sqlite_fts() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def drop_sqlite_fts() -> None:
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS clients_fts")
