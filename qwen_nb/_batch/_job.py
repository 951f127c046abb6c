"""``batch()`` and ``BatchJob``: Model Studio's Batch API through the session's ``openai`` client, kept in the ledger.

A ``BatchJob`` is one ``batch()`` call: one service job, or several when the input passed the
per-file limits (they then behave as one: status, counts, wait, cancel and results over all of
them, in input order). Every job is written to the ledger database when it is created, so
``BatchJob.attach(id)`` picks it up in a new kernel. Results are read from the job's output and
error files, downloaded to a temporary folder a piece at a time and indexed by row: nothing holds
every answer at once. Usage goes into the ledger once per line (``call_id`` ``batch:<job>:<row>``)
at the batch price, marked with the job id.

Management calls go through the session's ``openai`` client and the pipeline's error translation
and retry policy; they leave no ledger row (only the lines' usage does).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from qwen_nb import facts
from qwen_nb._batch._lines import build, is_frame
from qwen_nb._guidance import ServiceFailure, guided_error
from qwen_nb._pipeline import Call, base_url_for, detach
from qwen_nb.errors import CancelledCallError, InputError, QwenNbError, ServiceError
from qwen_nb.ledger import (
    BatchJobRecord,
    CallRecord,
    batch_job_records,
    save_batch_job,
    update_batch_job,
)
from qwen_nb.normalize import from_openai
from qwen_nb.normalize import usage as usage_of
from qwen_nb.prices import estimate
from qwen_nb.requests import ChatRequest, check_model
from qwen_nb.results import ChatResult, Usage

if TYPE_CHECKING:
    from qwen_nb.session import Session

Item = ChatResult | QwenNbError

#: seconds between two status checks at first (the real service), and at most (the wait grows by half each time)
POLL, MAX_POLL = 5.0, 60.0
#: the same on a local emulator, whose clock runs fast
EMULATOR_POLL = 0.1
#: ledger rows written per transaction while recording a job's usage
_RECORD_CHUNK = 5_000


def _default_session() -> Session:
    from qwen_nb._default import default_session

    return default_session()


class _Api:
    """The ``openai`` client of one profile, each call retried and translated by the session's pipeline."""

    def __init__(self, session: Session, profile: str | None, model: str) -> None:
        prof = session.get_profile(profile)
        region = session.region(prof.name)
        self.session, self.profile, self.region = session, prof, region
        self.call = Call(prof, region, "openai", ChatRequest(model=model, messages=[]),
                         base_url_for(prof, region, "openai"))

    def run(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(openai_client)``; a failure becomes the guided error (retried first where that may help)."""
        pipeline = self.session.pipeline
        attempts = 0
        while True:
            attempts += 1
            backend = self.session._backend(self.call)
            try:
                return fn(backend.client)  # type: ignore[attr-defined]
            except Exception as exc:
                failed = exc
            err = pipeline.translate(failed, self.call, backend, attempts)
            if err is None:
                raise failed
            delay = pipeline.retry_delay(err, self.call, attempts)
            if delay is None:
                err.model = self.call.req.model
                raise detach(err) from None
            time.sleep(delay)

    # the Batch API's calls (the ``openai`` SDK's files and batches resources)
    def upload(self, name: str, fh: Any) -> Any:
        """``POST /files`` (purpose batch): the file object."""
        return self.run(lambda c: c.files.create(file=(name, fh), purpose=facts.BATCH_PURPOSE))

    def create(self, file_id: str, endpoint: str, window: str, metadata: dict[str, str]) -> Any:
        """``POST /batches``: the batch object."""
        return self.run(lambda c: c.batches.create(input_file_id=file_id, endpoint=endpoint,
                                                   completion_window=window, metadata=metadata))

    def retrieve(self, batch_id: str) -> Any:
        """``GET /batches/{id}``."""
        return self._about(batch_id, lambda c: c.batches.retrieve(batch_id))

    def cancel(self, batch_id: str) -> Any:
        """``POST /batches/{id}/cancel``."""
        return self._about(batch_id, lambda c: c.batches.cancel(batch_id))

    def _about(self, batch_id: str, fn: Callable[[Any], Any]) -> Any:
        """A call about one job: a 404 says which job was not found, and where (not which model)."""
        try:
            return self.run(fn)
        except QwenNbError as err:
            if err.status != 404:
                raise
            failed = err
        where = f"{self.region.label} [{self.region.id}]"
        raise detach(ServiceError(
            f"Batch {batch_id!r} was not found for profile {self.profile.name!r} ({self.profile.masked_key}) in "
            f"{where}.", fix="Check the id (q.batch_jobs() lists the jobs in this ledger). A job is seen only by keys "
            f"of the workspace that created it, in its region, for {facts.BATCH_QUERY_DAYS} days.",
            status=404, code=failed.code, request_id=failed.request_id, profile=self.profile.name,
            region=self.region.id, api="openai", raw=failed.raw)) from None

    def download(self, file_id: str, path: str) -> None:
        """``GET /files/{id}/content`` into ``path``, a piece at a time."""

        def fetch(client: Any) -> None:
            with client.files.with_streaming_response.content(file_id) as resp, open(path, "wb") as out:
                for chunk in resp.iter_bytes(1 << 20):
                    out.write(chunk)

        self.run(fetch)


def _check_window(window: Any) -> str:
    if facts.batch_window_hours(window) is None:
        low, high = facts.BATCH_WINDOW_HOURS
        raise InputError(f"completion_window={window!r} is not one the service takes.",
                         fix=f'Use whole hours or days from {low}h to {high}h, e.g. "24h", "72h" or "14d".')
    return str(window).strip()


def _check_region(session: Session, profile: str | None) -> tuple[Any, Any]:
    prof = session.get_profile(profile)
    region = session.region(prof.name)
    if region.id not in facts.BATCH_MODELS:
        where = " and ".join(facts.BATCH_MODELS)
        raise InputError(f"The Batch API is not offered in {region.label} [{region.id}] (profile {prof.name!r}).",
                         fix=f"Use a profile of a region that has it ({where}), or chat_many() here.",
                         profile=prof.name, region=region.id)
    return prof, region


def submit(items: Any, *, model: str | None = None, profile: str | None = None, system: str | None = None,
           completion_window: str = "24h", template: str | None = None, dry_run: bool = False,
           session: Session | None = None, **params: Any) -> BatchJob:
    """Send ``items`` to Model Studio's Batch API (half the real-time price; answers within ``completion_window``).

    ``items``: prompts, message lists, or a pandas DataFrame with ``template="Classify: {text}"``
    (its columns by name; dicts work the same way). Every row is checked like ``chat()`` before
    anything is sent (an ``InputError`` names the row); a model the region's Batch API does not serve
    is refused. Inputs past the service's per-file limits (50,000 lines, 500 MB) become several jobs
    that behave as one. ``dry_run=True`` sends the lines to the free ``batch-test-model`` instead
    (a sample of at most 100 lines): the file and the calls are checked at no cost.
    ``params``: the generation parameters of ``chat()`` (temperature, max_tokens, enable_thinking ...).
    Returns the ``BatchJob`` (already recorded in the ledger: ``BatchJob.attach(id)`` after a restart).
    """
    session = session or _default_session()
    prof, region = _check_region(session, profile)
    model = check_model(session.default_model if model is None else model)
    window = _check_window(completion_window)
    if not dry_run and not facts.batch_serves(region.id, model):
        served = ", ".join(facts.BATCH_MODELS[region.id][:8])
        raise InputError(f"Model {model!r} is not served by the Batch API in {region.label} [{region.id}].",
                         fix=f"Use one it serves ({served}, ...), another region's profile, or chat_many().",
                         model=model, profile=prof.name, region=region.id)
    built = build(items, model=model, system=system, template=template, dry_run=dry_run, params=params)
    api = _Api(session, prof.name, built.model)
    group = f"grp_{uuid.uuid4().hex[:16]}"
    meta = {"frame": is_frame(items), "total": built.total, "sent": built.total - built.unsent,
            "model": model, "params": sorted(params)}
    job = BatchJob(session, [], frame=items if is_frame(items) else None)
    try:
        for k, part in enumerate(built.parts):
            with open(part.path, "rb") as fh:
                name = f"qwen-nb-{group[4:12]}-{k + 1}.jsonl"
                uploaded = api.upload(name, fh)
            created = api.create(uploaded.id, built.url, window,
                                 {"ds_name": f"qwen-nb {group[4:12]} part {k + 1} of {len(built.parts)}"})
            rec = BatchJobRecord(
                id=created.id, group_id=group, part=k, parts=len(built.parts), first_row=part.first_row,
                rows=part.rows, created=time.time(), profile=prof.name, workspace=prof.workspace,
                region=region.id, model=built.model, endpoint=built.url, completion_window=window,
                input_file_id=uploaded.id, dry_run=dry_run, status=created.status, meta=meta)
            save_batch_job(session.ledger, rec)  # before anything else can fail: the job outlives this kernel
            job._records.append(rec)
            job._objects[rec.id] = created
    except QwenNbError as err:
        if job._records:
            ids = ", ".join(r.id for r in job._records)
            err.message += (f" ({len(job._records)} of {len(built.parts)} jobs were created before this and are "
                            f"running: {ids}; q.BatchJob.attach({group!r}) follows them, or cancel them.)")
            err.args = (str(err),)
        raise
    finally:
        built.remove()
    return job


class BatchJob:
    """One ``batch()`` call's job (or jobs, when the input was split): status, progress, results, cost.

    ``status`` and ``counts`` ask the service; ``wait()`` polls it (with backoff) under a progress
    bar; ``cancel()`` stops it (lines done are kept, and billed); ``results()`` gives each input row's
    ``ChatResult`` or error, in input order (a DataFrame when a DataFrame went in).
    ``BatchJob.attach(id)`` resumes a job after a restart, from the ledger (or the service).
    """

    def __init__(self, session: Session, records: list[BatchJobRecord], *, frame: Any = None) -> None:
        self.session = session
        self._records = list(records)
        self._objects: dict[str, Any] = {}
        self._frame = frame
        self._index: _Index | None = None
        self._calls: dict[str, Call] = {}
        self._costs: dict[tuple[Any, ...], tuple[float | None, str | None]] = {}

    # -- finding jobs -----------------------------------------------------------
    @classmethod
    def attach(cls, job_id: str, *, profile: str | None = None, session: Session | None = None) -> BatchJob:
        """The job ``job_id`` (a service batch id, or the group id of a split ``batch()``), e.g. after a restart.

        Read from the ledger database (where ``batch()`` recorded it); a job the ledger does not
        know is looked up at the service with ``profile``'s key.
        """
        if not isinstance(job_id, str) or not job_id.strip():
            raise InputError(f"attach() takes a batch id, got {job_id!r}.", fix="E.g. q.BatchJob.attach('batch_...').")
        job_id = job_id.strip()
        session = session or _default_session()
        ledger = session.ledger
        found = batch_job_records(ledger, job_id=job_id)
        group = found[0].group_id if found else job_id
        records = batch_job_records(ledger, group_id=group)
        if records:
            return cls(session, records)
        prof, region = _check_region(session, profile)
        api = _Api(session, prof.name, facts.BATCH_TEST_MODEL)
        obj = api.retrieve(job_id)
        model = (obj.metadata or {}).get("model") if isinstance(obj.metadata, dict) else None
        total = obj.request_counts.total if obj.request_counts else 0
        rec = BatchJobRecord(
            id=obj.id, group_id=obj.id, part=0, parts=1, first_row=0, rows=total, created=float(obj.created_at),
            profile=prof.name, workspace=prof.workspace, region=region.id, model=model or "unknown",
            endpoint=obj.endpoint, completion_window=obj.completion_window, input_file_id=obj.input_file_id,
            dry_run=obj.endpoint == facts.BATCH_TEST_URL, status=obj.status, meta={"total": total})
        save_batch_job(ledger, rec)
        job = cls(session, [rec])
        job._objects[obj.id] = obj
        return job

    # -- what it is -------------------------------------------------------------
    @property
    def id(self) -> str:
        """The service's batch id (the group id when the input was split into several jobs)."""
        return self._records[0].id if len(self._records) == 1 else self._records[0].group_id

    @property
    def ids(self) -> list[str]:
        """The service's batch ids, in input order."""
        return [r.id for r in self._records]

    @property
    def model(self) -> str:
        return self._records[0].model

    @property
    def rows(self) -> int:
        """Input rows sent."""
        return sum(r.rows for r in self._records)

    def _api(self) -> _Api:
        return _Api(self.session, self._records[0].profile, self.model)

    def refresh(self) -> BatchJob:
        """Ask the service for each job's state now (the ledger keeps the status)."""
        api = self._api()
        for rec in self._records:
            obj = api.retrieve(rec.id)
            self._objects[rec.id] = obj
            if (obj.status, obj.output_file_id, obj.error_file_id) != (rec.status, rec.output_file_id,
                                                                     rec.error_file_id):
                rec.status, rec.output_file_id, rec.error_file_id = obj.status, obj.output_file_id, obj.error_file_id
                update_batch_job(self.session.ledger, rec.id, status=rec.status, output_file_id=rec.output_file_id,
                                 error_file_id=rec.error_file_id)
        return self

    @property
    def parts(self) -> list[str]:
        """Each job's status now (one per job, in input order)."""
        self.refresh()
        return [self._objects[r.id].status for r in self._records]

    @property
    def status(self) -> str:
        """The service's status now; for several jobs, the least advanced one (all done: ``completed`` if any
        completed, else what they ended as)."""
        return _combined([s for s in self.parts])

    @property
    def counts(self) -> dict[str, int]:
        """``{"total", "completed", "failed"}`` lines now, summed over the jobs."""
        self.refresh()
        return self._counts()

    def _counts(self) -> dict[str, int]:
        out = {"total": 0, "completed": 0, "failed": 0}
        for rec in self._records:
            rc = getattr(self._objects.get(rec.id), "request_counts", None)
            out["total"] += (rc.total if rc is not None and rc.total else rec.rows)
            out["completed"] += rc.completed if rc is not None else 0
            out["failed"] += rc.failed if rc is not None else 0
        return out

    @property
    def done(self) -> bool:
        """True once every job has ended (completed, failed, expired or cancelled)."""
        return all(s in facts.BATCH_FINAL for s in self.parts)

    def wait(self, timeout: float | None = None, *, progress: bool = True, poll: float | None = None) -> BatchJob:
        """Wait until every job has ended (or ``timeout`` seconds passed), with a progress bar; returns self.

        Checks the service every ``poll`` seconds at first (5 s; 0.1 s on the emulator), half as long
        again after each check without progress, at most a minute apart. Ctrl-C stops waiting, not the job.
        """
        base = poll if poll is not None else (EMULATOR_POLL if self.session.on_emulator else POLL)
        if isinstance(base, bool) or not isinstance(base, (int, float)) or base <= 0:
            raise InputError(f"poll must be a positive number of seconds, got {poll!r}.")
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        bar = None
        delay, last = float(base), None
        try:
            while True:
                statuses = self.parts
                counts = self._counts()
                seen = counts["completed"] + counts["failed"]
                if progress and bar is None:
                    from tqdm.auto import tqdm

                    bar = tqdm(total=counts["total"] or self.rows, desc=f"batch {self.model}", unit="line")
                if bar is not None:
                    bar.n = seen
                    bar.set_postfix({"status": _combined(statuses), **({"failed": counts["failed"]}
                                                                      if counts["failed"] else {})}, refresh=False)
                    bar.refresh()
                if all(s in facts.BATCH_FINAL for s in statuses):
                    return self
                if deadline is not None and time.monotonic() >= deadline:
                    return self
                delay = float(base) if seen != last else min(delay * 1.5, MAX_POLL)
                last = seen
                left = delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic()))
                time.sleep(left)
        finally:
            if bar is not None:
                bar.close()

    def cancel(self) -> BatchJob:
        """Ask the service to stop every job not ended yet (lines already done are kept, and billed)."""
        api = self._api()
        for rec in self._records:
            obj = self._objects.get(rec.id)
            if obj is not None and obj.status in facts.BATCH_FINAL:
                continue
            try:
                obj = api.cancel(rec.id)
            except QwenNbError:
                obj = api.retrieve(rec.id)
                if obj.status not in facts.BATCH_FINAL:
                    raise
            self._objects[rec.id] = obj
            rec.status = obj.status
            update_batch_job(self.session.ledger, rec.id, status=obj.status)
        return self

    # -- results ------------------------------------------------------------------
    def results(self, *, wait: bool = True, progress: bool = True, as_frame: bool | None = None) -> Any:
        """Each input row's ``ChatResult`` (or the error of its line), in input order.

        A ``BatchResults`` sequence read from the downloaded result files as it is used (``list()`` it
        to hold them all), or, when a DataFrame went in (or ``as_frame=True``), that DataFrame with the
        columns ``answer``, ``input_tokens``, ``output_tokens``, ``cost``, ``currency`` and ``error``.
        Waits for the jobs first (``wait=False``: refuse if one is still running). The lines' usage goes
        into the ledger once, at the batch price.
        """
        if wait:
            self.wait(progress=progress)
        elif not self.done:
            raise InputError(f"Batch {self.id} is still {self.status}; its results are not ready.",
                             fix="Call job.wait() first, or results() (which waits).")
        if self._index is None:
            self._index = _Index(self)
            self._record_usage()
        res = BatchResults(self, self._index)
        frame = self._frame is not None if as_frame is None else as_frame
        if not frame and as_frame is None and self._records[0].meta.get("frame"):
            frame = True
        return res.to_frame(self._frame) if frame else res

    def _record_usage(self) -> None:
        """Each line's usage and cost in the ledger (once: ``call_id`` per job and row), marked with the job id."""
        index = self._index
        assert index is not None
        ledger = self.session.ledger
        for k, rec in enumerate(self._records):
            if rec.recorded is not None or rec.dry_run:
                continue
            stamp = float(getattr(self._objects.get(rec.id), "completed_at", None) or time.time())
            batch: list[CallRecord] = []
            for row, line in index.lines(k):
                batch.append(_call_record(self, rec, row, line, stamp))
                if len(batch) >= _RECORD_CHUNK:
                    ledger.record_many(batch)
                    batch = []
            if batch:
                ledger.record_many(batch)
            rec.recorded = time.time()
            update_batch_job(ledger, rec.id, recorded=rec.recorded)

    def __repr__(self) -> str:
        jobs = f"{len(self._records)} jobs" if len(self._records) > 1 else "1 job"
        last = [r.status or "?" for r in self._records]
        dry = ", dry run" if self._records and self._records[0].dry_run else ""
        return f"<BatchJob {self.id}: {self.rows} rows, {self.model}, {jobs}, last seen {_combined(last)}{dry}>"


