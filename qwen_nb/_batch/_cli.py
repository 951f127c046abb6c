"""``qwen-nb batch``: submit a JSONL or CSV file to the Batch API, follow the job, fetch its answers, cancel, list."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qwen_nb.errors import InputError, QwenNbError, scrub


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qwen-nb batch", description="Model Studio's Batch API (half the real-time "
                                "price; answers within the completion window).")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("submit", help="check every row of FILE and create the batch job(s)")
    s.add_argument("file", help="a .jsonl file (one prompt string, or {\"prompt\"}/{\"messages\"} object per line) "
                   "or a .csv file (with --template, or a 'prompt' column)")
    s.add_argument("--model", required=True, help="a model the region's Batch API serves, e.g. qwen-plus")
    s.add_argument("--profile", help="the profile (region, key) to use")
    s.add_argument("--system", help="a system prompt for every row")
    s.add_argument("--template", help='CSV rows to prompts, e.g. "Classify: {text}"')
    s.add_argument("--window", default="24h", help="completion window, 24h to 336h (default 24h)")
    s.add_argument("--max-tokens", type=int, help="max_tokens for every row")
    s.add_argument("--temperature", type=float, help="temperature for every row")
    s.add_argument("--dry-run", action="store_true", help="send a sample to the free batch-test-model instead")
    for name, text in (("status", "the job's status and line counts"), ("wait", "wait for the job to end"),
                       ("cancel", "stop the job (lines done are kept)")):
        c = sub.add_parser(name, help=text)
        c.add_argument("id", help="the batch id (or the group id printed by submit)")
        c.add_argument("--profile", help="the profile, for a job this machine's ledger does not know")
    f = sub.add_parser("fetch", help="write each row's answer (or error), in input order")
    f.add_argument("id", help="the batch id (or group id)")
    f.add_argument("-o", "--output", required=True, help="OUT.jsonl or OUT.csv")
    f.add_argument("--profile", help="the profile, for a job this machine's ledger does not know")
    ls = sub.add_parser("list", help="the batch jobs in the ledger, with their status now")
    ls.add_argument("--limit", type=int, default=50)
    return p


def read_items(path: str) -> list[Any]:
    """The rows of a JSONL file (prompts, ``{"prompt"}``, ``{"messages"}`` or batch lines) or of a CSV file (dicts)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"{path!r} is not a file.", fix="Give the path of a .jsonl or .csv file.")
    if file.suffix.lower() == ".csv":
        with file.open(newline="", encoding="utf-8-sig") as fh:
            return list(csv.DictReader(fh))
    if file.suffix.lower() not in (".jsonl", ".ndjson", ".json"):
        raise InputError(f"{path!r} is neither .jsonl nor .csv.", fix="Name the file .jsonl or .csv.")
    items: list[Any] = []
    with file.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise InputError(f"Line {n} of {path} is not JSON.",
                                 fix='Each line is a JSON string ("..."), or {"prompt": ...} / {"messages": [...]}.'
                                 ) from None
            if isinstance(obj, dict):
                body: dict[str, Any] = obj["body"] if isinstance(obj.get("body"), dict) else obj
                obj = body.get("messages") or body.get("prompt") or obj
            items.append(obj)
    return items


def _rows(results: Any) -> Iterator[dict[str, Any]]:
    from qwen_nb.results import ChatResult

    for i, r in enumerate(results):
        if isinstance(r, ChatResult):
            yield {"row": i, "answer": r.text, "input_tokens": r.usage.input_tokens,
                   "output_tokens": r.usage.output_tokens, "cost": r.cost, "currency": r.currency, "error": None}
        else:
            yield {"row": i, "answer": None, "input_tokens": 0, "output_tokens": 0, "cost": None, "currency": None,
                   "error": f"{type(r).__name__}: {r.message}"}


def main(argv: list[str]) -> int:
    """Entry point of ``qwen-nb batch``."""
    args = _parser().parse_args(argv)
    from qwen_nb._batch._job import BatchJob, list_jobs, submit

    try:
        if args.command == "submit":
            items = read_items(args.file)
            params = {k: v for k, v in (("max_tokens", args.max_tokens), ("temperature", args.temperature))
                      if v is not None}
            template = args.template
            if template is None and items and isinstance(items[0], dict) and "prompt" in items[0]:
                template = "{prompt}"
            job = submit(items, model=args.model, profile=args.profile, system=args.system,
                         completion_window=args.window, template=template, dry_run=args.dry_run, **params)
            print(f"{job.id}  {job.rows} rows, {job.model}, {len(job.ids)} job(s): {job.status}")
            return 0
        if args.command == "list":
            print(list_jobs(limit=args.limit))
            return 0
        job = BatchJob.attach(args.id, profile=args.profile)
        if args.command == "status":
            status, counts = job.status, job._counts()
            print(f"{job.id}  {status}  {counts['completed']} completed, {counts['failed']} failed of "
                  f"{counts['total']}")
        elif args.command == "wait":
            job.wait(progress=sys.stderr.isatty())
            counts = job._counts()
            print(f"{job.id}  {job.status}  {counts['completed']} completed, {counts['failed']} failed")
        elif args.command == "cancel":
            print(f"{job.id}  {job.cancel().status}")
        elif args.command == "fetch":
            results = job.results(progress=sys.stderr.isatty(), as_frame=False)
            out = Path(args.output).expanduser()
            n = 0
            with out.open("w", encoding="utf-8", newline="") as fh:
                if out.suffix.lower() == ".csv":
                    writer: Any = None
                    for row in _rows(results):
                        if writer is None:
                            writer = csv.DictWriter(fh, fieldnames=list(row))
                            writer.writeheader()
                        writer.writerow({k: scrub(v) if isinstance(v, str) else v for k, v in row.items()})
                        n += 1
                else:
                    for row in _rows(results):
                        fh.write(scrub(json.dumps(row, ensure_ascii=False)) + "\n")
                        n += 1
            print(f"{n} rows written to {out}")
    except QwenNbError as err:
        print(f"qwen-nb batch: {err}", file=sys.stderr)
        return 2
    return 0
