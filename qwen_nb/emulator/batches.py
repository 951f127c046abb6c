"""The emulator's Batch API: files and batch jobs with the service's shapes, limits and states, on a fast clock.

A job's state is read off a clock (``Pacing.batch_speed`` emulated seconds per real second):
validating for an emulated minute, then in progress for ``Pacing.batch_hours`` emulated hours
(its ``request_counts`` growing), then finalizing until its answers are ready, then completed.
A job that would run past its ``completion_window`` expires with the lines done by then; a
cancelled one keeps the lines done before the cancel. Answers are made in a background thread
by ``answer(line_body)`` (the chat answer the app gives a real-time call); a share of lines
(``Pacing.batch_fail_rate``) fail with 500 InternalError. Successful lines go to the output file,
failed ones to the error file, each in an order of its own (the service promises none).

Pure state and logic: the app (``qwen_nb.emulator.app``) reads requests and writes answers.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qwen_nb import facts
from qwen_nb.emulator import wire

#: emulated seconds a job is validating (and a cancel takes)
VALIDATE_SECONDS = 60.0


class BatchRefusal(Exception):
    """An error answer: ``kind`` is a row of ``facts.ERRORS``; ``message`` the service's words."""

    def __init__(self, kind: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.param = kind, message, param


@dataclass
class StoredFile:
    """An uploaded input file, or a job's output or error file."""

    id: str
    workspace: str
    filename: str
    purpose: str
    data: bytes
    created: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created,
                "filename": self.filename, "purpose": self.purpose, "status": "processed"}


@dataclass
class Job:
    """One batch job and what the clock has made of it."""

    id: str
    workspace: str
    region: str
    input_file_id: str
    endpoint: str
    completion_window: str
    window_hours: int
    created: int
    #: monotonic time it was created
    t0: float
    speed: float
    run_hours: float
    total: int
    metadata: dict[str, Any] | None = None
    #: file-level validation errors (the job fails)
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: per line, in input order: (custom_id, ok, line bytes) once answered
    answers: list[tuple[str, bool, bytes]] | None = None
    cancelled_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    final: str | None = None
    done_lines: int = 0
    #: emulated seconds when each phase started (filled as the clock passes them)
    stamps: dict[str, int] = field(default_factory=dict)

    def emulated(self, now: float) -> float:
        """Emulated seconds since creation."""
        return (now - self.t0) * self.speed


