"""``qwen-nb usage``: print the usage report of a ledger file from a terminal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qwen_nb.errors import QwenNbError
from qwen_nb.ledger._paths import ENV_LEDGER, check_path, default_path
from qwen_nb.ledger._report import GROUPINGS
from qwen_nb.ledger._store import Ledger


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qwen-nb usage",
        description="Usage and estimated cost of the calls recorded by qwen-nb, per workspace, model, day or profile.",
    )
    p.add_argument("--since", help="only calls from this date/time on (2026-01-31, 'today', '7d')")
    p.add_argument("--by", choices=GROUPINGS, default="workspace", help="how to group (default: workspace)")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    p.add_argument("--ledger", metavar="PATH", help=f"ledger file (default: ${ENV_LEDGER} or the per-user data dir)")
    return p


def cli_main(argv: list[str] | None = None) -> int:
    """``qwen-nb usage``: print the usage report; returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse already printed usage and the problem
        return int(exc.code or 0)
    path = Path(args.ledger).expanduser() if args.ledger else default_path()
    try:
        check_path(path)
        if not path.exists():
            if args.ledger:
                print(f"qwen-nb usage: no ledger at {path}", file=sys.stderr)
                return 1
            print(f"No calls recorded yet (ledger: {path}).")
            return 0
        with Ledger(path) as ledger:
            report = ledger.report(since=args.since, by=args.by)
    except QwenNbError as exc:
        print(parser.format_usage().rstrip(), file=sys.stderr)
        print(f"qwen-nb usage: {exc}", file=sys.stderr)
        return 2
    if args.csv:
        sys.stdout.write(report.to_csv() or "")
    else:
        print(report.to_text())
    return 0
