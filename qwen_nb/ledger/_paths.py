"""Where the usage ledger lives: the default path, and the check that a path can hold a ledger file."""

from __future__ import annotations

from pathlib import Path

from qwen_nb.errors import ConfigError

ENV_LEDGER = "QWEN_NB_LEDGER"


def default_path() -> Path:
    """``$QWEN_NB_LEDGER`` if set, else ``usage.sqlite`` in the per-user data dir.

    Read through the settings chain (environment, ``.env``, user config file).
    """
    from qwen_nb._settings import Settings

    env = Settings().get(ENV_LEDGER)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("qwen-nb")) / "usage.sqlite"


def check_path(path: Path) -> None:
    """Raise ``ConfigError`` if ``path`` cannot be a ledger file: a folder, or a file standing where a folder must."""
    fix = f"Point --ledger / {ENV_LEDGER} at a qwen-nb ledger file or at a new file path."
    if path.is_dir():
        raise ConfigError(f"The usage ledger path {str(path)!r} is a folder, not a file.", fix=fix)
    for parent in path.parents:
        if parent.is_dir():
            return
        if parent.exists():
            raise ConfigError(
                f"The usage ledger path {str(path)!r} cannot be created: {str(parent)!r} is a file, not a folder.",
                fix=fix,
            )
