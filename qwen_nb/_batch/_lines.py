"""Batch input lines: prompts, message lists or DataFrame rows checked like ``chat()`` and written as JSONL parts.

Every row is built with ``qwen_nb.requests.build_request`` (the checks ``chat()`` makes), so a
bad row is an ``InputError`` naming it before anything is uploaded. Lines go to temporary files,
a new part whenever the next line would pass the service's per-file limits (lines, bytes); a
line over the per-request limit is refused. Nothing is held in memory but the line being written.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from qwen_nb import facts
from qwen_nb.catalog import model_info
from qwen_nb.errors import InputError
from qwen_nb.requests import build_request


def is_frame(items: Any) -> bool:
    """A pandas DataFrame (checked without importing pandas)."""
    return type(items).__module__.split(".")[0] == "pandas" and hasattr(items, "itertuples") and hasattr(
        items, "columns")


def _format(template: str, item: Any, row: int) -> str:
    try:
        if isinstance(item, Mapping):
            return template.format(**item)
        return template.format(item, text=item, prompt=item)
    except KeyError as missing:
        names = ", ".join(map(str, item)) if isinstance(item, Mapping) else "text (the item itself)"
        raise InputError(f"Row {row}: the template names {missing} but the row has no such field.",
                         fix=f"Use the row's fields in the template: {names}.") from None
    except (IndexError, ValueError) as bad:
        raise InputError(f"Row {row}: the template {template!r} cannot be filled: {bad}.",
                         fix='Use named fields, e.g. template="Classify: {text}".') from None


def rows(items: Any, template: str | None) -> Iterator[Any]:
    """The prompt (or message list) of each item, in order."""
    if template is not None and not isinstance(template, str):
        raise InputError(f"template must be a string, got {type(template).__name__}.",
                         fix='E.g. template="Classify: {text}".')
    if is_frame(items):
        columns = [str(c) for c in items.columns]
        if template is None:
            if "prompt" not in columns:
                raise InputError("A DataFrame needs a template= (or a 'prompt' column) to make its prompts.",
                                 fix=f'E.g. template="Classify: {{{columns[0] if columns else "text"}}}".')
            template = "{prompt}"
        for i, rec in enumerate(items.to_dict("records") if len(items) <= 10_000 else _frame_records(items)):
            yield _format(template, {str(k): v for k, v in rec.items()}, i)
        return
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise InputError(f"batch() takes a list of prompts or message lists (or a DataFrame), got "
                         f"{type(items).__name__}.", fix='E.g. q.batch(["Hello", "Bonjour"], model="qwen-plus").')
    for i, item in enumerate(items):
        if template is not None and (isinstance(item, (str, Mapping))):
            yield _format(template, item, i)
        else:
            yield item


def _frame_records(frame: Any) -> Iterator[dict[str, Any]]:
    """A big DataFrame's rows as dicts, a slice at a time (not all at once)."""
    for start in range(0, len(frame), 10_000):
        yield from frame.iloc[start:start + 10_000].to_dict("records")


@dataclass
class Part:
    """One input file: its path, the input rows it holds and its size."""

    path: str
    first_row: int
    rows: int = 0
    bytes: int = 0


@dataclass
class Built:
    """What ``build`` wrote: the parts, the endpoint and model of the lines, and how many rows were checked."""

    parts: list[Part]
    url: str
    model: str
    total: int
    #: rows checked but not sent (a dry run sends a sample)
    unsent: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def remove(self) -> None:
        """Delete the part files."""
        for p in self.parts:
            try:
                os.unlink(p.path)
            except OSError:
                pass


def body_of(req: Any) -> dict[str, Any]:
    """The JSON body of one line (OpenAI-compatible chat; Qwen extras at the top level, as on the wire)."""
    body: dict[str, Any] = {"model": req.model, "messages": req.messages, **req.params}
    info = model_info(req.model)
    if info is not None and info.thinking == "hybrid":
        # the service asks batch lines of hybrid-thinking models to say explicitly whether they think
        body["enable_thinking"] = bool(req.thinking)
    return body


def build(items: Any, *, model: str, system: str | None, template: str | None, dry_run: bool,
          params: dict[str, Any], folder: str | None = None) -> Built:
    """Check every row and write the JSONL parts (temporary files; the caller removes them)."""
    url = facts.BATCH_TEST_URL if dry_run else facts.BATCH_CHAT_URL
    limits = facts.BATCH_TEST_LIMITS if dry_run else facts.BATCH_LIMITS
    folder = folder or tempfile.mkdtemp(prefix="qwen-nb-batch-in-")
    built = Built([], url, facts.BATCH_TEST_MODEL if dry_run else model, 0)
    out: Any = None
    part: Part | None = None
    sending = True
    first: Any = None
    try:
        for i, item in enumerate(rows(items, template)):
            try:
                if first is None:  # the parameters are the same on every line: checked once, with the first row
                    req = first = build_request(item, model=model, system=system, **params)
                else:  # every row's prompt (or messages, images) checked the way chat() checks them
                    req = build_request(item, model=model, system=system)
                    req = replace(req, params=first.params, thinking=first.thinking, stream_only=first.stream_only)
            except InputError as bad:
                raise InputError(f"Row {i}: {bad.message}", fix=bad.fix) from None
            built.total += 1
            if not sending:
                built.unsent += 1
                continue
            body = body_of(req)
            if dry_run:
                body["model"] = facts.BATCH_TEST_MODEL
            line = json.dumps({"custom_id": str(i), "method": "POST", "url": url, "body": body},
                              ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
            if len(line) > limits.line_bytes:
                raise InputError(f"Row {i} is {len(line):,} bytes as a batch line; the service takes at most "
                                 f"{limits.line_bytes:,} bytes per request.",
                                 fix="Shorten it (or its images), or send it with chat().")
            if part is None or part.rows >= limits.lines or part.bytes + len(line) > limits.file_bytes:
                if dry_run and part is not None:  # the free test takes one small file: a sample of the rows
                    sending = False
                    built.unsent += 1
                    continue
                if out is not None:
                    out.close()
                part = Part(os.path.join(folder, f"part-{len(built.parts):04d}.jsonl"), first_row=i)
                built.parts.append(part)
                out = open(part.path, "wb")  # noqa: SIM115 - closed when the part is full or at the end
            out.write(line)
            part.rows += 1
            part.bytes += len(line)
    except BaseException:
        if out is not None:
            out.close()
        built.remove()
        raise
    if out is not None:
        out.close()
    if not built.total:
        raise InputError("batch() got no items.", fix="Pass at least one prompt.")
    if built.unsent:
        warnings.warn(f"dry run: the first {built.total - built.unsent} of {built.total} rows go to "
                      f"{facts.BATCH_TEST_MODEL} (it takes at most {limits.lines} lines and "
                      f"{limits.file_bytes:,} bytes); every row was checked.", stacklevel=3)
    return built
