"""The ledger's SQLite schema: versioned migrations, and the read-only check that a file is a qwen-nb ledger."""

from __future__ import annotations

import sqlite3

from qwen_nb.errors import ConfigError
from qwen_nb.ledger._paths import ENV_LEDGER

#: version -> statements that take a database from version - 1 to version
MIGRATIONS: dict[int, tuple[str, ...]] = {
    # v1: the first release: one row per call, indexed by time
    1: (
        """CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            profile TEXT NOT NULL,
            workspace TEXT,
            region TEXT NOT NULL,
            api TEXT NOT NULL,
            model TEXT NOT NULL,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            latency REAL NOT NULL DEFAULT 0,
            request_id TEXT,
            status TEXT NOT NULL,
            error_code TEXT,
            attempts INTEGER NOT NULL DEFAULT 1,
            cost REAL,
            currency TEXT
        )""",
        "CREATE INDEX calls_time ON calls(time)",
    ),
    # v2: a unique call id (idempotent record()), and an index for per-profile spend
    2: (
        "ALTER TABLE calls ADD COLUMN call_id TEXT",
        "UPDATE calls SET call_id = 'v1-' || id WHERE call_id IS NULL",
        "CREATE UNIQUE INDEX calls_call_id ON calls(call_id)",
        "CREATE INDEX calls_profile ON calls(profile, currency)",
    ),
    # v3: batch jobs (recorded when created, so a job outlives the kernel that made it), and which
    # calls were lines of a batch job (billed at the batch price)
    3: (
        """CREATE TABLE batch_jobs (
            id TEXT PRIMARY KEY,
            group_id TEXT NOT NULL,
            part INTEGER NOT NULL DEFAULT 0,
            parts INTEGER NOT NULL DEFAULT 1,
            first_row INTEGER NOT NULL DEFAULT 0,
            rows INTEGER NOT NULL,
            created REAL NOT NULL,
            profile TEXT NOT NULL,
            workspace TEXT,
            region TEXT NOT NULL,
            model TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            completion_window TEXT NOT NULL,
            input_file_id TEXT,
            dry_run INTEGER NOT NULL DEFAULT 0,
            status TEXT,
            output_file_id TEXT,
            error_file_id TEXT,
            meta TEXT,
            recorded REAL
        )""",
        "CREATE INDEX batch_jobs_group ON batch_jobs(group_id)",
        "CREATE INDEX batch_jobs_created ON batch_jobs(created)",
        "ALTER TABLE calls ADD COLUMN batch_id TEXT",
    ),
    # v4: calls beyond chat (embeddings, rerank, images, speech, responses) carry their kind, and the
    # context cache's token counts are kept (the cost already applies their rates)
    4: (
        "ALTER TABLE calls ADD COLUMN kind TEXT NOT NULL DEFAULT 'chat'",
        "ALTER TABLE calls ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE calls ADD COLUMN cache_creation_tokens INTEGER NOT NULL DEFAULT 0",
    ),
    # v5: chat_many(checkpoint=...): each answered prompt of a named run, so a restarted run skips it
    5: (
        """CREATE TABLE checkpoints (
            name TEXT NOT NULL,
            key TEXT NOT NULL,
            time REAL NOT NULL,
            result TEXT NOT NULL,
            PRIMARY KEY (name, key)
        )""",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)


_FIX = f"Point --ledger / {ENV_LEDGER} at a qwen-nb usage ledger, or at a new file path."


def _newer(version: int) -> ConfigError:
    return ConfigError(
        f"The usage ledger has schema version {version}, newer than this qwen-nb understands ({SCHEMA_VERSION}).",
        fix=f"Upgrade qwen-nb, or point {ENV_LEDGER} at another file.",
    )


def check_schema(conn: sqlite3.Connection, where: str) -> int:
    """Check, reading only, that ``conn`` is a qwen-nb ledger or an empty database; returns its schema version.

    Raises ``ConfigError`` for another program's database (tables but no ``calls`` table, or
    a ``user_version`` qwen-nb never wrote) and for a ledger newer than this qwen-nb, before
    anything in the file is changed.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )]
    if "calls" not in tables and (tables or 0 < version <= SCHEMA_VERSION):
        what = f"tables {', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''}" if tables else "no tables"
        raise ConfigError(
            f"{where!r} is not a qwen-nb usage ledger: it is a SQLite database with {what} and no qwen-nb "
            f"schema (user_version {version}). It was left untouched.",
            fix=_FIX,
        )
    if version > SCHEMA_VERSION:
        raise _newer(version)
    return version


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the database to schema ``target``, one version at a time, atomically; returns the version.

    Safe when several processes open the same file at once: the version is re-read
    under the write lock.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise _newer(version)
    if version >= target:
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        while version < target:
            version += 1
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return version
