"""Paths that are not ledgers: another program's SQLite database, a folder, a file where a folder must be."""

from __future__ import annotations

import sqlite3

import pytest

from qwen_nb.errors import ConfigError
from qwen_nb.ledger import Ledger, cli_main


def foreign_database(path, *, user_version: int = 0) -> bytes:
    """Another program's SQLite database (rollback journal, one table); returns its bytes."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    if user_version:
        conn.execute(f"PRAGMA user_version = {user_version}")
    conn.commit()
    conn.close()
    return path.read_bytes()


def assert_untouched(path, before: bytes) -> None:
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no -wal / -shm / -journal left
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


@pytest.mark.parametrize("user_version", [0, 1, 7])
def test_another_programs_database_is_refused_and_left_byte_for_byte(tmp_path, user_version):
    path = tmp_path / "other.sqlite"
    before = foreign_database(path, user_version=user_version)
    with pytest.raises(ConfigError, match="is not a qwen-nb usage ledger") as info:
        Ledger(path)
    assert str(path) in info.value.message and "notes" in info.value.message
    assert "--ledger" in info.value.fix and "QWEN_NB_LEDGER" in info.value.fix and "new" in info.value.fix
    assert_untouched(path, before)


def test_cli_on_another_programs_database_prints_the_error_and_changes_nothing(tmp_path, capsys):
    path = tmp_path / "other.sqlite"
    before = foreign_database(path)
    assert cli_main(["--ledger", str(path)]) == 2
    err = capsys.readouterr().err
    assert "is not a qwen-nb usage ledger" in err and "Traceback" not in err
    assert_untouched(path, before)


def test_env_ledger_at_another_programs_database(tmp_path, monkeypatch):
    path = tmp_path / "other.sqlite"
    before = foreign_database(path)
    monkeypatch.setenv("QWEN_NB_LEDGER", str(path))
    with pytest.raises(ConfigError, match="is not a qwen-nb usage ledger"):
        Ledger()
    assert_untouched(path, before)


def test_empty_database_with_a_user_version_of_its_own_is_refused(tmp_path):
    path = tmp_path / "app.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="is not a qwen-nb usage ledger"):
        Ledger(path)
    assert_untouched(path, before)


def test_a_folder_is_not_a_ledger(tmp_path, capsys, monkeypatch):
    with pytest.raises(ConfigError, match="is a folder, not a file") as info:
        Ledger(tmp_path)
    assert str(tmp_path) in info.value.message
    assert list(tmp_path.iterdir()) == []
    assert cli_main(["--ledger", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    monkeypatch.setenv("QWEN_NB_LEDGER", str(tmp_path))
    with pytest.raises(ConfigError, match="is a folder"):
        Ledger()


def test_a_file_where_a_folder_must_be(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file")
    path = blocker / "sub" / "usage.sqlite"
    monkeypatch.setenv("QWEN_NB_LEDGER", str(path))
    with pytest.raises(ConfigError, match="is a file, not a folder") as info:
        Ledger()
    assert str(path) in info.value.message and str(blocker) in info.value.message
    assert cli_main([]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "Traceback" not in err
    assert blocker.read_text() == "a file" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_ledger_file_and_a_new_path_still_open(tmp_path):
    path = tmp_path / "deep" / "er" / "usage.sqlite"
    with Ledger(path) as led:  # a new path: its folders are created
        assert len(led) == 0
    with Ledger(path) as led:  # and a qwen-nb ledger reopens
        assert len(led) == 0