class BatchStore:
    """Files and jobs of every workspace; ``answer(region, body) -> (ok, line body bytes)`` answers a line."""

    def __init__(self, answer: Callable[[str, str, dict[str, Any], str], tuple[bool, bytes]],
                 pacing: Callable[[], Any]) -> None:
        self._answer = answer
        self._pacing = pacing
        self._lock = threading.Lock()
        self.files: dict[str, StoredFile] = {}
        self.jobs: dict[str, Job] = {}

    # -- files ---------------------------------------------------------------
    def add_file(self, workspace: str, filename: str, purpose: str, data: bytes) -> StoredFile:
        """Store an uploaded file (its purpose and size checked)."""
        if purpose != facts.BATCH_PURPOSE:
            raise BatchRefusal("invalid_parameter", f"Unsupported purpose {purpose!r}: use purpose=\"batch\" for a "
                               "batch input file.", "purpose")
        limit = facts.BATCH_LIMITS.file_bytes
        if len(data) > limit:
            raise BatchRefusal("invalid_parameter", f"The file is {len(data)} bytes; a batch input file may hold "
                               f"at most {limit} bytes.", "file")
        if not data.strip():
            raise BatchRefusal("invalid_parameter", "The file is empty.", "file")
        f = StoredFile(f"file-batch-{uuid.uuid4().hex[:24]}", workspace, filename or "input.jsonl", purpose, data,
                       int(time.time()))
        with self._lock:
            self.files[f.id] = f
        return f

    def get_file(self, workspace: str, file_id: str) -> StoredFile:
        with self._lock:
            f = self.files.get(file_id)
        if f is None or f.workspace != workspace:
            raise BatchRefusal("not_found", f"File {file_id!r} not found.", "file_id")
        return f

    # -- jobs ----------------------------------------------------------------
    def create(self, workspace: str, region: str, body: dict[str, Any]) -> Job:
        """A new job from a ``POST /batches`` body (the file is checked line by line while it validates)."""
        input_file_id = body.get("input_file_id")
        if not isinstance(input_file_id, str) or not input_file_id:
            raise BatchRefusal("invalid_parameter", "input_file_id is required.", "input_file_id")
        endpoint = body.get("endpoint")
        if endpoint not in facts.BATCH_URLS:
            raise BatchRefusal("invalid_parameter", f"endpoint must be one of {', '.join(facts.BATCH_URLS)}, "
                               f"got {endpoint!r}.", "endpoint")
        window = body.get("completion_window")
        hours = facts.batch_window_hours(window)
        if hours is None:
            low, high = facts.BATCH_WINDOW_HOURS
            raise BatchRefusal("invalid_parameter", f"completion_window must be {low}h to {high}h (whole hours, "
                               f"\"h\" or \"d\"), got {window!r}.", "completion_window")
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise BatchRefusal("invalid_parameter", "metadata must be an object.", "metadata")
        f = self.get_file(workspace, input_file_id)
        p = self._pacing()
        job = Job(f"batch_{uuid.uuid4()}", workspace, region, f.id, str(endpoint), str(window), hours, int(time.time()),
                  time.monotonic(), float(p.batch_speed), float(p.batch_hours), 0, metadata)
        lines, errors = self._validate(f.data, endpoint, region)
        if endpoint == facts.BATCH_TEST_URL and not errors:
            running = sum(1 for j in self.jobs.values() if j.workspace == workspace and j.endpoint == endpoint
                          and self.status(j) not in facts.BATCH_FINAL)
            if running >= (facts.BATCH_TEST_LIMITS.parallel or 1):
                raise BatchRefusal("rate_limit", f"batch-test-model runs at most {facts.BATCH_TEST_LIMITS.parallel} "
                                   "jobs at a time; wait for one to finish.")
        job.errors, job.total = errors, len(lines) if not errors else 0
        with self._lock:
            self.jobs[job.id] = job
        if not errors:
            fail_rate = float(p.batch_fail_rate)
            threading.Thread(target=self._run, args=(job, lines, fail_rate), daemon=True,
                             name=f"qwen-nb-emulator-{job.id}").start()
        return job

    def _validate(self, data: bytes, endpoint: str, region: str) -> tuple[list[dict[str, Any]], list[dict]]:
        """The file's lines, or the file-level errors that fail the job (the service's limits)."""
        test = endpoint == facts.BATCH_TEST_URL
        limits = facts.BATCH_TEST_LIMITS if test else facts.BATCH_LIMITS
        errors: list[dict[str, Any]] = []

        def error(code: str, message: str, line: int | None = None) -> None:
            errors.append({"code": code, "message": message, "param": None, "line": line})

        if len(data) > limits.file_bytes:
            error("invalid_file", f"The file is {len(data)} bytes; at most {limits.file_bytes} are allowed"
                  + (" for batch-test-model." if test else "."))
            return [], errors
        raw_lines = [ln for ln in data.split(b"\n") if ln.strip()]
        if len(raw_lines) > limits.lines:
            error("invalid_file", f"The file has {len(raw_lines)} requests; at most {limits.lines} are allowed"
                  + (" for batch-test-model." if test else " per file."))
            return [], errors
        lines = []
        for n, raw in enumerate(raw_lines, 1):
            if len(raw) > limits.line_bytes:
                error("invalid_file", f"Line {n} is {len(raw)} bytes; at most {limits.line_bytes} per request.", n)
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                error("invalid_json_line", f"Line {n} is not valid JSON.", n)
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("custom_id"), str) or not obj["custom_id"] \
                    or obj.get("method") != "POST" or not isinstance(obj.get("body"), dict):
                error("invalid_request", f"Line {n} must be {{\"custom_id\": <string>, \"method\": \"POST\", "
                      "\"url\": ..., \"body\": {...}}.", n)
                continue
            if obj.get("url") != endpoint:
                error("mismatched_endpoint", f"Line {n} has url {obj.get('url')!r}; the batch's endpoint is "
                      f"{endpoint!r} and every line must use it.", n)
                continue
            lines.append(obj)
            if len(errors) > 100:
                break
        return ([] if errors else lines), errors

    def _run(self, job: Job, lines: list[dict[str, Any]], fail_rate: float) -> None:
        """Answer every line (in the background): the job's output and error lines, in input order."""
        answers: list[tuple[str, bool, bytes]] = []
        seen: set[str] = set()
        model = None
        for obj in lines:
            cid = obj["custom_id"]
            body = obj["body"]
            rid = str(uuid.uuid4())
            name = body.get("model")
            if model is None and isinstance(name, str):
                model = name
            if cid in seen:
                answers.append((cid, False, _error_line(cid, rid, "invalid_parameter", "duplicate_custom_id",
                                                        f"custom_id {cid!r} is used by an earlier line.")))
                continue
            seen.add(cid)
            if name != model:
                answers.append((cid, False, _error_line(cid, rid, "invalid_parameter", "mismatched_model",
                                                        f"Every line of a batch must use one model ({model!r}); "
                                                        f"this one uses {name!r}.")))
                continue
            test = name == facts.BATCH_TEST_MODEL
            if test != (job.endpoint == facts.BATCH_TEST_URL):
                code = "mismatched_test_url" if test else "mismatched_model"
                answers.append((cid, False, _error_line(cid, rid, "invalid_parameter", code,
                                                        f"batch-test-model is called at {facts.BATCH_TEST_URL} "
                                                        "and only there.")))
                continue
            if not isinstance(name, str) or not facts.batch_serves(job.region, name):
                answers.append((cid, False, _error_line(cid, rid, "model_not_found", "model_not_found",
                                                        f"The provided model {name!r} is not supported by the "
                                                        "Batch API.")))
                continue
            if fail_rate and _draw(job.id, cid) < fail_rate:
                answers.append((cid, False, _error_line(cid, rid, "internal", None, "")))
                continue
            if test:
                ok, data = True, _test_answer(rid)
            else:
                ok, data = self._answer(job.region, job.workspace, body, rid)
            answers.append((cid, ok, _result_line(cid, rid, data) if ok else _wrap_error(cid, rid, data)))
        job.answers = answers

    # -- the clock -------------------------------------------------------------
    def status(self, job: Job, now: float | None = None) -> str:
        """The job's status now (finishing it, with its files, when its time has come)."""
        if job.final is not None:
            return job.final
        now = time.monotonic() if now is None else now
        t = job.emulated(now)
        window = job.window_hours * 3600.0
        if job.cancelled_at is not None:
            if t - job.emulated(job.cancelled_at) < VALIDATE_SECONDS or job.answers is None and not job.errors:
                return "cancelling"
            return self._finish(job, "cancelled", self._done_at(job, job.emulated(job.cancelled_at)))
        if t < VALIDATE_SECONDS:
            return "validating"
        if job.errors:
            return self._finish(job, "failed", 0)
        end = VALIDATE_SECONDS + job.run_hours * 3600.0
        if t >= window and end > window:
            if job.answers is None:
                return "finalizing"
            return self._finish(job, "expired", self._done_at(job, window))
        if t < end:
            job.stamps.setdefault("in_progress_at", job.created + int(VALIDATE_SECONDS))
            return "in_progress"
        if job.answers is None:
            job.stamps.setdefault("finalizing_at", job.created + int(end))
            return "finalizing"
        return self._finish(job, "completed", job.total)

    def _done_at(self, job: Job, t: float) -> int:
        """Lines done by emulated time ``t``."""
        run = job.run_hours * 3600.0
        if run <= 0:
            return job.total
        share = min(max((t - VALIDATE_SECONDS) / run, 0.0), 1.0)
        return int(job.total * share)

    def _finish(self, job: Job, status: str, done: int) -> str:
        """Write the job's output and error files (the lines done) and fix its status."""
        with self._lock:
            if job.final is not None:
                return job.final
            answers = (job.answers or [])[:done]
            ok = [a[2] for a in answers if a[1]]
            bad = [a[2] for a in answers if not a[1]]
            rng = random.Random(job.id)  # the service keeps no order: neither does the emulator
            rng.shuffle(ok)
            rng.shuffle(bad)
            if ok:
                job.output_file_id = self._store_output(job, "output", b"".join(ok))
            if bad:
                job.error_file_id = self._store_output(job, "error", b"".join(bad))
            job.done_lines = done
            job.stamps.setdefault(f"{status}_at", int(time.time()))
            job.final = status
            job.answers = None  # the files hold them now
            return status

    def _store_output(self, job: Job, what: str, data: bytes) -> str:
        f = StoredFile(f"file-batch_output-{uuid.uuid4().hex[:20]}", job.workspace, f"{job.id}_{what}.jsonl",
                       "batch_output", data, int(time.time()))
        self.files[f.id] = f
        return f.id

    def cancel(self, workspace: str, job_id: str) -> Job:
        """Ask a job to stop; lines done by then are kept (and billed)."""
        job = self.get(workspace, job_id)
        status = self.status(job)
        if status in facts.BATCH_FINAL:
            raise BatchRefusal("invalid_parameter", f"Batch {job_id} is already {status}; it cannot be cancelled.")
        if job.cancelled_at is None:
            job.cancelled_at = time.monotonic()
            job.stamps.setdefault("cancelling_at", int(time.time()))
        return job

    def get(self, workspace: str, job_id: str) -> Job:
        with self._lock:
            job = self.jobs.get(job_id)
        if job is None or job.workspace != workspace:
            raise BatchRefusal("not_found", f"Batch {job_id!r} not found.", "batch_id")
        return job

    def list(self, workspace: str, after: str | None, limit: int) -> dict[str, Any]:
        """Jobs of a workspace, newest first, a page at a time (``after`` a job id)."""
        with self._lock:
            jobs = [j for j in self.jobs.values() if j.workspace == workspace]
        jobs.sort(key=lambda j: j.t0, reverse=True)
        if after:
            ids = [j.id for j in jobs]
            jobs = jobs[ids.index(after) + 1:] if after in ids else []
        page = jobs[:limit]
        data = [self.to_dict(j) for j in page]
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": len(jobs) > limit}

    def to_dict(self, job: Job) -> dict[str, Any]:
        """The service's batch object."""
        status = self.status(job)
        if status in ("in_progress", "finalizing", "cancelling") and job.final is None:
            done = self._done_at(job, job.emulated(job.cancelled_at or time.monotonic()))
            answers = job.answers
            failed = sum(1 for a in answers[:done] if not a[1]) if answers is not None else 0
            counts = {"total": job.total, "completed": done - failed, "failed": failed}
        elif job.final is not None and not job.errors:
            bad = 0
            if job.error_file_id is not None:
                bad = self.files[job.error_file_id].data.count(b"\n")
            counts = {"total": job.total, "completed": job.done_lines - bad, "failed": bad}
        else:
            counts = {"total": job.total, "completed": 0, "failed": 0}
        expires = job.created + job.window_hours * 3600
        out: dict[str, Any] = {
            "id": job.id, "object": "batch", "endpoint": job.endpoint,
            "errors": {"object": "list", "data": job.errors} if job.errors else None,
            "input_file_id": job.input_file_id, "completion_window": job.completion_window, "status": status,
            "output_file_id": job.output_file_id, "error_file_id": job.error_file_id, "created_at": job.created,
            "in_progress_at": None, "expires_at": expires, "finalizing_at": None, "completed_at": None,
            "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": counts, "metadata": job.metadata,
        }
        out.update({k: v for k, v in job.stamps.items() if k in out})
        return out