def _combined(statuses: Sequence[str]) -> str:
    open_ = [s for s in statuses if s not in facts.BATCH_FINAL]
    if open_:
        order = ("validating", "in_progress", "finalizing", "cancelling")
        return min(open_, key=lambda s: order.index(s) if s in order else 0)
    if len(set(statuses)) == 1:
        return statuses[0]
    return "completed" if "completed" in statuses else statuses[0]


# ------------------------------------------------------------------------------------ result files


class _Index:
    """Where each row's line is: the jobs' output and error files downloaded, and one offset per row."""

    def __init__(self, job: BatchJob) -> None:
        self.job = job
        self.folder = tempfile.mkdtemp(prefix="qwen-nb-batch-")
        records = job._records
        self.starts = [r.first_row for r in records]
        self.base = min(self.starts) if records else 0
        self.total = max((r.first_row + r.rows for r in records), default=0) - self.base
        #: per row: the byte offset of its line, and in which file (0: none, 1 + 2k: job k's output, 2 + 2k: errors)
        self.offsets = array("q", [-1]) * self.total
        self.where = array("H", [0]) * self.total
        self.paths: dict[int, str] = {}
        api = job._api()
        for k, rec in enumerate(records):
            for slot, file_id in ((1 + 2 * k, rec.output_file_id), (2 + 2 * k, rec.error_file_id)):
                if file_id:
                    self.paths[slot] = self._download(api, file_id, slot)
        self._handles: dict[int, Any] = {}

    def _download(self, api: _Api, file_id: str, slot: int) -> str:
        path = os.path.join(self.folder, f"{slot}.jsonl")
        api.download(file_id, path)
        offset = 0
        with open(path, "rb") as fh:
            for raw in fh:
                cid = _custom_id(raw)
                row = int(cid) - self.base if cid is not None and cid.isdigit() else -1
                # an answer wins over an error for the same row
                if 0 <= row < self.total and (self.where[row] == 0 or (slot % 2 == 1 and self.where[row] % 2 == 0)):
                    self.offsets[row], self.where[row] = offset, slot
                offset += len(raw)
        return path

    def line(self, row: int) -> tuple[int, bytes | None]:
        """(file slot, line bytes) of ``row`` (0 from the first row sent); slot 0 and None when it has none."""
        slot = self.where[row]
        if not slot:
            return 0, None
        fh = self._handles.get(slot)
        if fh is None:
            fh = self._handles[slot] = open(self.paths[slot], "rb")  # noqa: SIM115 - closed by close()
        fh.seek(self.offsets[row])
        return slot, fh.readline()

    def lines(self, k: int) -> Iterator[tuple[int, bytes | None]]:
        """Job ``k``'s rows in order, with their lines (None: no line)."""
        rec = self.job._records[k]
        for row in range(rec.first_row - self.base, rec.first_row - self.base + rec.rows):
            yield row, self.line(row)[1]

    def close(self) -> None:
        for fh in self._handles.values():
            fh.close()
        self._handles.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _custom_id(raw: bytes) -> str | None:
    """A result line's ``custom_id``, found without parsing the whole line where possible."""
    at = raw.find(b'"custom_id":')
    if at >= 0:
        start = raw.find(b'"', at + 12)
        end = raw.find(b'"', start + 1)
        if start > 0 and end > start:
            return raw[start + 1:end].decode("utf-8", "replace")
    try:
        cid = json.loads(raw).get("custom_id")
    except (ValueError, AttributeError):
        return None
    return cid if isinstance(cid, str) else None


