"""The ledger's SQLite schema: versioned migrations."""

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
}
SCHEMA_VERSION = max(MIGRATIONS)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the database to schema ``target``, one version at a time, atomically; returns the version.

    Safe when several processes open the same file at once: the version is re-read
    under the write lock.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"The usage ledger has schema version {version}, newer than this qwen-nb understands ({SCHEMA_VERSION}).",
            fix=f"Upgrade qwen-nb, or point {ENV_LEDGER} at another file.",
        )
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
