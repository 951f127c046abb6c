"""Where the usage ledger lives by default (the one place the ledger reads the environment)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_LEDGER = "QWEN_NB_LEDGER"


def default_path() -> Path:
    """``$QWEN_NB_LEDGER`` if set, else ``usage.sqlite`` in the per-user data dir.

    The only place the ledger reads the environment.
    """
    env = os.environ.get(ENV_LEDGER)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("qwen-nb")) / "usage.sqlite"