def _draw(job_id: str, custom_id: str) -> float:
    """A number in [0, 1) fixed by the line: the same lines fail on every run."""
    digest = hashlib.blake2b(custom_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _result_line(cid: str, rid: str, body: bytes) -> bytes:
    return (b'{"id":"batch_req_' + rid.encode() + b'","custom_id":' + wire.dumps(cid)
            + b',"response":{"status_code":200,"request_id":"' + rid.encode() + b'","body":' + body
            + b'},"error":null}\n')


def _wrap_error(cid: str, rid: str, body: bytes) -> bytes:
    """An error line from a refused line's (compatible) error body."""
    data = json.loads(body)
    err = data.get("error") or {}
    status = facts.error_fact(err.get("code"), None, err.get("message") or "")
    line = {"id": f"batch_req_{rid}", "custom_id": cid,
            "response": {"status_code": status.status if status else 400, "request_id": rid, "body": data},
            "error": {"code": err.get("code"), "message": err.get("message")}}
    return wire.dumps(line) + b"\n"


def _error_line(cid: str, rid: str, kind: str, code: str | None, message: str) -> bytes:
    status, body = wire.error_body("compatible", kind, message or wire.error_message("compatible", kind), rid,
                                   code=code)
    data = json.loads(body)
    err = data["error"]
    line = {"id": f"batch_req_{rid}", "custom_id": cid,
            "response": {"status_code": status, "request_id": rid, "body": data},
            "error": {"code": err.get("code"), "message": err.get("message")}}
    return wire.dumps(line) + b"\n"


def _test_answer(rid: str) -> bytes:
    return wire.dumps({
        "choices": [{"message": {"role": "assistant", "content": facts.BATCH_TEST_ANSWER}, "finish_reason": "stop",
                     "index": 0, "logprobs": None}],
        "object": "chat.completion", "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "created": int(time.time()), "system_fingerprint": None, "model": facts.BATCH_TEST_MODEL,
        "id": f"chatcmpl-{rid}",
    })


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """A ``multipart/form-data`` body: field name -> (file name or None, value bytes)."""
    marker = "boundary="
    at = content_type.find(marker)
    if not content_type.lower().startswith("multipart/form-data") or at < 0:
        raise BatchRefusal("invalid_parameter", "Upload the file as multipart/form-data (fields file and purpose).")
    boundary = content_type[at + len(marker):].split(";")[0].strip().strip('"').encode()
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + boundary):
        if part in (b"", b"--", b"--\r\n") or part.startswith(b"--"):
            continue
        part = part[2:] if part.startswith(b"\r\n") else part
        head, sep, value = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if value.endswith(b"\r\n"):
            value = value[:-2]
        disposition = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                disposition = line
        params = dict(_param(p) for p in disposition.split(";")[1:])
        name = params.get("name")
        if name:
            out[name] = (params.get("filename"), value)
    return out


def _param(text: str) -> tuple[str, str]:
    key, _, value = text.strip().partition("=")
    return key.strip().lower(), value.strip().strip('"')