def _job_of(job: BatchJob, row: int) -> BatchJobRecord:
    starts = [r.first_row for r in job._records]
    return job._records[max(bisect_right(starts, row) - 1, 0)]


def _call_for(job: BatchJob, rec: BatchJobRecord) -> Call:
    """The call a job's lines stand for (who, where, which model): for costs and guided errors."""
    call = job._calls.get(rec.id)
    if call is None:
        prof = job.session.get_profile(rec.profile)
        region = job.session.region(prof.name)
        call = job._calls[rec.id] = Call(prof, region, "openai", ChatRequest(model=rec.model, messages=[]),
                                         base_url_for(prof, region, "openai"))
    return call


def _parse(job: BatchJob, rec: BatchJobRecord, row: int, raw: bytes | None) -> Item:
    """A row's ``ChatResult`` (cost at the batch price), or its guided error."""
    call = _call_for(job, rec)
    if raw is None:
        status = rec.status or "ended"
        err: QwenNbError = CancelledCallError(
            f"Row {row} has no answer: batch {rec.id} {status} before its line was run.",
            fix="Send the rows without an answer again (a new batch() or chat_many()); they were not billed.",
            model=rec.model, profile=rec.profile, region=rec.region, api="openai")
        return err
    line = json.loads(raw)
    response = line.get("response") or {}
    body = response.get("body") if isinstance(response, dict) else None
    code = response.get("status_code") if isinstance(response, dict) else None
    if code == 200 and isinstance(body, dict) and not line.get("error"):
        comp = from_openai(body)
        comp.raw = None
        result = job.session.pipeline.result(call, comp, 0.0, 1)
        result.request_id = response.get("request_id") or comp.request_id
        result.cost, currency = _batch_cost(job, rec, result.usage)
        result.currency = currency or result.currency
        if rec.dry_run:
            result.cost = None
        return result
    error: dict[str, Any] = line.get("error") if isinstance(line.get("error"), dict) else {}
    inner: dict[str, Any] = body["error"] if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
    failure = ServiceFailure("status", status=code if isinstance(code, int) else None,
                             code=error.get("code") or inner.get("code") or inner.get("type"),
                             message=error.get("message") or inner.get("message") or "",
                             request_id=(response.get("request_id") if isinstance(response, dict) else None),
                             body=line)
    err = guided_error(failure, job.session._context(call, 1, failure))
    err.message = f"Row {row}: {err.message}"
    err.args = (str(err),)
    return detach(err)


