"""The ``qwen-nb`` command: each subcommand lives with the module it drives."""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, function taking argv and returning an exit code, one-line help)
COMMANDS = {
    "emulator": ("qwen_nb.emulator.cli", "main", "run the local Model Studio emulator"),
    "usage": ("qwen_nb.ledger", "cli_main", "usage and cost per workspace, model or day"),
    "check-notebooks": ("qwen_nb.notebooks", "cli_main", "find (and --fix) API keys saved in .ipynb files"),
    "notebooks": ("qwen_nb.recording", "cli_main", "record tutorial notebooks kept as jupytext pairs (record, check)"),
    "where": ("qwen_nb.cli", "where_main", "say where notebooks run from a folder: the real service or the emulator"),
    "record": ("qwen_nb.recorder.cli", "main", "run a command through a recording proxy (records a cassette)"),
    "classroom": ("qwen_nb.classroom", "cli_main", "a class on one emulator: a key per student, handouts"),
    "batch": ("qwen_nb._batch._cli", "main", "the Batch API: submit FILE, status/wait/fetch/cancel ID, list"),
}

#: exit status of ``qwen-nb where`` when no key is configured (notebooks use the local emulator)
WHERE_EMULATOR = 3


def where_main(argv: list[str]) -> int:
    """``qwen-nb where [DIR]``: what ``qwen_nb.connect()`` would use in a kernel started in DIR.

    It reads the same settings chain as the kernel (environment, the nearest ``.env`` from DIR
    upwards, the user config file). Exit status 0: keys found, the real service (billed);
    3: no key, the local emulator; 2: the settings are wrong (the message says how to fix them).
    ``--mode`` prints only ``service`` or ``emulator``.
    """
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="qwen-nb where", description="Where notebooks started in DIR run.")
    parser.add_argument("dir", nargs="?", default=".", help="the folder notebooks start in (default: here)")
    parser.add_argument("--mode", action="store_true", help="print only 'service' or 'emulator'")
    args = parser.parse_args(argv)
    from qwen_nb._profiles import load_profiles
    from qwen_nb._settings import Settings
    from qwen_nb.errors import QwenNbError

    if not os.path.isdir(args.dir):
        print(f"qwen-nb where: {args.dir!r} is not a folder.", file=sys.stderr)
        return 2
    here = os.getcwd()
    try:
        os.chdir(args.dir)
        profiles = load_profiles()
        emulator = Settings().get("QWEN_NB_EMULATOR")
    except QwenNbError as err:
        print(f"qwen-nb where: the settings in {args.dir} are wrong: {err}", file=sys.stderr)
        return 2
    finally:
        os.chdir(here)
    if not profiles:
        if args.mode:
            print("emulator")
        else:
            where = f"the emulator at {emulator} (QWEN_NB_EMULATOR)" if emulator else "the local emulator"
            print(f"no key: {where} (no network, no cost). Set DASHSCOPE_API_KEY or QWEN_NB_<NAME>_API_KEY "
                  "(environment, .env or the user config file) to use Model Studio.")
        return WHERE_EMULATOR
    if args.mode:
        print("service")
        return 0
    sources = sorted({p.source for p in profiles.values()})
    names = ", ".join(f"{p.name} ({p.region})" for p in profiles.values())
    n = len(profiles)
    print(f"{n} profile{'s' if n != 1 else ''} from {' and '.join(sources)}: {names}: "
          "the real Model Studio service (billed).")
    return 0


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
