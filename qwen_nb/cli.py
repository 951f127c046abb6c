"""The ``qwen-nb`` command: each subcommand lives with the module it drives."""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, function taking argv and returning an exit code, one-line help)
COMMANDS = {
    "emulator": ("qwen_nb.emulator.cli", "main", "run the local Model Studio emulator"),
    "usage": ("qwen_nb.ledger", "cli_main", "usage and cost per workspace, model or day"),
    "check-notebooks": ("qwen_nb.notebooks", "cli_main", "find (and --fix) API keys saved in .ipynb files"),
}


def _usage() -> str:
    lines = ["usage: qwen-nb COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<16} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines.append("\nRun 'qwen-nb COMMAND --help' for a command's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qwen-nb`` console script."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        from qwen_nb import __version__

        print(f"qwen-nb {__version__}")
        return 0
    if args[0] not in COMMANDS:
        print(f"qwen-nb: unknown command {args[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module, func, _ = COMMANDS[args[0]]
    return int(getattr(importlib.import_module(module), func)(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