def _batch_cost(job: BatchJob, rec: BatchJobRecord, u: Usage) -> tuple[float | None, str | None]:
    """A line's cost at the batch price (the real-time estimate, halved), remembered per token counts."""
    key = (rec.model, rec.region, u.input_tokens, u.output_tokens, u.reasoning_tokens)
    found = job._costs.get(key)
    if found is None:
        try:
            cost, currency = estimate(*key)
        except Exception:  # a price problem must not lose the usage
            cost, currency = None, None
        found = job._costs[key] = (None if cost is None else cost * facts.BATCH_PRICE_FACTOR, currency)
    return found


def _call_record(job: BatchJob, rec: BatchJobRecord, row: int, raw: bytes | None, stamp: float) -> CallRecord:
    call_id = f"batch:{rec.id}:{row + job._index.base if job._index else row}"
    if raw is not None:  # an answered line: its usage read straight from the line (no ChatResult needed)
        line = json.loads(raw)
        response = line.get("response") if isinstance(line.get("response"), dict) else {}
        body = response.get("body")
        if response.get("status_code") == 200 and isinstance(body, dict) and not line.get("error"):
            u = usage_of(body.get("usage")) or Usage()
            cost, currency = _batch_cost(job, rec, u)
            return CallRecord(time=stamp, profile=rec.profile, workspace=rec.workspace, region=rec.region,
                              api="openai", model=rec.model, input_tokens=u.input_tokens,
                              output_tokens=u.output_tokens, reasoning_tokens=u.reasoning_tokens, latency=0.0,
                              request_id=response.get("request_id"), status="ok", error_code=None, attempts=1,
                              cost=cost, currency=currency if cost is not None else None, call_id=call_id,
                              batch_id=rec.id)
    parsed = _parse(job, rec, row, raw) if raw is not None else None
    item = parsed if isinstance(parsed, QwenNbError) else None
    return CallRecord(time=stamp, profile=rec.profile, workspace=rec.workspace, region=rec.region, api="openai",
                      model=rec.model, input_tokens=0, output_tokens=0, reasoning_tokens=0, latency=0.0,
                      request_id=item.request_id if item is not None else None,
                      status="error" if item is not None else "interrupted",
                      error_code=(item.code or type(item).__name__) if item is not None else "NotRun", attempts=1,
                      cost=None, currency=None, call_id=call_id, batch_id=rec.id)


class BatchResults(Sequence[Item]):
    """Each row's ``ChatResult`` or error, in input order, read from the downloaded result files when used."""

    def __init__(self, job: BatchJob, index: _Index) -> None:
        self._job = job
        self._index = index

    def __len__(self) -> int:
        return self._index.total

    @overload
    def __getitem__(self, i: int) -> Item: ...

    @overload
    def __getitem__(self, i: slice) -> list[Item]: ...

    def __getitem__(self, i: int | slice) -> Item | list[Item]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        rec = _job_of(self._job, i + self._index.base)
        return _parse(self._job, rec, i, self._index.line(i)[1])

    def __iter__(self) -> Iterator[Item]:
        for k, rec in enumerate(self._job._records):
            for row, raw in self._index.lines(k):
                yield _parse(self._job, rec, row, raw)

    @property
    def errors(self) -> dict[int, QwenNbError]:
        """Row -> error, for the rows that have no answer."""
        return {i: r for i, r in enumerate(self) if isinstance(r, QwenNbError)}

    def to_frame(self, frame: Any = None) -> Any:
        """A DataFrame: ``frame`` (a copy) or a new one, with the columns answer, input_tokens, output_tokens,
        cost, currency and error (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            from qwen_nb.ledger import OptionalDependencyError

            raise OptionalDependencyError("A DataFrame of batch results needs pandas, which is not installed.",
                                          fix="pip install 'qwen-nb[pandas]' — or use the results as a list.") from None
        cols: dict[str, list[Any]] = {k: [] for k in ("answer", "input_tokens", "output_tokens", "cost", "currency",
                                                      "error")}
        for r in self:
            if isinstance(r, ChatResult):
                values = [r.text, r.usage.input_tokens, r.usage.output_tokens, r.cost, r.currency, None]
            else:
                values = [None, 0, 0, None, None, f"{type(r).__name__}: {r.message}"]
            for name, value in zip(cols, values, strict=True):
                cols[name].append(value)
        if frame is None:
            return pd.DataFrame(cols)
        out = frame.copy()
        if len(out) != len(self):
            sent = len(self)
            out = out.iloc[:sent].copy()  # a dry run sends a sample: the rows it sent
        for name, values in cols.items():
            out[name] = values
        return out

    def __repr__(self) -> str:
        return f"<BatchResults of {self._job.id}: {len(self)} rows>"


def list_jobs(*, limit: int = 50, refresh: bool = True, session: Session | None = None) -> JobTable:
    """The batch jobs in the ledger, newest first, with the service's status now for those not ended."""
    session = session or _default_session()
    records = batch_job_records(session.ledger, limit=limit)
    if refresh:
        for rec in records:
            if rec.status in facts.BATCH_FINAL:
                continue
            try:
                BatchJob(session, [rec]).refresh()
            except QwenNbError as err:  # a profile gone, a job past the service's 30 days: say so, keep listing
                rec.status = f"unknown ({type(err).__name__})"
    return JobTable(records)


class JobTable(list[BatchJobRecord]):
    """Stored batch jobs (``BatchJobRecord``), shown as a table."""

    COLUMNS = ("id", "group_id", "created", "profile", "region", "model", "rows", "status")

    def _cells(self, r: BatchJobRecord) -> list[str]:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))
        return [r.id, r.group_id if r.parts > 1 else "", created, r.profile, r.region, r.model + (
            " (dry run)" if r.dry_run else ""), f"{r.rows:,}", r.status or "?"]

    def __str__(self) -> str:
        if not self:
            return "No batch jobs recorded."
        body = [list(self.COLUMNS)] + [self._cells(r) for r in self]
        widths = [max(len(b[i]) for b in body) for i in range(len(self.COLUMNS))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)).rstrip() for b in body)

    def _repr_html_(self) -> str:
        import html

        if not self:
            return "<p><em>No batch jobs recorded.</em></p>"
        head = "".join(f"<th>{c}</th>" for c in self.COLUMNS)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in self._cells(r)) + "</tr>"
                       for r in self)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
